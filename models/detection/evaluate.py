"""Sliced inference + COCO-style AP (with AI-TOD size bins) on the validation split.

  /usr/bin/python3 -m models.detection.evaluate --model zeroshot            # COCO YOLOX-Nano, mapped classes
  /usr/bin/python3 -m models.detection.evaluate --model runs/detection-baseline/final.pt
  /usr/bin/python3 -m models.detection.evaluate --model detection/tinynet.onnx (not supported: use .pt)

The slicing, merge, NMS and AP code here is the reference for the TypeScript port
(`npm run cli -- eval detect`); MODEL_CARD.md restates it as a spec. Constants below.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch

from models.rslens import paths
from models.detection.data import CLASSES, PAD_VALUE, load_records, load_region_bgr

TILE = 416            # tile side in image pixels (native resolution, no resampling)
OVERLAP = 104         # pixels shared by neighbouring tiles (25 %); step = TILE - OVERLAP = 312
CONF = 0.01           # keep candidates with score = obj * cls >= CONF (evaluation); app display: 0.3
NMS_IOU = 0.5         # class-wise greedy NMS over the whole image after merging tiles
MAX_DETS = 1000       # per image, after NMS (COCO uses 100; one DOTA half holds 234 ships)
IOU_THRS = np.round(np.arange(0.5, 0.951, 0.05), 2)
REC_THRS = np.linspace(0.0, 1.0, 101)
AREA_BINS = {  # by sqrt(box area) of the ground truth (AI-TOD); 'all' = every size
    "all": (0.0, 1e9), "very_tiny": (0.0, 8.0), "tiny": (8.0, 16.0), "small": (16.0, 32.0), "medium": (32.0, 64.0)}

# COCO-80 ids (0-based, YOLOX order) mapped to our classes for the zero-shot baseline
COCO_MAP = {"car": [2], "large_vehicle": [5, 7], "ship": [8]}    # car; bus, truck; boat


# ----------------------------------------------------------------------------- slicing
def tile_origins(length: int, tile: int = TILE, overlap: int = OVERLAP) -> List[int]:
    """Origins along one axis: 0, step, 2*step, ... and the last tile flush with the far edge."""
    if length <= tile:
        return [0]
    step = tile - overlap
    n = int(math.ceil((length - tile) / step)) + 1
    return [min(k * step, length - tile) for k in range(n)]


def core_bounds(origins: Sequence[int], tile: int = TILE) -> List[tuple]:
    """Half-open interval [lo, hi) of detection centres each tile owns: seams at the middle of
    each overlap, so every object centre belongs to exactly one tile."""
    out = []
    for i, o in enumerate(origins):
        lo = -math.inf if i == 0 else (origins[i - 1] + tile + o) / 2.0
        hi = math.inf if i == len(origins) - 1 else (o + tile + origins[i + 1]) / 2.0
        out.append((lo, hi))
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float) -> np.ndarray:
    """Greedy NMS, highest score first (ties: lower index first). Returns kept indices."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter + 1e-9)
        order = rest[iou <= iou_thr]
    return np.array(keep, np.int64)


