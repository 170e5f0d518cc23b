/**
 * Mapping raw sample values to display/model bytes, one range per R, G, B channel:
 * byte = round(clamp((value − low) / (high − low), 0, 1) · 255).
 *
 * The range is computed ONCE per image from a low-resolution read of the whole image
 * (computeStretch) and then applied identically to every window and tile, so tiles of one
 * image match each other. uint8 data keeps its values (the identity range 0–255): that is what
 * the models are trained on. Other kinds get a per-channel percentile stretch (2–98 % by default).
 */
import type { RasterSource, SampleKind } from './types';

export interface Stretch {
  /** Raw value shown as 0, per R, G, B channel. */
  low: number[];
  /** Raw value shown as 255, per R, G, B channel. */
  high: number[];
}

export interface StretchOptions {
  lowPercent?: number;
  highPercent?: number;
}

export const IDENTITY_STRETCH: Readonly<Stretch> = Object.freeze({ low: [0, 0, 0], high: [255, 255, 255] });

/** Longest side of the whole-image read the percentiles come from. */
export const STRETCH_SAMPLE_SIDE = 512;

/** Percentile p (0–100) of ascending `sorted`, linear between closest ranks (numpy's default). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (n - 1);
  const below = Math.floor(rank);
  const above = Math.min(n - 1, below + 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (rank - below);
}

/**
 * Per-channel low/high percentiles over valid pixels (valid[i] = 1) of each channel.
 * A channel without valid pixels gets 0–255; a constant channel shows as mid grey.
 */
export function percentileStretch(channels: readonly ArrayLike<number>[], valid: Uint8Array, options: StretchOptions = {}): Stretch {
  const { lowPercent = 2, highPercent = 98 } = options;
  const low: number[] = [];
  const high: number[] = [];
  for (const channel of channels) {
    const values = new Float64Array(channel.length);
    let n = 0;
    for (let i = 0; i < channel.length; i++) {
      const v = channel[i];
      if (valid[i] && v === v) values[n++] = v;
    }
    const sorted = values.subarray(0, n).sort();
    let lo = percentile(sorted, lowPercent);
    let hi = percentile(sorted, highPercent);
    if (n === 0) [lo, hi] = [0, 255];
    else if (!(hi > lo)) [lo, hi] = [lo - 1, lo + 1];
    low.push(lo);
    high.push(hi);
  }
  return { low, high };
}

/** Identity for uint8 (what models are trained on), percentile stretch for everything else. */
export function stretchForKind(kind: SampleKind, channels: readonly ArrayLike<number>[], valid: Uint8Array, options?: StretchOptions): Stretch {
  if (kind === 'uint8') return { low: [...IDENTITY_STRETCH.low], high: [...IDENTITY_STRETCH.high] };
  return percentileStretch(channels, valid, options);
}

/** One raw value of channel c (0 = R, 1 = G, 2 = B) as a display byte. */
export function stretchValue(value: number, channel: number, stretch: Stretch): number {
  const low = stretch.low[channel];
  const t = (value - low) / (stretch.high[channel] - low);
  if (!(t > 0)) return 0; // also NaN
  if (t >= 1) return 255;
  return Math.round(t * 255);
}

/** Size of a whole-image read whose longest side is at most `maxSide` (aspect kept, ≥ 1 px). */
export function fitWithin(width: number, height: number, maxSide: number): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

const cache = new WeakMap<RasterSource, Promise<Stretch>>();

/**
 * The image's stretch, computed once per source from a ≤512 px read of the whole image (served
 * by an overview when there is one) and cached; custom percentiles are computed, not cached.
 */
export function computeStretch(source: RasterSource, options?: StretchOptions, signal?: AbortSignal): Promise<Stretch> {
  const useCache = options === undefined;
  const cached = useCache ? cache.get(source) : undefined;
  if (cached) return cached;
  const promise = (async () => {
    const { info } = source;
    if (info.sampleKind === 'uint8') return stretchForKind('uint8', [], new Uint8Array(0));
    const size = fitWithin(info.width, info.height, STRETCH_SAMPLE_SIDE);
    const read = await source.readBands({ x: 0, y: 0, width: info.width, height: info.height }, size.width, size.height, {
      bands: info.rgbBands,
      signal,
    });
    return stretchForKind(info.sampleKind, read.bands, read.valid, options);
  })();
  if (useCache) {
    cache.set(source, promise);
    promise.catch(() => cache.delete(source));
  }
  return promise;
}
