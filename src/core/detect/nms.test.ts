import { describe, expect, it } from 'vitest';
import { classWiseNms, iou } from './nms';
import type { Detection } from './types';

const det = (x1: number, y1: number, x2: number, y2: number, score: number, classIndex = 0): Detection => ({ x1, y1, x2, y2, score, classIndex });

/** The reference all-pairs greedy loop (evaluate.py's nms), for comparison with the grid version. */
function bruteForce(dets: Detection[], thr: number): Detection[] {
  const out: Detection[] = [];
  for (const c of [...new Set(dets.map((d) => d.classIndex))].sort()) {
    let order = dets.filter((d) => d.classIndex === c).map((d, i) => ({ d, i })).sort((a, b) => b.d.score - a.d.score || a.i - b.i).map((e) => e.d);
    while (order.length) {
      const [first, ...rest] = order;
      out.push(first);
      order = rest.filter((d) => iou(first, d) <= thr);
    }
  }
  return out.map((d, i) => ({ d, i })).sort((a, b) => b.d.score - a.d.score || a.i - b.i).map((e) => e.d);
}

describe('classWiseNms', () => {
  it('suppresses by IoU within a class only (hand-computed case)', () => {
    const a = det(0, 0, 10, 10, 0.9);
    const b = det(1, 0, 11, 10, 0.8); // IoU with a = 90 / 110 = 0.818 → suppressed
    const c = det(0, 0, 10, 10, 0.7, 1); // same box, other class → kept
    const d = det(5, 0, 15, 10, 0.6); // IoU with a = 50 / 150 = 0.333 → kept
    const e = det(2, 0, 12, 10, 0.5); // IoU with d = 70 / 130 = 0.54 → suppressed by d
    expect(iou(a, b)).toBeCloseTo(90 / 110, 9);
    expect(classWiseNms([e, d, c, b, a], 0.5)).toEqual([a, c, d]);
  });

  it('a box suppressed by a higher one does not suppress others (greedy semantics)', () => {
    const a = det(0, 0, 10, 10, 0.9);
    const b = det(4, 0, 14, 10, 0.8); // IoU(a,b) = 60/140 = 0.43 → kept
    const c = det(3, 0, 13, 10, 0.7); // IoU(a,c)=70/130=0.54 → suppressed by a
    expect(classWiseNms([a, b, c], 0.5)).toEqual([a, b]);
  });

  it('matches the all-pairs loop on many random overlapping boxes, and caps at maxDets', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const dets = Array.from({ length: 1500 }, () => {
      const x = rand() * 600;
      const y = rand() * 400;
      const w = 4 + rand() * 120;
      return det(x, y, x + w, y + 4 + rand() * 60, Math.round(rand() * 50) / 50, Math.floor(rand() * 3));
    });
    const expected = bruteForce(dets, 0.5);
    expect(classWiseNms(dets, 0.5)).toEqual(expected);
    expect(classWiseNms(dets, 0.5, 10)).toEqual(expected.slice(0, 10));
  });
});
