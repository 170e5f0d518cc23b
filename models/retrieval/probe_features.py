"""Feature probe: which frozen image features carry the within-scene detail RSICD captions describe?

    /usr/bin/python3 -m models.retrieval.probe_features extract [--splits val,train]
    /usr/bin/python3 -m models.retrieval.probe_features probe --sets m224,m448 [--text bow|transformer]
    /usr/bin/python3 -m models.retrieval.probe_features extract224   # 224 px only: m224, m224max, m224gem (~4 min)
    ... probe --sets m224 [--class-group N] [--soft A --soft-tau T]   # same-class batches, tf-idf soft targets

`extract` runs, once per RSICD image (original view), the frozen backbones at several input
scales and stores pooled vectors (float16, models/cache/probe/<split>_<name>.npy):
  m224      MobileNetV2 final grid at 224 px, mean over the 7x7 grid        [1280]
  m448      the same backbone on the image upsampled to 448 px (14x14 grid)  [1280]
  m448max   max over the 14x14 grid at 448 px                               [1280]
  mid448    block outputs at 448 px (features[6], [13], [16], [17]), mean     [32+96+160+320]
  g448      the 448-px grid average-pooled to 7x7 (drop-in for the training cache) [1280,7,7]
  yolox     YOLOX-Nano (COCO) at 448 px: PAN outputs mean+max                 [2*(64+128+256)]
  ycls      YOLOX-Nano class evidence: per class max and sum of obj*cls     [160]
`probe` trains a small dual encoder on a chosen concatenation (fixed recipe, seed 0) and
prints val R@K / mR, to compare feature sets with everything else held equal.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import Linear

from ..rslens import paths
from ..rslens.data import load_image_uint8, read_split
from ..rslens.mobilenet import mobilenet_v2_from_tflite, normalize_uint8
from ..rslens.utils import log_to_file

SETS = {"m224": (1280,), "m448": (1280,), "m448max": (1280,), "mid448": (608,), "g448": (1280, 7, 7),
        "yolox": (896,), "ycls": (160,)}
# `extract224` (fast, 224 px only): other poolings of the same 7x7 grid as m224
POOLS224 = {"m224max": (1280,), "m224gem": (1280,)}


def probe_dir():
    return paths.cache_dir() / "probe"


def _yolox():
    from ..detection.yolox import YOLOXNano, load_yolox_onnx
    m = YOLOXNano(80)
    load_yolox_onnx(m, str(paths.shared_dir() / "weights" / "yolox_nano_coco.onnx"), log=lambda *_: None)
    return m.eval()


def _order(split: str, n: int) -> np.ndarray:
    """Train images are processed in a fixed random order, so that a completed prefix is a random
    subset that can be probed while extraction goes on."""
    return np.random.default_rng(0).permutation(n) if split == "train" else np.arange(n)


def progress(split: str) -> int:
    p = probe_dir() / f"{split}.progress"
    return int(p.read_text()) if p.exists() else 0


@torch.no_grad()
def extract(splits, batch: int = 16) -> None:
    torch.set_num_threads(2)
    out = probe_dir()
    out.mkdir(parents=True, exist_ok=True)
    log = log_to_file(out / "extract.log")
    mnv2 = mobilenet_v2_from_tflite(str(paths.mobilenet_tflite())).features.eval().to(memory_format=torch.channels_last)
    yx = _yolox().to(memory_format=torch.channels_last)
    from ..detection.yolox import flatten_levels
    cl = torch.channels_last
    for split in splits:
        items = read_split(split)
        order = _order(split, len(items))
        start = progress(split)
        if start >= len(items):
            log(f"{split}: done already")
            continue
        arrs = {k: np.lib.format.open_memmap(out / f"{split}_{k}.npy", mode="r+" if start else "w+",
                                             dtype=np.float16, shape=(len(items),) + shp) for k, shp in SETS.items()}
        t0 = time.time()
        for s in range(start, len(items), batch):
            idx = order[s:s + batch]
            u8 = torch.stack([load_image_uint8(paths.rsicd_dir() / items[i].image) for i in idx]).float()
            x = normalize_uint8(u8)
            g224 = mnv2(x.contiguous(memory_format=cl))
            put = lambda k, v: arrs[k].__setitem__(idx, v.float().numpy())  # noqa: E731
            put("m224", g224.mean((2, 3)))
            h = F.interpolate(x, size=(448, 448), mode="bilinear", align_corners=False).contiguous(memory_format=cl)
            mids = []
            for i, blk in enumerate(mnv2):
                h = blk(h)
                if i in (6, 13, 16, 17):
                    mids.append(h.mean((2, 3)))
            put("m448", h.mean((2, 3)))
            put("m448max", h.amax((2, 3)))
            put("mid448", torch.cat(mids, 1))
            put("g448", F.avg_pool2d(h, 2))
            # YOLOX: BGR 0..255 at 448 (a multiple of 32)
            yin = F.interpolate(u8.flip(1), size=(448, 448), mode="bilinear", align_corners=False).contiguous(memory_format=cl)
            pans = yx.backbone(yin)
            put("yolox", torch.cat([p.mean((2, 3)) for p in pans] + [p.amax((2, 3)) for p in pans], 1))
            pr = flatten_levels(yx.head(pans))
            ev = torch.sigmoid(pr[..., 4:5]) * torch.sigmoid(pr[..., 5:])  # [N, A, 80]
            put("ycls", torch.cat([ev.amax(1), torch.log1p(ev.sum(1))], 1))
            n = s + len(idx)
            if (n // batch) % 25 == 0 or n == len(items):
                for a in arrs.values():
                    a.flush()
                (out / f"{split}.progress").write_text(str(n))
                log(f"{split}: {n}/{len(items)} ({(n - start) / (time.time() - t0):.2f} img/s)")
        log(f"{split}: {len(items)} images in {time.time() - t0:.0f}s")


def load_sets(split: str, names, rows=None):
    return np.concatenate([np.load(probe_dir() / f"{split}_{n}.npy", mmap_mode="r")[rows].reshape(
        len(rows), -1).astype(np.float32) for n in names], 1)


class BowText(nn.Module):
    """Bag of word pieces (mean of embeddings, real tokens only) -> MLP: a fast text encoder for probing."""

    def __init__(self, vocab: int, dim: int = 256, out: int = 256):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), Linear(dim, 768), nn.GELU(), Linear(768, out))

    def forward(self, ids, mask):
        m = mask.float().unsqueeze(-1)
        x = (self.emb(ids) * m).sum(1) / m.sum(1).clamp_min(1)
        return self.mlp(x)


class ImageHead(nn.Module):
    def __init__(self, cin: int, out: int = 256, hidden: int = 768, drop: float = 0.1):
        super().__init__()
        self.ln = nn.LayerNorm(cin)
        self.fc1, self.fc2 = Linear(cin, hidden), Linear(hidden, out)
        self.skip = Linear(cin, out, bias=False)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.ln(x)
        return self.skip(x) + self.fc2(self.drop(F.gelu(self.fc1(x))))


def class_grouped_order(labels, group: int, gen: torch.Generator) -> torch.Tensor:
    """An epoch's image order in which runs of `group` consecutive images share a scene class, so that
    each batch holds many same-class negatives (group 1: a plain random order)."""
    if group <= 1:
        return torch.randperm(len(labels), generator=gen)
    chunks = []
    for c in sorted(set(labels)):
        idx = torch.tensor([i for i, l in enumerate(labels) if l == c])
        idx = idx[torch.randperm(len(idx), generator=gen)]
        chunks += list(idx.split(group))
    order = torch.randperm(len(chunks), generator=gen)
    return torch.cat([chunks[int(k)] for k in order])


def tfidf_vectors(captions) -> torch.Tensor:
    """L2-normalised tf-idf word vectors of captions (words seen in >= 2 captions), float16 [N, V]."""
    import re
    from collections import Counter
    toks = [re.findall(r"[a-z]+", c.lower()) for c in captions]
    df = Counter(w for t in toks for w in set(t))
    vocab = {w: i for i, w in enumerate(sorted(w for w, n in df.items() if n >= 2))}
    idf = torch.tensor([math.log(len(toks) / df[w]) for w in sorted(vocab)])
    out = torch.zeros(len(toks), len(vocab), dtype=torch.float16)
    for r, t in enumerate(toks):
        for w, n in Counter(t).items():
            if w in vocab:
                out[r, vocab[w]] = n * float(idf[vocab[w]])
    return (out.float() / out.float().norm(dim=1, keepdim=True).clamp_min(1e-6)).half()


def soft_info_nce(img, txt, logit_scale, text_sim, alpha: float, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE whose targets spread `alpha` of the mass over the batch's captions by their
    word similarity to the pair's own caption (near-identical captions are partly positives)."""
    logits = logit_scale.exp().clamp(max=100.0) * img @ txt.t()
    target = (1 - alpha) * torch.eye(len(img)) + alpha * torch.softmax(text_sim / tau, dim=1)
    return 0.5 * (-(target * logits.log_softmax(1)).sum(1).mean() - (target * logits.t().log_softmax(1)).sum(1).mean())


