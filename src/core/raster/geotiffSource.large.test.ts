/**
 * The "20000×20000 without decoding the whole image" requirement, on a synthetic tiled
 * GeoTIFF whose 6241 tile offsets all point at the same few KB (so the file stays small).
 */
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { openGeoTiff } from './geotiffSource';
import { readRgbaWindow } from './readWindow';
import { CountingSource, horizontalDifferencing, rawBlock, writeTiff, type TiffImageSpec } from './testing/tiffWriter';

const TILE = 256;
const SIZE = 20_000;
const OVERVIEW = 1250; // 1/16

/** Full-res tile content: R = x, G = y, B = (x + y) mod 256 within the tile. */
const pattern = (x: number, y: number, s: number) => (s === 0 ? x : s === 1 ? y : (x + y) & 255);
// Horizontal differencing (TIFF predictor 2) makes the pattern compress to a few hundred bytes.
const patternTile = deflateSync(horizontalDifferencing(rawBlock(TILE, TILE, 3, 8, 1, pattern), TILE, TILE, 3));
/** Overview tiles are one flat colour, so a preview proves which level it came from. */
const OVERVIEW_RGB = [200, 100, 50];
const overviewTile = deflateSync(horizontalDifferencing(rawBlock(TILE, TILE, 3, 8, 1, (_x, _y, s) => OVERVIEW_RGB[s]), TILE, TILE, 3));

function level(size: number, block: Uint8Array, subfileType = 0): TiffImageSpec {
  const tiles = Math.ceil(size / TILE) ** 2;
  return {
    width: size, height: size, samplesPerPixel: 3, bitsPerSample: 8, photometric: 2, compression: 8,
    predictor: 2, tile: { width: TILE, height: TILE }, blocks: Array(tiles).fill(block), subfileType,
  };
}

const hugeCog = writeTiff([level(SIZE, patternTile), level(OVERVIEW, overviewTile, 1)]);

describe('a 20000×20000 tiled GeoTIFF', () => {
  it('is small on disk', () => {
    expect(hugeCog.length).toBeLessThan(100_000);
  });

  it('reads a full-res window touching only its tiles', async () => {
    const counting = new CountingSource(hugeCog);
    const source = await openGeoTiff(counting);
    expect(source.info).toMatchObject({ width: SIZE, height: SIZE, bandCount: 3, sampleKind: 'uint8' });
    const opened = counting.bytesRead;
    const window = { x: 12_345, y: 17_890, width: 300, height: 200 };
    const img = await readRgbaWindow(source, window, 300, 200);
    let wrong = 0;
    for (let j = 0; j < 200; j++) {
      for (let i = 0; i < 300; i++) {
        const x = (window.x + i) % TILE;
        const y = (window.y + j) % TILE;
        const o = (j * 300 + i) * 4;
        if (img.data[o] !== x || img.data[o + 1] !== y || img.data[o + 2] !== ((x + y) & 255) || img.data[o + 3] !== 255) wrong++;
      }
    }
    expect(wrong).toBe(0);
    const read = counting.bytesRead - opened;
    console.log(`20000² COG: open ${opened} B, 300×200 window ${read} B (file ${hugeCog.length} B)`);
    // Offset tables (2 × 6241 × 4 B) + 6 tiles (2×3) of a few hundred bytes each.
    expect(read).toBeLessThan(2 * 6241 * 4 + 6 * patternTile.length + 4096);
  });

  it('makes a 256×256 whole-image preview from the overview alone, with bounded memory', async () => {
    const counting = new CountingSource(hugeCog);
    const source = await openGeoTiff(counting);
    const opened = counting.bytesRead;
    const before = process.memoryUsage().arrayBuffers;
    const started = performance.now();
    const img = await readRgbaWindow(source, { x: 0, y: 0, width: SIZE, height: SIZE }, 256, 256);
    const elapsed = performance.now() - started;
    const grown = process.memoryUsage().arrayBuffers - before;
    const read = counting.bytesRead - opened;
    console.log(`20000² COG: 256×256 preview ${read} B read, ${elapsed.toFixed(0)} ms, array buffers +${(grown / 1e6).toFixed(1)} MB`);
    const colours = new Set<string>();
    for (let p = 0; p < 256 * 256; p++) colours.add(Array.from(img.data.subarray(p * 4, p * 4 + 4)).join(','));
    expect([...colours]).toEqual([[...OVERVIEW_RGB, 255].join(',')]);
    expect(read).toBeLessThan(25 * overviewTile.length + 4096); // 5×5 overview tiles + their tables
    expect(grown).toBeLessThan(64e6); // the full image would be 1.2 GB of RGB
  });

  it('also works from a Blob (the browser path), reading byte ranges only', async () => {
    let sliced = 0;
    class CountingBlob extends Blob {
      override slice(start?: number, end?: number, type?: string): Blob {
        sliced += (end ?? this.size) - (start ?? 0);
        return super.slice(start, end, type);
      }
    }
    const source = await openGeoTiff(new CountingBlob([hugeCog]));
    const img = await readRgbaWindow(source, { x: 0, y: 0, width: SIZE, height: SIZE }, 64, 64);
    expect(Array.from(img.data.subarray(0, 4))).toEqual([...OVERVIEW_RGB, 255]);
    expect(sliced).toBeLessThan(hugeCog.length);
  });
});

describe('a big window without overviews', () => {
  const size = 4096;
  const flat = writeTiff([level(size, patternTile)]);

  it('streams stripes of tile rows, decodes each tile once, and area-averages exactly', async () => {
    const counting = new CountingSource(flat);
    const source = await openGeoTiff(counting, { maxPixelsPerStripe: size * TILE });
    const requestsBefore = counting.requests;
    const img = await readRgbaWindow(source, { x: 0, y: 0, width: size, height: size }, 256, 256);
    // 16×16 tiles, each fetched once (plus 2 offset-table reads).
    expect(counting.requests - requestsBefore).toBe(256 + 2);
    // Each output pixel averages a 16×16 block of the tile pattern, which repeats every 16 outputs.
    const expected = new Map<string, number[]>();
    for (let bj = 0; bj < 16; bj++) {
      for (let bi = 0; bi < 16; bi++) {
        const sums = [0, 0, 0];
        for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) for (let s = 0; s < 3; s++) sums[s] += pattern(bi * 16 + x, bj * 16 + y, s);
        expected.set(`${bi},${bj}`, [...sums.map((sum) => Math.round(sum / 256)), 255]);
      }
    }
    let wrong = 0;
    for (let j = 0; j < 256; j++) {
      for (let i = 0; i < 256; i++) {
        const want = expected.get(`${i % 16},${j % 16}`) as number[];
        if (want.some((v, c) => img.data[(j * 256 + i) * 4 + c] !== v)) wrong++;
      }
    }
    expect(wrong).toBe(0);
  });
});
