/**
 * One tile's model output → detections in image pixels, as models/detection/evaluate.py
 * (sliced_predict) does: best class per anchor row by obj·p_c, score threshold, seam
 * ownership by the box centre, clipping to the image part of the tile.
 */
import { tileToImage, type Tile, type TileGrid } from '../raster/tiler';
import type { Detection } from './types';

/** Output rows: cx, cy, w, h (tile pixels), obj, p_0 … p_{C−1}. */
export interface TileOutput {
  data: Float32Array;
  rows: number;
  /** Values per row: 5 + C. */
  stride: number;
}

export interface DecodeOptions {
  conf: number;
  imageWidth: number;
  imageHeight: number;
}

/** True when (x, y) in image pixels lies in the tile's core; outermost tiles own everything beyond. */
export function ownsCentre(tile: Tile, grid: Pick<TileGrid, 'columns' | 'rows'>, x: number, y: number): boolean {
  const { core } = tile;
  const left = tile.col === 0 ? -Infinity : core.x;
  const right = tile.col === grid.columns - 1 ? Infinity : core.x + core.width;
  const top = tile.row === 0 ? -Infinity : core.y;
  const bottom = tile.row === grid.rows - 1 ? Infinity : core.y + core.height;
  return x >= left && x < right && y >= top && y < bottom;
}

export function decodeTile(output: TileOutput, tile: Tile, grid: Pick<TileGrid, 'columns' | 'rows'>, options: DecodeOptions): Detection[] {
  const { data, rows, stride } = output;
  const classCount = stride - 5;
  if (classCount < 1) throw new Error(`detector output rows have ${stride} values; expected 5 + classes`);
  const sx = tile.window.width / tile.outWidth;
  const sy = tile.window.height / tile.outHeight;
  // The image part of the tile (boxes are clipped to it).
  const clipX1 = Math.max(tile.window.x, 0);
  const clipY1 = Math.max(tile.window.y, 0);
  const clipX2 = Math.min(tile.window.x + tile.window.width, options.imageWidth);
  const clipY2 = Math.min(tile.window.y + tile.window.height, options.imageHeight);
  const clip = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

  const out: Detection[] = [];
  for (let r = 0; r < rows; r++) {
    const o = r * stride;
    const obj = data[o + 4];
    let classIndex = 0;
    let score = -Infinity;
    for (let c = 0; c < classCount; c++) {
      const s = Math.fround(obj * data[o + 5 + c]); // float32, as the Python reference
      if (s > score) {
        score = s;
        classIndex = c;
      }
    }
    if (!(score >= options.conf)) continue;
    const centre = tileToImage(tile, data[o], data[o + 1]);
    if (!ownsCentre(tile, grid, centre.x, centre.y)) continue;
    const halfW = (data[o + 2] * sx) / 2;
    const halfH = (data[o + 3] * sy) / 2;
    out.push({
      x1: clip(centre.x - halfW, clipX1, clipX2),
      y1: clip(centre.y - halfH, clipY1, clipY2),
      x2: clip(centre.x + halfW, clipX1, clipX2),
      y2: clip(centre.y + halfH, clipY1, clipY2),
      score,
      classIndex,
    });
  }
  return out;
}
