/**
 * COCO-style AP with AI-TOD size bins: a line-by-line port of coco_eval in
 * models/detection/evaluate.py (pycocotools semantics without crowd boxes). Keep the two in step:
 * `npm run cli -- eval detect … --python-check` scores the same predictions with both.
 */

/** Boxes are [x1, y1, x2, y2] in pixels of the evaluated image. */
export type Box = [number, number, number, number];

export interface ImageBoxes {
  boxes: Box[];
  labels: number[];
  /** Predictions only. */
  scores?: number[];
}

export const IOU_THRESHOLDS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];
const RECALL_POINTS = Array.from({ length: 101 }, (_, i) => i * 0.01);
export const MAX_DETS = 1000;

/** By sqrt(box area) of the ground truth (AI-TOD); 'all' = every size. */
export const SIZE_BINS = {
  all: [0, 1e9],
  very_tiny: [0, 8],
  tiny: [8, 16],
  small: [16, 32],
  medium: [32, 64],
} as const satisfies Record<string, readonly [number, number]>;
export type SizeBin = keyof typeof SIZE_BINS;
export const SIZE_BIN_NAMES = Object.keys(SIZE_BINS) as SizeBin[];

/** −1 where the class/bin has no ground truth. */
export interface ApScores {
  AP: number;
  AP50: number;
  AP75: number;
  n_gt: number;
}

export interface CocoResult {
  per_class: Record<string, Record<SizeBin, ApScores>>;
  overall: Record<SizeBin, ApScores>;
}

function iouMatrix(d: Box[], g: Box[]): number[][] {
  return d.map((a) =>
    g.map((b) => {
      const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
      const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
      const inter = w * h;
      return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
    }),
  );
}

export function sqrtArea(b: Box): number {
  return Math.sqrt(Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]));
}

/** Indices sorted by key ascending, stable (numpy mergesort). */
function stableOrder(keys: number[]): number[] {
  return keys.map((k, i) => ({ k, i })).sort((a, b) => a.k - b.k || a.i - b.i).map((e) => e.i);
}

/** Average precision at each IoU threshold from score-ordered match flags. */
function precisionAt101(tp: boolean[], ignored: boolean[], npig: number): number {
  let tpc = 0;
  let fpc = 0;
  const recall: number[] = [];
  const precision: number[] = [];
  for (let k = 0; k < tp.length; k++) {
    if (ignored[k]) {
      // Ignored detections add neither a TP nor an FP but still take a position (as numpy's cumsum).
    } else if (tp[k]) tpc++;
    else fpc++;
    recall.push(tpc / npig);
    precision.push(tpc / Math.max(tpc + fpc, Number.EPSILON));
  }
  for (let k = precision.length - 2; k >= 0; k--) precision[k] = Math.max(precision[k], precision[k + 1]);
  let sum = 0;
  for (const r of RECALL_POINTS) {
    // searchsorted(recall, r, 'left'): first index with recall ≥ r.
    let lo = 0;
    let hi = recall.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (recall[mid] < r) lo = mid + 1;
      else hi = mid;
    }
    sum += lo < precision.length ? precision[lo] : 0;
  }
  return sum / RECALL_POINTS.length;
}

function evaluateClassBin(preds: ImageBoxes[], gts: ImageBoxes[], c: number, [lo, hi]: readonly [number, number]): ApScores {
  const T = IOU_THRESHOLDS.length;
  const scores: number[] = [];
  const tps: boolean[][] = IOU_THRESHOLDS.map(() => []);
  const ignoredDets: boolean[][] = IOU_THRESHOLDS.map(() => []);
  let npig = 0;
  preds.forEach((pr, imageIndex) => {
    const gt = gts[imageIndex];
    let g = gt.boxes.filter((_, i) => gt.labels[i] === c);
    const dIdx = pr.labels.map((l, i) => (l === c ? i : -1)).filter((i) => i >= 0);
    const dScores = dIdx.map((i) => pr.scores![i]);
    const order = stableOrder(dScores.map((s) => -s)).slice(0, MAX_DETS);
    const d = order.map((o) => pr.boxes[dIdx[o]]);
    const ds = order.map((o) => dScores[o]);
    let gIgnored = g.map((b) => {
      const a = sqrtArea(b);
      return a < lo || a >= hi;
    });
    npig += gIgnored.filter((x) => !x).length;
    const gOrder = stableOrder(gIgnored.map((x) => (x ? 1 : 0))); // non-ignored GTs first
    g = gOrder.map((j) => g[j]);
    gIgnored = gOrder.map((j) => gIgnored[j]);
    const ious = iouMatrix(d, g);
    const dOutside = d.map((b) => {
      const a = sqrtArea(b);
      return a < lo || a >= hi;
    });
    for (let ti = 0; ti < T; ti++) {
      const t = IOU_THRESHOLDS[ti];
      const gMatched = new Array<boolean>(g.length).fill(false);
      for (let k = 0; k < d.length; k++) {
        let best = Math.min(t, 1 - 1e-10);
        let m = -1;
        for (let j = 0; j < g.length; j++) {
          if (gMatched[j]) continue;
          if (m > -1 && !gIgnored[m] && gIgnored[j]) break;
          if (ious[k][j] < best) continue;
          best = ious[k][j];
          m = j;
        }
        let tp = false;
        let ignored = false;
        if (m !== -1) {
          gMatched[m] = true;
          ignored = gIgnored[m];
          tp = true;
        }
        tps[ti].push(tp);
        ignoredDets[ti].push(ignored || (!tp && dOutside[k]));
      }
    }
    scores.push(...ds);
  });
  if (npig === 0) return { AP: -1, AP50: -1, AP75: -1, n_gt: 0 };
  const order = stableOrder(scores.map((s) => -s));
  const ap = IOU_THRESHOLDS.map((_, ti) =>
    precisionAt101(
      order.map((o) => tps[ti][o]),
      order.map((o) => ignoredDets[ti][o]),
      npig,
    ),
  );
  return { AP: ap.reduce((a, b) => a + b, 0) / T, AP50: ap[0], AP75: ap[5], n_gt: npig };
}

export function cocoEval(preds: ImageBoxes[], gts: ImageBoxes[], classNames: string[]): CocoResult {
  if (preds.length !== gts.length) throw new Error(`cocoEval: ${preds.length} prediction sets for ${gts.length} images`);
  const perClass = classNames.map((_, c) => Object.fromEntries(SIZE_BIN_NAMES.map((bin) => [bin, evaluateClassBin(preds, gts, c, SIZE_BINS[bin])])) as Record<SizeBin, ApScores>);
  const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : -1);
  const overall = Object.fromEntries(
    SIZE_BIN_NAMES.map((bin) => {
      const present = perClass.filter((r) => r[bin].AP >= 0).map((r) => r[bin]);
      return [bin, { AP: mean(present.map((r) => r.AP)), AP50: mean(present.map((r) => r.AP50)), AP75: mean(present.map((r) => r.AP75)), n_gt: perClass.reduce((n, r) => n + r[bin].n_gt, 0) }];
    }),
  ) as Record<SizeBin, ApScores>;
  return { per_class: Object.fromEntries(classNames.map((name, c) => [name, perClass[c]])), overall };
}
