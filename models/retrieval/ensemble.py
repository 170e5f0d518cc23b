"""Seed ensembles and test-time dihedral views for the retrieval model.

    /usr/bin/python3 -m models.retrieval.ensemble evaluate --runs RUN[,RUN...] [--stage 2] [--tta VIEWS]
    /usr/bin/python3 -m models.retrieval.ensemble export --runs RUN[,RUN...] [--stage 2] [--tta VIEWS]

RUN is a run folder holding stage1/ and stage2/ (as written by `train --run-dir RUN`, or stage1/ by
`finetune --run-dir RUN`).

An ensemble of k dual encoders that share the frozen MobileNetV2 backbone is one dual encoder
whose embedding is the concatenation of the k L2-normalised embeddings divided by sqrt(k): it
stays unit-norm, and its cosine is exactly the mean of the k cosines. The backbone runs once,
so the image tower costs one backbone pass plus k small heads. Members with a fine-tuned backbone
(models.retrieval.finetune, same --tune-cut) share the frozen features[:cut]; the tower then runs
the frozen features[cut:] once for the grid and each member's tuned copy for its embedding.

Test-time views (`--tta id,hflip,...`): the image embedding is the normalised mean of the
(ensemble) embeddings of those dihedral views of the image (aerial images have no canonical
orientation). `evaluate` reads the cached val views (models.retrieval.features --val-views ...), or
embeds the val JPEGs for fine-tuned members;
`export` records the views in retrieval.json, and the manifest's `testTimeViews` makes the app
and the CLI run them (src/core/retrieval/embed.ts).

The exported grid output is the frozen backbone's grid of the original view (what the
captioning model was trained on).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..rslens.utils import get_device, load_checkpoint
from ..rslens.data import load_images_uint8, read_split
from ..rslens.mobilenet import normalize_unit
from .evaluate import embed_image_views_from_pixels, embed_images_from_cache, embed_texts, fmt, recall_metrics
from .features import load_cache
from .model import RetrievalModel
from .train import build_model_from_checkpoint, stage_dir, tokenize_split


def load_members(runs: List[str], stage: int, device="cpu") -> List[RetrievalModel]:
    return [build_model_from_checkpoint(stage_dir(stage, r) / "last.pt", device)[0] for r in runs]


def view_embeddings(model: RetrievalModel, views, device, val_pixels=None):
    """-> (image embeddings per view [V,N,D], text embeddings [5N,D]) on val. Frozen-backbone members
    read the cached val views; members with a fine-tuned backbone embed the val JPEGs (`val_pixels`)."""
    ids, mask = tokenize_split(read_split("val"), model.config["max_len"])  # no feature cache needed
    te = embed_texts(model, ids, mask, device)
    if model.image.tuned is not None:
        return embed_image_views_from_pixels(model, val_pixels, views, device), te
    feats_by_view, _ = load_cache("val", views)
    return torch.stack([embed_images_from_cache(model, f, device) for f in feats_by_view]), te


def combine(per_member, n_views: int):
    """per_member: list of (image [V,N,D], text [5N,D]). The ensemble embedding of a view is the
    concatenation of the members' embeddings / sqrt(k); the image embedding is the normalised mean of
    its first n_views views (what src/core/retrieval/embed.ts does with the manifest's testTimeViews)."""
    k = math.sqrt(len(per_member))
    img = torch.cat([p[0][:n_views] for p in per_member], -1) / k
    txt = torch.cat([p[1] for p in per_member], -1) / k
    return F.normalize(img.mean(0), dim=-1), txt


def evaluate(members: List[RetrievalModel], runs: List[str], views: List[str], prefixes=None) -> dict:
    """prefixes: also report test-time averaging over the first n views for each n listed (default 1 and all)."""
    device = next(members[0].parameters()).device
    out, parts = {}, []
    prefixes = sorted(set(prefixes or []) | {1, len(views)})
    val_pixels = None
    if any(m.image.tuned is not None for m in members):
        val_pixels = load_images_uint8(read_split("val"))
    for run, model in zip(runs, members):
        p = view_embeddings(model, views, device, val_pixels)
        parts.append(p)
        for nv in prefixes:
            ie, te = combine([p], nv)
            out[result_key([run], nv)] = recall_metrics((ie @ te.t()).numpy())
    if len(runs) > 1:
        for nv in prefixes:
            ie, te = combine(parts, nv)
            out[result_key(runs, nv)] = recall_metrics((ie @ te.t()).numpy())
    return out


def result_key(runs: List[str], n_views: int) -> str:
    who = f"ensemble of {len(runs)}" if len(runs) > 1 else Path(runs[0]).name
    return f"{who} ({'id' if n_views == 1 else f'tta {n_views}'})"


class EnsembleImageTower(nn.Module):
    """pixels [N,3,224,224] in [0,1] -> embedding [N,k*D] unit norm (+ the frozen grid [N,1280,7,7] when
    `with_grid`: the v0.2 layout, where captioning took its grid from this tower).
    Test-time views are not in the graph: the app runs the views as a batch (manifest testTimeViews).
    Fine-tuned members export without the grid: onnxruntime runs every output's subgraph, so a grid here
    would cost search the frozen top once more per view; captioning has its own encoder
    (models.caption.export_encoder)."""

    def __init__(self, members: List[RetrievalModel], with_grid: bool = True):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.with_grid = with_grid

    def forward(self, pixels):
        first = self.members[0].image
        grid = None
        if first.tuned is None:
            grid = first.stem_features(pixels)  # frozen backbone, shared by the members
            emb = [m.encode_image_from_stem(grid)[0] for m in self.members]
        else:  # shared frozen stem features[:cut], then each member's tuned top
            mid = first.stem[:first.tune_cut](normalize_unit(pixels))
            emb = [m.encode_image_from_stem(m.image.tuned(mid))[0] for m in self.members]
            if self.with_grid:
                grid = first.stem[first.tune_cut:](mid)
        emb = torch.cat(emb, 1) / math.sqrt(len(self.members))
        return (emb, grid) if self.with_grid else emb


class EnsembleTextTower(nn.Module):
    def __init__(self, members: List[RetrievalModel]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, input_ids, attention_mask):
        return torch.cat([m.encode_text(input_ids, attention_mask) for m in self.members], 1) / math.sqrt(
            len(self.members))


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_shared_backbone(members: List[RetrievalModel]) -> None:
    ref = members[0].image.stem.state_dict()
    for m in members[1:]:
        for k, v in m.image.stem.state_dict().items():
            if not torch.equal(v, ref[k]):
                raise RuntimeError(f"members do not share the frozen backbone ({k})")
        if m.image.tune_cut != members[0].image.tune_cut:
            raise RuntimeError("members fine-tune different parts of the backbone (tune_cut)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=("evaluate", "export"))
    ap.add_argument("--runs", required=True, help="comma-separated run folders")
    ap.add_argument("--stage", type=int, default=2)
    ap.add_argument("--tta", default="id", help="comma-separated dihedral views averaged per image")
    ap.add_argument("--prefixes", default="", help="evaluate: also report averaging over the first N views (e.g. 4)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args()
    runs, views = args.runs.split(","), args.tta.split(",")
    if args.cmd == "evaluate":
        res = evaluate(load_members(runs, args.stage, get_device()), runs, views,
                       [int(n) for n in args.prefixes.split(",") if n])
        for k, v in res.items():
            print(f"{k}: {fmt(v)}")
        print(json.dumps(res))
        return
    members = load_members(runs, args.stage, get_device())
    check_shared_backbone(members)
    export_ensemble(members, runs, args.stage, views, Path(args.out))


def member_commands(run: str, ck: dict, stage: int) -> List[str]:
    """How a member was trained: a stage-1 run [+ stage 2], or a stage-1 run then the backbone fine-tune;
    for an init rebuilt from shipped ONNX files (import_onnx), first the commands that trained those."""
    if ck.get("init"):
        init_ck = load_checkpoint(stage_dir(1, Path(run).parent / ck["init"]["run"]) / "last.pt") or {}
        before = [c for c in init_ck.get("imported", {}).get("trained_by", []) if c]
        return [*before, ck["init"]["command"], ck["command"]]
    return [f"/usr/bin/python3 -m models.retrieval.train --stage {st} ... --run-dir {run}"
            for st in ((1, 2) if stage == 2 else (1,))]


def export_ensemble(members, runs, stage: int, views: List[str], out: Path) -> None:
    from .export import write_towers
    from .vocab import load_tokenizer
    res = evaluate(members, runs, views)
    key = result_key(runs, len(views))
    cks = [torch.load(stage_dir(stage, r) / "last.pt", map_location="cpu") for r in runs]
    s1 = [json.load(open(stage_dir(1, r) / "summary.json")) for r in runs]
    tune_cut = members[0].image.tune_cut
    meta = {
        "stage": stage,
        "members": [{"run": Path(r).name, "seed": ck.get("seed"), "views_trained": ck.get("views"),
                     "command": ck.get("command"), "stage1_command": s["command"],
                     "stage1_val_metrics": s["history"][-1].get("val"),
                     "init": ck.get("init"), "tune_cut": ck["model_config"].get("tune_cut"),
                     "val_metrics_pytorch": ck["history"][-1].get("val")} for r, ck, s in zip(runs, cks, s1)],
        "ensemble": (f"{len(runs)} dual encoders sharing the frozen backbone"
                     + (f" features[:{tune_cut}], each with its own fine-tuned copy of features[{tune_cut}:]"
                        if tune_cut else "") + "; embedding = concatenation of the "
                     f"members' L2-normalised embeddings / sqrt({len(runs)}) (cosine = mean of the members' cosines)"),
        "test_time_views": views,
        "test_time_views_note": "image embedding = L2-normalised mean of the embeddings of these dihedral views "
                                "(the app and CLI apply them from the manifest's testTimeViews)",
        "grid": {"channels": 1280, "height": 7, "width": 7,
                 "what": "MobileNetV2 final 1x1-conv map (after ReLU6) of the FROZEN ImageNet backbone, original "
                         "view (what the captioning model was trained on)"},
        "params": {"stage1_trainable_per_member": s1[0]["trainable_params"],
                   "stage2_trainable_per_member": cks[0]["trainable_params"] if stage == 2 else None,
                   "total": _numel(members[0].image.stem) + sum(_numel(m) - _numel(m.image.stem) for m in members)},
        "val_metrics_pytorch": res[key],
        "val_metrics_pytorch_all": res,
        "training": {"commands": ["/usr/bin/python3 -m models.retrieval.features --views id,hflip,vflip,rot90 "
                                  "--val-views " + ",".join(views),
                                  *[c for r, ck in zip(runs, cks) for c in member_commands(r, ck, stage)],
                                  f"/usr/bin/python3 -m models.retrieval.ensemble export --runs {','.join(runs)} "
                                  f"--stage {stage} --tta {','.join(views)}",
                                  "npx tsx models/retrieval/check_onnx.ts"]},
    }
    with_grid = tune_cut is None
    if not with_grid:
        meta["grid"] = {"channels": 1280, "height": 7, "width": 7, "what": "not in this tower: captioning runs "
                        "models/caption/image-encoder-fp16.onnx (the frozen backbone; models.caption.export_encoder)"}
    write_towers(EnsembleImageTower(members, with_grid).eval(), EnsembleTextTower(members).eval(), out, meta,
                 load_tokenizer(), frozen_grid=members[0].image.stem_features)


if __name__ == "__main__":
    main()
