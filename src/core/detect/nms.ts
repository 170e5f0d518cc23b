/**
 * Class-wise greedy NMS as models/detection/evaluate.py: highest score first (ties: earlier
 * detection first), a detection is dropped when its IoU with an already kept one of its class
 * exceeds the threshold. Kept boxes sit in a uniform grid so whole-image NMS over tens of
 * thousands of boxes stays near linear; the result is identical to the all-pairs loop.
 */
import type { Detection } from './types';

const CELL = 64;

export function iou(a: Detection, b: Detection): number {
  const w = Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1));
  const h = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));
  const inter = w * h;
  const areaA = (a.x2 - a.x1) * (a.y2 - a.y1);
  const areaB = (b.x2 - b.x1) * (b.y2 - b.y1);
  return inter / (areaA + areaB - inter + 1e-9);
}

/** Descending score, stable (ties keep input order). */
export function byScore(detections: readonly Detection[]): Detection[] {
  return detections
    .map((d, i) => ({ d, i }))
    .sort((a, b) => b.d.score - a.d.score || a.i - b.i)
    .map((e) => e.d);
}

/** Greedy NMS of one class's detections; returns the kept ones by descending score. */
function nmsOneClass(detections: readonly Detection[], iouThreshold: number): Detection[] {
  const kept: Detection[] = [];
  const grid = new Map<string, Detection[]>();
  const cellsOf = (d: Detection) => {
    const keys: string[] = [];
    for (let cx = Math.floor(d.x1 / CELL); cx <= Math.floor(d.x2 / CELL); cx++) {
      for (let cy = Math.floor(d.y1 / CELL); cy <= Math.floor(d.y2 / CELL); cy++) keys.push(`${cx},${cy}`);
    }
    return keys;
  };
  for (const d of byScore(detections)) {
    const cells = cellsOf(d);
    const suppressed = cells.some((key) => grid.get(key)?.some((k) => iou(k, d) > iouThreshold));
    if (suppressed) continue;
    kept.push(d);
    for (const key of cells) {
      const list = grid.get(key);
      if (list) list.push(d);
      else grid.set(key, [d]);
    }
  }
  return kept;
}

/**
 * NMS per class over all detections of an image (ascending class order, as np.unique), then the
 * top `maxDets` by score (stable).
 */
export function classWiseNms(detections: readonly Detection[], iouThreshold: number, maxDets = Infinity): Detection[] {
  const classes = [...new Set(detections.map((d) => d.classIndex))].sort((a, b) => a - b);
  const kept = classes.flatMap((c) => nmsOneClass(detections.filter((d) => d.classIndex === c), iouThreshold));
  return byScore(kept).slice(0, maxDets);
}
