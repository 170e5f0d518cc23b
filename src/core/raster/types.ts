/**
 * Raster contracts shared by the app (workers, map) and the Node CLI.
 * Everything here is plain data: no DOM, no ORT.
 */

/** A rectangle in full-resolution pixel coordinates of an image (x right, y down). */
export interface PixelWindow {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** "x,y,width,height": a window as a string key (caches, data attributes). */
export function windowKey(w: PixelWindow): string {
  return `${w.x},${w.y},${w.width},${w.height}`;
}

export type SampleKind = 'uint8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64' | 'int8';

/** Affine pixel→CRS transform, GDAL order: X = a + b·col + c·row, Y = d + e·col + f·row. */
export type GeoTransform = [number, number, number, number, number, number];

export interface GeoReference {
  /** proj4 definition string of the image CRS. */
  proj4: string;
  /** EPSG code when the file declares one (e.g. 32614), else null. */
  epsg: number | null;
  /** Pixel corner (0,0) → CRS. */
  transform: GeoTransform;
  /** 'declared': the file's own transform; 'gcp-fit': least-squares through its control points (approximate). */
  method: 'declared' | 'gcp-fit';
}

export interface RasterInfo {
  width: number;
  height: number;
  /** Colour/data bands, alpha excluded. */
  bandCount: number;
  sampleKind: SampleKind;
  /** Value meaning "no data" in every band, or null. */
  nodata: number | null;
  /** Index of an alpha band among the stored samples, or null. */
  alphaBand: number | null;
  /**
   * Which of the `bandCount` data bands show as red, green, blue: [0,1,2] for colour images and
   * the first three bands of multispectral ones (e.g. RGB+NIR), [0,0,0] for grey.
   */
  rgbBands: [number, number, number];
  /** Null for plain images and for files georeferenced by GCPs only. */
  geo: GeoReference | null;
  /** Ground sample distance in metres when known. */
  pixelSizeMetres: number | null;
  /** Human description of why georeferencing is missing or approximate, if so. */
  geoNote: string | null;
}

/** Per-band samples of a window resampled to width×height, row-major. */
export interface BandWindow {
  width: number;
  height: number;
  bands: ArrayLike<number>[];
  /** 1 where the pixel is valid (not nodata, alpha > 0), per output pixel. */
  valid: Uint8Array;
}

export interface ReadBandsOptions {
  /** Data bands to read (indices < bandCount), in the order wanted; default all. */
  bands?: readonly number[];
  signal?: AbortSignal;
}

/** Anything we can read pixel windows from: a GeoTIFF, a decoded JPEG/PNG… */
export interface RasterSource {
  readonly info: RasterInfo;
  /**
   * Read `window` (full-res pixels, may be fractional or reach outside the image: that part is
   * invalid) resampled to outWidth×outHeight with area-average (down) / bilinear (up), see
   * resample.ts. `bands[i]` of the result is data band `options.bands[i]`.
   * Implementations must not decode more of the image than the window needs
   * (GeoTIFFs pick the coarsest overview that still covers the output size).
   */
  readBands(window: PixelWindow, outWidth: number, outHeight: number, options?: ReadBandsOptions): Promise<BandWindow>;
}

/** 8-bit RGBA pixels, row-major; alpha 0 marks nodata. Same layout as ImageData. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}
