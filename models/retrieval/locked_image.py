"""The image HEAD retrained against a LOCKED text tower (the mirror of locked_text).

    /usr/bin/python3 -m models.retrieval.locked_image tokens-graph           # graph with the head inputs exposed
    npx tsx models/retrieval/dump_embeddings.ts --dir models/cache/locked/tokens --tokens \
        --jsonl ../shared/data/rsicd/train.jsonl --views id,hflip,vflip,rot90,rot180,rot270,transpose,antitranspose \
        --out models/cache/locked/tokens/train
    npx tsx models/retrieval/dump_embeddings.ts --dir models/cache/locked/tokens --tokens \
        --jsonl ../shared/data/rsicd/val.jsonl --views id,rot90 --out models/cache/locked/tokens/val
    /usr/bin/python3 -m models.retrieval.locked_image --run-dir models/runs/li/s0 --seed 0 [--holdout 0.1]
    /usr/bin/python3 -m models.retrieval.locked_image export --run models/runs/li/s0

Why: in the shipped image tower everything up to each member's head (the MobileNetV2 blocks, the
fine-tuned top, the HarMA grid adapter and the 5 pooled tokens) is ~99 % of the compute, the head
(LayerNorm, MLP with a linear skip, the shared adapter on its image gate) is ~3 M weights on 5 tokens.
With the head inputs dumped once (onnxruntime-node, 8 dihedral views, exactly what the app computes)
and the text side fixed (the shipped text tower's embeddings of every train caption), an epoch of
head training costs about a minute here, so image->text can be scored against ALL distinct train
captions and text->image against the whole train gallery, as locked_text does for the text side.
The shared adapter's weights also live in the text tower: they stay frozen, only its image gate trains.

--holdout 0.1 leaves 10 % of the TRAIN images (and their captions) out of training and scores them each
epoch. That is a selection set only against a text tower that never saw those images: the shipped
v0.6.0 one was fitted to all train images (mR ~60 on them before any head training, session 11), so
with it runs are scored on RSICD val, with a recipe fixed in advance. Export writes the new head weights into a copy of
the shipped image graph (same graph, same cost), so the embedding changes and stored indexes must be
rebuilt: a new image-tower version.
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
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper, numpy_helper, TensorProto

from ..rslens import paths
from ..rslens.data import read_split
from ..rslens.utils import load_checkpoint, log_to_file, rng_state, save_checkpoint, seed_everything
from .evaluate import fmt, recall_metrics
from .model import GatedAdapter, Linear, matmul_t

HERE = Path(__file__).resolve().parent
SHIPPED_IMAGE = HERE / "image-tower-fp16.onnx"


def tokens_dir() -> Path:
    return paths.cache_dir() / "locked" / "tokens"


# ---------------------------------------------------------------- the graph


def head_input_names(g: onnx.GraphProto) -> List[str]:
    """Each member's head input [N,5,1280]: the input of the LayerNormalization on members.K.image.ln."""
    out = []
    for k in range(8):
        ln = [n for n in g.node if n.op_type == "LayerNormalization" and f"members.{k}.image.ln.weight" in n.input]
        if not ln:
            break
        out.append(ln[0].input[0])
    assert out, "no members.K.image.ln LayerNormalization in the graph"
    return out


def tokens_graph_main(argv) -> int:
    """Copy of the shipped image graph with extra outputs head_tokens_K (the dump reads them)."""
    ap = argparse.ArgumentParser(prog="locked_image tokens-graph")
    ap.add_argument("--image-onnx", default=str(SHIPPED_IMAGE))
    ap.add_argument("--out", default=str(tokens_dir()))
    args = ap.parse_args(argv)
    m = onnx.load(args.image_onnx)
    g = m.graph
    for k, name in enumerate(head_input_names(g)):
        ident = helper.make_node("Identity", [name], [f"head_tokens_{k}"], name=f"expose_head_tokens_{k}")
        g.node.append(ident)
        g.output.append(helper.make_tensor_value_info(f"head_tokens_{k}", TensorProto.FLOAT, ["batch", 5, 1280]))
    onnx.checker.check_model(m)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(out / "image-tower-fp16.onnx"))
    print(f"wrote {paths.rel(out / 'image-tower-fp16.onnx')} with outputs {[o.name for o in g.output]}")
    return 0


# ---------------------------------------------------------------- the model


