"""Detection data: aerial-cars (YOLO labels) + DOTA P0706 (polygons), class merge, group split,
and the tile sampler with nadir augmentations.

Classes (ours): 0 car, 1 large_vehicle (= bus + minibus + truck), 2 ship.
  aerial-cars classes.txt = car, truck, bus, minibus, cyclist -> car->0, truck/bus/minibus->1,
  cyclist (0 boxes in the data) dropped. DOTA: ship->2; harbor (5 instances, each ~430 px,
  larger than a 416 tile) is not a detector class.

Split (by whole group / spatial half, never by frame):
  train: MunichStreet02-MOS*, DJI-00760-*, DJI_0005-*, DJI_0013-*, the single 4000x2250 DJI_00xx
         frames, DOTA P0706 top half (y < 591)
  val:   MOS* (KIT crossroad, a different scene from MunichStreet02), DJI_0762-*,
         DOTA P0706 bottom half (y >= 591)
  test:  harlem-* (YouTube, evaluation-only licence: never trained on; reported separately)
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

from models.rslens import paths

CLASSES = ["car", "large_vehicle", "ship"]
AERIAL_MAP = {0: 0, 1: 1, 2: 1, 3: 1}       # car, truck, bus, minibus (cyclist=4 dropped)
DOTA_MAP = {"ship": 2}
DOTA_SPLIT_Y = 591                          # P0706 is 1111x1182: top half train, bottom half val
PAD_VALUE = 114


def aerial_dir() -> Path:
    return paths.shared_dir() / "data" / "aerial-cars"


def dota_dir() -> Path:
    return paths.shared_dir() / "data" / "dota"


def group_of(name: str) -> str:
    b = os.path.splitext(name)[0]
    if b.startswith("MunichStreet02-MOS"):
        return "MunichStreet02-MOS"
    if b.startswith("MOS"):
        return "MOS"
    if b.startswith("harlem"):
        return "harlem"
    if b.startswith("DJI"):
        p = b.replace("_", "-").split("-")
        return "DJI-" + p[1]
    if b.startswith("P0706"):
        return "dota-P0706"
    raise ValueError(name)


VAL_GROUPS = {"MOS", "DJI-0762"}
TEST_GROUPS = {"harlem"}


def split_of_group(g: str) -> str:
    if g in TEST_GROUPS:
        return "test"
    return "val" if g in VAL_GROUPS else "train"


@dataclass
class Record:
    name: str                     # unique id (file name, or P0706_top / P0706_bottom)
    path: Path
    group: str
    split: str
    region: Tuple[int, int, int, int]          # x0, y0, x1, y1 of the usable part of the image
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # xyxy in region coords
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))


def read_bgr(path) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1])


def load_records(splits=("train", "val", "test")) -> List[Record]:
    recs: List[Record] = []
    ad = aerial_dir()
    for img in sorted((ad / "images").glob("*.jpg")):
        g = group_of(img.name)
        sp = split_of_group(g)
        if sp not in splits:
            continue
        W, H = Image.open(img).size
        bx, lb = [], []
        lf = ad / "labels" / (img.stem + ".txt")
        if lf.exists():
            for line in lf.read_text().split("\n"):
                p = line.split()
                if len(p) != 5 or int(p[0]) not in AERIAL_MAP:
                    continue
                c, cx, cy, w, h = int(p[0]), *map(float, p[1:])
                bx.append([(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H])
                lb.append(AERIAL_MAP[c])
        b = np.array(bx, np.float32).reshape(-1, 4)
        b[:, 0::2] = b[:, 0::2].clip(0, W)
        b[:, 1::2] = b[:, 1::2].clip(0, H)
        recs.append(Record(img.name, img, g, sp, (0, 0, W, H), b, np.array(lb, np.int64)))
    # DOTA P0706: two spatial halves
    dd = dota_dir()
    img = dd / "images" / "P0706.png"
    W, H = Image.open(img).size
    polys, labs = [], []
    for line in (dd / "labelTxt" / "P0706.txt").read_text().split("\n"):
        p = line.split()
        if len(p) < 9 or p[8] not in DOTA_MAP:
            continue
        xy = np.array(p[:8], np.float32).reshape(4, 2)
        polys.append([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()])
        labs.append(DOTA_MAP[p[8]])
    allb = np.array(polys, np.float32)
    alll = np.array(labs, np.int64)
    for nm, sp, reg in (("P0706_top", "train", (0, 0, W, DOTA_SPLIT_Y)), ("P0706_bottom", "val", (0, DOTA_SPLIT_Y, W, H))):
        if sp not in splits:
            continue
        b = allb.copy()
        area0 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        b[:, 0::2] = b[:, 0::2].clip(reg[0], reg[2])
        b[:, 1::2] = b[:, 1::2].clip(reg[1], reg[3])
        area1 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        keep = area1 >= 0.5 * area0          # a box belongs to the half holding >= 50% of it
        b = b[keep] - np.array([reg[0], reg[1], reg[0], reg[1]], np.float32)
        recs.append(Record(nm, img, "dota-P0706", sp, reg, b, alll[keep]))
    return recs


def load_region_bgr(rec: Record) -> np.ndarray:
    im = read_bgr(rec.path)
    x0, y0, x1, y1 = rec.region
    return np.ascontiguousarray(im[y0:y1, x0:x1])


def letterbox(img: np.ndarray, size: int) -> Tuple[np.ndarray, float]:
    """YOLOX preprocessing: resize keeping aspect (bilinear), place top-left on a 114 canvas."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(w * r), int(h * r)
    out = np.full((size, size, 3), PAD_VALUE, np.uint8)
    out[:nh, :nw] = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    return out, r


