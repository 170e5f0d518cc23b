"""Check our PyTorch YOLOX-Nano against the original COCO ONNX (onnxruntime-node) on a real image.

/usr/bin/python3 -m models.detection.verify_yolox [--image path]
Writes models/detection/verify_yolox.json with the max abs differences."""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from models.rslens import paths
from models.detection import ortnode
from models.detection.data import letterbox, read_bgr
from models.detection.yolox import YOLOXNano, load_yolox_onnx


def yolox_onnx_path():
    return paths.shared_dir() / "weights" / "yolox_nano_coco.onnx"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default=str(paths.shared_dir() / "data" / "aerial-cars" / "images" / "DJI_0005-0018.jpg"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = YOLOXNano(80).eval()
    load_yolox_onnx(model, str(yolox_onnx_path()))
    img = read_bgr(args.image)
    x, r = letterbox(img, 416)
    xt = torch.from_numpy(x).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        pt = model(xt).numpy()
    ox = ortnode.run_onnx(yolox_onnx_path(), xt.numpy())["output"]
    d = np.abs(pt - ox)
    res = {
        "image": paths.rel(args.image),
        "input": "letterbox 416, pad 114, BGR 0-255",
        "shape": list(ox.shape),
        "max_abs_diff_all": float(d.max()),
        "max_abs_diff_reg": float(d[..., :4].max()),
        "max_abs_diff_obj": float(d[..., 4].max()),
        "max_abs_diff_cls": float(d[..., 5:].max()),
        "max_abs_onnx_value": float(np.abs(ox).max()),
        "top_score_onnx": float((ox[..., 4:5] * ox[..., 5:]).max()),
        "top_score_torch": float((pt[..., 4:5] * pt[..., 5:]).max()),
    }
    print(json.dumps(res, indent=1))
    (paths.MODELS_DIR / "detection" / "verify_yolox.json").write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
