import { describe, expect, it } from 'vitest';
import { createPixelSource } from '../raster/pixelSource';
import type { TensorData } from '../models/tensor';
import { detectSliced, planDetectionTiles, type RunDetector } from './slicedDetect';
import { testSpec } from './testing';

const spec = testSpec();

/** A grey RGB image with white rectangles (the "objects"). */
function imageWith(width: number, height: number, objects: [number, number, number, number][]) {
  const data = new Uint8Array(width * height * 3).fill(90);
  for (const [x1, y1, x2, y2] of objects) {
    for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) data.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
  }
  return createPixelSource({ width, height, data, channels: 3 });
}

/**
 * A stand-in detector that reports the bounding box of the white pixels it sees in the tile
 * (as one car), so what each tile reports depends on the real tile pixels fed to it.
 */
const whiteBoxDetector: RunDetector = async (input: TensorData) => {
  const [, , h, w] = input.dims;
  const plane = input.data as Float32Array; // BGR planes; white = 255 in all
  let [x1, y1, x2, y2] = [Infinity, Infinity, -Infinity, -Infinity];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (plane[y * w + x] !== 255) continue;
      [x1, y1, x2, y2] = [Math.min(x1, x), Math.min(y1, y), Math.max(x2, x + 1), Math.max(y2, y + 1)];
    }
  }
  const rows = x2 > x1 ? [[(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 0.9, 0.9, 0.05, 0.05]] : [];
  return { dtype: 'float32', dims: [1, rows.length, 8], data: Float32Array.from(rows.flat()) };
};

describe('detectSliced', () => {
  it('uses the tile origins of evaluate.py (last tile flush with the far edge; one tile at 0 for small sides)', () => {
    const grid = planDetectionTiles(1920, 300, spec);
    expect(grid.tiles.filter((t) => t.row === 0).map((t) => t.window.x)).toEqual([0, 312, 624, 936, 1248, 1504]);
    expect(grid.tiles.filter((t) => t.col === 0).map((t) => t.window.y)).toEqual([0]);
  });

  it('reports an object straddling a tile seam once, whole, from the tile that owns its centre', async () => {
    // Tiles at x = 0 and 312 (seam at 364). The object spans 400..470: the left tile sees only
    // 400..416 (IoU with the whole box 0.23, so NMS alone would keep both).
    const source = imageWith(728, 416, [[400, 100, 470, 130]]);
    const perTile: number[] = [];
    const result = await detectSliced(source, spec, whiteBoxDetector, { onTile: (p) => perTile.push(p.detections.length) });
    expect(result.tiles).toBe(2);
    expect(perTile).toEqual([0, 1]);
    expect(result.detections).toHaveLength(1);
    const [d] = result.detections;
    expect([d.x1, d.y1, d.x2, d.y2]).toEqual([400, 100, 470, 130]);
  });

  it('pads outside the image with 114, skips all-nodata tiles, and stops when cancelled', async () => {
    let seen: TensorData | null = null;
    const spy: RunDetector = async (input) => {
      seen = input;
      return whiteBoxDetector(input);
    };
    await detectSliced(imageWith(1, 1, []), spec, spy);
    const data = seen!.data as Float32Array;
    expect(seen!.dims).toEqual([1, 3, 416, 416]);
    expect([data[0], data[1]]).toEqual([90, 114]);

    const transparent = createPixelSource({ width: 500, height: 500, data: new Uint8Array(500 * 500 * 4), channels: 4 });
    const empty = await detectSliced(transparent, spec, spy);
    expect([empty.tilesRun, empty.tilesNoData, empty.detections.length]).toEqual([0, 4, 0]);

    let calls = 0;
    const cancelled = await detectSliced(imageWith(2000, 2000, []), spec, whiteBoxDetector, { isCancelled: () => ++calls > 3 });
    expect(cancelled.cancelled).toBe(true);
    expect(cancelled.tilesRun).toBe(3);
  });
});

describe('detectSliced on a 10000×10000 image', () => {
  it('reads one tile window at a time (never the whole image) and keeps memory bounded', async () => {
    const side = 10_000;
    let largestRead = 0;
    let reads = 0;
    // A source that serves any window (uniform grey): what matters is what is asked of it.
    const source = imageWith(8, 8, []);
    const big = {
      info: { ...source.info, width: side, height: side },
      async readBands(window: { width: number; height: number }, outWidth: number, outHeight: number) {
        reads++;
        largestRead = Math.max(largestRead, window.width * window.height, outWidth * outHeight);
        const n = outWidth * outHeight;
        return { width: outWidth, height: outHeight, bands: [new Uint8Array(n).fill(90), new Uint8Array(n).fill(90), new Uint8Array(n).fill(90)], valid: new Uint8Array(n).fill(1) };
      },
    };
    const heapBefore = process.memoryUsage().heapUsed;
    let peak = 0;
    const nothingFound: RunDetector = async () => ({ dtype: 'float32', dims: [1, 0, 8], data: new Float32Array(0) });
    const result = await detectSliced(big, spec, nothingFound, { onTile: () => (peak = Math.max(peak, process.memoryUsage().heapUsed - heapBefore)) });
    expect(result.tiles).toBe(32 * 32); // ceil((10000 − 416) / 312) + 1 = 32 per side
    expect(reads).toBeGreaterThanOrEqual(result.tiles);
    expect(largestRead).toBeLessThanOrEqual(512 * 512); // a tile (or the stretch sample), never 10⁸ pixels
    expect(peak).toBeLessThan(400e6);
  }, 120_000);
});
