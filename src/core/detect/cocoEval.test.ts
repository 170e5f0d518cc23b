import { describe, expect, it } from 'vitest';
import { cocoEval, type Box, type ImageBoxes } from './cocoEval';

const gt = (boxes: Box[], labels = boxes.map(() => 0)): ImageBoxes => ({ boxes, labels });
const pred = (rows: [Box, number, number?][]): ImageBoxes => ({ boxes: rows.map((r) => r[0]), scores: rows.map((r) => r[1]), labels: rows.map((r) => r[2] ?? 0) });

describe('cocoEval', () => {
  it('perfect predictions score 1 at every threshold; classes without GT are −1 and left out', () => {
    const g = [gt([[0, 0, 20, 20], [50, 50, 70, 80]]), gt([[10, 10, 30, 30]])];
    const p = [pred([[[0, 0, 20, 20], 0.9], [[50, 50, 70, 80], 0.8]]), pred([[[10, 10, 30, 30], 0.7]])];
    const r = cocoEval(p, g, ['car', 'ship']);
    expect(r.per_class.car.all).toEqual({ AP: 1, AP50: 1, AP75: 1, n_gt: 3 });
    expect(r.per_class.ship.all.AP).toBe(-1);
    expect(r.overall.all).toEqual({ AP: 1, AP50: 1, AP75: 1, n_gt: 3 });
  });

  it('one false positive ranked first halves the precision: AP = 0.5', () => {
    const r = cocoEval([pred([[[100, 100, 120, 120], 0.9], [[0, 0, 20, 20], 0.8]])], [gt([[0, 0, 20, 20]])], ['car']);
    expect(r.per_class.car.all.AP).toBeCloseTo(0.5, 12);
    // Ranked last instead, it costs nothing (precision is 1 up to recall 1).
    const later = cocoEval([pred([[[100, 100, 120, 120], 0.5], [[0, 0, 20, 20], 0.8]])], [gt([[0, 0, 20, 20]])], ['car']);
    expect(later.per_class.car.all.AP).toBe(1);
  });

  it('IoU thresholds: a box of IoU 0.6 counts at 0.50, 0.55 and 0.60 (IoU ≥ t) only', () => {
    // GT 0..10 × 0..10; prediction 0..6 × 0..10 → IoU 0.6.
    const r = cocoEval([pred([[[0, 0, 6, 10], 0.9]])], [gt([[0, 0, 10, 10]])], ['car']);
    expect(r.per_class.car.all.AP50).toBe(1);
    expect(r.per_class.car.all.AP75).toBe(0);
    expect(r.per_class.car.all.AP).toBeCloseTo(0.3, 12);
  });

  it('size bins ignore GTs outside the bin and unmatched detections outside it', () => {
    // A tiny GT (sqrt area 10) found, and a higher-scoring false positive of 40 px.
    const g = [gt([[0, 0, 10, 10]])];
    const p = [pred([[[200, 200, 240, 240], 0.9], [[0, 0, 10, 10], 0.8]])];
    const r = cocoEval(p, g, ['car']).per_class.car;
    expect(r.tiny.AP).toBe(1); // the 40 px FP is outside [8, 16): ignored
    expect(r.all.AP).toBeCloseTo(0.5, 12);
    expect(r.medium).toEqual({ AP: -1, AP50: -1, AP75: -1, n_gt: 0 }); // no GT in [32, 64)
    expect(r.very_tiny.AP).toBe(-1);
    // A detection matched to a GT outside the bin is ignored, not a false positive.
    const two = cocoEval([pred([[[0, 0, 40, 40], 0.9], [[100, 100, 110, 110], 0.8]])], [gt([[0, 0, 40, 40], [100, 100, 110, 110]])], ['car']).per_class.car;
    expect(two.tiny).toEqual({ AP: 1, AP50: 1, AP75: 1, n_gt: 1 });
  });
});
