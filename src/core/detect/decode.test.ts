import { describe, expect, it } from 'vitest';
import { decodeTile, ownsCentre } from './decode';
import { planTiles } from '../raster/tiler';

/** Rows of cx, cy, w, h, obj, p_car, p_large_vehicle. */
const output = (rows: number[][]) => ({ data: Float32Array.from(rows.flat()), rows: rows.length, stride: rows[0].length });

describe('decodeTile', () => {
  // 728×416 image: two tiles, at x = 0 and x = 312; the seam sits at (0 + 416 + 312) / 2 = 364.
  const grid = planTiles(728, 416, { tileSize: 416, overlap: 104 });
  const [left, right] = grid.tiles;
  const opts = { conf: 0.1, imageWidth: 728, imageHeight: 416 };

  it('plans the tiles as evaluate.py (origins 0 and 312, seam at 364)', () => {
    expect(grid.tiles.map((t) => t.window.x)).toEqual([0, 312]);
    expect(left.core.x + left.core.width).toBe(364);
  });

  it('takes the best class by obj·p, drops rows under conf, shifts boxes by the tile origin', () => {
    const dets = decodeTile(
      output([
        [100, 50, 20, 10, 0.5, 0.2, 0.8], // large_vehicle 0.4 → box 90..110 × 45..55
        [200, 60, 8, 8, 0.9, 0.1, 0.05], // best 0.09 < 0.1 → dropped
      ]),
      right,
      grid,
      opts,
    );
    expect(dets).toHaveLength(1);
    expect(dets[0].classIndex).toBe(1);
    expect(dets[0].score).toBeCloseTo(0.4, 6);
    expect([dets[0].x1, dets[0].y1, dets[0].x2, dets[0].y2]).toEqual([402, 45, 422, 55]);
  });

  it('keeps a detection only in the tile whose core holds its centre, and clips to the image', () => {
    // Centre at image x = 370: past the seam, so the left tile (which sees it at 370) drops it.
    expect(decodeTile(output([[370, 100, 20, 20, 1, 1, 0]]), left, grid, opts)).toEqual([]);
    const kept = decodeTile(output([[58, 100, 20, 20, 1, 1, 0]]), right, grid, opts);
    expect(kept.map((d) => d.x1)).toEqual([360]);
    // The outermost tiles own centres beyond the image edge; boxes are clipped to the image.
    const edge = decodeTile(output([[410, 405, 30, 30, 1, 1, 0]]), right, grid, opts);
    expect([edge[0].x1, edge[0].y1, edge[0].x2, edge[0].y2]).toEqual([707, 390, 728, 416]);
    expect(ownsCentre(right, grid, 10_000, -5)).toBe(true);
    expect(ownsCentre(left, grid, 363.9, 0)).toBe(true);
    expect(ownsCentre(left, grid, 364, 0)).toBe(false);
  });

  it('maps tile pixels through the tile scale when tiles are resampled', () => {
    const scaled = planTiles(2000, 2000, { tileSize: 416, overlap: 104, scale: 2 });
    const tile = scaled.tiles[0];
    const [d] = decodeTile(output([[100, 100, 10, 20, 1, 1, 0]]), tile, scaled, { conf: 0.1, imageWidth: 2000, imageHeight: 2000 });
    expect([d.x1, d.y1, d.x2, d.y2]).toEqual([190, 180, 210, 220]);
  });
});
