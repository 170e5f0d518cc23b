/**
 * Our own deterministic resampling, so the browser workers and the Node CLI feed models the
 * exact same numbers (no canvas smoothing, no geotiff.js nearest-neighbour).
 *
 * Per axis, independently:
 *  - downsampling (≥ 1 source pixel per output pixel): area average — each output pixel is the
 *    mean of the source pixels it covers, weighted by the covered fraction (fractional windows ok);
 *  - upsampling: bilinear between the two nearest source pixel centres, clamped at the image edge.
 * Invalid source pixels (nodata, alpha 0, outside the image) get no weight; an output pixel is
 * valid when at least half of its weight falls on valid pixels, and its value is the mean of
 * those valid pixels only (no dark halos at nodata borders).
 *
 * Work is separable and streaming: source rows can arrive in chunks (stripes), so a big window
 * never needs to be decoded at once.
 */
import { RasterError } from './errors';
import type { PixelWindow } from './types';

/** For each output index along one axis: which source indices contribute, with which weights. */
export interface AxisTaps {
  /** Offsets into `index`/`weight` per output pixel; length outLength + 1. */
  start: Int32Array;
  index: Int32Array;
  weight: Float64Array;
  /** Smallest and one-past-largest source index referenced (empty when min ≥ max). */
  min: number;
  max: number;
}

const MIN_VALID_WEIGHT = 0.5 - 1e-9;

/**
 * Taps for reading [srcStart, srcStart + srcLength) (continuous source-pixel coordinates, pixel
 * p spans [p, p+1)) into outLength pixels, for a source axis of `sourceSize` pixels.
 * Weights of each output pixel sum to 1 over the whole footprint; taps outside the source are
 * dropped, which is how "outside the image" becomes missing weight (invalid).
 */
export function axisTaps(srcStart: number, srcLength: number, outLength: number, sourceSize: number): AxisTaps {
  const scale = srcLength / outLength;
  const starts = new Int32Array(outLength + 1);
  const indices: number[] = [];
  const weights: number[] = [];
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  const push = (p: number, w: number) => {
    if (w <= 0 || p < 0 || p >= sourceSize) return;
    indices.push(p);
    weights.push(w);
    if (p < min) min = p;
    if (p + 1 > max) max = p + 1;
  };
  for (let i = 0; i < outLength; i++) {
    starts[i] = indices.length;
    if (scale >= 1) {
      const a = srcStart + i * scale;
      const b = a + scale;
      for (let p = Math.floor(a); p < b; p++) push(p, (Math.min(b, p + 1) - Math.max(a, p)) / scale);
    } else {
      const pos = srcStart + (i + 0.5) * scale;
      if (pos < 0 || pos >= sourceSize) continue;
      const centre = pos - 0.5;
      const p0 = Math.floor(centre);
      const f = centre - p0;
      if (p0 < 0) push(0, 1);
      else if (p0 + 1 >= sourceSize) push(sourceSize - 1, 1);
      else {
        push(p0, 1 - f);
        push(p0 + 1, f);
      }
    }
  }
  starts[outLength] = indices.length;
  return {
    start: starts,
    index: Int32Array.from(indices),
    weight: Float64Array.from(weights),
    min: indices.length ? min : 0,
    max: indices.length ? max : 0,
  };
}

/** A stripe of decoded source rows: `bands[b][r * cols + c]` is pixel (colStart + c, rowStart + r). */
export interface SourceChunk {
  colStart: number;
  rowStart: number;
  cols: number;
  rows: number;
  bands: ArrayLike<number>[];
  /** 1 = valid; null when every pixel is valid. */
  valid: Uint8Array | null;
}

export interface ResampledBands {
  width: number;
  height: number;
  bands: Float32Array[];
  valid: Uint8Array;
}

/** Accumulates source chunks into an outWidth×outHeight image (see the module comment). */
export class SeparableResampler {
  private readonly sums: Float64Array[];
  private readonly validWeight: Float64Array;
  /** Inverse of the row taps: for each source row, the output rows it feeds. */
  private readonly rowFeeds: Map<number, { outRow: number; weight: number }[]>;
  private readonly rowBuffer: Float64Array[];
  private readonly rowValid: Float64Array;

  constructor(
    private readonly colTaps: AxisTaps,
    rowTaps: AxisTaps,
    private readonly outWidth: number,
    private readonly outHeight: number,
    bandCount: number,
  ) {
    const pixels = outWidth * outHeight;
    this.sums = Array.from({ length: bandCount }, () => new Float64Array(pixels));
    this.validWeight = new Float64Array(pixels);
    this.rowBuffer = Array.from({ length: bandCount }, () => new Float64Array(outWidth));
    this.rowValid = new Float64Array(outWidth);
    this.rowFeeds = new Map();
    for (let j = 0; j < outHeight; j++) {
      for (let k = rowTaps.start[j]; k < rowTaps.start[j + 1]; k++) {
        const row = rowTaps.index[k];
        let feeds = this.rowFeeds.get(row);
        if (!feeds) this.rowFeeds.set(row, (feeds = []));
        feeds.push({ outRow: j, weight: rowTaps.weight[k] });
      }
    }
  }

