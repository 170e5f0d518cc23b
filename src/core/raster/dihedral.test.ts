import { describe, expect, it } from 'vitest';
import { DIHEDRAL_VIEWS, dihedralViewCHW, isDihedralView, type DihedralView } from './dihedral';

// What models/retrieval/features.py `apply_view` (PyTorch) gives for the 3×3 plane 0..8.
const TORCH_3X3: Record<DihedralView, number[]> = {
  id: [0, 1, 2, 3, 4, 5, 6, 7, 8],
  hflip: [2, 1, 0, 5, 4, 3, 8, 7, 6],
  rot90: [2, 5, 8, 1, 4, 7, 0, 3, 6],
  rot180: [8, 7, 6, 5, 4, 3, 2, 1, 0],
  rot270: [6, 3, 0, 7, 4, 1, 8, 5, 2],
  vflip: [6, 7, 8, 3, 4, 5, 0, 1, 2],
  transpose: [0, 3, 6, 1, 4, 7, 2, 5, 8],
  antitranspose: [8, 5, 2, 7, 4, 1, 6, 3, 0],
};

function view(src: Float32Array, channels: number, n: number, v: DihedralView): Float32Array {
  const out = new Float32Array(src.length);
  dihedralViewCHW(src, 0, channels, n, n, v, out, 0);
  return out;
}

describe('dihedralViewCHW', () => {
  it('matches the PyTorch views used in training, on every channel', () => {
    const plane = Array.from({ length: 9 }, (_, i) => i);
    const src = Float32Array.from([...plane, ...plane.map((p) => p + 100)]);
    for (const v of DIHEDRAL_VIEWS) {
      const out = Array.from(view(src, 2, 3, v));
      expect(out.slice(0, 9), v).toEqual(TORCH_3X3[v]);
      expect(out.slice(9), v).toEqual(TORCH_3X3[v].map((p) => p + 100));
    }
  });

  it('composes like the dihedral group (four quarter turns are the identity)', () => {
    const src = Float32Array.from({ length: 3 * 16 }, (_, i) => Math.sin(i));
    let x: Float32Array = src;
    for (let k = 0; k < 4; k++) x = view(x, 3, 4, 'rot90');
    expect(Array.from(x)).toEqual(Array.from(src));
    expect(Array.from(view(view(src, 3, 4, 'rot90'), 3, 4, 'rot90'))).toEqual(Array.from(view(src, 3, 4, 'rot180')));
    expect(Array.from(view(view(src, 3, 4, 'hflip'), 3, 4, 'transpose'))).toEqual(Array.from(view(src, 3, 4, 'rot90')));
  });

  it('reads and writes at offsets inside larger batches', () => {
    const src = new Float32Array(2 * 9);
    src.set([0, 1, 2, 3, 4, 5, 6, 7, 8], 9);
    const dst = new Float32Array(2 * 9).fill(-1);
    dihedralViewCHW(src, 9, 1, 3, 3, 'rot90', dst, 9);
    expect(Array.from(dst.slice(0, 9))).toEqual(new Array(9).fill(-1));
    expect(Array.from(dst.slice(9))).toEqual(TORCH_3X3.rot90);
  });

  it('refuses a non-square image and unknown view names', () => {
    expect(() => dihedralViewCHW(new Float32Array(6), 0, 1, 2, 3, 'rot90', new Float32Array(6), 0)).toThrow(/square/);
    expect(isDihedralView('rot90')).toBe(true);
    expect(isDihedralView('rot45')).toBe(false);
  });
});
