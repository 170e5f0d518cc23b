/**
 * RSICD JPEG -> the image tower's input, as the retrieval tools in this folder read it: jpeg-js
 * decode, RGB float32 CHW in [0,1], then the requested dihedral views of it (the app's
 * src/core/raster/dihedral), written one after the other into `out`.
 */
import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { dihedralViewCHW, type DihedralView } from '../../src/core/raster/dihedral';

export const SIDE = 224;
export const PIXELS_PER_IMAGE = 3 * SIDE * SIDE;

/** RGBA uint8 HWC -> float32 CHW in [0,1] (the documented preprocessing; RSICD images are 224x224). */
function toPixels(rgba: Uint8Array, w: number, h: number, out: Float32Array): void {
  if (w !== SIDE || h !== SIDE) throw new Error(`expected ${SIDE}x${SIDE}, got ${w}x${h}`);
  const plane = w * h;
  for (let i = 0; i < plane; i++) {
    out[i] = rgba[4 * i] / 255;
    out[plane + i] = rgba[4 * i + 1] / 255;
    out[2 * plane + i] = rgba[4 * i + 2] / 255;
  }
}

const scratch = new Float32Array(PIXELS_PER_IMAGE);

/** Decodes `file` and writes its `views` at `out[offset ..]`, PIXELS_PER_IMAGE floats per view. */
export function writeImageViews(file: string, views: readonly DihedralView[], out: Float32Array, offset: number): void {
  const im = jpeg.decode(readFileSync(file), { useTArray: true, formatAsRGBA: true });
  toPixels(im.data, im.width, im.height, scratch);
  views.forEach((v, j) => dihedralViewCHW(scratch, 0, 3, SIDE, SIDE, v, out, offset + j * PIXELS_PER_IMAGE));
}
