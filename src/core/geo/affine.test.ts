import { describe, expect, it } from 'vitest';
import { applyTransform, fitAffine, invertTransform } from './affine';
import type { GeoTransform } from '../raster/types';

describe('affine', () => {
  const t: GeoTransform = [500000, 5, 0.5, 4000000, -0.25, -5];

  it('inverts a transform', () => {
    const inv = invertTransform(t)!;
    const [x, y] = applyTransform(t, 123.5, 77.25);
    const [col, row] = applyTransform(inv, x, y);
    expect(col).toBeCloseTo(123.5, 9);
    expect(row).toBeCloseTo(77.25, 9);
  });

  it('recovers an exact affine from control points', () => {
    const points = [
      [0, 0],
      [1000, 0],
      [0, 800],
      [1000, 800],
      [400, 300],
    ].map(([col, row]) => {
      const [x, y] = applyTransform(t, col, row);
      return { col, row, x, y };
    });
    const fit = fitAffine(points)!;
    fit.forEach((v, i) => expect(v).toBeCloseTo(t[i], 6));
  });

  it('refuses collinear or too few points', () => {
    expect(fitAffine([{ col: 0, row: 0, x: 0, y: 0 }, { col: 1, row: 1, x: 1, y: 1 }])).toBeNull();
    expect(fitAffine([0, 1, 2].map((k) => ({ col: k, row: k, x: k, y: k })))).toBeNull();
  });
});
