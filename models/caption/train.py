"""Two-stage training of the caption/VQA model.

    /usr/bin/python3 -m models.caption.train --stage 1   # dense decoder + query module + router body
    /usr/bin/python3 -m models.caption.train --stage 2   # experts (LoRA on copies of the dense decoder)
                                                         # + fusion gates + router heads; stage-1 parts frozen

Seeded; checkpoints (atomic) every --ckpt-every steps and at each epoch end to
models/runs/caption/stage{N}/last.pt and resumes from it when re-run (--fresh starts over);
--max-minutes stops cleanly (checkpoint written) so a time-boxed run can be continued later.
CUDA is used when available; on CPU the thread count follows RSLENS_THREADS (default 2).
Trains on RSICD train captions + the train VQA files only; RSICD val is used for validation only.
Image features: the frozen MobileNetV2 grid [N,1280,7,7] cached by models.retrieval.features
(models/cache/rsicd_mnv2tfl_cut19, = the retrieval image tower's `grid` output without stage-2
adapter) -- see --grid and MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from ..rslens import paths
from ..rslens.clip_tokenizer import BOS_ID, EOS_ID, PAD_ID
from ..rslens.data import read_split
from ..rslens.utils import (count_params, get_device, load_checkpoint, log_to_file, rng_state, save_checkpoint,
                            seed_everything, set_rng_state)
from .data import CAPTION_INSTRUCTION, TYPE_TO_EXPERT, VQA_DIR, load_tokenizer, read_jsonl
from .features import GRID_CACHE, load_pca, load_projected
from .model import CaptionMoE

MAX_PROMPT = 24
MAX_TARGET = 31  # target tokens incl. eos
DEFAULTS = {1: dict(epochs=3, batch=64, lr=1e-3, wd=0.01, warmup=100, vqa_per_type=800, ls=0.1, images_frac=1.0,
                   answer_weight=4.0),
            2: dict(epochs=1, batch=64, lr=3e-4, router_lr=1e-3, wd=0.0, warmup=10, vqa_per_type=400, ls=0.1, images_frac=0.5)}
VQA_TYPES = ["scene", "theme", "presence", "count", "relation"]


def stage_dir(stage: int, tag: str = "") -> Path:
    return paths.runs_dir() / "caption" / (f"stage{stage}" + (f"-{tag}" if tag else ""))


def expert_of(qtype: str, n_experts: int) -> int:
    return TYPE_TO_EXPERT[qtype] if n_experts > 1 else 0


# ------------------------------------------------------------------ data
class Features:
    """PCA-projected grid tokens [*,49,256] (models.caption.features) of RSICD images (+ box tiles).
    key >= 0: RSICD row; key < 0: tile -(key+1)."""

    def __init__(self, split: str):
        self.rsicd, self.tiles, self.index = load_projected(split)
        self.row = {im: i for i, im in enumerate(self.index)}

    def get(self, keys: List) -> torch.Tensor:
        out = np.empty((len(keys),) + self.rsicd.shape[1:], np.float32)
        for i, k in enumerate(keys):
            out[i] = self.rsicd[k] if k >= 0 else self.tiles[-k - 1]
        return torch.from_numpy(out)


def sample_key(feats: Features, x: dict) -> int:
    return -(x["tile"] + 1) if "tile" in x else feats.row[x["image"]]


class Tok:
    def __init__(self):
        self.tok = load_tokenizer()
        self.cache: Dict[str, List[int]] = {}
        self.n_vocab = self.tok.vocab_size

    def ids(self, text: str) -> List[int]:
        if text not in self.cache:
            self.cache[text] = self.tok.encode(text)[1:-1]  # strip bos/eos
        return self.cache[text]

    def decode(self, ids: List[int]) -> str:
        """Compact ids -> text (CLIP byte-level BPE decode: join, '</w>' -> space)."""
        bpe = self.tok.bpe
        inv = getattr(self, "_inv", None)
        if inv is None:
            byte_dec = {v: k for k, v in __import__("models.rslens.clip_tokenizer", fromlist=["x"])
                        ._bytes_to_unicode().items()}
            id2tok = {v: k for k, v in bpe.vocab.items()}
            inv = self._inv = (byte_dec, id2tok)
        byte_dec, id2tok = inv
        out = bytearray()
        for i in ids:
            if i < 4 or i >= len(self.tok.clip_ids) + 4:
                continue  # special / role ids
            t = id2tok[self.tok.clip_ids[i - 4]]
            end = t.endswith("</w>")
            if end:
                t = t[:-4]
            out += bytes(byte_dec[c] for c in t)
            if end:
                out += b" "
        return out.decode("utf-8", errors="replace").strip()


def make_example(tok: Tok, instruction: str, target: str, role_id: int):
    p = tok.ids(instruction)[:MAX_PROMPT]
    t = tok.ids(target)[:MAX_TARGET - 1] + [EOS_ID]
    seq = [role_id] + p + [BOS_ID] + t
    # labels: position i predicts seq[i+1]; only target tokens are supervised
    lab = [-100] * (len(p) + 1) + t + [-100]
    return p, seq[:-1], lab[: len(seq) - 1]


def collate(exs):
    """exs: list of (prompt_ids, seq, labels) -> instr [N,Lp], instr_mask, seq [N,T], labels [N,T]."""
    Lp = max(len(e[0]) for e in exs) or 1
    T = max(len(e[1]) for e in exs)
    ins = torch.full((len(exs), Lp), PAD_ID, dtype=torch.long)
    im = torch.zeros((len(exs), Lp), dtype=torch.long)
    seq = torch.full((len(exs), T), PAD_ID, dtype=torch.long)
    lab = torch.full((len(exs), T), -100, dtype=torch.long)
    for i, (p, s, l) in enumerate(exs):
        ins[i, :len(p)] = torch.tensor(p, dtype=torch.long)
        im[i, :len(p)] = 1
        seq[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        lab[i, :len(l)] = torch.tensor(l, dtype=torch.long)
    return ins, im, seq, lab


def load_vqa(split: str) -> List[dict]:
    return read_jsonl(VQA_DIR / f"generated_{split}.jsonl") + read_jsonl(VQA_DIR / f"rsivqa_theme_{split}.jsonl")


def epoch_samples(items, vqa, epoch: int, seed: int, per_type: int, images_frac: float = 1.0):
    """One epoch: every train image once (or a random images_frac of them) with one random caption
    + up to per_type random questions per question type (presence: per type and source)."""
    rng = random.Random(seed * 1000 + epoch)
    imgs = items if images_frac >= 1 else rng.sample(items, int(len(items) * images_frac))
    s = [("caption", it.image, CAPTION_INSTRUCTION, rng.choice(it.captions), None) for it in imgs]
    by_type = defaultdict(list)
    for x in vqa:
        by_type[x["type"]].append(x)
    for t in VQA_TYPES:
        # presence: up to per_type questions from each source (captions, box tiles) and per_type/8 for each
        # (object, answer) of the scene-anchored ones: caption-derived presence alone left the answers nearly
        # independent of the image (the v1 model said "no ships" in every port)
        pools = defaultdict(list)
        for x in by_type[t]:
            pools[(x["source"], x.get("object", ""), x["answer"] if "object" in x else "")
                  if t == "presence" else (t,)].append(x)
        for key, lst in sorted(pools.items()):
            cap = per_type // 8 if len(key) == 3 and key[1] else per_type
            for x in rng.sample(lst, min(cap, len(lst))):
                s.append((t, x, x["question"], x["answer"], None))
    rng.shuffle(s)
    return s


def sample_to_key(feats, smp):
    t, ref = smp[0], smp[1]
    return feats.row[ref] if t == "caption" else sample_key(feats, ref)


# ------------------------------------------------------------------ losses
def stage1_loss(model, grid, ins, im, seq, lab, types, ls, answer_weight=1.0):
    """Token CE; answer tokens weigh `answer_weight` x a caption token. With 1 (the v1 recipe) the ~1.5 answer
    tokens of a question drown among the ~14 tokens of each caption (about 8% of the gradient), and presence
    answers stayed nearly image-blind."""
    mem, elog, tlog = model.encode(grid, ins, im)
    logits = model.dense_logits(mem, seq)
    tok = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab.reshape(-1), ignore_index=-100,
                          label_smoothing=ls, reduction="none").view_as(lab)
    w = torch.tensor([1.0 if t == "caption" else answer_weight for t in types], device=lab.device)[:, None]
    w = w * (lab >= 0)
    lm = (tok * w).sum() / w.sum()
    return lm, {"lm": lm.item()}


def stage2_loss(model, grid, ins, im, seq, lab, types, ls, aux=0.1):
    with torch.no_grad():
        u = model.router_body(ins, im)
        mem = model.qmod(grid, u)
    elog = model.router.expert_head(u)
    tlog = model.router.task_head(u)
    is_cap = torch.tensor([t == "caption" for t in types])
    task_t = (~is_cap).long()
    loss_router = F.cross_entropy(tlog, task_t)
    E = len(model.experts)
    exp_t = torch.tensor([expert_of(t, E) if t != "caption" else -100 for t in types])
    if (~is_cap).any():
        loss_router = loss_router + F.cross_entropy(elog, exp_t, ignore_index=-100)
    total = loss_router
    stats = {"router": loss_router.item()}
    E = len(model.experts)
    ci = is_cap.nonzero().squeeze(1)
    if len(ci):
        lab_c = lab[ci]
        valid = lab_c >= 0
        tgt = lab_c.clamp_min(0)
        logp_e, auxl = [], 0.0
        for e in range(E):
            lg, gt, _ = model.expert_logits(e, mem[ci], seq[ci])
            lp = lg.log_softmax(-1)
            logp_e.append((lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1), gt))
            auxl = auxl + F.cross_entropy(lg.reshape(-1, lg.shape[-1]), lab_c.reshape(-1), ignore_index=-100,
                                          label_smoothing=ls)
        prior = elog[ci].log_softmax(-1)  # [n,E]
        gates = torch.stack([g for _, g in logp_e], -1) + prior[:, None, :]
        w = gates.log_softmax(-1)
        tok_lp = torch.stack([lp for lp, _ in logp_e], -1)
        mix = torch.logsumexp(w + tok_lp, -1)
        lcap = -(mix * valid).sum() / valid.sum()
        total = total + lcap + aux * auxl / E
        stats["cap_mix"] = lcap.item()
    for e in range(E):
        idx = torch.tensor([i for i, t in enumerate(types) if t != "caption" and expert_of(t, E) == e],
                           dtype=torch.long)
        if len(idx):
            lg, _, _ = model.expert_logits(e, mem[idx], seq[idx])
            l = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), lab[idx].reshape(-1), ignore_index=-100,
                                label_smoothing=ls)
            total = total + l * len(idx) / len(types)
            stats[f"vqa_e{e}"] = l.item()
    return total, stats


def router_body(self, ids, mask):
    return self.router(ids, mask)[0]


CaptionMoE.router_body = router_body


# ------------------------------------------------------------------ main
def build_model(n_vocab: int, cfg: dict = None) -> CaptionMoE:
    return CaptionMoE(n_vocab, **(cfg or {}))


def load_stage(stage: int, device="cpu", tag: str = ""):
    """Model at the end of `stage` (1: dense only, 2: with experts; tag: e.g. 'control')."""
    ck = load_checkpoint(stage_dir(stage, tag) / "last.pt", device)
    if ck is None:
        raise FileNotFoundError(f"no checkpoint {paths.rel(stage_dir(stage, tag) / 'last.pt')}")
    cfg = dict(ck["model_config"])
    n_vocab = cfg.pop("n_vocab")
    lora = (cfg.pop("lora_rank", None), cfg.pop("lora_alpha", None), cfg.pop("experts_built", 0))
    model = CaptionMoE(n_vocab, **cfg)
    if stage == 2:
        model.make_experts(lora[0], lora[1], lora[2])
    model.load_state_dict(ck["model"])
    return model.to(device), ck


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", type=int, required=True, choices=[1, 2])
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--answer-weight", type=float, help="stage 1: weight of an answer token vs a caption token "
                                                         "(default 4; the v1 model used 1)")
    ap.add_argument("--vqa-per-type", type=int, help="questions per type and epoch (default: stage 1 800, stage 2 400)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rank", type=int, default=16, help="stage 2 LoRA rank")
    ap.add_argument("--experts", type=int, default=0, help="stage 2: number of experts (default 3)")
    ap.add_argument("--tag", default="", help="run name suffix (stage2-<tag>), e.g. the ablation control: "
                                               "--stage 2 --experts 1 --rank 48 --tag control")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop cleanly (checkpoint) after this long")
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--limit", type=int, default=0, help="debug: first N train images only")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--device")
    args = ap.parse_args(argv)
    hp = dict(DEFAULTS[args.stage])
    for k in ("epochs", "batch", "lr", "vqa_per_type", "answer_weight"):
        if getattr(args, k) is not None:
            hp[k] = getattr(args, k)
    out = stage_dir(args.stage, args.tag)
    out.mkdir(parents=True, exist_ok=True)
    log = log_to_file(out / "train.log")
    device = get_device(args.device)
    seed_everything(args.seed)
    tok = Tok()
    items = read_split("train", limit=args.limit or None)
    vqa = load_vqa("train")
    if args.limit:
        keep = {it.image for it in items}
        vqa = [x for x in vqa if x["image"] in keep or "tile" in x]
    feats = Features("train")

    ck = None if args.fresh else load_checkpoint(out / "last.pt", "cpu")
    if args.stage == 1:
        model = build_model(tok.n_vocab)
        mean, proj = load_pca()
        model.qmod.pca_mean.copy_(torch.from_numpy(mean))
        model.qmod.pca_proj.copy_(torch.from_numpy(proj))
        params = [p for n, p in model.named_parameters()]
    else:
        model, _ = load_stage(1)
        model.make_experts(args.rank, n=args.experts)
        for p in model.parameters():
            p.requires_grad_(False)
        params = model.stage2_parameters()
        for p in params:
            p.requires_grad_(True)
        for p in list(model.router.emb.parameters()) + list(model.router.mlp.parameters()) + \
                list(model.router.ln.parameters()):
            p.requires_grad_(False)
        params = [p for p in params if p.requires_grad]
    model.to(device)
    # stage 2: the router heads start from scratch and need a larger step than the LoRA experts (at 3e-4 they
    # had not learnt to route relation questions after one epoch); "scale" multiplies the scheduled lr
    fast = {id(p) for p in model.router.parameters()} if args.stage == 2 else set()
    scale = hp.get("router_lr", hp["lr"]) / hp["lr"]
    groups = []
    for ps, wd, sc in ((lambda p: p.ndim >= 2 and id(p) not in fast, hp["wd"], 1.0),
                       (lambda p: p.ndim < 2 and id(p) not in fast, 0.0, 1.0),
                       (lambda p: id(p) in fast, 0.0, scale)):
        sel = [p for p in params if ps(p)]
        if sel:
            groups.append({"params": sel, "weight_decay": wd, "scale": sc})
    opt = torch.optim.AdamW(groups, lr=hp["lr"])
    n_per_epoch = len(epoch_samples(items, vqa, 0, args.seed, hp["vqa_per_type"], hp["images_frac"]))
    steps_per_epoch = math.ceil(n_per_epoch / hp["batch"])
    total_steps = steps_per_epoch * hp["epochs"]
    epoch, step_in_epoch, gstep, history = 0, 0, 0, []
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        epoch, step_in_epoch, gstep, history = ck["epoch"], ck["step_in_epoch"], ck["gstep"], ck["history"]
        set_rng_state(ck["rng"])
        log(f"resumed from {paths.rel(out / 'last.pt')}: epoch {epoch} step {step_in_epoch} (global {gstep})")
    n_train = sum(p.numel() for p in params)
    log(f"stage {args.stage}: {count_params(model, False)} params, {n_train} trainable; {n_per_epoch} samples/epoch "
        f"({len(items)} images, {len(vqa)} questions in pool), {steps_per_epoch} steps/epoch x {hp['epochs']}; "
        f"device {device}, threads {torch.get_num_threads()}; hp {hp}")

    def lr_at(s):
        if s < hp["warmup"]:
            return hp["lr"] * (s + 1) / hp["warmup"]
        return hp["lr"] * 0.5 * (1 + math.cos(math.pi * min(1.0, (s - hp["warmup"]) / max(1, total_steps - hp["warmup"]))))

    def save():
        save_checkpoint(out / "last.pt", {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
                                          "step_in_epoch": step_in_epoch, "gstep": gstep, "history": history,
                                          "rng": rng_state(), "hp": hp, "model_config": model.config,
                                          "command": "python -m models.caption.train " + " ".join(argv or sys.argv[1:]),
                                          "trainable_params": n_train, "total_params": count_params(model, False),
                                          "grid_source": GRID_CACHE, "tag": args.tag})

    t_start = time.time()
    lossfn = stage1_loss if args.stage == 1 else stage2_loss
    while epoch < hp["epochs"]:
        samples = epoch_samples(items, vqa, epoch, args.seed, hp["vqa_per_type"], hp["images_frac"])
        model.train()
        if args.stage == 2:
            model.qmod.eval()
        run = defaultdict(float)
        nrun = 0
        t0 = time.time()
        while step_in_epoch < steps_per_epoch:
            batch = samples[step_in_epoch * hp["batch"]:(step_in_epoch + 1) * hp["batch"]]
            keys = [sample_to_key(feats, s) for s in batch]
            grid = feats.get(keys).to(device)
            role = model.dense_role
            exs = [make_example(tok, s[2], s[3], role) for s in batch]
            ins, im, seq, lab = (x.to(device) for x in collate(exs))
            for g in opt.param_groups:
                g["lr"] = lr_at(gstep) * g.get("scale", 1.0)
            extra = {"answer_weight": hp["answer_weight"]} if args.stage == 1 else {}
            loss, st = lossfn(model, grid, ins, im, seq, lab, [s[0] for s in batch], hp["ls"], **extra)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step_in_epoch += 1
            gstep += 1
            for k, v in st.items():
                run[k] += v
            nrun += 1
            if step_in_epoch % 25 == 0:
                log(f"ep {epoch} step {step_in_epoch}/{steps_per_epoch} " +
                    " ".join(f"{k} {v / nrun:.3f}" for k, v in run.items()) +
                    f" lr {lr_at(gstep):.2e} {(time.time() - t0) / step_in_epoch:.2f}s/step")
            timeout = args.max_minutes and (time.time() - t_start) > args.max_minutes * 60
            if step_in_epoch % args.ckpt_every == 0 or timeout:
                save()
            if timeout:
                log(f"--max-minutes reached: checkpoint saved at epoch {epoch} step {step_in_epoch}; re-run to resume")
                return
        history.append({"epoch": epoch, **{k: v / max(1, nrun) for k, v in run.items()},
                        "minutes": (time.time() - t0) / 60})
        epoch += 1
        step_in_epoch = 0
        save()
        log(f"epoch {epoch - 1} done: {history[-1]}")
    json.dump({"stage": args.stage, "history": history, "hp": hp, "trainable_params": n_train,
               "total_params": count_params(model, False), "grid_source": GRID_CACHE},
              open(out / "summary.json", "w"), indent=1)
    log("training finished")


if __name__ == "__main__":
    main()
