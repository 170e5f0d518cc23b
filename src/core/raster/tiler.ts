/**
 * Tiles of a fixed model-input size with overlap, over a whole image or a sub-window (e.g. the
 * visible extent), optionally at a scale other than full resolution. Edges are covered exactly:
 * the last tile of a row/column is shifted back to end at the region's edge (so no tile reaches
 * outside the image); only an image smaller than a tile gives a tile padded past its
 * right/bottom edge (readRgbaWindow marks that part invalid).
 */
import type { PixelWindow } from './types';

export interface TileGridOptions {
  /** Tile size in model pixels: the size each tile is read at. */
  tileSize: number | { width: number; height: number };
  /** Overlap between neighbouring tiles in model pixels (default 0). */
  overlap?: number;
  /** Full-res pixels per model pixel (2 = tiles cover twice their size at half resolution). Default 1. */
  scale?: number;
  /** Full-res region to cover; default the whole image. Clipped to the image. */
  region?: PixelWindow;
}

export interface Tile {
  index: number;
  col: number;
  row: number;
  /** Full-res pixels to read (pass to readRgbaWindow with outWidth×outHeight). */
  window: PixelWindow;
  outWidth: number;
  outHeight: number;
  /**
   * Full-res part this tile is responsible for: its window cut at the middle of each overlap
   * with a neighbour. Keep a detection from this tile only if its centre lies in `core`.
   */
  core: PixelWindow;
}

export interface TileGrid {
  tiles: Tile[];
  columns: number;
  rows: number;
}

interface AxisSpan {
  start: number;
  coreStart: number;
  coreEnd: number;
}

/** Tile starts along one axis (full-res), plus each tile's core span. */
export function axisSpans(regionStart: number, regionLength: number, tileLength: number, stride: number, imageLength: number): AxisSpan[] {
  if (regionLength <= tileLength) {
    // One tile: centred on the region, kept inside the image when the image is big enough.
    const centred = regionStart + (regionLength - tileLength) / 2;
    const start = imageLength >= tileLength ? Math.min(Math.max(centred, 0), imageLength - tileLength) : 0;
    return [{ start, coreStart: regionStart, coreEnd: regionStart + regionLength }];
  }
  const count = Math.ceil((regionLength - tileLength) / stride - 1e-9) + 1;
  const starts = Array.from({ length: count }, (_, i) => (i === count - 1 ? regionStart + regionLength - tileLength : regionStart + i * stride));
  return starts.map((start, i) => ({
    start,
    coreStart: i === 0 ? regionStart : (starts[i - 1] + tileLength + start) / 2,
    coreEnd: i === count - 1 ? regionStart + regionLength : (start + tileLength + starts[i + 1]) / 2,
  }));
}

export function planTiles(imageWidth: number, imageHeight: number, options: TileGridOptions): TileGrid {
  const size = typeof options.tileSize === 'number' ? { width: options.tileSize, height: options.tileSize } : options.tileSize;
  const overlap = options.overlap ?? 0;
  const scale = options.scale ?? 1;
  if (!(size.width > 0 && size.height > 0 && Number.isInteger(size.width) && Number.isInteger(size.height))) {
    throw new RangeError(`tile size must be positive whole pixels, got ${size.width}×${size.height}`);
  }
  if (!(overlap >= 0 && overlap < Math.min(size.width, size.height))) {
    throw new RangeError(`overlap ${overlap} must be ≥ 0 and smaller than the tile (${size.width}×${size.height})`);
  }
  if (!(scale > 0 && Number.isFinite(scale))) throw new RangeError(`scale must be positive, got ${scale}`);

  const region = options.region ?? { x: 0, y: 0, width: imageWidth, height: imageHeight };
  const x0 = Math.max(0, region.x);
  const y0 = Math.max(0, region.y);
  const x1 = Math.min(imageWidth, region.x + region.width);
  const y1 = Math.min(imageHeight, region.y + region.height);
  if (!(x1 > x0 && y1 > y0)) return { tiles: [], columns: 0, rows: 0 };

  const tileW = size.width * scale;
  const tileH = size.height * scale;
  const columns = axisSpans(x0, x1 - x0, tileW, (size.width - overlap) * scale, imageWidth);
  const rows = axisSpans(y0, y1 - y0, tileH, (size.height - overlap) * scale, imageHeight);
  const tiles: Tile[] = [];
  rows.forEach((r, row) =>
    columns.forEach((c, col) =>
      tiles.push({
        index: tiles.length,
        col,
        row,
        window: { x: c.start, y: r.start, width: tileW, height: tileH },
        outWidth: size.width,
        outHeight: size.height,
        core: { x: c.coreStart, y: r.coreStart, width: c.coreEnd - c.coreStart, height: r.coreEnd - r.coreStart },
      }),
    ),
  );
  return { tiles, columns: columns.length, rows: rows.length };
}

/** Tile pixel coordinates (0..outWidth, continuous) → full-res image coordinates. */
export function tileToImage(tile: Tile, x: number, y: number): { x: number; y: number } {
  return {
    x: tile.window.x + (x * tile.window.width) / tile.outWidth,
    y: tile.window.y + (y * tile.window.height) / tile.outHeight,
  };
}

/** Full-res image coordinates → tile pixel coordinates (may fall outside the tile). */
export function imageToTile(tile: Tile, x: number, y: number): { x: number; y: number } {
  return {
    x: ((x - tile.window.x) * tile.outWidth) / tile.window.width,
    y: ((y - tile.window.y) * tile.outHeight) / tile.window.height,
  };
}

/** A box in tile pixels (e.g. a detection) → the same box in full-res image pixels. */
export function tileBoxToImage(tile: Tile, box: PixelWindow): PixelWindow {
  const topLeft = tileToImage(tile, box.x, box.y);
  const bottomRight = tileToImage(tile, box.x + box.width, box.y + box.height);
  return { x: topLeft.x, y: topLeft.y, width: bottomRight.x - topLeft.x, height: bottomRight.y - topLeft.y };
}

/** Whether two full-res windows share pixels (touching edges do not count). */
export function windowsOverlap(a: PixelWindow, b: PixelWindow): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}
