import type { GeoTransform } from '../raster/types';

/** A ground control point: pixel (col,row) ↔ map (x,y). */
export interface ControlPoint {
  col: number;
  row: number;
  x: number;
  y: number;
}

/** Map coordinates of a pixel position under a GDAL-order affine transform. */
export function applyTransform(t: GeoTransform, col: number, row: number): [number, number] {
  return [t[0] + t[1] * col + t[2] * row, t[3] + t[4] * col + t[5] * row];
}

/** Pixel position of map coordinates (inverse affine); null for a degenerate transform. */
export function invertTransform(t: GeoTransform): GeoTransform | null {
  const [a, b, c, d, e, f] = t;
  const det = b * f - c * e;
  if (Math.abs(det) < 1e-18) return null;
  return [(c * d - a * f) / det, f / det, -c / det, (a * e - b * d) / det, -e / det, b / det];
}

/** Solves the 3×3 system m·v = r by Cramer's rule. */
function solve3(m: number[][], r: number[]): number[] | null {
  const det = (q: number[][]) =>
    q[0][0] * (q[1][1] * q[2][2] - q[1][2] * q[2][1]) -
    q[0][1] * (q[1][0] * q[2][2] - q[1][2] * q[2][0]) +
    q[0][2] * (q[1][0] * q[2][1] - q[1][1] * q[2][0]);
  const d = det(m);
  if (Math.abs(d) < 1e-12) return null;
  return [0, 1, 2].map((k) => det(m.map((row, i) => row.map((v, j) => (j === k ? r[i] : v)))) / d);
}

/**
 * Least-squares affine through ≥3 control points (GCP-only files). Pixel coordinates are
 * centred first so that the normal equations stay well conditioned.
 */
export function fitAffine(points: ControlPoint[]): GeoTransform | null {
  if (points.length < 3) return null;
  const n = points.length;
  const mc = points.reduce((s, p) => s + p.col, 0) / n;
  const mr = points.reduce((s, p) => s + p.row, 0) / n;
  const ata = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ];
  const atx = [0, 0, 0];
  const aty = [0, 0, 0];
  for (const p of points) {
    const row = [1, p.col - mc, p.row - mr];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) ata[i][j] += row[i] * row[j];
      atx[i] += row[i] * p.x;
      aty[i] += row[i] * p.y;
    }
  }
  const cx = solve3(ata, atx);
  const cy = solve3(ata, aty);
  if (!cx || !cy) return null;
  return [cx[0] - cx[1] * mc - cx[2] * mr, cx[1], cx[2], cy[0] - cy[1] * mc - cy[2] * mr, cy[1], cy[2]];
}
