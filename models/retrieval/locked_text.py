"""A new text tower trained against the LOCKED shipped image tower (LiT with the roles swapped).

    npx tsx models/retrieval/dump_embeddings.ts --jsonl ../shared/data/rsicd/train.jsonl \
        --views id,hflip,vflip,rot90,rot180,rot270,transpose,antitranspose --out models/cache/locked/train
    npx tsx models/retrieval/dump_embeddings.ts --jsonl ../shared/data/rsicd/val.jsonl \
        --views id,rot90 --out models/cache/locked/val --texts
    /usr/bin/python3 -m models.retrieval.locked_text --run-dir models/runs/lt-s0 --seed 0
    /usr/bin/python3 -m models.retrieval.locked_text --arch bow --run-dir models/runs/lt/bow-s0 ...   # a bag of words (bow_text.py)
    /usr/bin/python3 -m models.retrieval.locked_text fuse --run models/runs/lt/bow-s0   # fused with the shipped text side

Why: the image tower is the expensive part of search (it runs on every indexed image), the text tower
runs once per query. With the image side locked, its embeddings of every train image (8 dihedral
views, from the exported float16 ONNX, so exactly what the app indexes) are computed once, and a text
step costs only the text tower. That makes two things cheap on the CPU: many epochs, and
text->image softmax over the WHOLE train gallery (8,734 images, one random view each per step)
instead of the 64 images of a joint-training batch, so the hard negatives of the same scene class are
always in the denominator. Image->text uses the batch (each caption's image against the batch's captions).

A caption whose exact text (lower-cased, stripped) also belongs to other images does not count those
images as negatives. Val (RSICD val, never trained on): the shipped image tower's embeddings in the
manifest's test-time views (id, rot90), averaged as the app does; the shipped text tower's score on
the same dump is reported as the baseline. Seeded; a checkpoint per epoch (RUN/last.pt, atomic),
resumed automatically; log in RUN/train.log. CPU threads: RSLENS_THREADS (default 2).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..rslens import paths
from ..rslens.data import read_split
from ..rslens.utils import count_params, get_device, load_checkpoint, log_to_file, rng_state, save_checkpoint, seed_everything
from .evaluate import embed_texts, fmt, recall_metrics
from .bow_text import BagOfWordsText, FusedText
from .model import GatedAdapter, TextTower, masked_mean, matmul_t
from .train import restore, tokenize_split, warmup_cosine, word_dropout
from .vocab import load_tokenizer

HERE = Path(__file__).resolve().parent


class LockedTextModel(nn.Module):
    """Text side alone, in the locked image tower's space: K text towers (K = 1 for a new tower; K = 2
    for the shipped ensemble, each with its HarMA adapters and the text gate of its shared adapter),
    embedding = concatenation of the towers' L2-normalised embeddings / sqrt(K), as EnsembleTextTower."""

    def __init__(self, vocab_size: int, member_dim: int, members: int = 1, max_len: int = 32, width: int = 256,
                 layers: int = 3, heads: int = 4, mlp: int = 768, dropout: float = 0.1, adapters: bool = False,
                 init_temperature: float = 0.05):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, member_dim=member_dim, members=members, max_len=max_len, width=width,
                           layers=layers, heads=heads, mlp=mlp, dropout=dropout, adapters=adapters)
        self.towers = nn.ModuleList([TextTower(vocab_size, max_len, width, layers, heads, mlp, member_dim, dropout)
                                     for _ in range(members)])
        self.shared = None
        if adapters:
            for t in self.towers:
                t.add_adapters()
            self.shared = nn.ModuleList([GatedAdapter(member_dim, n_gates=2) for _ in range(members)])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32)
        out = []
        for k, tower in enumerate(self.towers):
            tok = tower.tokens(input_ids, attention_mask)
            if self.shared is not None:
                tok = self.shared[k](tok, mask, gate=1)  # gate 1 = the text modality's gate
            out.append(F.normalize(masked_mean(tok, mask), dim=-1))
        return torch.cat(out, 1) / math.sqrt(len(out))


