"""Two diagnostics of the shipped retrieval towers on RSICD val (nothing here is shipped):

1. Re-ranking by caption likelihood: re-score the dual encoder's top-K images of each caption (and the
   top-5K captions of each image) with log p(caption | image) under our RS-MoE caption model (stage 1 dense
   decoder, or the stage 2 expert mixture), combined as  w * cosine + log p(t|i) - pmi * log p(t),
   log p(t) estimated as the log-mean-exp of log p(t|i) over the caption's top-K images.
2. Scene-class ceiling: the recalls of a perfect scene classifier (RSICD labels.json) alone, and added to
   the dual encoder's similarity; this bounds what better *scene* recognition alone could give.
3. Query expansion through a TRAIN bank (session 12): a caption query finds its k nearest train images by
   text-text similarity to each train image's mean caption embedding, and moves towards the softmax(s/tau)
   weighted mean of their image embeddings, q' = norm(q + lam * v); an image query does the same through
   image-image similarity towards their caption means. Only train data is in the bank, so it could run in
   the app. Settings are compared on two random halves of val (each half its own gallery), so a choice made
   on one half is checked on the other. Reads the dumps of `locked_image` (models/cache/locked/tokens) and its caption embeddings.

    npm run cli -- eval retrieval --jsonl ../shared/data/rsicd/val.jsonl --dump models/runs/retrieval-study/sim_val.f32
    /usr/bin/python3 -m models.retrieval.rerank_study ceiling
    /usr/bin/python3 -m models.retrieval.rerank_study score --stage 1 --k 20   # ~1 h on one CPU core
    /usr/bin/python3 -m models.retrieval.rerank_study rerank --stage 1 --k 20
    /usr/bin/python3 -m models.retrieval.rerank_study bank   # ~5 min
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from ..rslens import paths
from ..rslens.data import read_split
from .evaluate import recall_ranks
from .locked_image import shipped_text_embeddings

OUT = paths.runs_dir() / "retrieval-study"


def load_similarity():
    items = read_split("val")
    t_img = np.array([i for i, it in enumerate(items) for _ in it.captions])
    sim = np.fromfile(OUT / "sim_val.f32", dtype=np.float32).reshape(len(items), len(t_img))
    return items, t_img, sim


def recalls(i2t_ranks, t2i_ranks):
    a = [100 * float((np.asarray(i2t_ranks) < k).mean()) for k in (1, 5, 10)]
    b = [100 * float((np.asarray(t2i_ranks) < k).mean()) for k in (1, 5, 10)]
    return {"i2t": a, "t2i": b, "mR": float(np.mean(a + b))}


def full_ranks(S, t_img):
    """Ranks of the full (not re-ranked) ordering; RSICD val has 5 captions per image, in image order."""
    assert (t_img == np.arange(len(t_img)) // 5).all()
    return recall_ranks(S, 5)


def ceiling() -> None:
    items, t_img, sim = load_similarity()
    cls = sorted({it.label for it in items})
    li = np.array([cls.index(it.label) for it in items])
    same = (li[:, None] == li[t_img][None, :]).astype(np.float32)
    rng = np.random.default_rng(0)
    rows = {
        "dual encoder": recalls(*full_ranks(sim, t_img)),
        "perfect scene class, random order inside the class": recalls(
            *full_ranks(same + 1e-3 * rng.random(sim.shape).astype(np.float32), t_img)),
        "perfect scene class, dual encoder order inside the class": recalls(*full_ranks(sim + 10 * same, t_img)),
    }
    rows["dual encoder: share of captions whose top-1 image has the caption's scene class"] = float(
        (li[sim.argmax(0)] == li[t_img]).mean())
    print(json.dumps(rows, indent=1))


@torch.no_grad()
def score(stage: int, k: int) -> None:
    from ..caption.data import CAPTION_INSTRUCTION
    from ..caption.train import Features, Tok, collate, load_stage, make_example
    items, t_img, sim = load_similarity()
    model, _ = load_stage(stage)
    model.eval()
    feats = Features("val")
    tok = Tok()
    caps = [c for it in items for c in it.captions]
    ins, im, seq, lab = collate([make_example(tok, CAPTION_INSTRUCTION, c, model.dense_role) for c in caps])
    mem = model.encode(feats.get([feats.row[it.image] for it in items]), ins[:1].expand(len(items), -1),
                       im[:1].expand(len(items), -1))[0]
    prior = model.router(ins[:1], im[:1])[1].log_softmax(-1)[0]

    def loglik(ci: np.ndarray, ii: np.ndarray) -> np.ndarray:
        n = int((lab[ci] >= 0).sum(1).max()) + int((lab[0] < 0).sum())  # trim padding
        m, s, l = mem[ii], seq[ci][:, :n], lab[ci][:, :n]
        valid, tgt = l >= 0, l.clamp_min(0).unsqueeze(-1)
        if stage == 1:
            lp = model.dense_logits(m, s).log_softmax(-1).gather(-1, tgt).squeeze(-1)
        else:  # the expert mixture used for captions (as in stage-2 training)
            outs = [model.expert_logits(e, m, s) for e in range(len(model.experts))]
            tok_lp = torch.stack([o[0].log_softmax(-1).gather(-1, tgt).squeeze(-1) for o in outs], -1)
            w = (torch.stack([o[1] for o in outs], -1) + prior).log_softmax(-1)
            lp = torch.logsumexp(w + tok_lp, -1)
        return (lp * valid).sum(1).numpy()

    def run(ci, ii, label):
        order = np.argsort([len(caps[c]) for c in ci], kind="stable")  # similar lengths per batch
        out = np.empty(len(ci), np.float32)
        t0 = time.time()
        for s in range(0, len(ci), 1024):
            b = order[s:s + 1024]
            out[b] = loglik(torch.from_numpy(ci[b]), torch.from_numpy(ii[b]))
        print(f"{label}: {len(ci)} pairs in {time.time() - t0:.0f} s", flush=True)
        return out

    topi = np.argsort(-sim.T, axis=1, kind="stable")[:, :k]
    ll = run(np.repeat(np.arange(len(caps)), k), topi.reshape(-1), "text->image").reshape(len(caps), k)
    topt = np.argsort(-sim, axis=1, kind="stable")[:, :5 * k]
    ll2 = run(topt.reshape(-1), np.repeat(np.arange(len(items)), 5 * k), "image->text").reshape(len(items), 5 * k)
    np.savez(OUT / f"loglik_stage{stage}_k{k}.npz", topi=topi, LL=ll, topt=topt, LL2=ll2)


def rerank(stage: int, k: int) -> None:
    items, t_img, sim = load_similarity()
    d = np.load(OUT / f"loglik_stage{stage}_k{k}.npz")
    topi, ll, topt, ll2 = d["topi"], d["LL"], d["topt"], d["LL2"]
    m = ll.max(1, keepdims=True)
    log_pt = (m + np.log(np.exp(ll - m).mean(1, keepdims=True)))[:, 0]
    base_i2t, base_t2i = full_ranks(sim, t_img)

    def ranks(w, pmi):
        i2t, t2i = [], []
        for i in range(len(items)):
            cand = topt[i]
            order = cand[np.argsort(-(w * sim[i, cand] + ll2[i] - pmi * log_pt[cand]), kind="stable")]
            hit = np.where(t_img[order] == i)[0]
            i2t.append(int(hit[0]) if len(hit) else base_i2t[i])
        for t in range(len(t_img)):
            cand = topi[t]
            order = cand[np.argsort(-(w * sim[cand, t] + ll[t]), kind="stable")]
            hit = np.where(order == t_img[t])[0]
            t2i.append(int(hit[0]) if len(hit) else base_t2i[t])
        return i2t, t2i

    print(f"dual encoder alone: {recalls(base_i2t, base_t2i)['mR']:.2f}")
    for w in (0, 10, 20, 30, 50, 80):
        for pmi in (0, 0.5, 1.0):
            r = recalls(*ranks(w, pmi))
            print(f"w={w:<3} pmi={pmi:<4} i2t " + "/".join(f"{x:.2f}" for x in r["i2t"]) +
                  " t2i " + "/".join(f"{x:.2f}" for x in r["t2i"]) + f"  mR {r['mR']:.2f}", flush=True)


def bank_expansion() -> None:
    dump = paths.cache_dir() / "locked" / "tokens"
    meta = json.loads((dump / "train.json").read_text())
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    views = [meta["views"].index(v) for v in ("id", "rot90")]  # the app's test-time views
    train_img = unit(np.fromfile(dump / "train.images.f32", np.float32).reshape(len(meta["images"]), -1, meta["dim"])[:, views].mean(1))
    train_cap = unit(shipped_text_embeddings(read_split("train"), dump / "train").numpy().reshape(len(meta["images"]), 5, -1).mean(1))
    n_val = len(json.loads((dump / "val.json").read_text())["images"])
    val_img = unit(np.fromfile(dump / "val.images.f32", np.float32).reshape(n_val, -1, meta["dim"]).mean(1))
    val_txt = shipped_text_embeddings(read_split("val"), dump / "val").numpy()

    def expand(q, keys, values, k, tau, lam):
        s = q @ keys.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        w = np.exp((np.take_along_axis(s, top, 1) - s.max(1, keepdims=True)) / tau)
        v = unit(np.einsum("qk,qkd->qd", w / w.sum(1, keepdims=True), values[top]))
        return unit(q + lam * v)

    def mr(images, setting):
        img, txt = val_img[images], val_txt[(images[:, None] * 5 + np.arange(5)).ravel()]
        if setting is None:
            return recalls(*recall_ranks(img @ txt.T))["mR"]
        i2t, _ = recall_ranks(expand(img, train_img, train_cap, *setting) @ txt.T)
        _, t2i = recall_ranks(img @ expand(txt, train_cap, train_img, *setting).T)
        return recalls(i2t, t2i)["mR"]

    halves = np.split(np.random.default_rng(0).permutation(n_val), [n_val // 2])
    halves = [np.sort(h) for h in halves]
    print(f"full val, no expansion: mR {mr(np.arange(n_val), None):.2f}")
    print("k tau lam | half A mR | half B mR   (no expansion: "
          + " | ".join(f"{mr(h, None):.2f}" for h in halves) + ")")
    for k, tau, lam in ((5, 0.05, 0.5), (20, 0.05, 0.5), (20, 0.05, 1.0), (50, 0.02, 1.0)):
        print(k, tau, lam, "|", " | ".join(f"{mr(h, (k, tau, lam)):.2f}" for h in halves), flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["ceiling", "score", "rerank", "bank"])
    ap.add_argument("--stage", type=int, default=1)
    ap.add_argument("--k", type=int, default=20)
    a = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("RSLENS_THREADS", "1")))
    OUT.mkdir(parents=True, exist_ok=True)
    {"ceiling": ceiling, "score": lambda: score(a.stage, a.k), "rerank": lambda: rerank(a.stage, a.k), "bank": bank_expansion}[a.what]()


if __name__ == "__main__":
    main()