# ----------------------------------------------------------------------------- training tiles
SOURCE_WEIGHTS = {"kit": 0.35, "dji": 0.40, "dota": 0.25}


def source_of(rec: Record) -> str:
    if rec.group.startswith("DJI"):
        return "dji"
    if rec.group.startswith("dota"):
        return "dota"
    return "kit"


class TileSampler:
    """Random training tiles of size `tile` with nadir augmentations:
    scale jitter (log-uniform in [smin, smax]; <1 makes objects smaller -> feeds the tiny bins),
    object-centred (p=0.8) or uniform crops, horizontal/vertical flips, 90-degree rotations,
    brightness/contrast jitter. Boxes keep >= 40% of their area after cropping, min side 2 px."""

    def __init__(self, recs: List[Record], tile=416, smin=0.5, smax=1.5, seed=0):
        self.recs = recs
        self.imgs = [load_region_bgr(r) for r in recs]
        self.tile, self.smin, self.smax = tile, smin, smax
        self.by_src = {}
        for i, r in enumerate(recs):
            self.by_src.setdefault(source_of(r), []).append(i)
        srcs = [s for s in SOURCE_WEIGHTS if s in self.by_src]
        w = np.array([SOURCE_WEIGHTS[s] for s in srcs])
        self.srcs, self.src_p = srcs, w / w.sum()

    def sample(self, rng: random.Random) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = rng.random()
        acc = 0.0
        src = self.srcs[-1]
        for s, p in zip(self.srcs, self.src_p):
            acc += p
            if u < acc:
                src = s
                break
        i = rng.choice(self.by_src[src])
        img, rec = self.imgs[i], self.recs[i]
        H, W = img.shape[:2]
        T = self.tile
        s = math.exp(rng.uniform(math.log(self.smin), math.log(self.smax)))
        cs = T / s                                    # crop side in source pixels
        if len(rec.boxes) and rng.random() < 0.8:
            b = rec.boxes[rng.randrange(len(rec.boxes))]
            cx = (b[0] + b[2]) / 2 + rng.uniform(-0.4, 0.4) * cs
            cy = (b[1] + b[3]) / 2 + rng.uniform(-0.4, 0.4) * cs
        else:
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        x0 = min(max(cx - cs / 2, 0), max(W - cs, 0))
        y0 = min(max(cy - cs / 2, 0), max(H - cs, 0))
        ix0, iy0 = int(x0), int(y0)
        ic = int(math.ceil(cs))
        crop = np.full((ic, ic, 3), PAD_VALUE, np.uint8)
        part = img[iy0:iy0 + ic, ix0:ix0 + ic]
        crop[:part.shape[0], :part.shape[1]] = part
        tile = np.asarray(Image.fromarray(crop).resize((T, T), Image.BILINEAR))
        k = T / ic
        boxes = (rec.boxes - np.array([ix0, iy0, ix0, iy0], np.float32)) * k
        labels = rec.labels.copy()
        if len(boxes):
            vis = boxes.copy()
            lim_x, lim_y = min(part.shape[1] * k, T), min(part.shape[0] * k, T)
            vis[:, 0::2] = vis[:, 0::2].clip(0, lim_x)
            vis[:, 1::2] = vis[:, 1::2].clip(0, lim_y)
            a0 = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            a1 = (vis[:, 2] - vis[:, 0]).clip(0) * (vis[:, 3] - vis[:, 1]).clip(0)
            keep = (a1 >= 0.4 * a0) & ((vis[:, 2] - vis[:, 0]) >= 2) & ((vis[:, 3] - vis[:, 1]) >= 2)
            boxes, labels = vis[keep], labels[keep]
        tile, boxes = augment_nadir(tile, boxes, rng)
        if rng.random() < 0.8:
            a = rng.uniform(0.75, 1.25)
            bshift = rng.uniform(-20, 20)
            tile = np.clip(tile.astype(np.float32) * a + bshift + (1 - a) * 114, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(tile), boxes.astype(np.float32), labels


def augment_nadir(img: np.ndarray, boxes: np.ndarray, rng: random.Random):
    """Random h/v flips and k*90 degree rotation of a square tile and its xyxy boxes."""
    T = img.shape[0]
    b = boxes.copy()
    if rng.random() < 0.5:
        img = img[:, ::-1]
        b[:, [0, 2]] = T - b[:, [2, 0]]
    if rng.random() < 0.5:
        img = img[::-1]
        b[:, [1, 3]] = T - b[:, [3, 1]]
    k = rng.randrange(4)
    for _ in range(k):                 # rotate 90 deg counter-clockwise: (x, y) -> (y, T - x)
        img = np.rot90(img)
        b = np.stack([b[:, 1], T - b[:, 2], b[:, 3], T - b[:, 0]], 1) if len(b) else b
    return np.ascontiguousarray(img), b
