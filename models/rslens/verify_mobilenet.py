"""Check the float MobileNetV2 loaded from the TFLite file against the TFLite graph.

    /usr/bin/python3 -m models.rslens.verify_mobilenet

Runs (a) the torchvision float model and (b) a fake-quantised float execution of
the TFLite graph on a few RSICD images, and prints top-5 ImageNet classes of both,
top-1 agreement, and the correlation of pooled 1280-d features. Exits non-zero if
the two disagree badly (the check can fail).
"""
from __future__ import annotations

import sys

import numpy as np
import torch
from torchvision.models import MobileNet_V2_Weights

from . import paths
from .data import load_image_uint8
from .mobilenet import TFLiteReference, mobilenet_v2_from_tflite, normalize_uint8
from .tflite import read_tflite

IMAGES = ["airport_1.jpg", "airport_2.jpg", "port_1.jpg", "port_2.jpg", "storagetanks_1.jpg",
          "bridge_1.jpg", "stadium_1.jpg", "baseballfield_1.jpg", "beach_1.jpg", "parking_1.jpg"]


def main() -> int:
    torch.set_num_threads(2)
    cats = MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]
    name = lambda i: "background" if i == 0 else cats[i - 1]  # noqa: E731
    tfl = read_tflite(str(paths.mobilenet_tflite()))
    model = mobilenet_v2_from_tflite("", tfl)
    ref = TFLiteReference(tfl)
    imgs = [f for f in IMAGES if (paths.rsicd_dir() / "images" / f).exists()]
    x = torch.stack([load_image_uint8(paths.rsicd_dir() / "images" / f) for f in imgs]).float()
    with torch.no_grad():
        feat = model.features(normalize_uint8(x)).mean((2, 3))
        logits = model.classifier(feat)
    vals = ref(x)
    ref_logits = vals[tfl.operators[-2].outputs[0]]
    pool_idx = [op for op in tfl.operators if op.opcode == "AVERAGE_POOL_2D"][0].outputs[0]
    ref_feat = vals[pool_idx].reshape(len(imgs), -1)
    agree = 0
    for i, f in enumerate(imgs):
        a = logits[i].topk(5).indices.tolist()
        b = ref_logits[i].topk(5).indices.tolist()
        agree += a[0] == b[0]
        print(f"{f:22s} float: {', '.join(name(j) for j in a)}")
        print(f"{'':22s} tflite: {', '.join(name(j) for j in b)}")
    corr = np.corrcoef(feat.flatten().numpy(), ref_feat.flatten().numpy())[0, 1]
    lcorr = np.corrcoef(logits.flatten().numpy(), ref_logits.flatten().numpy())[0, 1]
    print(f"top-1 agreement float vs fake-quant TFLite: {agree}/{len(imgs)}")
    print(f"pooled-feature corr {corr:.4f}; logits corr {lcorr:.4f}; "
          f"feature mean float {feat.mean():.4f} tflite {ref_feat.mean():.4f}, "
          f"std float {feat.std():.4f} tflite {ref_feat.std():.4f}")
    ok = corr > 0.95 and agree >= 0.7 * len(imgs)
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