def probe(names, text: str, epochs: int, seed: int, feat_drop: float, train_limit=None, class_group: int = 1,
          soft: float = 0.0, soft_tau: float = 0.05) -> dict:
    from .evaluate import recall_metrics
    from .losses import info_nce
    from .model import TextTower
    from .train import tokenize_split
    from .vocab import load_tokenizer
    torch.manual_seed(seed)
    tok = load_tokenizer()
    tr, va = read_split("train"), read_split("val")
    assert progress("val") == len(va), "val extraction incomplete"
    rows = np.sort(_order("train", len(tr))[:min(train_limit or len(tr), progress("train"))])
    tr = [tr[i] for i in rows]
    xtr = torch.from_numpy(load_sets("train", names, rows))
    xva = torch.from_numpy(load_sets("val", names, np.arange(len(va))))
    ids, mask = tokenize_split(tr, tok.max_length)
    ids, mask = ids.view(len(tr), 5, -1), mask.view(len(tr), 5, -1)
    vids, vmask = tokenize_split(va, tok.max_length)
    tfidf = tfidf_vectors([c for it in tr for c in it.captions]).view(len(tr), 5, -1) if soft > 0 else None
    img = ImageHead(xtr.shape[1])
    txt = BowText(tok.vocab_size) if text == "bow" else TextTower(tok.vocab_size, tok.max_length, 256, 3, 4, 768, 256, 0.1)
    scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    params = list(img.parameters()) + list(txt.parameters()) + [scale]
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.05, betas=(0.9, 0.98))
    bs = 128
    spe = len(tr) // bs
    total = spe * epochs
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for ep in range(epochs):
        img.train(); txt.train()
        perm = class_grouped_order([it.label for it in tr], class_group, gen)
        cap = torch.randint(5, (len(tr),), generator=gen)
        for s in range(spe):
            step = ep * spe + s
            f = (step + 1) / spe if step < spe else 0.5 * (1 + math.cos(math.pi * (step - spe) / max(1, total - spe)))
            for g in opt.param_groups:
                g["lr"] = 5e-4 * f
            b = perm[s * bs:(s + 1) * bs]
            x = xtr[b]
            if feat_drop > 0:
                x = F.dropout(x, feat_drop)
            i_, m_ = ids[b, cap[b]], mask[b, cap[b]]
            L = int(m_.sum(1).max())
            i_, m_ = i_[:, :L], m_[:, :L]
            same = (i_[:, None] == i_[None]).all(-1)
            same.fill_diagonal_(False)
            te = txt(i_, m_) if text == "bow" else _tt(txt, i_, m_)
            if soft > 0:
                v = tfidf[b, cap[b]].float()
                loss = soft_info_nce(F.normalize(img(x), dim=-1), F.normalize(te, dim=-1), scale, v @ v.t(), soft, soft_tau)
            else:
                loss = info_nce(F.normalize(img(x), dim=-1), F.normalize(te, dim=-1), scale, same)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                scale.clamp_(0, math.log(100))
    img.eval(); txt.eval()
    with torch.no_grad():
        ie = F.normalize(img(xva), dim=-1)
        te = torch.cat([F.normalize(txt(vids[s:s + 1024], vmask[s:s + 1024]) if text == "bow"
                                    else _tt(txt, vids[s:s + 1024], vmask[s:s + 1024]), dim=-1)
                        for s in range(0, len(vids), 1024)])
    sim = ie @ te.t()
    res = recall_metrics(sim.numpy())
    res["train_s"] = round(time.time() - t0, 1)
    # Hubness correction with a bank of TRAIN queries (inverted softmax, beta = the learned logit scale,
    # no value tuned on val): an image that many train captions like is discounted for text queries,
    # a caption that many train images like is discounted for image queries.
    with torch.no_grad():
        beta = float(scale.exp())
        bank_t = torch.cat([F.normalize(txt(ids[:, 0][s:s + 1024], mask[:, 0][s:s + 1024]) if text == "bow"
                                        else _tt(txt, ids[:, 0][s:s + 1024], mask[:, 0][s:s + 1024]), dim=-1)
                            for s in range(0, len(ids), 1024)])
        bank_i = F.normalize(img(xtr), dim=-1)
        img_hub = torch.logsumexp(beta * ie @ bank_t.t(), 1)   # [n_val_images]
        txt_hub = torch.logsumexp(beta * te @ bank_i.t(), 1)   # [n_val_captions]
        # t2i ranks columns of sim (fixed caption) over images; i2t ranks rows over captions
        t2i = recall_metrics((beta * sim - img_hub[:, None]).numpy())
        i2t = recall_metrics((beta * sim - txt_hub[None, :]).numpy())
    hub = {k: (i2t if k.startswith("i2t") else t2i)[k] for k in res if "@" in k}
    hub["mR"] = float(np.mean(list(hub.values())))
    res["hub_mR"] = hub["mR"]
    res["hub"] = hub
    res["n_train"] = len(tr)
    return res


