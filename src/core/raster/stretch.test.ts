import { describe, expect, it } from 'vitest';
import { createPixelSource } from './pixelSource';
import { computeStretch, fitWithin, percentile, percentileStretch, stretchForKind, stretchValue } from './stretch';
import type { BandWindow, RasterSource } from './types';

describe('percentile', () => {
  it('interpolates linearly between closest ranks', () => {
    const sorted = [10, 20, 30, 40, 50];
    expect(percentile(sorted, 0)).toBe(10);
    expect(percentile(sorted, 50)).toBe(30);
    expect(percentile(sorted, 100)).toBe(50);
    expect(percentile(sorted, 10)).toBe(14); // rank 0.4
    expect(percentile(sorted, 98)).toBeCloseTo(49.2, 10); // rank 3.92
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('percentileStretch', () => {
  it('ignores invalid pixels and NaN', () => {
    const values = [0, 10, 20, 30, 40, 9999, Number.NaN];
    const valid = new Uint8Array([1, 1, 1, 1, 1, 0, 1]);
    const s = percentileStretch([values], valid, { lowPercent: 0, highPercent: 100 });
    expect(s).toEqual({ low: [0], high: [40] });
  });

  it('computes each channel separately at 2–98 %', () => {
    const ramp = Array.from({ length: 101 }, (_, i) => i);
    const s = percentileStretch([ramp, ramp.map((v) => v * 10)], new Uint8Array(101).fill(1));
    expect(s.low[0]).toBeCloseTo(2, 10);
    expect(s.high[0]).toBeCloseTo(98, 10);
    expect(s.low[1]).toBeCloseTo(20, 10);
    expect(s.high[1]).toBeCloseTo(980, 10);
  });

  it('shows a constant channel as mid grey and an empty one with 0–255', () => {
    const s = percentileStretch([[7, 7, 7], [1, 2, 3]], new Uint8Array([1, 1, 1]));
    expect(stretchValue(7, 0, s)).toBe(128);
    const empty = percentileStretch([[1, 2]], new Uint8Array([0, 0]));
    expect(empty).toEqual({ low: [0], high: [255] });
  });
});

describe('stretchValue', () => {
  it('maps low→0, high→255, clamps and rounds', () => {
    const s = { low: [100, 0, 0], high: [200, 255, 255] };
    expect([50, 100, 150, 200, 300].map((v) => stretchValue(v, 0, s))).toEqual([0, 0, 128, 255, 255]);
    expect(stretchValue(Number.NaN, 0, s)).toBe(0);
  });

  it('is the identity for uint8', () => {
    const s = stretchForKind('uint8', [], new Uint8Array(0));
    for (let v = 0; v < 256; v++) expect(stretchValue(v, 1, s)).toBe(v);
  });
});

describe('computeStretch', () => {
  it('reads the whole image once at ≤512 px and caches the result per source', async () => {
    const calls: [number, number][] = [];
    const width = 2000;
    const height = 1000;
    const source: RasterSource = {
      info: { width, height, bandCount: 1, sampleKind: 'uint16', nodata: null, alphaBand: null, rgbBands: [0, 0, 0], geo: null, pixelSizeMetres: null, geoNote: null },
      async readBands(window, outWidth, outHeight, options): Promise<BandWindow> {
        calls.push([outWidth, outHeight]);
        expect(window).toEqual({ x: 0, y: 0, width, height });
        const ramp = Float32Array.from({ length: outWidth * outHeight }, (_, i) => 1000 + (i % 101));
        return { width: outWidth, height: outHeight, bands: (options?.bands ?? [0]).map(() => ramp), valid: new Uint8Array(outWidth * outHeight).fill(1) };
      },
    };
    const a = await computeStretch(source);
    const b = await computeStretch(source);
    expect(calls).toEqual([[512, 256]]);
    expect(b).toBe(a);
    expect(a.low[0]).toBeGreaterThan(1001);
    expect(a.high[2]).toBeLessThan(1099);
  });

  it('does not read uint8 images', async () => {
    const source = createPixelSource({ width: 1, height: 1, channels: 3, data: new Uint8Array([1, 2, 3]) });
    expect(await computeStretch(source)).toEqual({ low: [0, 0, 0], high: [255, 255, 255] });
  });

  it('fits whole-image reads inside a square', () => {
    expect(fitWithin(20000, 10000, 512)).toEqual({ width: 512, height: 256 });
    expect(fitWithin(100, 50, 512)).toEqual({ width: 100, height: 50 });
    expect(fitWithin(5000, 1, 512)).toEqual({ width: 512, height: 1 });
  });
});
