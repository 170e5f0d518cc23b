"""Smoke test of the detection pipeline (a few seconds, CPU):

    /usr/bin/python3 -m models.detection.smoke_test

Loads the YOLOX-Nano ONNX weights into both variants, checks the split has no group in two splits,
samples real training tiles, runs ONE training step per variant (loss finite, weights change, ARB
used only in training), checks tiling/NMS/AP on a trivial case, and exports the tinynet graph
(opset 17, dynamic B/H/W) into a temp dir (onnx.checker). Exits non-zero on failure."""
from __future__ import annotations

import random
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def run() -> None:
    from models.rslens import paths
    from models.rslens.onnx_export import export_onnx
    from models.rslens.utils import seed_everything
    from models.detection import evaluate as ev
    from models.detection.data import CLASSES, TileSampler, load_records
    from models.detection.loss import yolox_loss
    from models.detection.yolox import build_detector

    seed_everything(0)
    torch.set_num_threads(1)
    recs = load_records()
    groups = {}
    for r in recs:
        groups.setdefault(r.group, set()).add(r.split)
    leak = {g: s for g, s in groups.items() if len(s) > 1 and g != "dota-P0706"}
    assert not leak, f"groups in several splits: {leak}"
    assert not any(r.split == "train" and r.group == "harlem" for r in recs), "harlem is evaluation-only"
    train = [r for r in recs if r.split == "train"]
    sampler = TileSampler([r for r in train if r.group in ("MunichStreet02-MOS", "dota-P0706")][:3], tile=128)
    rng = random.Random(0)
    tiles = [sampler.sample(rng) for _ in range(2)]
    x = torch.from_numpy(np.stack([t[0] for t in tiles])).permute(0, 3, 1, 2).float()
    tgts = [(torch.from_numpy(t[1]), torch.from_numpy(t[2])) for t in tiles]
    onnx_path = str(paths.shared_dir() / "weights" / "yolox_nano_coco.onnx")
    for variant in ("baseline", "tinynet"):
        m = build_detector(variant, len(CLASSES), onnx_path, log=lambda *_: None)
        m.freeze_stem()
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
        before = m.head.cls_preds[0].weight.detach().clone()
        outs, aux = m.forward_raw(x)
        loss, _ = yolox_loss(outs, m.strides, tgts, len(CLASSES))
        if aux:
            la, _ = yolox_loss(aux["arb_outs"], (4, 8, 16, 32), tgts, len(CLASSES))
            loss = loss + 0.25 * la + 0.5 * F.l1_loss(aux["recon"], F.avg_pool2d(x, 4) / 255.0)
        assert torch.isfinite(loss), variant
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert not torch.equal(before, m.head.cls_preds[0].weight), f"{variant}: weights did not change"
        m.eval()
        with torch.no_grad():
            out = m(x)
            _, aux_eval = m.forward_raw(x)
        n = sum((128 // s) ** 2 for s in m.strides)
        assert out.shape == (2, n, 5 + len(CLASSES)), out.shape
        assert aux_eval == {}, "ARB must not run in eval mode"
    assert ev.tile_origins(1920) == [0, 312, 624, 936, 1248, 1504]
    b = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    assert ev.nms(b, np.array([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]
    r = ev.coco_eval([{"boxes": b, "scores": np.array([0.9, 0.8, 0.7]), "labels": np.array([0, 0, 0])}],
                     [{"boxes": b[[0, 2]], "labels": np.array([0, 0])}], 1)
    # duplicate (0.8) is a false positive ranked before the second hit: precision 2/3 at recall 1
    assert abs(r["per_class"]["car"]["all"]["AP50"] - (51 + 50 * 2 / 3) / 101) < 1e-9
    with tempfile.TemporaryDirectory() as td:
        export_onnx(m, (x[:1],), Path(td) / "det.onnx", ["images"], ["output"],
                    extra_dynamic_axes={"images": {2: "height", 3: "width"}, "output": {1: "anchors"}})


def main() -> int:
    try:
        run()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("detection smoke test: FAILED")
        return 1
    print("detection smoke test: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
