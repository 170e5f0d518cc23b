"""Rebuild the PyTorch members of a shipped retrieval ensemble from its two ONNX files.

    /usr/bin/python3 -m models.retrieval.import_onnx --runs models/runs/v030-s0,models/runs/v030-s1

Training checkpoints live in the gitignored models/runs/ and are gone on a fresh clone; the shipped
ONNX towers are the lasting copy of the weights. This writes one finished stage-1 run folder per
member (RUN/stage1/last.pt + summary.json), so `finetune --init RUN` can continue from the shipped
model instead of retraining it (hours on this CPU).

How: torch.onnx folded every BatchNorm into its convolution and renamed those weights, so the
convolutions and the Linear weights (exported as MatMul with the transposed weight) are matched by
graph order against the PyTorch module order, every shape asserted; named initialisers (LayerNorms,
biases, embeddings) load by name. A folded BN is written back as identity (weight 1, running stats
0 / 1 - eps, which is how the TFLite-initialised backbone stores it) plus its bias. The frozen stem
must come back equal to the TFLite weights (up to the float16 storage): that checks the mapping.
The temperature is not in the graphs (it only scales the training loss): it is refitted as the
value that minimises the contrastive loss on a fixed sample of train pairs.

Check afterwards: the parity inputs/outputs of the rebuilt members are saved (RSLENS_RUNS/retrieval/
parity, as `export` does), so `npx tsx models/retrieval/check_onnx.ts --dir DIR --suffix -fp16 --no-val`
on a copy of the shipped files compares the shipped graphs with the rebuilt PyTorch members.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

from ..rslens import paths
from ..rslens.data import load_images_uint8, read_split
from ..rslens.mobilenet import _conv_bn_pairs
from ..rslens.utils import save_checkpoint
from .ensemble import EnsembleImageTower, EnsembleTextTower
from .export import save_parity
from .losses import info_nce
from .model import Linear, RetrievalModel
from .train import stage_dir, tokenize_split
from .vocab import load_tokenizer

HERE = Path(__file__).resolve().parent


class Graph:
    """Initialisers of an ONNX graph as float32 arrays, with Cast-from-float16 storage resolved."""

    def __init__(self, path: Path):
        self.g = onnx.load(str(path)).graph
        self.values: Dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        # float16-storage variant: weight__fp16 -> Cast -> weight; the exporter shares equal initialisers
        # (e.g. two members' still identical heads) through Identity nodes
        for n in self.g.node:
            if n.op_type in ("Cast", "Identity") and n.input[0] in self.values:
                self.values[n.output[0]] = self.values[n.input[0]].astype(np.float32)
        self.values = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in self.values.items()}

    def weights_of(self, op_type: str) -> List[Tuple[np.ndarray, ...]]:
        """For every node of op_type in graph order whose 2nd input is a weight: (weight[, bias])."""
        out = []
        for n in self.g.node:
            if n.op_type == op_type and len(n.input) > 1 and n.input[1] in self.values:
                out.append(tuple(self.values[i] for i in n.input[1:] if i in self.values))
        return out

    def named(self, prefix: str) -> Dict[str, np.ndarray]:
        return {k[len(prefix):]: v for k, v in self.values.items() if k.startswith(prefix)}


def _set(param: torch.Tensor, value: np.ndarray, what: str) -> None:
    assert tuple(param.shape) == value.shape, (what, tuple(param.shape), value.shape)
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.array(value)))


def load_convs(seq: nn.Module, convs, start: int) -> int:
    """Write folded (weight, bias) pairs convs[start:] into the conv/BN pairs of `seq`; -> next index."""
    holder = nn.Module()
    holder.features = seq  # _conv_bn_pairs walks `.features`
    for _, _, conv, bn in _conv_bn_pairs(holder):
        name = f"conv {start}"
        w, b = convs[start]
        _set(conv.weight, w, name)
        with torch.no_grad():
            bn.weight.fill_(1.0)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        _set(bn.bias, b, name + " bias")
        start += 1
    return start


def linear_layers(module: nn.Module) -> List[Linear]:
    return [m for m in module.modules() if isinstance(m, Linear)]


def rebuild(image_onnx: Path, text_onnx: Path, n_members: int, tune_cut: Optional[int], text_heads: int) -> List[RetrievalModel]:
    """tune_cut None: members without a tuned backbone copy (v0.2.0), all sharing the frozen backbone."""
    img, txt = Graph(image_onnx), Graph(text_onnx)
    t0 = txt.named("members.0.text.")
    vocab_size, width = t0["tok.weight"].shape
    cfg = dict(embed_dim=int(img.named("members.0.image.")["fc2.bias"].shape[0]), max_len=int(t0["pos"].shape[0]),
               text_width=int(width), text_layers=len({k.split(".")[1] for k in t0 if k.startswith("blocks.")}),
               text_heads=text_heads, text_mlp=int(t0["blocks.0.mlp.0.bias"].shape[0]),
               head_hidden=int(img.named("members.0.image.")["fc1.bias"].shape[0]))
    members = [RetrievalModel(int(vocab_size), str(paths.mobilenet_tflite()), tune_cut=tune_cut, **cfg)
               for _ in range(n_members)]
    tflite_stem = {k: v.clone() for k, v in members[0].image.stem.state_dict().items()}

    # image: shared frozen stem features[:cut], then each member's tuned copy and head, in trace order
    cut = tune_cut if tune_cut is not None else len(members[0].image.stem)
    convs = img.weights_of("Conv")
    i = load_convs(members[0].image.stem[:cut], convs, 0)
    for m in members[1:]:
        m.image.stem.load_state_dict(members[0].image.stem.state_dict())
    for m in members:
        if tune_cut is not None:
            i = load_convs(m.image.tuned, convs, i)
    assert i == len(convs), (i, len(convs))
    mm = img.weights_of("MatMul")
    assert len(mm) == 3 * n_members, len(mm)
    for k, m in enumerate(members):
        named = img.named(f"members.{k}.image.")
        for j, lin in enumerate((m.image.skip, m.image.fc1, m.image.fc2)):  # skip(x) + fc2(gelu(fc1(x)))
            _set(lin.weight, mm[3 * k + j][0].T, f"image head {k}.{j}")
        for name, p in m.image.named_parameters():
            if not name.startswith(("stem.", "tuned.", "skip.", "fc1.weight", "fc2.weight")):
                _set(p, named[name], f"image.{name}")

    # text: named parameters by name, the Linear weights (MatMul, transposed) in block order
    mm = [w for (w,) in txt.weights_of("MatMul")]
    per = len(mm) // n_members
    for k, m in enumerate(members):
        lins = linear_layers(m.text)
        assert len(lins) == per, (len(lins), per)
        for lin, w in zip(lins, mm[k * per:(k + 1) * per]):
            _set(lin.weight, w.T, "text linear")
        named = txt.named(f"members.{k}.text.")
        for name, p in m.text.named_parameters():
            if not (name.endswith(".weight") and any(p is lin.weight for lin in lins)):
                _set(p, named[name], f"text.{name}")

    # the mapping check: the rebuilt stem is the TFLite backbone, up to float16 storage (relative 2^-11)
    stem = members[0].image.stem.state_dict()
    worst = max(float(((stem[k] - v).abs() / (v.abs() + 1e-4)).max()) for k, v in tflite_stem.items()
                if k.split(".")[0].isdigit() and int(k.split(".")[0]) < cut and v.dtype.is_floating_point)
    assert worst < 1e-3, f"rebuilt stem differs from the TFLite backbone (relative {worst}): conv order mismatch"
    print(f"rebuilt {n_members} members; stem vs TFLite max relative difference {worst:.1e}")
    return [m.eval() for m in members]


@torch.no_grad()
def fit_temperature(model: RetrievalModel, n: int = 512, batch: int = 64, seed: int = 0) -> float:
    """logit scale minimising the mean contrastive loss of train batches (id view, first caption)."""
    items = read_split("train")
    idx = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    sub = [items[j] for j in idx]
    ids, mask = tokenize_split(sub, model.config["max_len"])
    ids, mask = ids.view(len(sub), 5, -1)[:, 0], mask.view(len(sub), 5, -1)[:, 0]
    px = load_images_uint8(sub).float() / 255.0
    ie = torch.cat([model.embed_image(px[s:s + 32]) for s in range(0, n, 32)])
    te = torch.cat([model.encode_text(ids[s:s + 32], mask[s:s + 32]) for s in range(0, n, 32)])

    def loss(scale: float) -> float:
        ls = torch.tensor(math.log(scale))
        return float(np.mean([float(info_nce(ie[s:s + batch], te[s:s + batch], ls)) for s in range(0, n, batch)]))

    grid = np.exp(np.linspace(math.log(5.0), math.log(100.0), 61))
    return float(grid[int(np.argmin([loss(s) for s in grid]))])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True, help="comma-separated run folders to write, one per member")
    ap.add_argument("--dir", default=str(HERE), help="folder with the shipped towers and retrieval.json")
    ap.add_argument("--suffix", default="-fp16")
    ap.add_argument("--text-heads", type=int, default=4, help="not recoverable from the weights")
    args = ap.parse_args(argv)
    src = Path(args.dir)
    meta = json.load(open(src / "retrieval.json", encoding="utf-8"))
    if meta.get("stage") != 1:
        print("import_onnx rebuilds stage-1 towers only; these have stage-2 adapters. Import the stage-1 "
              "files they were trained from (see models/README.md) and re-run stage 2.", file=sys.stderr)
        return 2
    runs = args.runs.split(",")
    assert len(runs) == len(meta["members"]), f"{len(meta['members'])} members shipped, {len(runs)} runs given"
    tune_cut = meta["members"][0].get("tune_cut")  # absent before v0.3.0: no tuned copy
    members = rebuild(src / f"image-tower{args.suffix}.onnx", src / f"text-tower{args.suffix}.onnx",
                      len(runs), tune_cut, args.text_heads)
    cmd = "/usr/bin/python3 -m models.retrieval.import_onnx " + " ".join(argv if argv is not None else sys.argv[1:])
    for run, m, info in zip(runs, members, meta["members"]):
        scale = fit_temperature(m)
        with torch.no_grad():
            m.logit_scale.fill_(math.log(scale))
        print(f"{run}: refitted temperature {1 / scale:.4f}")
        hist = [{"epoch": 0, "val": info.get("val_metrics_pytorch"), "note": "as shipped (retrieval.json)"}]
        state = {"model": m.state_dict(), "model_config": m.config, "adapters": False, "stage": 1,
                 "finished": True, "seed": info.get("seed"), "views": info.get("views_trained"),
                 "history": hist, "command": cmd,
                 "imported": {"from": f"{paths.rel(src)}/*-tower{args.suffix}.onnx", "member": info["run"],
                              "trained_by": [info.get("init", {}).get("command"), info.get("command")]}}
        save_checkpoint(stage_dir(1, run) / "last.pt", state)
        n_train = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("image.stem."))
        with open(stage_dir(1, run) / "summary.json", "w", encoding="utf-8") as fh:
            json.dump({"stage": "1 (imported from ONNX)", "trainable_params": n_train, "command": cmd,
                       "history": hist}, fh, indent=1)
    save_parity(EnsembleImageTower(members, with_grid=False).eval(), EnsembleTextTower(members).eval(),
                load_tokenizer(), frozen_grid=members[0].image.stem_features)
    print("parity files saved; compare with the shipped graphs: check_onnx.ts --dir <copy> --suffix "
          f"{args.suffix} --no-val")
    return 0


if __name__ == "__main__":
    sys.exit(main())