def sliced_predict(img: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], tile=TILE, overlap=OVERLAP,
                   conf=CONF, nms_iou=NMS_IOU, max_dets=MAX_DETS, batch=8) -> Dict[str, np.ndarray]:
    """img: HxWx3 uint8 BGR. predict: [n,3,T,T] float32 BGR 0-255 -> [n, N, 4 + C] rows of
    (cx, cy, w, h, score_c...) in tile pixels, score = obj * cls. Returns boxes xyxy (image px),
    scores, labels."""
    H, W = img.shape[:2]
    xs, ys = tile_origins(W, tile, overlap), tile_origins(H, tile, overlap)
    cx_b, cy_b = core_bounds(xs, tile), core_bounds(ys, tile)
    jobs = [(xi, yi) for yi in range(len(ys)) for xi in range(len(xs))]
    all_b, all_s, all_l = [], [], []
    for j0 in range(0, len(jobs), batch):
        chunk = jobs[j0:j0 + batch]
        arr = np.full((len(chunk), tile, tile, 3), PAD_VALUE, np.uint8)
        for k, (xi, yi) in enumerate(chunk):
            part = img[ys[yi]:ys[yi] + tile, xs[xi]:xs[xi] + tile]
            arr[k, :part.shape[0], :part.shape[1]] = part
        pred = predict(arr.transpose(0, 3, 1, 2).astype(np.float32))
        for k, (xi, yi) in enumerate(chunk):
            p = pred[k]
            sc = p[:, 4:]
            lab = sc.argmax(1)
            s = sc[np.arange(len(sc)), lab]
            m = s >= conf
            p, s, lab = p[m], s[m], lab[m]
            ox, oy = xs[xi], ys[yi]
            ccx, ccy = p[:, 0] + ox, p[:, 1] + oy
            (xlo, xhi), (ylo, yhi) = cx_b[xi], cy_b[yi]
            m = (ccx >= xlo) & (ccx < xhi) & (ccy >= ylo) & (ccy < yhi)
            b = np.stack([ccx - p[:, 2] / 2, ccy - p[:, 3] / 2, ccx + p[:, 2] / 2, ccy + p[:, 3] / 2], 1)[m]
            vw, vh = min(tile, W - ox), min(tile, H - oy)       # clip to the image part of the tile
            b[:, [0, 2]] = b[:, [0, 2]].clip(ox, ox + vw)
            b[:, [1, 3]] = b[:, [1, 3]].clip(oy, oy + vh)
            all_b.append(b), all_s.append(s[m]), all_l.append(lab[m])
    b = np.concatenate(all_b) if all_b else np.zeros((0, 4), np.float32)
    s = np.concatenate(all_s) if all_s else np.zeros((0,), np.float32)
    l = np.concatenate(all_l) if all_l else np.zeros((0,), np.int64)
    keep = []
    for c in np.unique(l):
        idx = np.nonzero(l == c)[0]
        keep.append(idx[nms(b[idx], s[idx], nms_iou)])
    keep = np.concatenate(keep) if keep else np.zeros((0,), np.int64)
    keep = keep[np.argsort(-s[keep], kind="stable")][:max_dets]
    return {"boxes": b[keep], "scores": s[keep], "labels": l[keep]}


# ----------------------------------------------------------------------------- COCO-style AP
def _iou_matrix(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    if len(d) == 0 or len(g) == 0:
        return np.zeros((len(d), len(g)))
    w = np.clip(np.minimum(d[:, None, 2], g[None, :, 2]) - np.maximum(d[:, None, 0], g[None, :, 0]), 0, None)
    h = np.clip(np.minimum(d[:, None, 3], g[None, :, 3]) - np.maximum(d[:, None, 1], g[None, :, 1]), 0, None)
    inter = w * h
    ad = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    ag = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    return inter / (ad[:, None] + ag[None, :] - inter)


def _sqrt_area(b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None))