  add(chunk: SourceChunk): void {
    const { colTaps, outWidth, sums, validWeight, rowBuffer, rowValid } = this;
    const bandCount = sums.length;
    for (let r = 0; r < chunk.rows; r++) {
      const feeds = this.rowFeeds.get(chunk.rowStart + r);
      if (!feeds) continue;
      const rowOffset = r * chunk.cols - chunk.colStart;
      // Horizontal pass for this source row.
      for (let i = 0; i < outWidth; i++) {
        let wSum = 0;
        for (let b = 0; b < bandCount; b++) rowBuffer[b][i] = 0;
        for (let k = colTaps.start[i]; k < colTaps.start[i + 1]; k++) {
          const at = rowOffset + colTaps.index[k];
          if (chunk.valid && chunk.valid[at] === 0) continue;
          const w = colTaps.weight[k];
          wSum += w;
          for (let b = 0; b < bandCount; b++) rowBuffer[b][i] += w * chunk.bands[b][at];
        }
        rowValid[i] = wSum;
      }
      // Vertical pass: scatter into every output row this source row contributes to.
      for (const { outRow, weight } of feeds) {
        const base = outRow * outWidth;
        for (let i = 0; i < outWidth; i++) validWeight[base + i] += weight * rowValid[i];
        for (let b = 0; b < bandCount; b++) {
          const sum = sums[b];
          const row = rowBuffer[b];
          for (let i = 0; i < outWidth; i++) sum[base + i] += weight * row[i];
        }
      }
    }
  }

  finish(): ResampledBands {
    const pixels = this.outWidth * this.outHeight;
    const valid = new Uint8Array(pixels);
    const bands = this.sums.map(() => new Float32Array(pixels));
    for (let p = 0; p < pixels; p++) {
      const w = this.validWeight[p];
      if (w <= 0) continue;
      valid[p] = w >= MIN_VALID_WEIGHT ? 1 : 0;
      for (let b = 0; b < bands.length; b++) bands[b][p] = this.sums[b][p] / w;
    }
    return { width: this.outWidth, height: this.outHeight, bands, valid };
  }
}

/**
 * Rows of `sourceHeight` to decode per stripe so a stripe holds at most `maxPixels` pixels,
 * rounded to whole storage blocks (tiles/strips) so no block is decoded twice.
 */
export function stripeRows(cols: number, blockHeight: number, maxPixels: number): number {
  const blocks = Math.floor(maxPixels / Math.max(1, cols) / blockHeight);
  return Math.max(1, blocks) * blockHeight;
}

export interface WindowResampleRequest {
  /** Requested window in full-resolution pixels. */
  window: PixelWindow;
  outWidth: number;
  outHeight: number;
  fullWidth: number;
  fullHeight: number;
  /** Size of the pyramid level actually read (== full size when there are no overviews). */
  levelWidth: number;
  levelHeight: number;
  bandCount: number;
  /** Storage block height at this level, to align stripes. */
  blockHeight: number;
  /** Upper bound on decoded source pixels held at once. */
  maxPixelsPerStripe: number;
  /** Decode level pixels [colStart, colStart+cols) × [rowStart, rowStart+rows) (inside the level). */
  readStripe: (colStart: number, rowStart: number, cols: number, rows: number) => Promise<SourceChunk>;
  signal?: AbortSignal;
}

/** Read a full-res window from one pyramid level, stripe by stripe, into outWidth×outHeight. */
export async function resampleWindow(request: WindowResampleRequest): Promise<ResampledBands> {
  const { window, outWidth, outHeight, levelWidth, levelHeight } = request;
  const kx = levelWidth / request.fullWidth;
  const ky = levelHeight / request.fullHeight;
  const colTaps = axisTaps(window.x * kx, window.width * kx, outWidth, levelWidth);
  const rowTaps = axisTaps(window.y * ky, window.height * ky, outHeight, levelHeight);
  const resampler = new SeparableResampler(colTaps, rowTaps, outWidth, outHeight, request.bandCount);
  const cols = colTaps.max - colTaps.min;
  if (cols > 0 && rowTaps.max > rowTaps.min) {
    const rowsPerStripe = stripeRows(cols, request.blockHeight, request.maxPixelsPerStripe);
    for (let y = rowTaps.min; y < rowTaps.max; ) {
      request.signal?.throwIfAborted();
      const blockStart = Math.floor(y / request.blockHeight) * request.blockHeight;
      const end = Math.min(rowTaps.max, blockStart + rowsPerStripe);
      resampler.add(await request.readStripe(colTaps.min, y, cols, end - y));
      y = end;
    }
  }
  return resampler.finish();
}

/** Throws a RasterError for windows/sizes that cannot be read. */
export function checkReadRequest(window: PixelWindow, outWidth: number, outHeight: number): void {
  const sizeOk = (n: number) => Number.isInteger(n) && n > 0 && n <= 1 << 15;
  if (!sizeOk(outWidth) || !sizeOk(outHeight)) {
    throw new RasterError('invalid-request', `output size ${outWidth}×${outHeight} must be whole numbers between 1 and 32768`);
  }
  const finite = [window.x, window.y, window.width, window.height].every(Number.isFinite);
  if (!finite || window.width <= 0 || window.height <= 0) {
    throw new RasterError('invalid-request', `window ${JSON.stringify(window)} must have a positive, finite size`);
  }
}
