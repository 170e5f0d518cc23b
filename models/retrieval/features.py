"""Cache the frozen lower part of the MobileNetV2 image tower.

    /usr/bin/python3 -m models.retrieval.features [--views id,hflip,...] [--splits val,train]

Step 1: for every RSICD image and augmentation view (dihedral flips/rotations applied
to the 224x224 image; default: the original only), stores MobileNetV2 `features[:15]`
(160x7x7, float16). Step 2 ("derive"): runs the frozen `features[15:19]` once on that
cache -> the training cache, the final grid (1280x7x7, float16). Both in models/cache/
(gitignored), one .npy per split and view, written incrementally and marked complete with
a `.done` file, so an interrupted run resumes at the first incomplete view.

`--base-cut 7` caches `features[:7]` instead (32x28x28): the input of members that fine-tuned
`features[7:]` (models.retrieval.finetune), for their stage 2 (`train --stage 2`, tuned blocks frozen).
Nothing is derived from it.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from ..rslens import paths
from ..rslens.data import load_image_uint8, read_split
from ..rslens.mobilenet import mobilenet_v2_from_tflite, normalize_uint8
from ..rslens.utils import get_device, log_to_file

BASE_CUT = 15  # images -> features[:15] -> [160, 7, 7]
CUT = 19  # training cache: all of features -> grid [1280, 7, 7] (derived from the BASE_CUT cache by running
#          features[15:19] once); the image backbone is frozen (see MODEL_CARD.md for why)


def cache_name(cut: int = CUT) -> str:
    return f"rsicd_mnv2tfl_cut{cut}"


CACHE_NAME = cache_name()
VIEWS = ["id", "hflip", "rot90", "rot180", "rot270", "vflip", "transpose", "antitranspose"]


def apply_view(x: torch.Tensor, view: str) -> torch.Tensor:
    """x: [..., H, W]. Only flips and transposes, so that the views also export to ONNX (as Slice and
    Transpose; torch.rot90 has no ONNX export)."""
    t = lambda a: a.transpose(-2, -1)  # noqa: E731
    ops = {
        "id": lambda a: a,
        "hflip": lambda a: a.flip(-1),
        "vflip": lambda a: a.flip(-2),
        "rot90": lambda a: t(a).flip(-2),      # = torch.rot90(a, 1, (-2, -1))
        "rot180": lambda a: a.flip(-1).flip(-2),
        "rot270": lambda a: t(a).flip(-1),     # = torch.rot90(a, 3, (-2, -1))
        "transpose": t,
        "antitranspose": lambda a: t(a.flip(-1).flip(-2)),
    }
    if view not in ops:
        raise ValueError(view)
    return ops[view](x)


def cache_path(split: str, view: str, cut: int = CUT):
    return paths.cache_dir() / cache_name(cut) / f"{split}_{view}.npy"


def load_cache(split: str, views, mmap: bool = False, cut: int = CUT):
    """Returns (list over views of [N, 1280, 7, 7] float16 arrays (cut 19; [N,160,7,7] for cut 15/17),
    image list)."""
    d = paths.cache_dir() / cache_name(cut)
    with open(d / f"{split}_index.json", encoding="utf-8") as f:
        index = json.load(f)
    arrs = []
    for v in views:
        p = cache_path(split, v, cut)
        if not p.with_suffix(".done").exists():
            raise FileNotFoundError(f"feature cache {paths.rel(p)} incomplete: run models.retrieval.features")
        arrs.append(np.load(p, mmap_mode="r" if mmap else None))
    return arrs, index


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", default="id",
                    help="comma-separated train views of " + ",".join(VIEWS) + " (the released model used id only)")
    ap.add_argument("--splits", default="val,train")
    ap.add_argument("--val-views", default="id", help="views cached for val (evaluation uses id only)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--derive-only", action="store_true", help="only derive the training cache from the base cache")
    ap.add_argument("--base-cut", type=int, default=BASE_CUT,
                    help=f"cache features[:N] (default {BASE_CUT}; 7 for members with a fine-tuned features[7:])")
    args = ap.parse_args()
    base_cut = args.base_cut
    device = get_device()
    out = paths.cache_dir() / cache_name(base_cut)
    out.mkdir(parents=True, exist_ok=True)
    log = log_to_file(out / "features.log")
    model = mobilenet_v2_from_tflite(str(paths.mobilenet_tflite()))
    if args.derive_only:
        derive(model, log, args.splits.split(","), args.views.split(","), args.val_views.split(","), device)
        return
    stem = model.features[:base_cut].eval().to(device)
    with torch.no_grad():
        shape = tuple(stem(torch.zeros(1, 3, 224, 224, device=device)).shape[1:])  # [160,7,7] at cut 15
    if device.type == "cpu":
        stem = stem.to(memory_format=torch.channels_last)
    for split in args.splits.split(","):
        items = read_split(split)
        with open(out / f"{split}_index.json", "w", encoding="utf-8") as f:
            json.dump([it.image for it in items], f)
        views = args.views.split(",") if split == "train" else args.val_views.split(",")
        for view in views:
            p = cache_path(split, view, base_cut)
            if p.with_suffix(".done").exists():
                log(f"{split}/{view}: done already")
                continue
            t0 = time.time()
            arr = np.lib.format.open_memmap(p, mode="w+", dtype=np.float16, shape=(len(items),) + shape)
            for s in range(0, len(items), args.batch):
                batch = torch.stack([load_image_uint8(paths.rsicd_dir() / it.image)
                                     for it in items[s:s + args.batch]]).float()
                x = normalize_uint8(apply_view(batch, view)).to(device)
                if device.type == "cpu":
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.no_grad():
                    y = stem(x)
                arr[s:s + len(batch)] = y.float().cpu().numpy().astype(np.float16)
            arr.flush()
            del arr
            p.with_suffix(".done").write_text("ok\n")
            dt = time.time() - t0
            log(f"{split}/{view}: {len(items)} images in {dt:.1f}s ({len(items) / dt:.1f} img/s)")
    if base_cut == BASE_CUT:
        derive(model, log, args.splits.split(","), args.views.split(","), args.val_views.split(","), device)


def derive(model, log, splits, views, val_views, device) -> None:
    """features[BASE_CUT:CUT] on the base cache -> the training cache (frozen blocks, run once)."""
    mid = model.features[BASE_CUT:CUT].eval().to(device)
    out = paths.cache_dir() / cache_name(CUT)
    out.mkdir(parents=True, exist_ok=True)
    for split in splits:
        src_index = paths.cache_dir() / cache_name(BASE_CUT) / f"{split}_index.json"
        (out / f"{split}_index.json").write_text(src_index.read_text())
        for view in (views if split == "train" else val_views):
            src, dst = cache_path(split, view, BASE_CUT), cache_path(split, view, CUT)
            if not src.with_suffix(".done").exists() or dst.with_suffix(".done").exists():
                continue
            t0 = time.time()
            a = np.load(src, mmap_mode="r")
            with torch.no_grad():
                shape = mid(torch.zeros((1,) + a.shape[1:])).shape[1:]
            arr = np.lib.format.open_memmap(dst, mode="w+", dtype=np.float16, shape=(len(a),) + tuple(shape))
            for s in range(0, len(a), 64):
                with torch.no_grad():
                    y = mid(torch.from_numpy(np.asarray(a[s:s + 64], dtype=np.float32)).to(device))
                arr[s:s + len(y)] = y.float().cpu().numpy().astype(np.float16)
            arr.flush()
            del arr
            dst.with_suffix(".done").write_text("ok\n")
            log(f"derived {split}/{view} cut{CUT}: {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