def shipped_text_model(text_onnx: Path, heads: int = 4, dropout: float = 0.1) -> LockedTextModel:
    """Rebuild the shipped text side (members, their adapters, the text gates) from its ONNX file.

    Named initialisers load by name; the Linear weights (exported as MatMul with the weight
    transposed) and the gates (the Sigmoid inputs) come in trace order: per block its 4
    Linears then its adapter's 4, then the projection, then the shared adapter's 4; gates per
    adapter, then the shared one. Shapes are asserted; the caller checks outputs against the graph."""
    from .import_onnx import Graph, _set, linear_layers
    g = Graph(text_onnx)
    # a `fuse` export (m.primary. + m.secondary.): its primary (transformer) side is rebuilt, the bag is ignored
    fused = any(k.startswith("m.secondary.") for k in g.values)
    # names: an ensemble export (members.K.text. / members.K.shared.) or a locked_text export (m.towers.K. / m.shared.K.)
    if fused:
        text_prefix, shared_prefix = "m.primary.towers.{}.", "m.primary.shared.{}."
        n_members = len({k.split(".")[3] for k in g.values if k.startswith("m.primary.towers.")})
    elif any(k.startswith("members.") for k in g.values):
        text_prefix, shared_prefix = "members.{}.text.", "members.{}.shared."
        n_members = len({k.split(".")[1] for k in g.values if k.startswith("members.")})
    else:
        text_prefix, shared_prefix = "m.towers.{}.", "m.shared.{}."
        n_members = len({k.split(".")[2] for k in g.values if k.startswith("m.towers.")})
    t0 = g.named(text_prefix.format(0))
    vocab_size, width = t0["tok.weight"].shape
    layers = len({k.split(".")[1] for k in t0 if k.startswith("blocks.")})
    adapters = any(k.startswith("adapters.") for k in t0)
    member_dim = int(g.named(shared_prefix.format(0))["up.bias"].shape[0]) if adapters else None
    mm = [w for (w,) in g.weights_of("MatMul")]
    if fused:
        # the bag comes after the primary in trace order; its MLP layers export as Gemm, its projection as the last MatMul
        assert sum(n.op_type == "Gemm" for n in g.g.node) == 2, "unexpected fused text graph"
        mm = mm[:-1]
    if member_dim is None:
        member_dim = int(mm[len(mm) // n_members - 1].shape[1])
    model = LockedTextModel(int(vocab_size), member_dim, n_members, int(t0["pos"].shape[0]), int(width), layers, heads,
                            int(t0["blocks.0.mlp.0.bias"].shape[0]), dropout, adapters)
    gates = [g.values[n.input[0]] for n in g.g.node if n.op_type == "Sigmoid" and n.input[0] in g.values]
    per, per_gate = len(mm) // n_members, len(gates) // n_members
    for k, tower in enumerate(model.towers):
        order = []
        for i, blk in enumerate(tower.blocks):
            order += linear_layers(blk) + (linear_layers(tower.adapters[i]) if adapters else [])
        order.append(tower.proj)
        if adapters:
            order += linear_layers(model.shared[k])
        assert len(order) == per, (len(order), per)
        for lin, w in zip(order, mm[k * per:(k + 1) * per]):
            _set(lin.weight, w.T, f"member {k} linear")
        owned = {id(lin.weight) for lin in order}
        named = g.named(text_prefix.format(k))
        for name, p in tower.named_parameters():
            if id(p) not in owned and not name.endswith(".gate"):
                _set(p, named[name], f"text.{name}")
        if adapters:
            shared_named = g.named(shared_prefix.format(k))
            for name, p in model.shared[k].named_parameters():
                if id(p) not in owned and name != "gate":
                    _set(p, shared_named[name], f"shared.{name}")
            mine = gates[k * per_gate:(k + 1) * per_gate]
            assert len(mine) == len(tower.blocks) + 1, len(mine)
            for i, a in enumerate(tower.adapters):
                _set(a.gate[0], mine[i], f"adapter {i} gate")
            _set(model.shared[k].gate[1], mine[-1], "shared text gate")
    return model


def build_text_model(config: dict) -> nn.Module:
    """A text model from a checkpoint's config: the transformer side (LockedTextModel) or the bag (--arch bow)."""
    if config.get("arch") == "bow":  # its config also records arch, and members = 1 for embed_sorted
        return BagOfWordsText(**{k: v for k, v in config.items() if k not in ("arch", "members")})
    return LockedTextModel(**config)


def load_dump(prefix: Path) -> Tuple[dict, np.ndarray, np.ndarray | None]:
    """-> (meta, image embeddings [N,V,D], shipped text embeddings [M,D] or None)."""
    meta = json.loads(prefix.with_suffix(".json").read_text())
    n, v, d = len(meta["images"]), len(meta["views"]), meta["dim"]
    images = np.fromfile(f"{prefix}.images.f32", dtype=np.float32).reshape(n, v, d)
    texts_path = Path(f"{prefix}.texts.f32")
    texts = np.fromfile(texts_path, dtype=np.float32).reshape(-1, d) if texts_path.exists() else None
    return meta, images, texts


def text_keys(captions: List[str]) -> torch.Tensor:
    """caption row -> id of its exact text (lower-cased, stripped): equal ids, the same caption."""
    ids: Dict[str, int] = {}
    return torch.tensor([ids.setdefault(c.strip().lower(), len(ids)) for c in captions])


def drop_onnx_checks(meta: dict) -> None:
    """Remove retrieval.json's ONNX check results: they were measured on the graph being replaced."""
    for stale in ("val_metrics_onnx_fp16", "onnx_check_fp16", "val_metrics_onnx", "onnx_check"):
        meta.pop(stale, None)


def val_set(dump: Path) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray | None]:
    """-> (val image embeddings averaged over the dump's views [N,D], caption ids, mask, the dumped text embeddings or None)."""
    vmeta, val_views, dumped_txt = load_dump(dump / "val")
    val_items = read_split("val")
    assert vmeta["images"] == [it.image for it in val_items], "val dump does not match val.jsonl"
    vids, vmask = tokenize_split(val_items, load_tokenizer().max_length)
    return view_mean(val_views), vids, vmask, dumped_txt


def view_mean(images: np.ndarray) -> torch.Tensor:
    """[N,V,D] -> L2-normalised mean over the views [N,D] (the app's test-time-view average)."""
    return F.normalize(torch.from_numpy(images).mean(1), dim=-1)


def other_owners_with_same_text(captions: List[str], owner: np.ndarray) -> Dict[int, np.ndarray]:
    """caption row -> the OTHER images that have a caption with exactly this text (not negatives)."""
    by_text: Dict[str, set] = {}
    for row, c in enumerate(captions):
        by_text.setdefault(c.strip().lower(), set()).add(int(owner[row]))
    out = {}
    for row, c in enumerate(captions):
        others = by_text[c.strip().lower()] - {int(owner[row])}
        if others:
            out[row] = np.array(sorted(others), dtype=np.int64)
    return out


def gallery_loss(txt: torch.Tensor, gallery: torch.Tensor, rows: torch.Tensor, owner: torch.Tensor,
                 same_text: Dict[int, np.ndarray], scale: torch.Tensor) -> torch.Tensor:
    """Text->image cross-entropy over the whole gallery [N,D] for the captions `rows` (embedded as txt)."""
    logits = scale * matmul_t(txt, gallery)  # [B,N]
    r, c = [], []
    for i, row in enumerate(rows.tolist()):
        others = same_text.get(row)
        if others is not None:
            r.append(np.full(len(others), i))
            c.append(others)
    if r:
        logits = logits.index_put((torch.from_numpy(np.concatenate(r)), torch.from_numpy(np.concatenate(c))),
                                  torch.tensor(-1e4))
    return F.cross_entropy(logits, owner[rows])


def batch_i2t_loss(txt: torch.Tensor, img: torch.Tensor, not_negative: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Image->text cross-entropy inside the batch: row i = the image of caption i against the batch's captions."""
    logits = (scale * matmul_t(img, txt)).masked_fill(not_negative, -1e4)
    return F.cross_entropy(logits, torch.arange(len(txt)))


def bank_i2t_loss(txt: torch.Tensor, img: torch.Tensor, rows: torch.Tensor, bank: torch.Tensor, owner: torch.Tensor,
                  text_key: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Image->text over ALL train captions: row i = the image of caption rows[i] against the batch's
    captions (live, with gradient) and every other train caption from `bank` (embeddings from the step
    that last saw them, no gradient). Its own other captions and captions with the same text are no negatives."""
    o, k = owner[rows], text_key[rows]
    live_not_neg = ((o[:, None] == o[None, :]) | (k[:, None] == k[None, :])) & ~torch.eye(len(rows), dtype=torch.bool)
    live = (scale * matmul_t(img, txt)).masked_fill(live_not_neg, -1e4)
    with torch.no_grad():
        raw = matmul_t(img, bank)
        not_neg = (owner[None, :] == o[:, None]) | (text_key[None, :] == k[:, None])
        not_neg[:, rows] = True  # these are the live columns
    banked = (scale * raw).masked_fill(not_neg, -1e4)  # a finite fill: -inf would give the scale a NaN gradient
    return F.cross_entropy(torch.cat([live, banked], 1), torch.arange(len(rows)))


def length_bucketed_batches(lengths: torch.Tensor, batch: int, gen: torch.Generator, chunk: int = 50) -> List[torch.Tensor]:
    """A random epoch of caption rows in batches of similar length (each batch is padded only to its
    longest caption; on this CPU the text tower's cost is per padded token): shuffle, sort each run of
    `chunk` batches by length, cut it into batches, shuffle the batch order."""
    perm = torch.randperm(len(lengths), generator=gen)
    out = []
    for s in range(0, len(perm), batch * chunk):
        part = perm[s:s + batch * chunk]
        part = part[torch.argsort(lengths[part], stable=True)]
        out += list(part.split(batch))
    return [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]


@torch.no_grad()
def embed_sorted(model: LockedTextModel, ids: torch.Tensor, mask: torch.Tensor, device) -> torch.Tensor:
    """embed_texts in order of caption length (less padding), returned in the original order."""
    order = torch.argsort(mask.sum(1), stable=True)
    out = torch.empty(len(ids), model.config["members"] * model.config["member_dim"])
    out[order] = embed_texts(model, ids[order], mask[order], device)
    return out


@torch.no_grad()
def evaluate(model: LockedTextModel, val_img: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, device) -> Dict[str, float]:
    te = embed_sorted(model, ids, mask, device)
    model.train()
    return recall_metrics(matmul_t(val_img, te).numpy())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dump", default=None, help="folder of the dumps (default: models/cache/locked)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up epochs")
    ap.add_argument("--init", choices=("scratch", "shipped"), default="scratch",
                    help="a new tower (one member, random init) or a shipped text side (--init-onnx)")
    ap.add_argument("--init-onnx", default=None,
                    help="text tower ONNX that --init shipped rebuilds (default models/retrieval/text-tower-fp16.onnx); "
                         "runs meant to be averaged into a soup must share it")
    ap.add_argument("--arch", choices=("transformer", "bow"), default="transformer",
                    help="--init scratch: a transformer tower, or a bag of words + hashed bigrams (bow_text.py)")
    ap.add_argument("--buckets", type=int, default=8192, help="--arch bow: hashed bigram buckets")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=768)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--i2t-weight", type=float, default=0.5, help="loss = (1-w) * gallery t2i + w * i2t")
    ap.add_argument("--i2t-bank", action="store_true",
                    help="image->text against all train captions (a bank of their latest embeddings), not only the batch's")
    ap.add_argument("--word-drop", type=float, default=0.0,
                    help="caption augmentation: mask each word piece with this probability (train.word_dropout)")
    ap.add_argument("--eval-every", type=int, default=1)
    args = ap.parse_args(argv)

    torch.set_num_threads(int(os.environ.get("RSLENS_THREADS", "2")))
    device = get_device()
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    log = log_to_file(run / "train.log")
    dump = Path(args.dump) if args.dump else paths.cache_dir() / "locked"

    meta, train_img, _ = load_dump(dump / "train")
    train_items = read_split("train")
    assert meta["images"] == [it.image for it in train_items], "train dump does not match train.jsonl"
    val_img, vids, vmask, shipped_txt = val_set(dump)
    dim = meta["dim"]
    tok = load_tokenizer()
    ids, mask = tokenize_split(train_items, tok.max_length)
    captions = [c for it in train_items for c in it.captions]
    owner_np = np.array([i for i, it in enumerate(train_items) for _ in it.captions], dtype=np.int64)
    owner = torch.from_numpy(owner_np)
    same_text = other_owners_with_same_text(captions, owner_np)
    lengths = mask.sum(1)
    text_key = text_keys(captions)
    gallery_views = torch.from_numpy(train_img)  # [N,V,D]
    n_img, n_views = gallery_views.shape[:2]
    log(f"train gallery {n_img} images x {n_views} views x {dim}; {len(captions)} captions, "
        f"{len(same_text)} with their exact text on other images too; val {len(val_img)} images")
    if shipped_txt is not None:
        log(f"baseline, shipped text tower on the same val image embeddings: {fmt(recall_metrics((val_img @ torch.from_numpy(shipped_txt).t()).numpy()))}")

    seed_everything(args.seed)
    if args.init == "shipped":
        init_onnx = Path(args.init_onnx) if args.init_onnx else HERE / "text-tower-fp16.onnx"
        model = shipped_text_model(init_onnx, args.heads, args.dropout).to(device)
        assert model.config["vocab_size"] == tok.vocab_size and model.config["members"] * model.config["member_dim"] == dim
    elif args.arch == "bow":
        model = BagOfWordsText(tok.vocab_size, dim, args.width, args.buckets, args.dropout).to(device)
    else:
        model = LockedTextModel(tok.vocab_size, dim, 1, tok.max_length, args.width, args.layers, args.heads, args.mlp,
                                args.dropout).to(device)
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}  # no weight decay on tables
    decay = [p for p in model.parameters() if p.ndim >= 2 and id(p) not in embeddings]
    no_decay = [p for p in model.parameters() if not (p.ndim >= 2 and id(p) not in embeddings)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    log(f"args {vars(args)}; trainable parameters {count_params(model):,}")
    steps_per_epoch = math.ceil(len(captions) / args.batch)
    total, warm = steps_per_epoch * args.epochs, int(steps_per_epoch * args.warmup)
    start, history = 0, []
    ck = load_checkpoint(run / "last.pt")
    if ck is not None:
        start, history = restore(ck, model, opt)
        log(f"resumed after epoch {start}")
    if start == 0:
        log(f"epoch 0 (init {args.init}) | val {fmt(evaluate(model, val_img, vids, vmask, device))}")
    gen = torch.Generator().manual_seed(args.seed * 1000 + start)  # data order of each epoch from the seed
    bank = embed_sorted(model, ids, mask, device) if args.i2t_bank else None
    for epoch in range(start, args.epochs):
        model.train()
        t0, tot = time.time(), 0.0
        batches = length_bucketed_batches(lengths, args.batch, gen)
        for s, rows in enumerate(batches):
            step = epoch * steps_per_epoch + s
            for g in opt.param_groups:
                g["lr"] = args.lr * warmup_cosine(step, warm, total)
            m = mask[rows]
            L = int(m.sum(1).max())
            if args.word_drop > 0:  # after L: the dropped pieces are masked, the row keeps its length
                m = word_dropout(ids[rows], m, args.word_drop, gen)
            txt = model.encode_text(ids[rows, :L].to(device), m[:, :L].to(device))
            views = torch.randint(n_views, (n_img,), generator=gen)
            gallery = gallery_views[torch.arange(n_img), views].to(device)  # one random view per image
            scale = model.logit_scale.exp().clamp(max=100.0)
            loss = (1 - args.i2t_weight) * gallery_loss(txt, gallery, rows, owner, same_text, scale)
            if bank is not None:
                loss = loss + args.i2t_weight * bank_i2t_loss(txt, gallery[owner[rows]], rows, bank, owner, text_key, scale)
                bank[rows] = txt.detach()
            elif args.i2t_weight > 0:
                o, k = owner[rows], text_key[rows]
                not_neg = ((o[:, None] == o[None, :]) | (k[:, None] == k[None, :])) & ~torch.eye(len(rows), dtype=torch.bool)
                loss = loss + args.i2t_weight * batch_i2t_loss(txt, gallery[o], not_neg, scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100.0))
            tot += float(loss)
        rec = {"epoch": epoch + 1, "loss": tot / steps_per_epoch, "temperature": float(1 / model.logit_scale.exp()),
               "seconds": time.time() - t0}
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            rec["val"] = evaluate(model, val_img, vids, vmask, device)
        history.append(rec)
        log(f"epoch {epoch + 1}/{args.epochs} loss {rec['loss']:.4f} T {rec['temperature']:.4f} {rec['seconds']:.0f}s"
            + (f" | val {fmt(rec['val'])}" if "val" in rec else ""))
        save_checkpoint(run / "last.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                                          "history": history, "rng": rng_state(), "config": model.config,
                                          "args": vars(args)})
    (run / "summary.json").write_text(json.dumps({"args": vars(args), "config": model.config, "history": history}, indent=1))
    return 0


def export_text_onnx(model: nn.Module, out: Path, how: str) -> None:
    """model.encode_text -> out/text-tower.onnx (float32, gitignored) and text-tower-fp16.onnx (the stored weights)."""
    from ..rslens.onnx_export import export_onnx
    from .fp16 import to_fp16_storage
    from .model import TextTowerExport
    tok = load_tokenizer()
    texts = ["many planes are parked in an airport", "", "a big airport with many planes " * 10]
    ids, mask = tok.batch(texts)
    export_onnx(TextTowerExport(model), (ids, mask), out / "text-tower.onnx", ["input_ids", "attention_mask"], ["embedding"],
                extra_dynamic_axes={"input_ids": {1: "length"}, "attention_mask": {1: "length"}},
                doc="RS Lens retrieval text tower (CLIP BPE, compact vocab models/retrieval/vocab.json), " + how)
    to_fp16_storage(out / "text-tower.onnx", out / "text-tower-fp16.onnx")


def train_command(args: dict) -> str:
    """The locked_text command line that a checkpoint's recorded args came from."""
    return "/usr/bin/python3 -m models.retrieval.locked_text " + " ".join(
        f"--{k.replace('_', '-')} {v}" if not isinstance(v, bool) else f"--{k.replace('_', '-')}"
        for k, v in args.items() if v is not None and v is not False)  # not `v in (None, False)`: 0 == False


def export_main(argv) -> int:
    """`locked_text export --run RUN [--out DIR]`: RUN's last checkpoint -> DIR/text-tower.onnx (float32,
    gitignored) and text-tower-fp16.onnx (the shipped storage); records the run in DIR/retrieval.json.
    The image tower is not touched. Check afterwards with dump_embeddings.ts --texts and `eval retrieval`."""
    ap = argparse.ArgumentParser(prog="locked_text export")
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    ck = load_checkpoint(run / "last.pt")
    assert ck is not None, f"no checkpoint in {run}"
    model = build_text_model(ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    export_text_onnx(model, out, "trained against the locked image tower (models.retrieval.locked_text).")
    meta_path = out / "retrieval.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    last = ck["history"][-1]
    meta["text_tower_locked"] = {
        "what": "text side retrained against the locked image tower of this file's members (their exported "
                "float16 ONNX embeddings of the RSICD train images, 8 dihedral views); the image tower is unchanged",
        "run": paths.rel(run), "args": ck["args"], "config": ck["config"], "epochs": ck["epoch"],
        "trainable_params": count_params(model),
        "val_metrics_pytorch": last.get("val"),
        "commands": ["npx tsx models/retrieval/dump_embeddings.ts --jsonl ../shared/data/rsicd/train.jsonl --views "
                     "id,hflip,vflip,rot90,rot180,rot270,transpose,antitranspose --out models/cache/locked/train",
                     "npx tsx models/retrieval/dump_embeddings.ts --jsonl ../shared/data/rsicd/val.jsonl --views id,rot90 "
                     "--out models/cache/locked/val --texts",
                     train_command(ck["args"]),
                     f"/usr/bin/python3 -m models.retrieval.locked_text export --run {paths.rel(run)}"],
    }
    meta["val_metrics_pytorch"] = last.get("val")
    drop_onnx_checks(meta)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"exported {paths.rel(out / 'text-tower-fp16.onnx')} from {paths.rel(run)} (epoch {ck['epoch']}); "
          f"val mR (PyTorch) {last.get('val', {}).get('mR')}")
    return 0


def average_state_dicts(states: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Element-wise mean of same-shaped float weights (a uniform 'model soup')."""
    return {k: torch.stack([sd[k].float() for sd in states]).mean(0).to(states[0][k].dtype)
            if states[0][k].is_floating_point() else states[0][k] for k in states[0]}


def soup_main(argv) -> int:
    """`locked_text soup --runs A,B[,...] --run-dir OUT`: the mean of the runs' weights (runs fine-tuned
    from the same init, e.g. seeds of one recipe) -> OUT/last.pt, which `export` takes like any run.
    Logs val recall of the soup and, for comparison, of the ensemble of the runs' embeddings (not saved)."""
    ap = argparse.ArgumentParser(prog="locked_text soup")
    ap.add_argument("--runs", required=True, help="comma-separated run folders")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--dump", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("RSLENS_THREADS", "2")))
    device = torch.device("cpu")
    runs = [Path(r) for r in args.runs.split(",")]
    cks = [load_checkpoint(r / "last.pt") for r in runs]
    assert all(ck is not None for ck in cks), "every run needs a checkpoint"
    inits = {ck["args"].get("init_onnx") or "models/retrieval/text-tower-fp16.onnx" for ck in cks}
    assert all(ck["config"] == cks[0]["config"] for ck in cks), "the runs' configs differ"
    out = Path(args.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = log_to_file(out / "train.log")
    log(f"soup of {[paths.rel(r) for r in runs]} (epochs {[ck['epoch'] for ck in cks]}; init {sorted(inits)})")
    dump = Path(args.dump) if args.dump else paths.cache_dir() / "locked"
    val_img, vids, vmask, _ = val_set(dump)
    members = []
    for r, ck in zip(runs, cks):
        m = build_text_model(ck["config"])
        m.load_state_dict(ck["model"])
        m.eval()
        members.append(m)
        log(f"{paths.rel(r)} | val {fmt(evaluate(m, val_img, vids, vmask, device))}")
    ens = F.normalize(sum(embed_sorted(m, vids, vmask, device) for m in members), dim=-1)
    log(f"embedding ensemble (not saved) | val {fmt(recall_metrics(matmul_t(val_img, ens).numpy()))}")
    soup = build_text_model(cks[0]["config"])
    soup.load_state_dict(average_state_dicts([ck["model"] for ck in cks]))
    soup.eval()
    val = evaluate(soup, val_img, vids, vmask, device)
    log(f"weight soup | val {fmt(val)}")
    args_rec = dict(cks[0]["args"], soup_of=[paths.rel(r) for r in runs], run_dir=paths.rel(out))
    save_checkpoint(out / "last.pt", {"model": soup.state_dict(), "epoch": cks[0]["epoch"], "config": cks[0]["config"],
                                      "history": [{"epoch": cks[0]["epoch"], "val": val}], "args": args_rec})
    return 0


def fuse_main(argv) -> int:
    """`locked_text fuse --run BOW_RUN [--weight 1.0] [--explore 0.5,2] [--export DIR]`: the transformer text side
    (--primary, default models/retrieval/text-tower-fp16.onnx, rebuilt by shipped_text_model) fused with a second
    tower trained against the same locked image tower: L2normalise(primary + w * second). Logs val recall of the
    primary, the second tower and the fusion at --weight (the weight fixed in advance) and, marked as exploration,
    at the --explore weights. --export writes the fusion as DIR/text-tower.onnx and DIR/text-tower-fp16.onnx and
    records it in DIR/retrieval.json (which must exist, as for `export`); the app's file is then `int8_storage
    DIR/text-tower-fp16.onnx DIR/text-tower-int8.onnx`. The primary rebuilds from a fused file (shipped_text_model),
    so DIR may be models/retrieval itself."""
    ap = argparse.ArgumentParser(prog="locked_text fuse")
    ap.add_argument("--run", required=True)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--explore", default="", help="comma-separated weights, logged as exploration only")
    ap.add_argument("--dump", default=None)
    ap.add_argument("--primary", default=str(HERE / "text-tower-fp16.onnx"))
    ap.add_argument("--export", default=None, metavar="DIR")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("RSLENS_THREADS", "2")))
    device = torch.device("cpu")
    run, primary_path = Path(args.run), Path(args.primary)
    ck = load_checkpoint(run / "last.pt")
    assert ck is not None, f"no checkpoint in {run}"
    log = log_to_file(run / "fuse.log")
    second = build_text_model(ck["config"])
    second.load_state_dict(ck["model"])
    second.eval()
    primary = shipped_text_model(primary_path)
    primary.eval()
    dump = Path(args.dump) if args.dump else paths.cache_dir() / "locked"
    val_img, vids, vmask, _ = val_set(dump)
    a, b = embed_sorted(primary, vids, vmask, device), embed_sorted(second, vids, vmask, device)
    score = lambda t: recall_metrics(matmul_t(val_img, t).numpy())
    log(f"primary text side ({paths.rel(primary_path)}) | val {fmt(score(a))}")
    log(f"{paths.rel(run)} (epoch {ck['epoch']}) alone | val {fmt(score(b))}")
    fused = score(F.normalize(a + args.weight * b, dim=-1))
    log(f"fused, w = {args.weight} (fixed in advance) | val {fmt(fused)}")
    for w in [float(x) for x in args.explore.split(",") if x]:
        log(f"exploration only, w = {w} | val {fmt(score(F.normalize(a + w * b, dim=-1)))}")
    if not args.export:
        return 0
    out = Path(args.export)
    meta_path = out / "retrieval.json"
    assert meta_path.exists(), f"--export {out}: no retrieval.json there to record the fusion in"
    model = FusedText(primary, second, args.weight).eval()
    export_text_onnx(model, out, f"the transformer text side {paths.rel(primary_path)} fused with {paths.rel(run)}: "
                                 f"L2normalise(primary + {args.weight} * second) (models.retrieval.locked_text fuse).")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["text_tower_fused"] = {
        "what": "the transformer text side (text_tower_locked, text-tower-fp16.onnx) fused with a second text tower "
                "trained against the same locked image tower: embedding = L2normalise(primary + weight * second)",
        "primary": paths.rel(primary_path),
        "weight": args.weight, "second": {"run": paths.rel(run), "args": ck["args"], "config": ck["config"],
                                           "epochs": ck["epoch"], "trainable_params": count_params(second)},
        "val_metrics_pytorch": fused,
        "commands": [train_command(ck["args"]),
                     f"/usr/bin/python3 -m models.retrieval.locked_text fuse --run {paths.rel(run)} --weight {args.weight} "
                     f"--export {paths.rel(out)}",
                     f"/usr/bin/python3 -m models.rslens.int8_storage {paths.rel(out / 'text-tower-fp16.onnx')} "
                     f"{paths.rel(out / 'text-tower-int8.onnx')}"],
    }
    meta["val_metrics_pytorch"] = fused
    drop_onnx_checks(meta)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log(f"exported {paths.rel(out / 'text-tower-fp16.onnx')}: the fusion at w = {args.weight}")
    return 0


if __name__ == "__main__":
    sub = {"export": export_main, "soup": soup_main, "fuse": fuse_main}.get(sys.argv[1] if len(sys.argv) > 1 else "")
    sys.exit(sub(sys.argv[2:]) if sub else main())