def _tt(txt, ids, mask):
    from .model import masked_mean
    return masked_mean(txt.tokens(ids, mask), mask.float())


@torch.no_grad()
def extract224(splits, batch: int = 32) -> None:
    """Max and generalised-mean (p = 3) pooling of the 224-px grid, for every image of each split."""
    torch.set_num_threads(2)
    out = probe_dir()
    out.mkdir(parents=True, exist_ok=True)
    mnv2 = mobilenet_v2_from_tflite(str(paths.mobilenet_tflite())).features.eval().to(memory_format=torch.channels_last)
    for split in splits:
        items = read_split(split)
        arrs = {k: np.zeros((len(items),) + shp, np.float16) for k, shp in {**POOLS224, "m224": (1280,)}.items()}
        t0 = time.time()
        for s in range(0, len(items), batch):
            idx = np.arange(s, min(len(items), s + batch))
            u8 = torch.stack([load_image_uint8(paths.rsicd_dir() / items[i].image) for i in idx]).float()
            g = mnv2(normalize_uint8(u8).contiguous(memory_format=torch.channels_last)).float()
            arrs["m224"][idx] = g.mean((2, 3)).numpy()
            arrs["m224max"][idx] = g.amax((2, 3)).numpy()
            arrs["m224gem"][idx] = g.clamp_min(1e-6).pow(3).mean((2, 3)).pow(1 / 3).numpy()
        # m224 and the progress marker belong to `extract` when it has run: never overwrite them, so a
        # half-done `extract` still reads as half done (the new pools cover every image either way)
        for k, a in arrs.items():
            if k in POOLS224 or not (out / f"{split}_{k}.npy").exists():
                np.save(out / f"{split}_{k}.npy", a)
        if not (out / f"{split}.progress").exists():
            (out / f"{split}.progress").write_text(str(len(items)))
        print(f"{split}: {len(items)} images in {time.time() - t0:.0f}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=("extract", "extract224", "probe"))
    ap.add_argument("--splits", default="val,train")
    ap.add_argument("--sets", default="m224")
    ap.add_argument("--text", default="bow", choices=("bow", "transformer"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--feat-drop", type=float, default=0.0)
    ap.add_argument("--class-group", type=int, default=1, help="batches built from runs of N same-class images")
    ap.add_argument("--soft", type=float, default=0.0, help="soft targets: share of mass spread by caption tf-idf similarity")
    ap.add_argument("--soft-tau", type=float, default=0.05, help="temperature of that spread")
    ap.add_argument("--train-limit", type=int, default=None, help="probe on the first N of the random train order")
    args = ap.parse_args()
    if args.cmd == "extract":
        extract(args.splits.split(","))
        return
    if args.cmd == "extract224":
        extract224(args.splits.split(","))
        return
    res = probe(args.sets.split(","), args.text, args.epochs, args.seed, args.feat_drop, args.train_limit, args.class_group, args.soft, args.soft_tau)
    print(f"{args.sets} text={args.text} ep={args.epochs} seed={args.seed} fd={args.feat_drop} cg={args.class_group} soft={args.soft}: "
          + " ".join(f"{k} {v:.2f}" for k, v in res.items() if not isinstance(v, dict)))
    print(json.dumps({"sets": args.sets, "text": args.text, **res}))


if __name__ == "__main__":
    main()