def coco_eval(preds: List[Dict[str, np.ndarray]], gts: List[Dict[str, np.ndarray]], num_classes: int):
    """COCO protocol (pycocotools semantics, no crowd boxes): per class and size bin, greedy matching
    by score at each IoU threshold; GTs outside the bin are ignored, and so are unmatched detections
    outside the bin; 101-point interpolated precision; AP = -1 where a bin/class has no GT."""
    T = len(IOU_THRS)
    res = {}
    for c in range(num_classes):
        res[c] = {}
        for bin_name, (lo, hi) in AREA_BINS.items():
            scores, tps, ign_d = [], [], []
            npig = 0
            for pr, gt in zip(preds, gts):
                gm = gt["labels"] == c
                g = gt["boxes"][gm]
                dm = pr["labels"] == c
                d, ds = pr["boxes"][dm], pr["scores"][dm]
                o = np.argsort(-ds, kind="mergesort")[:MAX_DETS]
                d, ds = d[o], ds[o]
                ga = _sqrt_area(g)
                g_ign = (ga < lo) | (ga >= hi)
                npig += int((~g_ign).sum())
                go = np.argsort(g_ign, kind="mergesort")     # non-ignored GTs first
                g, g_ign = g[go], g_ign[go]
                ious = _iou_matrix(d, g)
                tp = np.zeros((T, len(d)), bool)
                di = np.zeros((T, len(d)), bool)
                for ti, t in enumerate(IOU_THRS):
                    gmatched = np.zeros(len(g), bool)
                    for k in range(len(d)):
                        best, m = min(t, 1 - 1e-10), -1
                        for j in range(len(g)):
                            if gmatched[j]:
                                continue
                            if m > -1 and not g_ign[m] and g_ign[j]:
                                break
                            if ious[k, j] < best:
                                continue
                            best, m = ious[k, j], j
                        if m == -1:
                            continue
                        gmatched[m] = True
                        di[ti, k] = g_ign[m]
                        tp[ti, k] = True
                    da = _sqrt_area(d)
                    out = (da < lo) | (da >= hi)
                    di[ti] |= (~tp[ti]) & out
                scores.append(ds)
                tps.append(tp)
                ign_d.append(di)
            if npig == 0:
                res[c][bin_name] = {"AP": -1.0, "AP50": -1.0, "AP75": -1.0, "n_gt": 0}
                continue
            s = np.concatenate(scores) if scores else np.zeros(0)
            order = np.argsort(-s, kind="mergesort")
            tp = np.concatenate(tps, 1)[:, order] if tps else np.zeros((T, 0), bool)
            di = np.concatenate(ign_d, 1)[:, order] if ign_d else np.zeros((T, 0), bool)
            ap = np.zeros(T)
            for ti in range(T):
                t = tp[ti] & ~di[ti]
                f = ~tp[ti] & ~di[ti]
                tpc, fpc = np.cumsum(t), np.cumsum(f)
                rc = tpc / npig
                pr = tpc / np.maximum(tpc + fpc, np.spacing(1))
                pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
                inds = np.searchsorted(rc, REC_THRS, side="left")
                q = np.array([pr[i] if i < len(pr) else 0.0 for i in inds])
                ap[ti] = q.mean()
            res[c][bin_name] = {"AP": float(ap.mean()), "AP50": float(ap[0]), "AP75": float(ap[5]), "n_gt": npig}
    overall = {}
    for bin_name in AREA_BINS:
        vals = {k: [res[c][bin_name][k] for c in res if res[c][bin_name]["AP"] >= 0] for k in ("AP", "AP50", "AP75")}
        overall[bin_name] = {k: (float(np.mean(v)) if v else -1.0) for k, v in vals.items()}
        overall[bin_name]["n_gt"] = int(sum(res[c][bin_name]["n_gt"] for c in res))
    return {"per_class": {CLASSES[c]: res[c] for c in res}, "overall": overall}


# ----------------------------------------------------------------------------- predictors
def torch_predictor(model: torch.nn.Module, score_map=None):
    """Wrap a model returning decoded [n, N, 5+K] (obj, class probs) into score rows [n, N, 4+C]."""
    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        out = model(torch.from_numpy(x)).numpy()
        box, obj, cls = out[..., :4], out[..., 4:5], out[..., 5:]
        if score_map is not None:
            cls = np.stack([cls[..., ids].max(-1) for ids in score_map], -1)
        return np.concatenate([box, obj * cls], -1)
    return predict


