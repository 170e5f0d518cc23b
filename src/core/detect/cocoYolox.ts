/**
 * The original COCO YOLOX-Nano as a zero-shot baseline in our detector's output format: its raw
 * rows [x, y, w, h (grid units), obj, 80 class probs] are decoded (xy = (p + grid)·s,
 * wh = exp(p)·s) and its COCO classes mapped onto ours, taking the best of each group — as
 * models/detection/evaluate.py does for the comparison table.
 */
import type { TensorData } from '../models/tensor';
import type { RunDetector } from './slicedDetect';

export const COCO_STRIDES = [8, 16, 32] as const;
/** COCO-80 ids (0-based, YOLOX order) per detector class. */
export const COCO_CLASS_MAP: Record<string, number[]> = { car: [2], large_vehicle: [5, 7], ship: [8] };
const COCO_COLUMNS = 85;

/** Converts one raw YOLOX-COCO output for a `size`×`size` input into rows [cx,cy,w,h,obj,p_class…]. */
export function decodeCocoYolox(raw: TensorData, size: number, classes: string[]): TensorData {
  const data = raw.data as Float32Array;
  const groups = classes.map((c) => COCO_CLASS_MAP[c] ?? []);
  const columns = 5 + classes.length;
  const rows = data.length / COCO_COLUMNS;
  const out = new Float32Array(rows * columns);
  let r = 0;
  for (const stride of COCO_STRIDES) {
    const cells = size / stride;
    for (let gy = 0; gy < cells; gy++) {
      for (let gx = 0; gx < cells; gx++, r++) {
        const i = r * COCO_COLUMNS;
        const o = r * columns;
        out[o] = (data[i] + gx) * stride;
        out[o + 1] = (data[i + 1] + gy) * stride;
        out[o + 2] = Math.exp(data[i + 2]) * stride;
        out[o + 3] = Math.exp(data[i + 3]) * stride;
        out[o + 4] = data[i + 4];
        groups.forEach((ids, c) => (out[o + 5 + c] = ids.length ? Math.max(...ids.map((id) => data[i + 5 + id])) : 0));
      }
    }
  }
  if (r !== rows) throw new Error(`YOLOX output has ${rows} rows; a ${size}px input gives ${r}`);
  return { dtype: 'float32', dims: [1, rows, columns], data: out };
}

/** Wraps a session of the COCO model so that sliced detection can run it like our detector. */
export function cocoYoloxRunner(runRaw: RunDetector, size: number, classes: string[]): RunDetector {
  return async (input) => {
    if (input.dims[2] !== size || input.dims[3] !== size) throw new Error(`the COCO YOLOX-Nano takes ${size}×${size} tiles, got ${input.dims[3]}×${input.dims[2]}`);
    return decodeCocoYolox(await runRaw(input), size, classes);
  };
}
