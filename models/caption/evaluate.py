"""Evaluate captioning (RSICD val) and VQA (generated val questions + published RSIVQA theme
questions of val images) for the dense decoder (stage 1) and the MoE (stage 2).

    /usr/bin/python3 -m models.caption.evaluate --stage 1          # dense decoder
    /usr/bin/python3 -m models.caption.evaluate --stage 2          # MoE (and, with --ablation, the dense
                                                                  #   decoder of the same checkpoint)
    /usr/bin/python3 -m models.caption.evaluate --stage 2 --probe-only   # only the ship/boat probe (printed)
Greedy decoding with the KV cache (the same step function as the exported graphs). Writes
models/caption/metrics_stage{N}.json (+ the val captions in models/runs/caption/). Every run also
reports the ship/boat presence probe: share of "yes" to "are there any ships/boats?" / "is there a
ship/boat in this image?" on the val images labelled Port and on the val images whose captions name
no boat/ship (false-positive check).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import torch

from ..rslens import paths
from ..rslens.clip_tokenizer import BOS_ID, EOS_ID, PAD_ID
from ..rslens.data import read_split
from ..rslens.utils import get_device, log_to_file
from .data import CAPTION_INSTRUCTION, TYPE_TO_EXPERT
from .metrics import caption_metrics
from .train import MAX_PROMPT, MAX_TARGET, Features, Tok, expert_of, load_stage, load_vqa, sample_key

HERE = Path(__file__).resolve().parent


def norm_answer(s: str) -> str:
    return " ".join(s.lower().replace("?", " ").replace(".", " ").split())


@torch.no_grad()
def generate(model, feats: torch.Tensor, prompts: List[List[int]], mode: str, max_new: int = MAX_TARGET,
             experts: List[int] = None):
    """feats: PCA tokens [N,49,256] (or raw grid); prompts: instruction ids (same length in the batch).
    mode: 'dense' | 'moe' (captions: all experts, fused) | 'expert' (one expert per row, `experts`).
    -> list of generated id lists (without eos), list of fusion weights per step (moe)"""
    n = len(prompts)
    ins = torch.tensor(prompts, dtype=torch.long)
    im = torch.ones_like(ins)
    mem, elog, tlog = model.encode(feats, ins, im)
    role = model.dense_role
    seq0 = torch.cat([torch.full((n, 1), role), ins, torch.full((n, 1), BOS_ID)], 1)
    if mode == "dense":
        decs = [(model.dense, None, torch.arange(n))]
    elif mode == "moe":
        decs = [(model.experts[e], model.role[e], torch.arange(n)) for e in range(len(model.experts))]
    else:
        ex = torch.tensor(experts)
        decs = [(model.experts[e], model.role[e], (ex == e).nonzero().squeeze(1)) for e in range(len(model.experts))]
        decs = [d for d in decs if len(d[2])]
    out = torch.full((n, max_new), EOS_ID, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    prior = elog.log_softmax(-1) if len(decs) > 1 else torch.zeros(n, 1)
    pasts = [None] * len(decs)
    inp = [seq0[d[2]] for d in decs]
    weights = []
    for t in range(max_new):
        if mode == "moe":
            lps, gates = [], []
            for i, (dec, r, idx) in enumerate(decs):
                lg, gt, pasts[i] = dec(inp[i], mem, pasts[i], role_embed=r)
                lps.append(lg[:, -1].log_softmax(-1))
                gates.append(gt[:, -1])
            w = (torch.stack(gates, -1) + prior).softmax(-1)  # [N,E]
            weights.append(w)
            lp = torch.logsumexp(torch.stack(lps, -1) + w.log().unsqueeze(1), -1)
            nxt = lp.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, EOS_ID), nxt)
            inp = [nxt.unsqueeze(1)] * len(decs)
        else:
            nxt = torch.full((n,), EOS_ID, dtype=torch.long)
            for i, (dec, r, idx) in enumerate(decs):
                lg, _, pasts[i] = dec(inp[i], mem[idx], pasts[i], role_embed=r)
                nxt[idx] = lg[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, EOS_ID), nxt)
            inp = [nxt[d[2]].unsqueeze(1) for d in decs]
        out[:, t] = nxt
        done |= nxt == EOS_ID
        if done.all():
            break
    res = []
    for row in out.tolist():
        res.append(row[:row.index(EOS_ID)] if EOS_ID in row else row)
    return res, (torch.stack(weights, 1) if weights else None)


@torch.no_grad()
def beam_caption(model, feats: torch.Tensor, prompt: List[int], mode: str, beam: int = 3,
                 max_new: int = MAX_TARGET, alpha: float = 0.0):
    """Beam search for captions ('dense' or 'moe' = fused experts). Score = sum log p / len^alpha."""
    n = feats.shape[0]
    ins = torch.tensor([prompt] * n, dtype=torch.long)
    mem, elog, _ = model.encode(feats, ins, torch.ones_like(ins))
    prior = elog.log_softmax(-1).repeat_interleave(beam, 0) if mode != "dense" and len(model.experts) > 1 \
        else torch.zeros(n * beam, 1)
    mem = mem.repeat_interleave(beam, 0)
    seq0 = torch.tensor([[model.dense_role] + prompt + [BOS_ID]] * (n * beam))
    decs = [(model.dense, None)] if mode == "dense" else [(model.experts[e], model.role[e])
                                                          for e in range(len(model.experts))]
    if len(decs) == 1:
        prior = torch.zeros(n * beam, 1)
    pasts = [None] * len(decs)
    inp = seq0
    score = torch.zeros(n, beam)
    score[:, 1:] = -1e9
    toks = torch.zeros(n * beam, 0, dtype=torch.long)
    fin = torch.zeros(n * beam, dtype=torch.bool)
    V = model.n_vocab
    for t in range(max_new):
        lps, gates = [], []
        for i, (dec, r) in enumerate(decs):
            lg, gt, pasts[i] = dec(inp, mem, pasts[i], role_embed=r)
            lps.append(lg[:, -1].log_softmax(-1))
            gates.append(gt[:, -1])
        if len(decs) == 1:
            lp = lps[0]
        else:
            w = (torch.stack(gates, -1) + prior).log_softmax(-1)
            lp = torch.logsumexp(torch.stack(lps, -1) + w.unsqueeze(1), -1)
        # finished beams only extend with eos at no cost
        lp = torch.where(fin.unsqueeze(1), torch.full_like(lp, -1e9), lp)
        lp[fin, EOS_ID] = 0.0
        cand = (score.reshape(-1, 1) + lp).reshape(n, beam * V)
        top, idx = cand.topk(beam, -1)
        src = (idx // V) + torch.arange(n).unsqueeze(1) * beam
        src = src.reshape(-1)
        nxt = (idx % V).reshape(-1)
        score = top
        toks = torch.cat([toks[src], nxt.unsqueeze(1)], 1)
        fin = fin[src] | (nxt == EOS_ID)
        pasts = [[(k[src], v[src]) for k, v in p] for p in pasts]
        inp = nxt.unsqueeze(1)
        if fin.all():
            break
    toks = toks.reshape(n, beam, -1)
    lens = torch.tensor([[(row.tolist() + [EOS_ID]).index(EOS_ID) + 1 for row in b] for b in toks], dtype=torch.float)
    best = (score / lens ** alpha).argmax(-1)
    res = []
    for i in range(n):
        row = toks[i, best[i]].tolist()
        res.append(row[:row.index(EOS_ID)] if EOS_ID in row else row)
    return res


def eval_captions(model, tok: Tok, feats: Features, items, mode: str, batch: int = 128, beam: int = 1,
                  alpha: float = 0.0):
    prompt = tok.ids(CAPTION_INSTRUCTION)[:MAX_PROMPT]
    hyps, refs = {}, {}
    wsum = None
    for s in range(0, len(items), batch):
        chunk = items[s:s + batch]
        x = feats.get([feats.row[it.image] for it in chunk])
        if beam > 1:
            ids, w = beam_caption(model, x, prompt, mode, beam, alpha=alpha), None
        else:
            ids, w = generate(model, x, [prompt] * len(chunk), mode)
        if w is not None:
            ws = w.mean(1).sum(0)
            wsum = ws if wsum is None else wsum + ws
        for it, g in zip(chunk, ids):
            hyps[it.image] = tok.decode(g)
            refs[it.image] = it.captions
    m = caption_metrics(hyps, refs)
    if wsum is not None:
        m["mean_fusion_weights"] = (wsum / len(items)).tolist()
    return m, hyps


def eval_vqa(model, tok: Tok, feats: Features, qs: List[dict], mode: str, batch: int = 256):
    groups = defaultdict(list)
    for x in qs:
        groups[len(tok.ids(x["question"])[:MAX_PROMPT])].append(x)
    correct, total, routed_ok = defaultdict(int), defaultdict(int), defaultdict(int)
    examples = []
    for L, lst in groups.items():
        for s in range(0, len(lst), batch):
            chunk = lst[s:s + batch]
            x = feats.get([sample_key(feats, q) for q in chunk])
            prompts = [tok.ids(q["question"])[:MAX_PROMPT] for q in chunk]
            if mode == "dense":
                ids, _ = generate(model, x, prompts, "dense", max_new=6)
                route = [None] * len(chunk)
            else:
                ins = torch.tensor(prompts, dtype=torch.long)
                _, elog, _ = model.encode(x, ins, torch.ones_like(ins))
                route = elog.argmax(-1).tolist() if len(model.experts) > 1 else [0] * len(chunk)
                ids, _ = generate(model, x, prompts, "expert", max_new=6, experts=route)
            for q, g, r in zip(chunk, ids, route):
                key = q["type"] + ("" if q["source"] == "rsivqa" else f" [{q['source'].split(':')[1]}]")
                ok = norm_answer(tok.decode(g)) == norm_answer(q["answer"])
                correct[key] += ok
                total[key] += 1
                if r is not None:
                    routed_ok[key] += r == expert_of(q["type"], len(model.experts))
                if len(examples) < 12 and s == 0:
                    examples.append({"q": q["question"], "gt": q["answer"], "pred": tok.decode(g), "expert": r})
    res = {k: {"accuracy": correct[k] / total[k], "n": total[k]} for k in sorted(total)}
    if mode != "dense":
        for k in res:
            res[k]["routed_to_intended_expert"] = routed_ok[k] / total[k]
    return res, examples


PROBE_QUESTIONS = ["are there any ships?", "are there any boats?", "is there a ship in this image?",
                   "is there a boat in this image?"]


def ship_probe(model, tok: Tok, feats: Features, items, mode: str) -> dict:
    """Share of "yes" to the ship/boat presence questions on (a) every val image labelled Port in
    labels.json and (b) every val image whose captions name no boat/ship (synonym group) -- (b) is the
    false-positive check, a model that always says "yes" would pass (a)."""
    from .data import GROUP_OF, OBJECTS, mentioned_groups
    boat_group = GROUP_OF[[o[0] for o in OBJECTS].index("boat")]
    sets = {"port": [it for it in items if (it.label or "").lower() == "port"],
            "no_boat_or_ship_in_captions": [it for it in items if boat_group not in mentioned_groups(it.captions)]}
    out = {}
    for name, its in sets.items():
        qs = [{"image": it.image, "type": "presence", "question": qq, "answer": "yes", "source": f"probe:{i}"}
              for it in its for i, qq in enumerate(PROBE_QUESTIONS)]
        res, _ = eval_vqa(model, tok, feats, qs, mode)
        out[name] = {"n_images": len(its), "yes_rate": {qq: res[f"presence [{i}]"]["accuracy"]
                                                        for i, qq in enumerate(PROBE_QUESTIONS)}}
    return out


def retrieval_adapted_features(model, split: str, stage: int) -> Features:
    """Val features as the browser will see them if the exported image tower includes the retrieval
    stage-`stage` image adapter: grid -> retrieval adapter -> our frozen PCA (models/runs/retrieval/...)."""
    import numpy as np
    from ..retrieval.train import build_model_from_checkpoint, stage_dir as rdir
    from .data import load_tile_features
    from .features import grid_cache
    rm, _ = build_model_from_checkpoint(rdir(stage) / "last.pt", "cpu")
    f = Features(split)

    def run(g):
        out = np.empty((len(g), 49, model.qmod.pca_proj.shape[1]), np.float16)
        for s in range(0, len(g), 64):
            with torch.no_grad():
                x = torch.from_numpy(np.asarray(g[s:s + 64], dtype=np.float32))
                adapted, _ = rm.image.grid_and_tokens(x, n_tokens=5 if rm.image.adapter is not None else 1)
                out[s:s + len(x)] = model.qmod.project(adapted).numpy().astype(np.float16)
        return out

    f.rsicd = run(grid_cache(split))
    f.tiles = run(load_tile_features(split))
    return f


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", type=int, default=2)
    ap.add_argument("--ablation", action="store_true", help="stage 2: also evaluate the dense decoder")
    ap.add_argument("--tag", default="", help="stage-2 run tag (e.g. control = 1 expert, same data/steps)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--beam", type=int, default=1, help="caption beam size (1 = greedy)")
    ap.add_argument("--alpha", type=float, default=0.0, help="beam length normalisation exponent")
    ap.add_argument("--probe-only", action="store_true",
                    help="only the ship/boat presence probe (printed, no metrics file written)")
    ap.add_argument("--retrieval-grid", type=int, default=0,
                    help="evaluate on the grid after the retrieval stage-N image adapter (robustness check; "
                         "results go to metrics_stage{N}_retrieval-grid{M}.json)")
    args = ap.parse_args(argv)
    get_device("cpu")
    log = log_to_file(paths.runs_dir() / "caption" / "evaluate.log")
    model, ck = load_stage(args.stage, tag=args.tag)
    model.eval()
    tok = Tok()
    feats = Features("val") if not args.retrieval_grid else retrieval_adapted_features(model, "val", args.retrieval_grid)
    items = read_split("val", limit=args.limit or None)
    vqa = load_vqa("val")
    if args.limit:
        keep = {it.image for it in items}
        vqa = [x for x in vqa if x["image"] in keep or "tile" in x]
    modes = ["dense"] if args.stage == 1 else (["moe", "dense"] if args.ablation else ["moe"])
    if args.probe_only:
        for mode in modes:
            print(json.dumps({"stage": args.stage, "tag": args.tag, "mode": mode,
                              "ship_probe": ship_probe(model, tok, feats, items, mode)}, indent=1))
        return
    result = {"stage": args.stage, "tag": args.tag,
              "checkpoint": paths.rel(paths.runs_dir() / "caption" / (f"stage{args.stage}" + (f"-{args.tag}" if args.tag else "")) / "last.pt"),
              "epochs_trained": ck["epoch"], "steps": ck["gstep"], "grid_source": ck.get("grid_source"),
              "val_images": len(items),
              "eval_grid": "frozen MobileNetV2 grid (cut19 cache, = retrieval tower grid without adapter)"
              if not args.retrieval_grid else f"grid after the retrieval stage-{args.retrieval_grid} image adapter", "decoding": ("greedy" if args.beam == 1 else f"beam {args.beam}, length exponent {args.alpha}") +
              " for captions (max 31 tokens), greedy for answers (max 6)", "results": {}}
    for mode in modes:
        t0 = time.time()
        m, hyps = eval_captions(model, tok, feats, items, mode, beam=args.beam, alpha=args.alpha)
        v, ex = eval_vqa(model, tok, feats, vqa, mode)
        probe = ship_probe(model, tok, feats, items, mode)
        E = len(model.experts) if model.experts is not None else 0
        name = "dense decoder" if mode == "dense" else (f"MoE ({E} experts, learned fusion)" if E > 1 else
                                                        "single LoRA expert (control: stage-2 data/steps, no MoE)")
        result["results"][name] = {"captioning": m, "vqa": v, "ship_probe": probe, "vqa_examples": ex,
                                   "caption_examples": dict(list(hyps.items())[:8])}
        log(f"stage {args.stage} {name}: {json.dumps(m)} | VQA " +
            ", ".join(f"{k} {x['accuracy']:.3f} (n={x['n']})" for k, x in v.items()) + " | ship probe yes-rate " +
            "; ".join(f"{k} (n={x['n_images']}): " + ", ".join(f"{qq} {r:.2f}" for qq, r in x["yes_rate"].items())
                      for k, x in probe.items()) + f" | {time.time() - t0:.0f}s")
        with open(paths.runs_dir() / "caption" / f"val_captions_stage{args.stage}{args.tag}_{mode}"
                  f"{'_rg%d' % args.retrieval_grid if args.retrieval_grid else ''}.json", "w") as f:
            json.dump(hyps, f, indent=0)
    if not args.limit:
        suffix = (f"-{args.tag}" if args.tag else "") + \
            (f"_retrieval-grid{args.retrieval_grid}" if args.retrieval_grid else "") + \
            (f"_beam{args.beam}" if args.beam > 1 else "")
        with open(HERE / f"metrics_stage{args.stage}{suffix}.json", "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
