"""Hubness correction for text -> image search: a small ONNX graph the app runs once per indexed image.

    /usr/bin/python3 -m models.retrieval.hubness [--k 200] [--beta 0.5]

Why: some images sit close to many captions ("hubs") and come up for queries they do not match.
Cross-domain similarity local scaling (CSLS; Conneau et al. 2018) ranks text t against image i by

    cos(t, i) - beta * mean of the k largest cos(c, i) over a bank of captions c,

which lowers the hubs. The bank holds only TRAIN data: the first caption of every RSICD train image
(8,734), embedded by the shipped text tower (its float16 weights, rebuilt in PyTorch). The penalty
depends on the image alone, so the app computes it when it indexes an image, stores it beside the
vector, and subtracts it from every text query's score: ranking stays one dot product per row.
Image -> image search and the image -> text direction (a constant per image) are unchanged.

k and beta were chosen on RSICD val by a split-half study (session 18, models/retrieval/MODEL_CARD.md):
every setting of the grid was scored on two random halves of val, each its own gallery, and the setting
with the best mean over the halves kept. Writes models/retrieval/hubness-int8.onnx (the bank in 8
bits, one scale per caption), its self-test reference (inputs: val image embeddings from the locked
dump when present, else seeded random unit vectors; outputs: this computation in float64 on the
dequantised bank), and the "hubness" section of retrieval.json with its val effect on the dumps.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

from ..rslens.data import read_split
from ..rslens.int8_storage import to_int8_storage
from .evaluate import recall_metrics
from .locked_text import embed_sorted, load_dump, shipped_text_model, view_mean
from .train import tokenize_split
from .vocab import load_tokenizer

HERE = Path(__file__).resolve().parent
DUMPS = HERE.parent / "cache" / "locked"


class HubnessPenalty(nn.Module):
    """embedding [N,D] (L2-normalised) -> penalty [N] = beta * mean of its k largest cosines to the bank."""

    def __init__(self, bank: torch.Tensor, k: int, beta: float):
        super().__init__()
        self.register_buffer("bank_t", bank.t().contiguous())  # [D, M]: a MatMul weight, stored int8 per caption
        self.k, self.beta = k, beta

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.beta * torch.topk(embedding @ self.bank_t, self.k, dim=1).values.mean(1)


def penalties(images: np.ndarray, bank: np.ndarray, k: int, beta: float) -> np.ndarray:
    """The graph's computation in float64 (the reference)."""
    s = images.astype(np.float64) @ bank.astype(np.float64).T
    return beta * np.sort(s, axis=1)[:, -k:].mean(1)


def bank_embeddings() -> torch.Tensor:
    """The first caption of every train image, embedded by the shipped text tower ([8734, D])."""
    items = read_split("train")
    first = [type(it)(it.image, it.captions[:1], it.label) for it in items]
    ids, mask = tokenize_split(first, load_tokenizer().max_length)
    model = shipped_text_model(HERE / "text-tower-fp16.onnx").eval()
    return F.normalize(embed_sorted(model, ids, mask, torch.device("cpu")), dim=-1)


def dequantised_bank(path: Path) -> np.ndarray:
    """The bank as the int8 graph holds it ([M, D])."""
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    (q_name,) = [n for n in inits if n.endswith("__int8")]
    return (inits[q_name].astype(np.float32) * inits[q_name + "_scale"][None, :]).T


def val_effect(bank: np.ndarray, k: int, beta: float) -> dict:
    """t2i recalls on the val dump of the shipped towers with and without the penalty (i2t cannot change)."""
    _, val_views, val_txt = load_dump(DUMPS / "val")
    img = view_mean(val_views).numpy()
    sim = img @ val_txt.T
    out = {}
    for name, s in (("without", sim), ("with", sim - penalties(img, bank, k, beta)[:, None])):
        r = recall_metrics(s)
        out[name] = {key: round(v, 2) for key, v in r.items()}
        out[name]["t2i_mean"] = round(float(np.mean([r[f"t2i_R@{j}"] for j in (1, 5, 10)])), 2)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--out", default=str(HERE / "hubness-int8.onnx"))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    bank = bank_embeddings()
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "hubness.onnx"
        torch.onnx.export(HubnessPenalty(bank, args.k, args.beta), (bank[:2],), str(plain), input_names=["embedding"],
                          output_names=["penalty"], dynamic_axes={"embedding": {0: "batch"}, "penalty": {0: "batch"}},
                          opset_version=17)
        stats = to_int8_storage(plain, out)
    stored = dequantised_bank(out)
    print(f"{out.name}: {stats['mb']:.2f} MB, bank {stored.shape}, max |int8 - float| {np.abs(stored - bank.numpy()).max():.2e}")

    have_dump = (DUMPS / "val.json").exists()
    if have_dump:
        _, val_views, _ = load_dump(DUMPS / "val")
        ref_in = view_mean(val_views).numpy()[:6]
    else:
        ref_in = F.normalize(torch.randn(6, bank.shape[1], generator=torch.Generator().manual_seed(0)), dim=-1).numpy()
    ref_out = penalties(ref_in, stored, args.k, args.beta)
    ref = {"model": "retrieval-hubness",
           "note": "Inputs: " + ("the first 6 RSICD val image embeddings of the shipped image tower (2 views)" if have_dump else "seeded random unit vectors")
                   + "; outputs: beta * mean of the k largest cosines to the dequantised int8 bank, in float64 (numpy).",
           "inputs": {"embedding": {"dtype": "float32", "dims": list(ref_in.shape), "data": ref_in.astype(np.float32).ravel().tolist()}},
           "outputs": {"penalty": {"dtype": "float32", "dims": [len(ref_out)], "data": ref_out.astype(np.float32).tolist()}}}
    out.with_name("hubness.reference.json").write_text(json.dumps(ref))

    meta_path = HERE / "retrieval.json"
    meta = json.loads(meta_path.read_text())
    meta["hubness"] = {
        "file": out.name, "k": args.k, "beta": args.beta,
        "bank": "first caption of each RSICD train image (8,734), shipped text tower (float16 weights), int8 per caption",
        "score": "text->image score = cosine - penalty(image); image->image unchanged",
        "command": f"/usr/bin/python3 -m models.retrieval.hubness --k {args.k} --beta {args.beta}",
    }
    if have_dump:
        meta["hubness"]["val_dump_effect"] = val_effect(stored, args.k, args.beta)
        print(json.dumps(meta["hubness"]["val_dump_effect"]))
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
