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

/** Anything we can read pixel windows from: a GeoTIFF, a decoded JPEG/PNG… */
export interface RasterSource {
  readonly info: RasterInfo;
  /**
   * Read `window` (full-res pixels) resampled to outWidth×outHeight.
   * Implementations must not decode more of the image than the window needs
   * (GeoTIFFs pick the coarsest overview that still covers the output size).
   */
  readBands(window: PixelWindow, outWidth: number, outHeight: number, signal?: AbortSignal): Promise<BandWindow>;
}

/** 8-bit RGBA pixels, row-major; alpha 0 marks nodata. Same layout as ImageData. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}
