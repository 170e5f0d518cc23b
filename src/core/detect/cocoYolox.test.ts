import { describe, expect, it } from 'vitest';
import { decodeCocoYolox } from './cocoYolox';

describe('decodeCocoYolox', () => {
  it('decodes grid offsets and maps COCO classes (best of a group)', () => {
    const size = 32; // levels: 4×4 (s8), 2×2 (s16), 1×1 (s32) = 21 rows
    const data = new Float32Array(21 * 85);
    // Row 5 = level s8, gy 1, gx 1.
    const i = 5 * 85;
    data.set([0.5, 0.25, Math.log(2), 0, 0.9], i);
    data[i + 5 + 2] = 0.8; // car
    data[i + 5 + 5] = 0.3; // bus
    data[i + 5 + 7] = 0.6; // truck
    const out = decodeCocoYolox({ dtype: 'float32', dims: [1, 21, 85], data }, size, ['car', 'large_vehicle', 'ship']);
    expect(out.dims).toEqual([1, 21, 8]);
    const row = Array.from(out.data.slice(5 * 8, 6 * 8) as Float32Array);
    expect(row[0]).toBeCloseTo((0.5 + 1) * 8);
    expect(row[1]).toBeCloseTo((0.25 + 1) * 8);
    expect(row[2]).toBeCloseTo(16);
    expect(row[3]).toBeCloseTo(8);
    expect(row.slice(4)).toEqual([expect.closeTo(0.9), expect.closeTo(0.8), expect.closeTo(0.6), 0]);
    // The single s32 cell is the last row.
    expect(out.data[20 * 8]).toBeCloseTo(0 * 32);
  });

  it('refuses an output that does not fit the input size', () => {
    expect(() => decodeCocoYolox({ dtype: 'float32', dims: [1, 3, 85], data: new Float32Array(3 * 85) }, 32, ['car'])).toThrow(/rows/);
  });
});