class HeadMember(nn.Module):
    """One member's image head as in ImageTower.head + the shared adapter on its image gate (gate 0)."""

    def __init__(self, channels: int = 1280, hidden: int = 768, embed_dim: int = 256, dropout: float = 0.1):
        super().__init__()
        self.ln = nn.LayerNorm(channels)
        self.fc1 = Linear(channels, hidden)
        self.fc2 = Linear(hidden, embed_dim)
        self.skip = Linear(channels, embed_dim, bias=False)
        self.drop = nn.Dropout(dropout)
        self.shared = GatedAdapter(embed_dim, n_gates=2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.ln(tokens)
        h = self.skip(x) + self.fc2(self.drop(F.gelu(self.fc1(x))))
        return F.normalize(self.shared(h, None, gate=0)[:, 0], dim=-1)


class LockedImageHead(nn.Module):
    """head tokens [N,K,5,1280] -> the image embedding [N,K*D]: members' embeddings concatenated / sqrt(K)."""

    def __init__(self, members: int = 2, channels: int = 1280, hidden: int = 768, embed_dim: int = 256,
                 dropout: float = 0.1, init_temperature: float = 0.05):
        super().__init__()
        self.config = dict(members=members, channels=channels, hidden=hidden, embed_dim=embed_dim, dropout=dropout)
        self.members = nn.ModuleList([HeadMember(channels, hidden, embed_dim, dropout) for _ in range(members)])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out = [m(tokens[:, k]) for k, m in enumerate(self.members)]
        return torch.cat(out, 1) / math.sqrt(len(out))

    def trainable(self) -> List[nn.Parameter]:
        """Everything but the shared adapter's weights (they are the text tower's too); its gates stay
        trainable, and only gate 0 (the image modality's) gets a gradient."""
        return [p for n, p in self.named_parameters() if ".shared." not in n or n.endswith(".gate")]


def head_params_in_graph(g: onnx.GraphProto, members: int) -> List[Tuple[str, str]]:
    """(PyTorch parameter name, graph tensor name) for every head parameter, found by node names
    (/skip/MatMul, /fc1_1/MatMul, ...), bias names (members.K.image.fc1.bias) and the Sigmoid order
    (per member: grid-adapter gate, then the shared adapter's image gate)."""
    mm = {n.name: n.input[1] for n in g.node if n.op_type == "MatMul"}
    sig = [n.input[0] for n in g.node if n.op_type == "Sigmoid"]
    assert len(sig) == 2 * members, len(sig)
    pairs = []
    for k in range(members):
        sfx = "" if k == 0 else f"_{k}"
        for lin in ("skip", "fc1", "fc2"):
            pairs.append((f"members.{k}.{lin}.weight", mm[f"/{lin}{sfx}/MatMul"]))
        for lin in ("fc1", "fc2"):
            pairs.append((f"members.{k}.{lin}.bias", f"members.{k}.image.{lin}.bias"))
        for p in ("weight", "bias"):
            pairs.append((f"members.{k}.ln.{p}", f"members.{k}.image.ln.{p}"))
        for lin in ("down", "attn/qkv", "attn/out", "up"):
            pairs.append((f"members.{k}.shared.{lin.replace('/', '.')}.weight", mm[f"/shared/{lin}{sfx}/MatMul"]))
        for name in ("down.bias", "ln.weight", "ln.bias", "attn.qkv.bias", "attn.out.bias", "up.bias"):
            pairs.append((f"members.{k}.shared.{name}", f"members.{k}.shared.{name}"))
        pairs.append((f"members.{k}.shared.gate.0", sig[2 * k + 1]))
    return pairs


def shipped_image_head(image_onnx: Path = SHIPPED_IMAGE, dropout: float = 0.1) -> LockedImageHead:
    from .import_onnx import Graph, _set
    G = Graph(image_onnx)
    members = len(head_input_names(G.g))
    named = G.named("members.0.image.")
    model = LockedImageHead(members, int(named["ln.weight"].shape[0]), int(named["fc1.bias"].shape[0]),
                            int(named["fc2.bias"].shape[0]), dropout)
    params = dict(model.named_parameters())
    for name, tensor in head_params_in_graph(G.g, members):
        v = G.values[tensor]
        if name.endswith(".gate.0"):
            _set(params[name[:-2]][0], v, name)
        elif name.endswith(".weight") and v.ndim == 2:
            _set(params[name], v.T, name)  # MatMul holds the transposed Linear weight
        else:
            _set(params[name], v, name)
    return model


# ---------------------------------------------------------------- data


def load_tokens(prefix: Path) -> Tuple[dict, torch.Tensor]:
    """-> (meta, head tokens float16 [N,V,K,5,C])."""
    meta = json.loads(prefix.with_suffix(".json").read_text())
    n, v = len(meta["images"]), len(meta["views"])
    k, t, c = meta["tokens"]
    raw = np.memmap(f"{prefix}.tokens.f32", dtype=np.float32, mode="r", shape=(n, v, k, t, c))
    tokens = torch.empty((n, v, k, t, c), dtype=torch.float16)
    for s in range(0, n, 512):
        tokens[s:s + 512] = torch.from_numpy(np.array(raw[s:s + 512])).to(torch.float16)
    return meta, tokens


@torch.no_grad()
def embed_views(model: LockedImageHead, tokens: torch.Tensor, views: List[int] | None = None, bs: int = 512) -> torch.Tensor:
    """tokens [N,V,K,5,C] -> L2-normalised mean over `views` (default all) of the embeddings [N,D]."""
    model.eval()
    views = list(range(tokens.shape[1])) if views is None else views
    out = []
    for s in range(0, len(tokens), bs):
        e = sum(model(tokens[s:s + bs, v].float()) for v in views)
        out.append(F.normalize(e, dim=-1))
    return torch.cat(out)


@torch.no_grad()
def shipped_text_embeddings(items, cache: Path) -> torch.Tensor:
    """The shipped text tower's (PyTorch rebuild of text-tower-fp16.onnx) embeddings of every caption
    of `items`, in file order, cached per text-tower file hash."""
    import hashlib
    from .locked_text import embed_sorted, shipped_text_model
    from .train import tokenize_split
    from .vocab import load_tokenizer
    onnx_path = HERE / "text-tower-fp16.onnx"
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:12]
    f = cache.parent / f"{cache.name}.text-{digest}.f32"
    if f.exists():
        return torch.from_numpy(np.fromfile(f, dtype=np.float32).reshape(len(items) * 5, -1))
    model = shipped_text_model(onnx_path)
    model.eval()
    ids, mask = tokenize_split(items, load_tokenizer().max_length)
    emb = embed_sorted(model, ids, mask, torch.device("cpu"))
    emb.numpy().astype(np.float32).tofile(f)
    return emb


