import { describe, expect, it } from 'vitest';
import { imageToTile, planTiles, tileBoxToImage, tileToImage, windowsOverlap, type Tile } from './tiler';

/** How many tiles cover each pixel of a width×height image. */
function coverage(tiles: Tile[], width: number, height: number, of: 'window' | 'core' = 'window'): Uint16Array {
  const counts = new Uint16Array(width * height);
  for (const t of tiles) {
    const w = t[of];
    for (let y = Math.max(0, Math.ceil(w.y - 1e-9)); y < Math.min(height, w.y + w.height - 1e-9); y++) {
      for (let x = Math.max(0, Math.ceil(w.x - 1e-9)); x < Math.min(width, w.x + w.width - 1e-9); x++) counts[y * width + x]++;
    }
  }
  return counts;
}

describe('planTiles', () => {
  it('covers an image exactly, overlapping by the requested amount, last tile shifted inside', () => {
    const grid = planTiles(1000, 600, { tileSize: 256, overlap: 64 });
    expect(grid.columns).toBe(5); // starts 0,192,384,576,744
    expect(grid.rows).toBe(3); // starts 0,192,344
    expect(grid.tiles.filter((t) => t.row === 0).map((t) => t.window.x)).toEqual([0, 192, 384, 576, 744]);
    expect(grid.tiles.filter((t) => t.col === 0).map((t) => t.window.y)).toEqual([0, 192, 344]);
    for (const t of grid.tiles) {
      expect(t.window.x).toBeGreaterThanOrEqual(0);
      expect(t.window.x + t.window.width).toBeLessThanOrEqual(1000);
      expect(t.window.y + t.window.height).toBeLessThanOrEqual(600);
      expect([t.outWidth, t.outHeight]).toEqual([256, 256]);
    }
    expect(coverage(grid.tiles, 1000, 600).every((c) => c >= 1)).toBe(true);
  });

  it('gives cores that partition the region (each pixel owned by exactly one tile)', () => {
    const grid = planTiles(1000, 600, { tileSize: 256, overlap: 64 });
    expect(coverage(grid.tiles, 1000, 600, 'core').every((c) => c === 1)).toBe(true);
  });

  it('tiles exactly when the image is a multiple of the stride', () => {
    const grid = planTiles(1024, 512, { tileSize: 256 });
    expect(grid.tiles.map((t) => [t.window.x, t.window.y])).toEqual([
      [0, 0], [256, 0], [512, 0], [768, 0],
      [0, 256], [256, 256], [512, 256], [768, 256],
    ]);
  });

  it('pads (one tile from 0) when the image is smaller than a tile', () => {
    const grid = planTiles(100, 40, { tileSize: 224, overlap: 32 });
    expect(grid.tiles).toHaveLength(1);
    expect(grid.tiles[0].window).toEqual({ x: 0, y: 0, width: 224, height: 224 });
    expect(grid.tiles[0].core).toEqual({ x: 0, y: 0, width: 100, height: 40 });
  });

  it('reads tiles at a model scale: windows cover scale × tile size', () => {
    const grid = planTiles(2000, 1000, { tileSize: 416, overlap: 32, scale: 2 });
    expect(grid.tiles[0].window).toEqual({ x: 0, y: 0, width: 832, height: 832 });
    expect(grid.tiles[1].window.x).toBe(768); // (416 − 32) · 2
    expect(grid.tiles.at(-1)!.window.x + 832).toBe(2000);
    expect(grid.tiles.at(-1)!.window.y + 832).toBe(1000);
    expect(coverage(grid.tiles, 2000, 1000, 'core').every((c) => c === 1)).toBe(true);
  });

  it('covers a sub-window (visible extent), clipped to the image, staying inside the image', () => {
    const grid = planTiles(5000, 5000, { tileSize: 512, overlap: 0, region: { x: 4800, y: -100, width: 400, height: 1100 } });
    // x: region [4800,5000) is narrower than a tile → one tile shifted inside: 4488..5000.
    expect(new Set(grid.tiles.map((t) => t.window.x))).toEqual(new Set([4488]));
    expect(grid.tiles.map((t) => t.window.y)).toEqual([0, 488]);
    for (const t of grid.tiles) {
      expect(t.core.x).toBe(4800);
      expect(t.core.width).toBe(200);
    }
  });

  it('returns no tiles for a region outside the image and rejects bad options', () => {
    expect(planTiles(100, 100, { tileSize: 32, region: { x: 200, y: 0, width: 10, height: 10 } }).tiles).toEqual([]);
    expect(() => planTiles(100, 100, { tileSize: 32, overlap: 32 })).toThrow(RangeError);
    expect(() => planTiles(100, 100, { tileSize: 0 })).toThrow(RangeError);
  });
});

describe('tile ↔ image coordinates', () => {
  const tile = planTiles(2000, 1000, { tileSize: 416, overlap: 32, scale: 2 }).tiles[1];

  it('maps tile pixels to full-res pixels through the scale', () => {
    expect(tileToImage(tile, 0, 0)).toEqual({ x: 768, y: 0 });
    expect(tileToImage(tile, 416, 100)).toEqual({ x: 768 + 832, y: 200 });
    expect(tileBoxToImage(tile, { x: 10, y: 20, width: 5, height: 6 })).toEqual({ x: 788, y: 40, width: 10, height: 12 });
  });

  it('round-trips', () => {
    const p = imageToTile(tile, 1000.5, 333.25);
    expect(tileToImage(tile, p.x, p.y)).toEqual({ x: 1000.5, y: 333.25 });
  });
});

describe('windowsOverlap', () => {
  const a = { x: 0, y: 0, width: 512, height: 512 };
  it('is true for neighbouring tiles that share an overlap strip, and for a window itself', () => {
    const [first, second] = planTiles(1000, 512, { tileSize: 512, overlap: 64 }).tiles;
    expect(windowsOverlap(first.window, second.window)).toBe(true);
    expect(windowsOverlap(a, a)).toBe(true);
  });
  it('is false for windows that only touch or lie apart', () => {
    expect(windowsOverlap(a, { x: 512, y: 0, width: 100, height: 100 })).toBe(false);
    expect(windowsOverlap(a, { x: 0, y: 600, width: 100, height: 100 })).toBe(false);
  });
});