def drop_first_level(predict, stride=4):
    """Ablation at inference: zero the scores of the stride-`stride` rows (the first level)."""
    def wrapped(x: np.ndarray) -> np.ndarray:
        out = predict(x).copy()
        n = (x.shape[2] // stride) * (x.shape[3] // stride)
        out[:, :n, 4:] = 0.0
        return out
    return wrapped


def load_model(spec: str):
    from models.detection.yolox import TinyDet, YOLOXNano, load_yolox_onnx
    if spec == "zeroshot":
        m = YOLOXNano(80).eval()
        load_yolox_onnx(m, str(paths.shared_dir() / "weights" / "yolox_nano_coco.onnx"))

        class Dec(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x, decode_boxes=True)
        return torch_predictor(Dec(m).eval(), [COCO_MAP[c] for c in CLASSES]), {"model": "YOLOX-Nano COCO zero-shot"}
    p = Path(spec)
    if not p.is_absolute() and not p.exists():
        p = paths.MODELS_DIR / spec
    ck = torch.load(p, map_location="cpu")
    model = TinyDet(len(ck["classes"]), tinynet=(ck["variant"] == "tinynet"))
    model.load_state_dict(ck["ema"])
    model.eval()
    return torch_predictor(model), {"model": ck["variant"], "checkpoint": paths.rel(p), "iter": ck.get("iter")}


def evaluate(predict, split="val", scale=1.0, log=print):
    """scale != 1: resample each image (bilinear) and its boxes by `scale` before slicing - a
    stress test that moves objects into the AI-TOD tiny bins (coarser ground resolution)."""
    from PIL import Image
    recs = load_records((split,))
    preds, gts = [], []
    t0 = time.time()
    for r in recs:
        img = load_region_bgr(r)
        boxes = r.boxes
        if scale != 1.0:
            h, w = img.shape[:2]
            img = np.asarray(Image.fromarray(img).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR))
            boxes = boxes * scale
        preds.append(sliced_predict(img, predict))
        gts.append({"boxes": boxes, "labels": r.labels})
    dt = time.time() - t0
    out = coco_eval(preds, gts, len(CLASSES))
    out["n_images"] = len(recs)
    out["seconds"] = round(dt, 1)
    return out


def fmt_table(res) -> str:
    lines = ["| class | n_gt | AP | AP50 | AP75 | AP_vt | AP_t | AP_s | AP_m |", "|---|---|---|---|---|---|---|---|---|"]
    f = lambda v: "–" if v < 0 else f"{v:.3f}"
    rows = list(res["per_class"].items()) + [("overall", None)]
    for name, r in rows:
        r = r if r is not None else res["overall"]
        lines.append(f"| {name} | {r['all']['n_gt']} | {f(r['all']['AP'])} | {f(r['all']['AP50'])} | {f(r['all']['AP75'])} | "
                     + " | ".join(f(r[b]["AP"]) for b in ("very_tiny", "tiny", "small", "medium")) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="'zeroshot' or a checkpoint (.pt with EMA weights)")
    ap.add_argument("--split", default="val", choices=["val", "test", "train"])
    ap.add_argument("--name", default=None, help="key in models/detection/metrics.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--drop-stride4", action="store_true", help="tinynet ablation: ignore the stride-4 level's outputs")
    ap.add_argument("--scale", type=float, default=1.0, help="resample images by this factor first (tiny-object stress test)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    predict, meta = load_model(args.model)
    if args.drop_stride4:
        predict = drop_first_level(predict, 4)
        meta["drop_stride4"] = True
    res = evaluate(predict, args.split, args.scale)
    res["meta"] = {**meta, "split": args.split, "scale": args.scale, "tile": TILE, "overlap": OVERLAP, "conf": CONF, "nms_iou": NMS_IOU,
                   "max_dets": MAX_DETS}
    print(fmt_table(res))
    mp = paths.MODELS_DIR / "detection" / "metrics.json"
    allm = json.loads(mp.read_text()) if mp.exists() else {}
    key = f"{args.name or meta['model']}@{args.split}" + (f"@x{args.scale:g}" if args.scale != 1.0 else "")
    allm[key] = res
    mp.write_text(json.dumps(allm, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