# ---------------------------------------------------------------- training


def caption_positives(text_key: torch.Tensor, owner: torch.Tensor, n_img: int) -> List[torch.Tensor]:
    """image -> caption rows whose text equals one of the image's own captions (its own 5 included)."""
    rows_of_key: Dict[int, List[int]] = {}
    for r, k in enumerate(text_key.tolist()):
        rows_of_key.setdefault(k, []).append(r)
    own: List[set] = [set() for _ in range(n_img)]
    for r, o in enumerate(owner.tolist()):
        own[o].add(int(text_key[r]))
    return [torch.tensor(sorted({r for k in keys for r in rows_of_key[k]})) for keys in own]


def multi_positive_i2t(img: torch.Tensor, bank: torch.Tensor, pos_mask: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """-log( sum over positive captions / sum over all captions ) of softmax(scale * img . bank)."""
    logits = scale * matmul_t(img, bank)
    return (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~pos_mask, -1e4), 1)).mean()


def main(argv=None) -> int:
    from .locked_text import gallery_loss, other_owners_with_same_text, text_keys
    from .train import warmup_cosine
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dump", default=None, help="folder of the token dumps (default models/cache/locked/tokens)")
    ap.add_argument("--holdout", type=float, default=0.0,
                    help="fraction of TRAIN images (and their captions) left out and scored instead of val")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256, help="images per step")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up epochs")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--i2t-weight", type=float, default=0.5, help="loss = (1-w) * gallery t2i + w * i2t")
    args = ap.parse_args(argv)

    torch.set_num_threads(int(os.environ.get("RSLENS_THREADS", "2")))
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    log = log_to_file(run / "train.log")
    dump = Path(args.dump) if args.dump else tokens_dir()
    train_items, val_items = read_split("train"), read_split("val")
    meta, tokens = load_tokens(dump / "train")
    assert meta["images"] == [it.image for it in train_items], "train dump does not match train.jsonl"
    text_all = shipped_text_embeddings(train_items, dump / "train")
    captions = [c for it in train_items for c in it.captions]
    views = meta["views"]
    eval_views = [views.index(v) for v in ("id", "rot90")]

    seed_everything(args.seed)
    n_all = len(train_items)
    if args.holdout > 0:  # the split depends on --seed only through a fixed offset: same split for every seed
        perm = torch.randperm(n_all, generator=torch.Generator().manual_seed(12345))
        held = perm[:int(round(args.holdout * n_all))].sort().values
        fit = perm[int(round(args.holdout * n_all)):].sort().values
        held_caps = (held[:, None] * 5 + torch.arange(5)).flatten()
        eval_tokens, eval_text = tokens[held], text_all[held_caps]
        eval_name = f"held-out train ({len(held)} images)"
    else:
        fit = torch.arange(n_all)
        vmeta, vtok = load_tokens(dump / "val")
        assert vmeta["images"] == [it.image for it in val_items], "val dump does not match val.jsonl"
        eval_tokens, eval_text = vtok, shipped_text_embeddings(val_items, dump / "val")
        eval_views = [vmeta["views"].index(v) for v in ("id", "rot90")]
        eval_name = f"val ({len(val_items)} images)"
    # the training set: images `fit`, their captions, renumbered 0..n-1
    fit_caps = (fit[:, None] * 5 + torch.arange(5)).flatten()
    tokens, bank = tokens[fit], text_all[fit_caps]
    captions = [captions[r] for r in fit_caps.tolist()]
    owner = torch.arange(len(fit)).repeat_interleave(5)
    n_img = len(fit)
    text_key = text_keys(captions)
    positives = caption_positives(text_key, owner, n_img)
    same_text = other_owners_with_same_text(captions, owner.numpy())

    def evaluate(model) -> Dict[str, float]:
        e = embed_views(model, eval_tokens, eval_views)
        return recall_metrics(matmul_t(e, eval_text).numpy())

    model = shipped_image_head(dropout=args.dropout)
    train_p = model.trainable()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and not n.endswith(".gate") and any(p is q for q in train_p)]
    no_decay = [p for p in train_p if not any(p is q for q in decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    log(f"train {n_img} images x {len(views)} views, {len(captions)} captions (fixed shipped text tower); eval on {eval_name}; "
        f"args {vars(args)}; trainable parameters {sum(p.numel() for p in train_p):,}")
    steps_per_epoch = math.ceil(n_img / args.batch)
    total, warm = steps_per_epoch * args.epochs, int(steps_per_epoch * args.warmup)
    start, history = 0, []
    ck = load_checkpoint(run / "last.pt")
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, history = ck["epoch"], ck["history"]
        log(f"resumed after epoch {start}")
    if start == 0:
        log(f"epoch 0 (shipped head) | {eval_name} {fmt(evaluate(model))}")
    gen = torch.Generator().manual_seed(args.seed * 1000 + start)
    for epoch in range(start, args.epochs):
        t0, tot = time.time(), 0.0
        view_of = torch.randint(len(views), (n_img,), generator=gen)
        with torch.no_grad():  # gallery bank for text->image: every image once, a random view, refreshed per epoch
            model.eval()
            gallery = torch.cat([model(tokens[s:s + 1024][torch.arange(len(tokens[s:s + 1024])), view_of[s:s + 1024]].float())
                                 for s in range(0, n_img, 1024)])
        model.train()
        order = torch.randperm(n_img, generator=gen)
        for s in range(steps_per_epoch):
            step = epoch * steps_per_epoch + s
            for g in opt.param_groups:
                g["lr"] = args.lr * warmup_cosine(step, warm, total)
            rows = order[s * args.batch:(s + 1) * args.batch]
            v = torch.randint(len(views), (len(rows),), generator=gen)
            img = model(tokens[rows, v].float())
            scale = model.logit_scale.exp().clamp(max=100.0)
            pos = torch.zeros(len(rows), len(bank), dtype=torch.bool)
            for i, r in enumerate(rows.tolist()):
                pos[i, positives[r]] = True
            loss = args.i2t_weight * multi_positive_i2t(img, bank, pos, scale)
            cap = rows * 5 + torch.randint(5, (len(rows),), generator=gen)  # one caption per image
            live_gallery = gallery.index_put((rows,), img)
            loss = loss + (1 - args.i2t_weight) * gallery_loss(bank[cap], live_gallery, cap, owner, same_text, scale)
            with torch.no_grad():
                gallery[rows] = img.detach()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(train_p, 5.0)
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100.0))
            tot += float(loss)
        rec = {"epoch": epoch + 1, "loss": tot / steps_per_epoch, "temperature": float(1 / model.logit_scale.exp()),
               "seconds": time.time() - t0, "eval": evaluate(model)}
        history.append(rec)
        log(f"epoch {epoch + 1}/{args.epochs} loss {rec['loss']:.4f} T {rec['temperature']:.4f} {rec['seconds']:.0f}s"
            f" | {eval_name} {fmt(rec['eval'])}")
        save_checkpoint(run / "last.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                                          "history": history, "rng": rng_state(), "config": model.config,
                                          "args": vars(args), "eval_on": eval_name})
    (run / "summary.json").write_text(json.dumps({"args": vars(args), "eval_on": eval_name, "history": history}, indent=1))
    return 0


