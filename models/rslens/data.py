"""Readers for RSICD (jsonl splits + labels.json) and image loading."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from PIL import Image

from . import paths


@dataclass
class CaptionedImage:
    image: str            # path relative to the RSICD folder, e.g. images/airport_1.jpg
    captions: List[str]
    label: Optional[str] = None

    @property
    def filename(self) -> str:
        return Path(self.image).name


def read_labels(root: Optional[Path] = None) -> Dict[str, str]:
    root = root or paths.rsicd_dir()
    with open(root / "labels.json", encoding="utf-8") as f:
        return json.load(f)


def read_split(split: str, root: Optional[Path] = None, limit: Optional[int] = None) -> List[CaptionedImage]:
    """split: 'train' or 'val' (RSICD val is our validation set: never train on it)."""
    if split not in ("train", "val"):
        raise ValueError(f"unknown RSICD split {split!r}")
    root = root or paths.rsicd_dir()
    labels = read_labels(root)
    out = []
    with open(root / f"{split}.jsonl", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            caps = d["captions"]
            if len(caps) != 5:
                raise ValueError(f"{d['image']}: expected 5 captions, got {len(caps)}")
            out.append(CaptionedImage(d["image"], caps, labels.get(Path(d["image"]).name)))
            if limit is not None and len(out) >= limit:
                break
    return out


def load_images_uint8(items: List[CaptionedImage], size: int = 224) -> torch.Tensor:
    """All images of `items` as one uint8 tensor [N,3,size,size] (1.3 GB for RSICD train at 224)."""
    out = torch.empty((len(items), 3, size, size), dtype=torch.uint8)
    for i, it in enumerate(items):
        out[i] = load_image_uint8(paths.rsicd_dir() / it.image, size)
    return out


def load_image_uint8(path: Path, size: int = 224) -> torch.Tensor:
    """RGB image -> uint8 tensor [3,size,size]. Resize (only if needed) is bilinear (PIL)."""
    im = Image.open(path).convert("RGB")
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
