import { describe, expect, it } from 'vitest';
import { axisTaps, resampleWindow, SeparableResampler, type SourceChunk } from './resample';

function taps(start: number, length: number, out: number, size: number) {
  const t = axisTaps(start, length, out, size);
  return Array.from({ length: out }, (_, i) =>
    Array.from({ length: t.start[i + 1] - t.start[i] }, (_, k) => [t.index[t.start[i] + k], +t.weight[t.start[i] + k].toFixed(6)]),
  );
}

/** Resample a whole in-memory image (single band) through the streaming reader. */
async function resampleImage(
  values: number[],
  width: number,
  height: number,
  window: { x: number; y: number; width: number; height: number },
  outWidth: number,
  outHeight: number,
  valid: number[] | null = null,
  maxPixelsPerStripe = 1 << 20,
) {
  return resampleWindow({
    window, outWidth, outHeight,
    fullWidth: width, fullHeight: height, levelWidth: width, levelHeight: height,
    bandCount: 1, blockHeight: 1, maxPixelsPerStripe,
    readStripe: async (x, y, cols, rows): Promise<SourceChunk> => {
      const band = new Float32Array(cols * rows);
      const mask = valid ? new Uint8Array(cols * rows) : null;
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
        band[r * cols + c] = values[(y + r) * width + x + c];
        if (mask && valid) mask[r * cols + c] = valid[(y + r) * width + x + c];
      }
      return { colStart: x, rowStart: y, cols, rows, bands: [band], valid: mask };
    },
  });
}

describe('axisTaps', () => {
  it('copies pixels 1:1 for an aligned window', () => {
    expect(taps(2, 3, 3, 10)).toEqual([[[2, 1]], [[3, 1]], [[4, 1]]]);
  });

  it('averages areas when downsampling, with fractional coverage', () => {
    expect(taps(0, 4, 2, 4)).toEqual([[[0, 0.5], [1, 0.5]], [[2, 0.5], [3, 0.5]]]);
    // 3 → 2: each output covers 1.5 source pixels.
    expect(taps(0, 3, 2, 3)).toEqual([[[0, 0.666667], [1, 0.333333]], [[1, 0.333333], [2, 0.666667]]]);
  });

  it('interpolates bilinearly between pixel centres when upsampling, clamped at edges', () => {
    // 2 → 4: output centres at source 0.25, 0.75, 1.25, 1.75 → positions −0.25, 0.25, 0.75, 1.25 from centres.
    expect(taps(0, 2, 4, 2)).toEqual([[[0, 1]], [[0, 0.75], [1, 0.25]], [[0, 0.25], [1, 0.75]], [[1, 1]]]);
  });

  it('drops taps outside the source, leaving missing weight', () => {
    expect(taps(-2, 4, 2, 10)).toEqual([[], [[0, 0.5], [1, 0.5]]]);
    // Upsampling near the edge uses the neighbour inside the image, clamps at the last centre.
    expect(taps(9, 2, 4, 10)).toEqual([[[8, 0.25], [9, 0.75]], [[9, 1]], [], []]);
  });
});

describe('resampleWindow', () => {
  const grid4 = [
    1, 3, 5, 7,
    5, 7, 9, 11,
    0, 0, 100, 200,
    0, 4, 100, 100,
  ];

  it('area-averages 4×4 → 2×2 (hand-computed)', async () => {
    const out = await resampleImage(grid4, 4, 4, { x: 0, y: 0, width: 4, height: 4 }, 2, 2);
    expect(Array.from(out.bands[0])).toEqual([4, 8, 1, 125]);
    expect(Array.from(out.valid)).toEqual([1, 1, 1, 1]);
  });

  it('upsamples 2×1 → 4×1 bilinearly (hand-computed)', async () => {
    const out = await resampleImage([10, 30], 2, 1, { x: 0, y: 0, width: 2, height: 1 }, 4, 1);
    expect(Array.from(out.bands[0])).toEqual([10, 15, 25, 30]);
  });

  it('averages only valid pixels; an output pixel needs half its footprint valid', async () => {
    const valid = [
      1, 0, 0, 0,
      1, 1, 0, 0,
      1, 1, 1, 1,
      1, 1, 1, 1,
    ];
    const out = await resampleImage(grid4, 4, 4, { x: 0, y: 0, width: 4, height: 4 }, 2, 2, valid);
    expect(Array.from(out.valid)).toEqual([1, 0, 1, 1]);
    expect(out.bands[0][0]).toBeCloseTo((1 + 5 + 7) / 3, 5);
  });

  it('pads windows reaching outside the image as invalid', async () => {
    const out = await resampleImage(grid4, 4, 4, { x: 2, y: 2, width: 4, height: 4 }, 4, 4);
    expect(Array.from(out.valid)).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect([out.bands[0][0], out.bands[0][1], out.bands[0][4], out.bands[0][5]]).toEqual([100, 200, 100, 100]);
  });

  it('returns all-invalid for a window entirely outside the image without reading', async () => {
    const out = await resampleImage(grid4, 4, 4, { x: 10, y: 0, width: 4, height: 4 }, 2, 2);
    expect(Array.from(out.valid)).toEqual([0, 0, 0, 0]);
  });

  it('gives identical results whether rows arrive in one chunk or many stripes', async () => {
    const w = 37, h = 29;
    const values = Array.from({ length: w * h }, (_, i) => (i * 7919) % 251);
    const window = { x: 1.5, y: 2.25, width: 33, height: 25.5 };
    const whole = await resampleImage(values, w, h, window, 10, 7);
    const striped = await resampleImage(values, w, h, window, 10, 7, null, 40);
    expect(Array.from(striped.bands[0])).toEqual(Array.from(whole.bands[0]));
  });

  it('accumulates chunks in any row order', () => {
    const colTaps = axisTaps(0, 2, 1, 2);
    const rowTaps = axisTaps(0, 2, 1, 2);
    const r = new SeparableResampler(colTaps, rowTaps, 1, 1, 1);
    r.add({ colStart: 0, rowStart: 1, cols: 2, rows: 1, bands: [[3, 5]], valid: null });
    r.add({ colStart: 0, rowStart: 0, cols: 2, rows: 1, bands: [[1, 7]], valid: null });
    expect(r.finish().bands[0][0]).toBe(4);
  });
});