# ---------------------------------------------------------------- export


def write_head(model: LockedImageHead, image_onnx: Path, out_path: Path) -> int:
    """The trained head weights written into a copy of the image graph, each into the initialiser its
    graph tensor comes from (directly, or through the float16-storage Cast), in that initialiser's
    dtype. Only what trains is written (the shared adapter's weights are the text tower's too)."""
    m = onnx.load(str(image_onnx))
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    made_by = {o: n for n in g.node for o in n.output}
    uses: Dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    params = dict(model.named_parameters())
    written = 0
    for name, tensor in head_params_in_graph(g, len(model.members)):
        if ".shared." in name and not name.endswith(".gate.0"):
            continue
        value = params[name[:-2]][0] if name.endswith(".gate.0") else params[name]
        value = value.detach().numpy()
        if value.ndim == 2:
            value = value.T
        src = tensor
        if src not in inits:
            node = made_by[src]
            assert node.op_type in ("Cast", "Identity") and node.input[0] in inits, (name, node.op_type)
            src = node.input[0]
        assert uses.get(src, 0) == 1, f"{src} feeds {uses.get(src)} nodes: writing it would change another weight"
        old = numpy_helper.to_array(inits[src])
        assert old.shape == value.shape, (name, old.shape, value.shape)
        inits[src].CopyFrom(numpy_helper.from_array(value.astype(old.dtype), src))
        written += 1
    onnx.checker.check_model(m)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(out_path))
    return written


