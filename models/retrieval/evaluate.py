"""Retrieval metrics on RSICD val and the evaluation command.

    /usr/bin/python3 -m models.retrieval.evaluate --stage 1|2 [--ablation]

Image->text: an image query is correct at K if any of its 5 captions is in the top K.
Text->image: each caption query has one correct image. mR = mean of the six recalls.
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, Sequence

import numpy as np
import torch


def recall_ranks(sim: np.ndarray, caps_per_image: int = 5):
    """sim: [n_images, n_images*caps_per_image], caption j belongs to image j // caps_per_image.
    -> (best rank of a matching caption per image, rank of the matching image per caption); stable
    descending order, as the TypeScript `recallAtK`."""
    n_img, n_txt = sim.shape
    assert n_txt == n_img * caps_per_image
    owner = np.arange(n_txt) // caps_per_image
    order = np.argsort(-sim, axis=1, kind="stable")
    ranks_i2t = np.array([np.where(owner[order[i]] == i)[0].min() for i in range(n_img)])
    order_t = np.argsort(-sim.T, axis=1, kind="stable")
    ranks_t2i = np.array([np.where(order_t[j] == owner[j])[0][0] for j in range(n_txt)])
    return ranks_i2t, ranks_t2i


def recall_metrics(sim: np.ndarray, caps_per_image: int = 5) -> Dict[str, float]:
    """sim: [n_images, n_images*caps_per_image], caption j belongs to image j // caps_per_image."""
    ranks_i2t, ranks_t2i = recall_ranks(sim, caps_per_image)
    out = {}
    for k in (1, 5, 10):
        out[f"i2t_R@{k}"] = 100.0 * float((ranks_i2t < k).mean())
    for k in (1, 5, 10):
        out[f"t2i_R@{k}"] = 100.0 * float((ranks_t2i < k).mean())
    out["mR"] = float(np.mean([out[k] for k in list(out)]))
    return out


@torch.no_grad()
def embed_images_from_cache(model, feats: np.ndarray, device, bs: int = 256) -> torch.Tensor:
    """Cached frozen-backbone grids [N,1280,7,7] -> image embeddings [N,D]."""
    model.eval()
    ie = []
    for s in range(0, len(feats), bs):
        x = torch.from_numpy(np.asarray(feats[s:s + bs], dtype=np.float32)).to(device)
        ie.append(model.encode_image_from_stem(x)[0].cpu())
    return torch.cat(ie)


@torch.no_grad()
def embed_image_views_from_pixels(model, pixels_u8: torch.Tensor, views: Sequence[str], device,
                                  bs: int = 64) -> torch.Tensor:
    """uint8 images [N,3,224,224] -> embeddings of every image in every dihedral view [V,N,D]
    (the exported image tower's maths)."""
    from .features import apply_view
    model.eval()
    out = []
    for v in views:
        emb = []
        for s in range(0, len(pixels_u8), bs):
            x = apply_view(pixels_u8[s:s + bs].float() / 255.0, v).to(device)
            if device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            emb.append(model.embed_image(x).cpu())
        out.append(torch.cat(emb))
    return torch.stack(out)


@torch.no_grad()
def embed_texts(model, ids: torch.Tensor, mask: torch.Tensor, device, bs: int = 1024) -> torch.Tensor:
    """Token ids / attention masks [M,L] -> text embeddings [M,D] (batches trimmed to their longest caption)."""
    model.eval()
    te = []
    for s in range(0, len(ids), bs):
        m = mask[s:s + bs]
        L = int(m.sum(1).max())
        te.append(model.encode_text(ids[s:s + bs, :L].to(device), m[:, :L].to(device)).cpu())
    return torch.cat(te)


def embed_val_from_cache(model, feats: np.ndarray, ids: torch.Tensor, mask: torch.Tensor, device):
    return embed_images_from_cache(model, feats, device), embed_texts(model, ids, mask, device)


def evaluate_from_cache(model, feats, ids, mask, device) -> Dict[str, float]:
    ie, te = embed_val_from_cache(model, feats, ids, mask, device)
    return recall_metrics((ie @ te.t()).numpy())


def fmt(m: Dict[str, float]) -> str:
    return " ".join(f"{k} {v:.2f}" for k, v in m.items())


def main() -> None:
    from ..rslens import paths
    from ..rslens.utils import get_device
    from .train import build_model_from_checkpoint, tuned_grid, val_tensors

    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", type=int, default=2)
    ap.add_argument("--ckpt", default=None, help="default: models/runs/retrieval/stage{N}/last.pt")
    ap.add_argument("--train-subset", type=int, default=0,
                    help="diagnostic only: also report the same metrics on the first N TRAIN images "
                         "(overfitting gap; never a validation number)")
    ap.add_argument("--ablation", action="store_true",
                    help="for a stage-2 checkpoint, also evaluate with the adapters switched off")
    args = ap.parse_args()
    device = get_device()
    ckpt = args.ckpt or str(paths.runs_dir() / "retrieval" / f"stage{args.stage}" / "last.pt")
    model, _ = build_model_from_checkpoint(ckpt, device)
    cut = model.config.get("tune_cut") or 19  # fine-tuned top blocks: run them on the cutN cache
    feats, ids, mask = val_tensors(model.config["max_len"], cut)
    feats = tuned_grid(model, feats)
    res = {"with_adapters" if model.has_adapters() else "stage1": evaluate_from_cache(model, feats, ids, mask, device)}
    if args.ablation and model.has_adapters():
        for mod in (model.image.adapter, model.shared, *model.text.adapters):
            mod.up.weight.data.zero_()
            mod.up.bias.data.zero_()
        res["adapters_off"] = evaluate_from_cache(model, feats, ids, mask, device)
    if args.train_subset:
        from ..rslens.data import read_split
        from .features import load_cache
        from .train import tokenize_split
        arrs, _ = load_cache("train", ["id"], cut=cut)
        items = read_split("train", limit=args.train_subset)
        ids_t, mask_t = tokenize_split(items, model.config["max_len"])
        model2, _ = build_model_from_checkpoint(ckpt, device)
        res[f"TRAIN_first{args.train_subset}_diagnostic"] = evaluate_from_cache(
            model2, tuned_grid(model2, arrs[0][:args.train_subset]), ids_t, mask_t, device)
    for k, v in res.items():
        print(f"{k}: {fmt(v)}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
