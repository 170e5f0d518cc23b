import { describe, expect, it } from 'vitest';
import { maxAbsDiff, tensorFromJson, zeroTensor } from './tensor';

describe('tensor helpers', () => {
  it('zeroTensor resolves symbolic dims and picks the typed array of the dtype', () => {
    const t = zeroTensor({ name: 'ids', dtype: 'int64', shape: ['batch', 77] });
    expect(t.dims).toEqual([1, 77]);
    expect(t.data).toBeInstanceOf(BigInt64Array);
    expect(t.data.length).toBe(77);
  });

  it('tensorFromJson checks the element count', () => {
    expect(() => tensorFromJson({ dtype: 'float32', dims: [2, 2], data: [1, 2, 3] })).toThrow('3 values but dims [2, 2] need 4');
    expect(Array.from(tensorFromJson({ dtype: 'float32', dims: [3], data: [1, 2.5, -3] }).data as Float32Array)).toEqual([1, 2.5, -3]);
  });

  it('maxAbsDiff finds the largest difference, propagates NaN, and rejects shape mismatches', () => {
    const a = tensorFromJson({ dtype: 'float32', dims: [3], data: [1, 2, 3] });
    const b = tensorFromJson({ dtype: 'float32', dims: [3], data: [1, 2.5, 2.75] });
    expect(maxAbsDiff(a, b)).toBe(0.5);
    expect(maxAbsDiff(a, tensorFromJson({ dtype: 'float32', dims: [3], data: [1, NaN, 3] }))).toBeNaN();
    expect(() => maxAbsDiff(a, tensorFromJson({ dtype: 'float32', dims: [1, 3], data: [1, 2, 3] }))).toThrow('shape mismatch');
  });
});
