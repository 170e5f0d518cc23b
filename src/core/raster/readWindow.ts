/**
 * THE way every model (captioning, VQA, detection, retrieval) gets pixels, in browser workers
 * and in the Node CLI alike: an RGB window of any RasterSource at a requested size, resampled
 * by our own kernels (area average down, bilinear up — resample.ts) and mapped to bytes with
 * the image's single stretch (stretch.ts). Then toModelTensor normalises it for ORT.
 */
import { computeStretch, stretchValue, type Stretch } from './stretch';
import type { PixelWindow, RasterSource, RgbaImage } from './types';

export interface ReadRgbaOptions {
  /** Defaults to the image's cached stretch (identity for uint8). */
  stretch?: Stretch;
  signal?: AbortSignal;
}

/**
 * `window` (full-res pixels; parts outside the image are padded) as outWidth×outHeight RGBA.
 * Invalid pixels (nodata, alpha 0, outside) are (0, 0, 0, 0); valid ones have alpha 255.
 */
export async function readRgbaWindow(
  source: RasterSource,
  window: PixelWindow,
  outWidth: number,
  outHeight: number,
  options: ReadRgbaOptions = {},
): Promise<RgbaImage> {
  const stretch = options.stretch ?? (await computeStretch(source, undefined, options.signal));
  const { rgbBands } = source.info;
  // Read each distinct band once (grey images use band 0 for R, G and B).
  const distinct = [...new Set(rgbBands)];
  const read = await source.readBands(window, outWidth, outHeight, { bands: distinct, signal: options.signal });
  const channels = rgbBands.map((band) => read.bands[distinct.indexOf(band)]);
  const pixels = outWidth * outHeight;
  const data = new Uint8ClampedArray(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    if (!read.valid[p]) continue;
    const o = p * 4;
    data[o] = stretchValue(channels[0][p], 0, stretch);
    data[o + 1] = stretchValue(channels[1][p], 1, stretch);
    data[o + 2] = stretchValue(channels[2][p], 2, stretch);
    data[o + 3] = 255;
  }
  return { width: outWidth, height: outHeight, data };
}

export interface TensorNormalisation {
  /**
   * Mean and std per TENSOR channel (after channelOrder), in the units after `scale`
   * (e.g. ImageNet RGB: mean 0.485, 0.456, 0.406 with scale 1/255).
   */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** Byte multiplier applied first: 1/255 for 0–1 models, 1 for 0–255 models. */
  scale: number;
  layout: 'nchw' | 'nhwc';
  /** 'bgr' for models trained on OpenCV images (e.g. YOLOX). Default 'rgb'. */
  channelOrder?: 'rgb' | 'bgr';
  /** RGB byte colour given to invalid pixels (alpha 0) before normalising, e.g. [114,114,114]; default black. */
  invalidFill?: readonly [number, number, number];
}

/**
 * (byte · scale − mean) / std per channel, as a 1×3×H×W (or 1×H×W×3) Float32Array.
 * Writes into `out` at `offset` when given (to fill one item of a batch).
 */
export function toModelTensor(rgba: RgbaImage, norm: TensorNormalisation, out?: Float32Array, offset = 0): Float32Array {
  const { width, height, data } = rgba;
  const pixels = width * height;
  const target = out ?? new Float32Array(pixels * 3);
  if (target.length < offset + pixels * 3) throw new RangeError(`tensor buffer too small for a ${width}×${height} image at offset ${offset}`);
  const order = norm.channelOrder === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const fill = norm.invalidFill ?? [0, 0, 0];
  // Precompute byte → value per output channel: exact and fast.
  const tables = order.map((source, c) => {
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = (v * norm.scale - norm.mean[c]) / norm.std[c];
    return { source, table, fillValue: table[Math.round(fill[source])], c };
  });
  for (let p = 0; p < pixels; p++) {
    const o = p * 4;
    const valid = data[o + 3] !== 0;
    for (const { source, table, fillValue, c } of tables) {
      const value = valid ? table[data[o + source]] : fillValue;
      const at = norm.layout === 'nchw' ? c * pixels + p : p * 3 + c;
      target[offset + at] = value;
    }
  }
  return target;
}
