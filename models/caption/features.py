"""Fixed PCA of the image-tower grid channels (1280 -> 256) and the projected training cache.

    /usr/bin/python3 -m models.caption.features       # after models.retrieval.features and models.caption.data

The caption model's input is the retrieval image tower's `grid` [N,1280,7,7]. Its first layer is a
FROZEN linear map (PCA over the 1280 channels of RSICD *train* grid tokens, top 256 components,
scaled to unit average variance): it is part of the exported query graph, so the browser feeds
the raw grid. Because it is frozen, training reads the projected tokens [N,49,256] from a cache
(models/cache/caption_pca256/, gitignored, float16), which makes CPU training ~2x cheaper.
"""
from __future__ import annotations

import json

import numpy as np
import torch

from ..rslens import paths
from .data import load_tile_features

GRID_CACHE = "rsicd_mnv2tfl_cut19"
PCA_DIM = 256
OUT = "caption_pca256"


def grid_cache(split: str) -> np.ndarray:
    d = paths.cache_dir() / GRID_CACHE
    if not (d / f"{split}_id.done").exists():
        raise FileNotFoundError(f"{paths.rel(d)}/{split}_id.npy: run models.retrieval.features first")
    return np.load(d / f"{split}_id.npy", mmap_mode="r")


def tokens(grid: np.ndarray) -> np.ndarray:
    """[N,1280,7,7] -> [N,49,1280] float32."""
    g = np.asarray(grid, dtype=np.float32)
    return g.reshape(g.shape[0], g.shape[1], -1).transpose(0, 2, 1)


def fit_pca(seed: int = 0, n_tokens: int = 60000):
    g = grid_cache("train")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(g), size=min(len(g), n_tokens // 49 + 1), replace=False))
    x = tokens(g[idx]).reshape(-1, g.shape[1]).astype(np.float64)
    mean = x.mean(0)
    cov = np.cov((x - mean).T)
    ev, vec = np.linalg.eigh(cov)
    order = np.argsort(ev)[::-1][:PCA_DIM]
    ev, vec = ev[order], vec[:, order]
    scale = 1.0 / np.sqrt(ev.mean())
    proj = (vec * scale).astype(np.float32)  # [1280,256]
    explained = float(ev.sum() / np.trace(cov))
    return mean.astype(np.float32), proj, explained


def project(grid: np.ndarray, mean, proj, batch: int = 256) -> np.ndarray:
    out = np.empty((len(grid), 49, proj.shape[1]), np.float16)
    pm, pp = torch.from_numpy(mean), torch.from_numpy(proj)
    for s in range(0, len(grid), batch):
        t = torch.from_numpy(tokens(grid[s:s + batch]))
        out[s:s + len(t)] = ((t - pm) @ pp).numpy().astype(np.float16)
    return out


def load_pca():
    d = paths.cache_dir() / OUT
    z = np.load(d / "pca.npz")
    return z["mean"], z["proj"]


def load_projected(split: str):
    """-> (rsicd [N,49,256] f16, tiles [M,49,256] f16, rsicd index list)."""
    d = paths.cache_dir() / OUT
    idx = json.load(open(paths.cache_dir() / GRID_CACHE / f"{split}_index.json"))
    return np.load(d / f"{split}.npy"), np.load(d / f"tiles_{split}.npy"), idx


def main() -> None:
    torch.set_num_threads(1)
    d = paths.cache_dir() / OUT
    d.mkdir(parents=True, exist_ok=True)
    if (d / "pca.npz").exists():
        mean, proj = load_pca()
    else:
        mean, proj, expl = fit_pca()
        np.savez(d / "pca.npz", mean=mean, proj=proj, explained=expl)
        print(f"PCA {PCA_DIM}: explained variance {expl:.3f}")
    for split in ("val", "train"):
        p = d / f"{split}.npy"
        if not p.exists():
            np.save(d / f"{split}.tmp.npy", project(grid_cache(split), mean, proj))
            (d / f"{split}.tmp.npy").rename(p)
        np.save(d / f"tiles_{split}.npy", project(load_tile_features(split), mean, proj))
        print(f"{split}: done")


if __name__ == "__main__":
    main()