def export_main(argv) -> int:
    """`locked_image export --run RUN [--out DIR]`: RUN's head written into DIR/image-tower-fp16.onnx (a copy of
    the shipped graph); records the run in DIR/retrieval.json when DIR is this folder."""
    from .locked_text import drop_onnx_checks
    ap = argparse.ArgumentParser(prog="locked_image export")
    ap.add_argument("--run", required=True)
    ap.add_argument("--image-onnx", default=str(SHIPPED_IMAGE))
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    ck = load_checkpoint(run / "last.pt")
    assert ck is not None, f"no checkpoint in {run}"
    model = shipped_image_head(Path(args.image_onnx))
    model.load_state_dict(ck["model"])
    model.eval()
    n = write_head(model, Path(args.image_onnx), out / "image-tower-fp16.onnx")
    meta_path = out / "retrieval.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["image_head_locked"] = {
            "what": "each member's image head (LayerNorm, MLP + skip, the shared adapter's image gate) retrained on the "
                    "dumped head inputs of the previous image graph against the locked text tower; everything below the "
                    "head and the text tower unchanged",
            "run": paths.rel(run), "args": ck["args"], "epochs": ck["epoch"], "eval_on": ck.get("eval_on"),
            "trainable_params": sum(p.numel() for p in model.trainable()), "initialisers_written": n,
            "val_metrics_pytorch": ck["history"][-1].get("eval"),
        }
        meta["val_metrics_pytorch"] = ck["history"][-1].get("eval")
        drop_onnx_checks(meta)
        meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {n} head initialisers into {paths.rel(out / 'image-tower-fp16.onnx')} from {paths.rel(run)} (epoch {ck['epoch']})")
    return 0


if __name__ == "__main__":
    sub = {"tokens-graph": tokens_graph_main, "export": export_main}.get(sys.argv[1] if len(sys.argv) > 1 else "")
    sys.exit(sub(sys.argv[2:]) if sub else main())
