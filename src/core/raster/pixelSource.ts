/**
 * RasterSource over 8-bit pixels already decoded in memory: what browsers get from
 * createImageBitmap + getImageData and the CLI from jpeg-js/pngjs. Same window and
 * resampling semantics as GeoTIFFs (resample.ts).
 */
import { RasterError } from './errors';
import { checkReadRequest, resampleWindow, type SourceChunk } from './resample';
import type { BandWindow, PixelWindow, RasterInfo, RasterSource, ReadBandsOptions } from './types';

export interface DecodedPixels {
  width: number;
  height: number;
  /** Interleaved 8-bit samples, row-major, `channels` per pixel. */
  data: Uint8Array | Uint8ClampedArray;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
}

const STRIPE_PIXELS = 1 << 20;

function hasTransparency(pixels: DecodedPixels): boolean {
  if (pixels.channels !== 2 && pixels.channels !== 4) return false;
  const { data, channels } = pixels;
  for (let i = channels - 1; i < data.length; i += channels) if (data[i] < 255) return true;
  return false;
}

class PixelSource implements RasterSource {
  readonly info: RasterInfo;
  /** Stored channel per data band. */
  private readonly dataChannels: number[];

  constructor(private readonly pixels: DecodedPixels) {
    const { width, height, channels } = pixels;
    // A fully opaque alpha channel (every JPEG through a canvas) is not worth carrying.
    const alpha = hasTransparency(pixels) ? channels - 1 : null;
    const colour = channels >= 3 ? [0, 1, 2] : [0];
    this.dataChannels = colour;
    this.info = {
      width,
      height,
      bandCount: colour.length,
      sampleKind: 'uint8',
      nodata: null,
      alphaBand: alpha,
      rgbBands: colour.length === 3 ? [0, 1, 2] : [0, 0, 0],
      geo: null,
      pixelSizeMetres: null,
      geoNote: null,
    };
  }

  async readBands(window: PixelWindow, outWidth: number, outHeight: number, options: ReadBandsOptions = {}): Promise<BandWindow> {
    checkReadRequest(window, outWidth, outHeight);
    const bands = options.bands ?? this.dataChannels.map((_, i) => i);
    for (const band of bands) {
      if (!Number.isInteger(band) || band < 0 || band >= this.info.bandCount) {
        throw new RasterError('invalid-request', `band ${band} does not exist (the image has ${this.info.bandCount})`);
      }
    }
    const { width, height } = this.pixels;
    return resampleWindow({
      window,
      outWidth,
      outHeight,
      fullWidth: width,
      fullHeight: height,
      levelWidth: width,
      levelHeight: height,
      bandCount: bands.length,
      blockHeight: 1,
      maxPixelsPerStripe: STRIPE_PIXELS,
      signal: options.signal,
      readStripe: async (x, y, cols, rows) => this.stripe(x, y, cols, rows, bands),
    });
  }

  /** De-interleave one stripe of the needed channels. */
  private stripe(x: number, y: number, cols: number, rows: number, bands: readonly number[]): SourceChunk {
    const { data, width, channels } = this.pixels;
    const planes = bands.map(() => new Uint8Array(cols * rows));
    const alphaChannel = this.info.alphaBand;
    const valid = alphaChannel === null ? null : new Uint8Array(cols * rows);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const from = ((y + r) * width + x + c) * channels;
        const to = r * cols + c;
        for (let b = 0; b < bands.length; b++) planes[b][to] = data[from + this.dataChannels[bands[b]]];
        if (valid) valid[to] = data[from + (alphaChannel as number)] > 0 ? 1 : 0;
      }
    }
    return { colStart: x, rowStart: y, cols, rows, bands: planes, valid };
  }
}

export function createPixelSource(pixels: DecodedPixels): RasterSource {
  const { width, height, channels, data } = pixels;
  if (!(width > 0 && height > 0) || data.length !== width * height * channels) {
    throw new RasterError('decode-failed', `decoded image data does not match its size (${width}×${height}×${channels})`);
  }
  return new PixelSource(pixels);
}
