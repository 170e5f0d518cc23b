/**
 * The detection engineer's golden cases (models/detection/make_fixtures.py runs evaluate.py's
 * tile_origins/core_bounds, nms and coco_eval on seeded synthetic boxes): the TS port must give
 * the same tiles, the same NMS keeps and the same AP for every class, size bin and metric.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planTiles } from '../raster/tiler';
import { cocoEval, type Box, type CocoResult } from './cocoEval';
import { classWiseNms } from './nms';

const FIXTURE = new URL('../../../models/detection/fixtures/eval_cases.json', import.meta.url);

interface Cases {
  constants: { tile: number; overlap: number };
  tiles: { length: number; origins: number[]; core: [number | null, number | null][] }[];
  nms: { boxes: Box[]; scores: number[]; iou: number; keep: number[] };
  ap: { num_classes: number; images: { gt_boxes: Box[]; gt_labels: number[]; det_boxes: Box[]; det_scores: number[]; det_labels: number[] }[]; expected: CocoResult };
}

describe.skipIf(!existsSync(FIXTURE))('golden cases from models/detection/evaluate.py', () => {
  const cases = existsSync(FIXTURE) ? (JSON.parse(readFileSync(FIXTURE, 'utf8')) as Cases) : null;

  it('tile origins and seam cores', () => {
    const { tile, overlap } = cases!.constants;
    for (const { length, origins, core } of cases!.tiles) {
      const grid = planTiles(length, 10, { tileSize: tile, overlap });
      expect(grid.tiles.map((t) => t.window.x), `length ${length}`).toEqual(origins);
      // Python's outermost bounds are ±∞ (decode.ownsCentre treats the outer tiles so); inner seams must agree.
      const seams = grid.tiles.map((t, i) => [i === 0 ? null : t.core.x, i === grid.tiles.length - 1 ? null : t.core.x + t.core.width]);
      expect(seams, `length ${length}`).toEqual(core);
    }
  });

  it('greedy NMS keeps', () => {
    const { boxes, scores, iou, keep } = cases!.nms;
    const dets = boxes.map(([x1, y1, x2, y2], i) => ({ x1, y1, x2, y2, score: scores[i], classIndex: 0, index: i }));
    expect(classWiseNms(dets, iou).map((d) => (d as (typeof dets)[number]).index)).toEqual(keep);
  });

  it('COCO AP per class and size bin', () => {
    const { images, expected } = cases!.ap;
    const preds = images.map((im) => ({ boxes: im.det_boxes, scores: im.det_scores, labels: im.det_labels }));
    const gts = images.map((im) => ({ boxes: im.gt_boxes, labels: im.gt_labels }));
    const got = cocoEval(preds, gts, Object.keys(expected.per_class));
    for (const [name, bins] of Object.entries(expected.per_class)) {
      for (const [bin, scores] of Object.entries(bins)) {
        const mine = got.per_class[name][bin as keyof typeof bins];
        for (const key of ['AP', 'AP50', 'AP75', 'n_gt'] as const) expect(mine[key], `${name} ${bin} ${key}`).toBeCloseTo(scores[key], 12);
      }
    }
    for (const [bin, scores] of Object.entries(expected.overall)) {
      expect(got.overall[bin as keyof typeof expected.overall].AP, `overall ${bin}`).toBeCloseTo(scores.AP, 12);
    }
  });
});
