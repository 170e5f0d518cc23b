"""Export a trained detector to ONNX (no NMS, no ARB) and verify it with onnxruntime-node.

  /usr/bin/python3 -m models.detection.export --ckpt runs/detection-tinynet/final.pt \
      --out detection/tinynet.onnx

Graph (opset 17, via models.rslens.onnx_export): input `images` float32 [B, 3, H, W] (B, H, W dynamic, multiples of 32; the app feeds 416x416
tiles), BGR channel order, values 0-255 (no normalisation), pad value 114.
Output `output` float32 [B, N, 5 + C], N = sum over strides s of (H/s)*(W/s), rows ordered by
level (stride 4, 8, 16, 32 for tinynet), then row-major y, x. Columns: cx, cy, w, h (decoded
inside the graph, input pixels), objectness (sigmoid), C class probabilities (sigmoid).
Score for class c = obj * cls_c. A metadata JSON is written next to the ONNX file."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from models.rslens import paths
from models.rslens.onnx_export import OPSET, export_onnx
from models.detection import ortnode
from models.detection import evaluate as ev
from models.detection.data import CLASSES, letterbox, read_bgr
from models.detection.yolox import TinyDet


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="runs/detection-tinynet/final.pt")
    ap.add_argument("--out", default="detection/tinynet.onnx")
    ap.add_argument("--metrics-key", default=None, help="key(s) of models/detection/metrics.json to embed, comma-separated")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ckp = paths.MODELS_DIR / args.ckpt
    ck = torch.load(ckp, map_location="cpu")
    model = TinyDet(len(ck["classes"]), tinynet=(ck["variant"] == "tinynet"))
    model.load_state_dict(ck["ema"])
    model.eval()
    out = paths.MODELS_DIR / args.out
    x = torch.full((1, 3, ev.TILE, ev.TILE), 114.0)
    img = read_bgr(paths.shared_dir() / "data" / "aerial-cars" / "images" / "MOS74.jpg")  # a validation image
    x[0] = torch.from_numpy(np.ascontiguousarray(img[:ev.TILE, :ev.TILE])).permute(2, 0, 1).float()
    m = export_onnx(model, (x,), out, ["images"], ["output"],
                    extra_dynamic_axes={"images": {2: "height", 3: "width"}, "output": {1: "anchors"}},
                    doc=f"RS Lens detector ({ck['variant']}): images [B,3,H,W] BGR 0-255 (H, W multiples of 32) -> "
                        f"output [B,N,5+C] = cx,cy,w,h (input px), obj, class probs; no NMS. Classes: {', '.join(ck['classes'])}")
    n_params = int(sum(np.prod(t.dims) for t in m.graph.initializer))
    checks = {}
    lb, _ = letterbox(read_bgr(paths.shared_dir() / "data" / "aerial-cars" / "images" / "DJI_0762-00001.jpg"), 640)
    x2 = torch.from_numpy(lb[:384, :640].copy()).permute(2, 0, 1)[None].float()   # non-square 384x640
    x3 = torch.cat([x, torch.flip(x, [3])])                                       # batch of 2 tiles
    for name, inp in (("416x416", x), ("384x640", x2), ("2x416x416", x3)):
        with torch.no_grad():
            pt = model(inp).numpy()
        ox = ortnode.run_onnx(out, inp.numpy())["output"]
        d = np.abs(pt - ox)
        checks[name] = {"shape": list(ox.shape), "max_abs_diff": float(d.max()),
                        "max_abs_diff_scores": float(d[..., 4:].max()), "max_abs_box_value": float(np.abs(ox[..., :4]).max())}
    print(json.dumps(checks, indent=1))
    metrics = {}
    mp = paths.MODELS_DIR / "detection" / "metrics.json"
    if mp.exists() and args.metrics_key:
        allm = json.loads(mp.read_text())
        for k in args.metrics_key.split(","):
            if k in allm:
                r = allm[k]
                metrics[k] = {"overall": r["overall"], "per_class": {c: v["all"] for c, v in r["per_class"].items()}}
    meta = {
        "model": f"rs-lens detector ({ck['variant']})",
        "onnx": out.name,
        "size_bytes": out.stat().st_size,
        "params": n_params,
        "classes": list(ck["classes"]),
        "class_merge": {"car": ["aerial-cars car"], "large_vehicle": ["aerial-cars bus", "aerial-cars minibus", "aerial-cars truck"],
                        "ship": ["DOTA ship"]},
        "opset": OPSET,
        "input": {"name": "images", "shape": ["B", 3, "H", "W"], "dtype": "float32", "channel_order": "BGR",
                  "range": [0, 255], "normalisation": "none", "pad_value": 114, "multiple_of": 32,
                  "resolution": "native image pixels (no resampling)"},
        "output": {"name": "output", "shape": ["B", "N", 5 + len(ck["classes"])],
                   "columns": ["cx", "cy", "w", "h", "obj"] + [f"p_{c}" for c in ck["classes"]],
                   "boxes": "decoded in graph, input pixels: cx,cy = (raw + grid) * stride, w,h = exp(raw) * stride",
                   "scores": "obj and classes already through sigmoid; score_c = obj * p_c",
                   "order": "levels by ascending stride, then row-major (y, x)", "nms": "not included"},
        "strides": list(model.strides),
        "slicing": {"tile": ev.TILE, "overlap": ev.OVERLAP, "step": ev.TILE - ev.OVERLAP,
                    "origins": "0, step, 2*step, ... with the last tile flush with the far edge; one tile at 0 if the side <= tile (pad 114)",
                    "merge": "keep a detection only if its centre lies in the tile's core (seams at the middle of each overlap), then class-wise NMS"},
        "thresholds": {"conf_eval": ev.CONF, "conf_display": 0.3, "nms_iou": ev.NMS_IOU, "max_dets": ev.MAX_DETS,
                       "class_per_anchor": "argmax of obj * p_c"},
        "training": {"checkpoint_iter": ck.get("iter"), "args": ck.get("args")},
        "verification_onnxruntime_node_vs_pytorch": checks,
        "val_metrics": metrics,
    }
    mj = out.with_suffix(".json")
    mj.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {paths.rel(out)} ({out.stat().st_size/1e6:.2f} MB, {n_params:,} params) and {paths.rel(mj)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
