"""Write small golden cases for the TypeScript port of the tiling / NMS / AP code.

/usr/bin/python3 -m models.detection.make_fixtures  ->  models/detection/fixtures/eval_cases.json
(synthetic boxes with a fixed seed: tile origins and core bounds, NMS keeps, COCO AP per class/bin)."""
from __future__ import annotations

import json

import numpy as np

from models.rslens import paths
from models.detection import evaluate as ev


def main() -> int:
    rng = np.random.RandomState(0)
    out = {"constants": {"tile": ev.TILE, "overlap": ev.OVERLAP, "conf": ev.CONF, "nms_iou": ev.NMS_IOU,
                         "max_dets": ev.MAX_DETS, "area_bins": ev.AREA_BINS}}
    out["tiles"] = [{"length": L, "origins": ev.tile_origins(L),
                     "core": [[None if np.isinf(a) else a, None if np.isinf(b) else b] for a, b in ev.core_bounds(ev.tile_origins(L))]}
                    for L in (300, 416, 417, 684, 1080, 1920, 4000)]
    b = rng.uniform(0, 200, (30, 2))
    wh = rng.uniform(4, 60, (30, 2))
    boxes = np.concatenate([b, b + wh], 1).round(2)
    scores = rng.uniform(0, 1, 30).round(4)
    out["nms"] = {"boxes": boxes.tolist(), "scores": scores.tolist(), "iou": 0.5,
                  "keep": ev.nms(boxes, scores, 0.5).tolist()}
    imgs = []
    preds, gts = [], []
    for i in range(4):
        n = rng.randint(3, 12)
        c = rng.uniform(20, 400, (n, 2))
        s = np.exp(rng.uniform(np.log(5), np.log(70), (n, 1)))
        g = np.concatenate([c - s / 2, c + s / 2], 1).round(2)
        gl = rng.randint(0, 3, n)
        # detections: jittered copies of most GTs, some misses, some false positives, some duplicates
        keep = rng.uniform(0, 1, n) < 0.8
        d = g[keep] + rng.normal(0, 2, (keep.sum(), 4))
        dl = gl[keep].copy()
        fp = rng.uniform(20, 400, (3, 2))
        d = np.concatenate([d, np.concatenate([fp, fp + 20], 1), d[:2] + 6]).round(2)
        dl = np.concatenate([dl, rng.randint(0, 3, 3), dl[:2]])
        ds = rng.uniform(0, 1, len(d)).round(4)
        gts.append({"boxes": g, "labels": gl})
        preds.append({"boxes": d, "scores": ds, "labels": dl})
        imgs.append({"gt_boxes": g.tolist(), "gt_labels": gl.tolist(), "det_boxes": d.tolist(),
                     "det_scores": ds.tolist(), "det_labels": dl.tolist()})
    res = ev.coco_eval(preds, gts, 3)
    out["ap"] = {"num_classes": 3, "images": imgs, "expected": res}
    p = paths.MODELS_DIR / "detection" / "fixtures" / "eval_cases.json"
    p.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(res["overall"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
