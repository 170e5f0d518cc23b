"""Optional cross-check of evaluate.coco_eval against pycocotools (not a dependency: run only where
pycocotools is importable). Uses fixtures/eval_cases.json; prints both results side by side.
COCO area ranges are closed [lo^2, hi^2] on box area, ours half-open on sqrt(area): identical
unless a box lies exactly on a bin edge."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np

from models.rslens import paths
from models.detection import evaluate as ev


def main() -> int:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    case = json.loads((paths.MODELS_DIR / "detection" / "fixtures" / "eval_cases.json").read_text())["ap"]
    images, anns, dets = [], [], []
    for i, im in enumerate(case["images"]):
        images.append({"id": i, "width": 1000, "height": 1000})
        for b, l in zip(im["gt_boxes"], im["gt_labels"]):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": l, "bbox": [b[0], b[1], w, h],
                         "area": w * h, "iscrowd": 0})
        for b, s, l in zip(im["det_boxes"], im["det_scores"], im["det_labels"]):
            dets.append({"image_id": i, "category_id": l, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": s})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in range(case["num_classes"])]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dets)
    E = COCOeval(gt, dt, "bbox")
    E.params.maxDets = [ev.MAX_DETS]
    E.params.areaRng = [[lo ** 2, min(hi, 1e5) ** 2] for lo, hi in ev.AREA_BINS.values()]
    E.params.areaRngLbl = list(ev.AREA_BINS)
    with contextlib.redirect_stdout(io.StringIO()):
        E.evaluate()
        E.accumulate()
    prec = E.eval["precision"]          # [T, R, K, A, M]
    worst = 0.0
    for k in range(case["num_classes"]):
        for a, name in enumerate(ev.AREA_BINS):
            p = prec[:, :, k, a, 0]
            ap = float(np.mean(p[p > -1])) if (p > -1).any() else -1.0
            ours = case["expected"]["per_class"][list(case["expected"]["per_class"])[k]][name]["AP"]
            worst = max(worst, abs(ap - ours))
            print(f"class {k} {name:10s} pycocotools {ap:.6f} ours {ours:.6f}")
    print(f"max |diff| = {worst:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
