"""Smoke test of the model pipeline (CI: `npm run test:models`).

    /usr/bin/python3 -m models.smoke_test

On two real RSICD training images: reads the split files and labels, builds a tiny
image-text model (MobileNetV2 stem layers loaded from the shared TFLite file + a tiny
text encoder over our CLIP tokenizer), runs ONE training step (loss must be finite and
the weights must change), saves and resumes a checkpoint, exports ONE ONNX file
(opset 17, dynamic batch) into a temp dir and validates it with onnx.checker.
Exits non-zero on any failure. Takes a few seconds.
"""
from __future__ import annotations

import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F


def run() -> None:
    from .rslens import paths
    from .rslens.clip_tokenizer import ClipBPE, CompactTokenizer
    from .rslens.data import load_image_uint8, read_labels, read_split
    from .rslens.mobilenet import mobilenet_v2_from_tflite, normalize_unit
    from .rslens.onnx_export import OPSET, export_onnx
    from .rslens.utils import get_device, load_checkpoint, save_checkpoint, seed_everything

    t0 = time.time()
    seed_everything(0)
    device = get_device("cpu")
    for p in (paths.rsicd_dir() / "train.jsonl", paths.mobilenet_tflite(), paths.clip_tokenizer_json()):
        if not p.exists():
            raise FileNotFoundError(f"shared input missing: {p.name} (set RSLENS_SHARED; default ../shared)")
    items = read_split("train", limit=2)
    labels = read_labels()
    assert len(items) == 2 and all(len(it.captions) == 5 for it in items)
    assert all(it.label is not None for it in items), "images must be in labels.json"
    assert len(labels) >= 9828 - 100
    pixels = torch.stack([load_image_uint8(paths.rsicd_dir() / it.image) for it in items]).float() / 255.0
    assert pixels.shape == (2, 3, 224, 224) and 0.0 <= float(pixels.min()) and float(pixels.max()) <= 1.0

    bpe = ClipBPE(paths.clip_tokenizer_json())
    tok = CompactTokenizer.build(bpe, [c for it in items for c in it.captions], max_length=16)
    ids, mask = tok.batch([it.captions[0] for it in items])
    assert int(ids[0, 0]) == 2 and int(mask.sum()) >= 4

    mnv2 = mobilenet_v2_from_tflite(str(paths.mobilenet_tflite()))

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = mnv2.features[:4]  # pretrained layers from the TFLite file (24 ch, 56x56)
            self.img = nn.Linear(24, 32)
            self.emb = nn.Embedding(tok.vocab_size, 32)
            self.txt = nn.Linear(32, 32)
            self.logit_scale = nn.Parameter(torch.tensor(2.659))

        def encode_image(self, px):
            return F.normalize(self.img(self.stem(normalize_unit(px)).mean((2, 3))), dim=-1)

        def encode_text(self, i, m):
            m = m.unsqueeze(-1).float()
            return F.normalize(self.txt((self.emb(i) * m).sum(1) / m.sum(1)), dim=-1)

        def forward(self, px):
            return self.encode_image(px)

    model = Tiny().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = model.img.weight.detach().clone()
    logits = model.logit_scale.exp() * model.encode_image(pixels) @ model.encode_text(ids, mask).t()
    target = torch.arange(2)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss), f"loss {loss}"
    assert not torch.equal(before, model.img.weight), "training step did not change the weights"
    print(f"train step: loss {float(loss):.4f}")

    with tempfile.TemporaryDirectory() as td:
        ck = Path(td) / "ck.pt"
        save_checkpoint(ck, {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 1})
        st = load_checkpoint(ck)
        model2 = Tiny()
        model2.load_state_dict(st["model"])
        assert st["epoch"] == 1 and torch.equal(model2.img.weight, model.img.weight)

        onnx_path = Path(td) / "tiny-image.onnx"
        m = export_onnx(model.eval(), (pixels,), onnx_path, ["pixels"], ["embedding"])
        assert m.opset_import[0].version == OPSET
        dims = m.graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch", "batch axis must be dynamic"
        onnx.checker.check_model(str(onnx_path))
        print(f"onnx export: {onnx_path.stat().st_size / 1e6:.2f} MB, opset {OPSET}, checker OK")
        int8_storage_checks(onnx_path, Path(td) / "tiny-image-int8.onnx")
    emb = model.encode_image(pixels).detach().numpy()
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    loss_checks()
    hubness_checks()
    resolution_checks()
    finetune_checks(pixels, ids, mask, tok.vocab_size)
    print(f"smoke test OK in {time.time() - t0:.1f}s")


def int8_storage_checks(src: Path, dst: Path) -> None:
    """int8_storage: weights on a uint8 grid (as dequantised TFLite layers are, here through float16
    storage) come back exactly; the tiny export's weights within half a step per output channel;
    every other tensor is untouched."""
    from onnx import numpy_helper
    from .rslens.int8_storage import exact_uint8_grid, to_int8_storage

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 255, size=(96, 16)).astype(np.float64)
    on_grid = (0.0374 * (codes - 121)).astype(np.float16).astype(np.float32)
    grid = exact_uint8_grid(on_grid)
    assert grid is not None and grid[2] == 121 and abs(float(grid[1]) - 0.0374) < 1e-4, grid and grid[1:]
    assert np.array_equal(grid[0].astype(np.float64), codes)
    assert exact_uint8_grid(rng.normal(size=(96, 16)).astype(np.float32)) is None

    stats = to_int8_storage(src, dst, min_size=256)
    before = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(src)).graph.initializer}
    m = onnx.load(str(dst))
    onnx.checker.check_model(m)
    after = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear"]
    assert len(dq) == stats["weights"] >= 3, stats
    for n in dq:
        q, scale, zero = (after[x] for x in n.input)
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if scale.ndim:
            shape[axis] = -1
        back = (q.astype(np.float32) - zero.astype(np.float32).reshape(shape)) * scale.reshape(shape)
        w = before[n.output[0]]
        limit = 1e-5 * np.abs(w).max() if q.dtype == np.uint8 else 0.5 * float(scale.max()) + 1e-7
        assert np.abs(back - w).max() <= limit, (n.output[0], float(np.abs(back - w).max()), limit)
    untouched = set(before) - {n.output[0] for n in dq}
    assert all(np.array_equal(before[k], after[k]) for k in untouched)
    print(f"int8 storage: {stats['weights']} weights in 8 bits ({stats['exact']} exact), "
          f"{src.stat().st_size / 1e3:.0f} kB -> {dst.stat().st_size / 1e3:.0f} kB")


def loss_checks() -> None:
    """info_nce_multi (K captions per image) against info_nce at K = 1 and a loop-by-loop reference."""
    import torch.nn.functional as F
    from .retrieval.losses import info_nce, info_nce_multi
    gen = torch.Generator().manual_seed(0)
    b, k, d = 5, 3, 8
    img = F.normalize(torch.randn(b, d, generator=gen), dim=-1)
    txt = F.normalize(torch.randn(b * k, d, generator=gen), dim=-1)
    scale = torch.tensor(2.5)
    same1 = torch.zeros(b, b, dtype=torch.bool)
    same1[0, 2] = same1[2, 0] = True
    assert torch.allclose(info_nce_multi(img, txt[:b], scale, same1), info_nce(img, txt[:b], scale, same1), atol=1e-6)
    same = torch.zeros(b * k, b * k, dtype=torch.bool)
    same[1, 7] = same[7, 1] = True  # caption 1 of image 0 reads like caption 1 of image 2
    s = scale.exp() * img @ txt.t()
    owner = [t // k for t in range(b * k)]
    dup = lambda t, j: any(bool(same[t, c]) for c in range(j * k, j * k + k))  # noqa: E731
    i2t = [-(s[i, t] - torch.logsumexp(torch.stack([s[i, t]] + [s[i, u] for u in range(b * k)
           if owner[u] != i and not dup(u, i)]), 0)) for i in range(b) for t in range(i * k, i * k + k)]
    t2i = [-(s[j, t] - torch.logsumexp(torch.stack([s[m, t] for m in range(b) if m == j or not dup(t, m)]), 0))
           for t in range(b * k) for j in [owner[t]]]
    ref = 0.5 * (torch.stack(i2t).mean() + torch.stack(t2i).mean())
    got = info_nce_multi(img, txt, scale, same)
    assert torch.allclose(got, ref, atol=1e-5), (float(got), float(ref))
    assert not torch.allclose(got, info_nce_multi(img, txt, scale)), "the duplicate mask changed nothing"
    print(f"losses: info_nce_multi = info_nce at K=1 and = the loop reference at K={k} ({float(got):.4f})")


def finetune_checks(pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, vocab_size: int) -> None:
    """Backbone fine-tune (models.retrieval.finetune): at step 0 the model is its stage-1 init, the
    evaluation path equals the exported one, a step moves the tuned copy only, augmentation is seeded."""
    from .rslens import paths
    from .retrieval.finetune import augment, model_from_init
    from .retrieval.losses import info_nce
    from .retrieval.model import RetrievalModel

    init = RetrievalModel(vocab_size, str(paths.mobilenet_tflite()), embed_dim=32, max_len=16, text_width=32,
                          text_layers=1, text_heads=2, text_mlp=64, head_hidden=64).eval()
    ck = {"model_config": init.config, "model": init.state_dict()}
    model = model_from_init(ck, tune_cut=14).eval()
    with torch.no_grad():
        ref = init.encode_image(pixels)[0]
        emb, grid = model.encode_image(pixels)
        assert torch.allclose(model.embed_image(pixels), emb, atol=1e-6), "evaluation path != exported path"
        assert torch.allclose(emb, ref, atol=1e-5), "a fresh fine-tune must start at its init model"
        assert torch.allclose(grid, init.encode_image(pixels)[1], atol=1e-5), "grid must stay the frozen backbone's"
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    u8 = (pixels * 255).round().to(torch.uint8)
    a, b = augment(u8, g1), augment(u8, g2)
    assert a.shape == pixels.shape and torch.equal(a, b) and 0 <= float(a.min()) and float(a.max()) <= 1
    assert not torch.allclose(a, pixels), "augmentation changed nothing"
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.image.tuned.parameters():
        p.requires_grad_(True)
    tuned0 = [p.detach().clone() for p in model.image.tuned.parameters()]
    stem0 = [p.detach().clone() for p in model.image.stem.parameters()]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    loss = info_nce(model.embed_image(a), model.encode_text(ids, mask), model.logit_scale)
    loss.backward()
    opt.step()
    assert any(not torch.equal(p, q) for p, q in zip(model.image.tuned.parameters(), tuned0)), "tuned copy did not move"
    assert all(torch.equal(p, q) for p, q in zip(model.image.stem.parameters(), stem0)), "frozen backbone moved"
    # export layout of fine-tuned members: the search tower gives the embedding only, the caption
    # encoder the frozen grid
    from .caption.export_encoder import FrozenGridEncoder
    from .retrieval.ensemble import EnsembleImageTower
    model.eval()
    with torch.no_grad():
        tower = EnsembleImageTower([model], with_grid=False).eval()
        assert torch.allclose(tower(pixels), model.embed_image(pixels), atol=1e-6), "exported tower != eval path"
        frozen = FrozenGridEncoder(str(paths.mobilenet_tflite()))(pixels)
        assert torch.allclose(frozen, model.image.stem_features(pixels), atol=1e-6), "caption encoder != frozen grid"
    print(f"fine-tune checks: loss {float(loss):.4f}, init equivalence, frozen grid and export layout OK")
    other = model_from_init(ck, tune_cut=14).eval()
    with torch.no_grad():  # members differ in the tuned copy and the text tower; their heads stay equal
        gen = torch.Generator().manual_seed(0)
        for p in other.text.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    import_checks([model, other], pixels, ids, mask)
    device_job_checks(model, ck, u8)
    locked_text_checks([model, other], ids, mask)
    locked_image_checks([model, other], pixels)


def device_job_checks(model, init_ck: dict, u8: torch.Tensor) -> None:
    """The GPU job's pieces (models.retrieval.device_job): the batched augmentation covers exactly the 8
    dihedral views and is seeded; trained weights saved relative to the init run come back to within
    float16 rounding, and without the init run they refuse to load."""
    import tempfile
    import torch.nn.functional as F
    from .retrieval.device_job import load_trained_weights, save_trained_weights
    from .retrieval.features import VIEWS, apply_view
    from .retrieval.finetune import DIHEDRAL, augment_batched
    x = u8.float() / 255
    def resampled(k):  # the whole image in dihedral view k, as augment_batched samples it
        theta = torch.cat([DIHEDRAL[k].expand(len(x), 2, 2), torch.zeros(len(x), 2, 1)], 2)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    hit = {v for k in range(len(DIHEDRAL)) for v in VIEWS if torch.allclose(resampled(k), apply_view(x, v), atol=1e-4)}
    assert hit == set(VIEWS), hit
    a = augment_batched(u8, torch.Generator().manual_seed(5))
    assert torch.equal(a, augment_batched(u8, torch.Generator().manual_seed(5))) and a.shape == x.shape
    assert 0 <= float(a.min()) and float(a.max()) <= 1 and not torch.allclose(a, x)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "member.pt"
        save_trained_weights(model, path, {"init_run": "smoke"}, init_ck["model"])
        saved = torch.load(path, weights_only=False)["tensors"]
        assert not any(k.startswith("image.stem.") for k in saved), "the frozen backbone travelled"
        back, _ = load_trained_weights(path, init_ck["model"])
        for k, v in model.state_dict().items():
            assert torch.allclose(back.state_dict()[k], v, rtol=1e-3, atol=1e-6), k
        try:
            load_trained_weights(path)
            raise AssertionError("weights saved relative to an init run loaded without it")
        except ValueError:
            pass
    print(f"device job: batched augmentation covers the 8 views; {len(saved)} trained tensors round-trip")


def import_checks(members, pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> None:
    """models.retrieval.import_onnx: members rebuilt from their exported ONNX towers compute what the
    originals compute (folded BatchNorms, renamed weights matched by graph order)."""
    from .rslens.onnx_export import export_onnx
    from .retrieval.ensemble import EnsembleImageTower, EnsembleTextTower
    from .retrieval.import_onnx import rebuild
    img, txt = EnsembleImageTower(members, with_grid=False).eval(), EnsembleTextTower(members).eval()
    with tempfile.TemporaryDirectory() as td:
        export_onnx(img, (pixels,), Path(td) / "image.onnx", ["pixels"], ["embedding"])
        ops = {n.op_type for n in onnx.load(str(Path(td) / "image.onnx")).graph.node}
        assert "Pad" not in ops, "export left TF-SAME Pad nodes (models.rslens.fold_pads)"
        export_onnx(txt, (ids, mask), Path(td) / "text.onnx", ["input_ids", "attention_mask"], ["embedding"],
                    extra_dynamic_axes={"input_ids": {1: "length"}, "attention_mask": {1: "length"}})
        rebuilt = rebuild(Path(td) / "image.onnx", Path(td) / "text.onnx", len(members),
                          members[0].image.tune_cut, members[0].config["text_heads"])
    with torch.no_grad():
        for a, b in zip(members, rebuilt):
            assert torch.allclose(a.embed_image(pixels), b.embed_image(pixels), atol=1e-5), "rebuilt image tower differs"
            assert torch.allclose(a.encode_text(ids, mask), b.encode_text(ids, mask), atol=1e-5), "rebuilt text tower differs"
    print(f"import from ONNX: {len(members)} members rebuilt, same embeddings")


def locked_text_checks(members, ids: torch.Tensor, mask: torch.Tensor) -> None:
    """models.retrieval.locked_text: the text side of a stage-2 ensemble (adapters, text gates) rebuilt
    from its ONNX file computes what the original computes; the gallery loss ignores the images that
    share a caption's exact text."""
    import copy
    from .rslens.onnx_export import export_onnx
    from .retrieval.ensemble import EnsembleTextTower
    from .retrieval.locked_text import bank_i2t_loss, gallery_loss, shipped_text_model
    members = [copy.deepcopy(m) for m in members]
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in members:
            m.add_adapters()
            for adapter in (*m.text.adapters, m.shared):
                for p in adapter.parameters():
                    p.add_(0.1 * torch.randn(p.shape, generator=gen))  # non-zero up-projections and gates
    txt = EnsembleTextTower(members).eval()
    with tempfile.TemporaryDirectory() as td:
        export_onnx(txt, (ids, mask), Path(td) / "text.onnx", ["input_ids", "attention_mask"], ["embedding"],
                    extra_dynamic_axes={"input_ids": {1: "length"}, "attention_mask": {1: "length"}})
        rebuilt = shipped_text_model(Path(td) / "text.onnx", heads=members[0].config["text_heads"]).eval()
    with torch.no_grad():
        want, got = txt(ids, mask), rebuilt.encode_text(ids, mask)
    assert torch.allclose(want, got, atol=1e-5), f"rebuilt text side differs by {float((want - got).abs().max())}"
    from .retrieval.model import TextTowerExport
    with tempfile.TemporaryDirectory() as td:  # a locked_text export (other weight names) rebuilds too
        export_onnx(TextTowerExport(rebuilt), (ids, mask), Path(td) / "locked.onnx", ["input_ids", "attention_mask"],
                    ["embedding"], extra_dynamic_axes={"input_ids": {1: "length"}, "attention_mask": {1: "length"}})
        again = shipped_text_model(Path(td) / "locked.onnx", heads=members[0].config["text_heads"]).eval()
    with torch.no_grad():
        assert torch.allclose(again.encode_text(ids, mask), want, atol=1e-5), "a locked_text export does not rebuild"
    gallery = torch.nn.functional.normalize(torch.randn(5, want.shape[1], generator=gen), dim=-1)
    owner, rows, scale = torch.tensor([0, 1]), torch.tensor([0]), torch.tensor(20.0)
    same = {0: np.array([3])}  # caption 0's exact text also belongs to image 3
    a = gallery_loss(want[:1], gallery, rows, owner, same, scale)
    gallery[3] = want[0]  # image 3 is now caption 0's best match: it must still not count as a negative
    b = gallery_loss(want[:1], gallery, rows, owner, same, scale)
    c = gallery_loss(want[:1], gallery, rows, owner, {}, scale)
    assert torch.allclose(a, b) and float(c) > float(b) + 1.0, (float(a), float(b), float(c))
    # image->text against a caption bank: finite loss and gradients (masked entries must not poison the scale)
    bank_owner, key = torch.tensor([0, 0, 1, 1, 2]), torch.tensor([0, 1, 2, 0, 3])  # caption 3 has caption 0's text
    bank = torch.nn.functional.normalize(torch.randn(5, want.shape[1], generator=gen), dim=-1)
    live = want[:2].clone().requires_grad_(True)
    log_scale = torch.tensor(3.0, requires_grad=True)
    loss = bank_i2t_loss(live, gallery[:2], torch.tensor([0, 2]), bank, bank_owner, key, log_scale.exp())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(log_scale.grad) and torch.isfinite(live.grad).all(), "bank loss not finite"
    bow_fusion_checks(rebuilt, ids, mask)
    print("locked text: stage-2 text side rebuilt from ONNX, same embeddings; same-text images masked")


def bow_fusion_checks(primary, ids: torch.Tensor, mask: torch.Tensor) -> None:
    """models.retrieval.bow_text: bigram buckets see word order and ignore padding; the fusion is the primary side
    at weight 0 and unit-norm otherwise; it exports as one text-tower graph with the usual inputs and output."""
    import onnx
    from .rslens.onnx_export import export_onnx
    from .retrieval.bow_text import BagOfWordsText, FusedText, bigram_buckets
    from .retrieval.locked_text import build_text_model, shipped_text_model
    from .retrieval.model import TextTowerExport
    a, am = bigram_buckets(torch.tensor([[2, 7, 9, 3, 0]]), torch.tensor([[1, 1, 1, 1, 0]]), 8192)
    b, _ = bigram_buckets(torch.tensor([[2, 9, 7, 3, 0]]), torch.tensor([[1, 1, 1, 1, 0]]), 8192)
    assert am.tolist() == [[1, 1, 1, 0]] and a[0, 1] != b[0, 1], (a, b, am)
    dim = primary.config["members"] * primary.config["member_dim"]
    bow = BagOfWordsText(primary.config["vocab_size"], dim, width=32, buckets=64).eval()
    assert type(build_text_model(bow.config)) is BagOfWordsText, "a bag checkpoint's config does not rebuild a bag"
    with torch.no_grad():
        want = primary.encode_text(ids, mask)
        same = FusedText(primary, bow, 0.0).encode_text(ids, mask)
        fused = FusedText(primary, bow, 1.0).eval()
        got = fused.encode_text(ids, mask)
        padded = bow.encode_text(torch.cat([ids, torch.zeros_like(ids[:, :3])], 1), torch.cat([mask, torch.zeros_like(mask[:, :3])], 1))
    assert torch.allclose(same, want, atol=1e-6), "fusion at weight 0 is not the primary side"
    assert torch.allclose(got.norm(dim=-1), torch.ones(len(got)), atol=1e-5) and not torch.allclose(got, want, atol=1e-3)
    assert torch.allclose(padded, bow.encode_text(ids, mask), atol=1e-6), "padding changes the bag"
    with tempfile.TemporaryDirectory() as td:
        export_onnx(TextTowerExport(fused), (ids, mask), Path(td) / "fused.onnx", ["input_ids", "attention_mask"],
                    ["embedding"], extra_dynamic_axes={"input_ids": {1: "length"}, "attention_mask": {1: "length"}})
        g = onnx.load(str(Path(td) / "fused.onnx")).graph
        again = shipped_text_model(Path(td) / "fused.onnx", heads=primary.config["heads"]).eval()
    with torch.no_grad():  # a fused file still yields its primary side (locked_text --init shipped, fuse --primary)
        assert torch.allclose(again.encode_text(ids, mask), want, atol=1e-5), "the primary does not rebuild from a fused file"
    assert [i.name for i in g.input] == ["input_ids", "attention_mask"] and [o.name for o in g.output] == ["embedding"]
    assert any(n.op_type == "Mod" for n in g.node), "the bigram hash is not in the graph"


def locked_image_checks(members, pixels: torch.Tensor) -> None:
    """models.retrieval.locked_image: the image heads of a stage-2 ensemble rebuilt from its ONNX file compute
    the graph's embedding from the head inputs; trained weights written back into the graph load back equal."""
    import copy
    from .rslens.onnx_export import export_onnx
    from .retrieval.ensemble import EnsembleImageTower
    from .retrieval.locked_image import multi_positive_i2t, shipped_image_head, write_head
    members = [copy.deepcopy(m).eval() for m in members]
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in members:
            m.add_adapters()
            for part in (m.image.adapter, m.shared, m.image.ln, m.image.fc1, m.image.fc2, m.image.skip):
                for p in part.parameters():  # non-zero up-projections and gates; heads that differ between members
                    p.add_(0.1 * torch.randn(p.shape, generator=gen))
        tokens = []  # each member's head input: the 5 pooled tokens of its adapted grid
        for m in members:
            grid, _ = m.image.grid_and_tokens(m.image.tuned_grid(pixels))
            pooled = [grid.mean((2, 3))] + [grid[:, :, r:r + 4, q:q + 4].mean((2, 3)) for r in (0, 3) for q in (0, 3)]
            tokens.append(torch.stack(pooled, 1))
        tokens = torch.stack(tokens, 1)  # [N,K,5,1280]
    tower = EnsembleImageTower(members, with_grid=False).eval()
    with tempfile.TemporaryDirectory() as td:
        export_onnx(tower, (pixels,), Path(td) / "image.onnx", ["pixels"], ["embedding"])
        head = shipped_image_head(Path(td) / "image.onnx").eval()
        with torch.no_grad():
            want, got = tower(pixels), head(tokens)
            assert torch.allclose(want, got, atol=1e-5), f"rebuilt image head differs by {float((want - got).abs().max())}"
            for p in head.trainable():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
        write_head(head, Path(td) / "image.onnx", Path(td) / "written.onnx")
        back = shipped_image_head(Path(td) / "written.onnx").eval()
    with torch.no_grad():
        assert torch.allclose(head(tokens), back(tokens), atol=1e-6), "written head weights do not load back"
        assert not torch.allclose(head(tokens), want, atol=1e-3), "perturbed head should differ"
    img = got.clone().requires_grad_(True)
    bank = torch.nn.functional.normalize(torch.randn(6, got.shape[1], generator=gen), dim=-1)
    pos = torch.zeros(len(img), 6, dtype=torch.bool)
    pos[:, 0] = True
    loss = multi_positive_i2t(img, bank, pos, torch.tensor(20.0))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(img.grad).all() and float(loss) > 0, float(loss)
    print("locked image: stage-2 image heads rebuilt from ONNX, same embeddings; written weights load back")


def hubness_checks() -> None:
    """models.retrieval.hubness: the module is beta x the mean of the k largest bank cosines (the numpy
    reference), and its int8 export holds the bank to within its per-caption rounding."""
    from .rslens.int8_storage import to_int8_storage
    from .retrieval.hubness import HubnessPenalty, dequantised_bank, penalties
    g = torch.Generator().manual_seed(0)
    bank = F.normalize(torch.randn(300, 16, generator=g), dim=-1)
    emb = F.normalize(torch.randn(5, 16, generator=g), dim=-1)
    module = HubnessPenalty(bank, k=7, beta=0.5)
    want = penalties(emb.numpy(), bank.numpy(), 7, 0.5)
    assert np.allclose(module(emb).detach().numpy(), want, atol=1e-6), "hubness module differs from its reference"
    assert want.min() > 0 and want.max() <= 0.5
    with tempfile.TemporaryDirectory() as tmp:
        plain, small = Path(tmp) / "h.onnx", Path(tmp) / "h8.onnx"
        torch.onnx.export(module, (emb,), str(plain), input_names=["embedding"], output_names=["penalty"],
                          dynamic_axes={"embedding": {0: "batch"}, "penalty": {0: "batch"}}, opset_version=17)
        to_int8_storage(plain, small)
        back = dequantised_bank(small)
    assert back.shape == (300, 16) and np.abs(back - bank.numpy()).max() < 0.01, "int8 bank does not round-trip"
    print("hubness: module = reference; int8 bank round-trips")


def resolution_checks() -> None:
    """models.retrieval.resolution on the shipped image tower: at 224 px every quadrant slice keeps its
    bounds; at 256 px (an 8 x 8 grid) they become the halves [0, 4) / [4, 8), and the input is 256 x 256."""
    from .retrieval.resolution import const_values, retarget

    def bounds(model):
        values = const_values(model.graph)
        out = []
        for n in model.graph.node:
            if n.op_type == "Slice" and len(n.input) >= 4 and values.get(n.input[3]) is not None \
                    and values[n.input[3]].tolist() in ([2], [3]):
                out.append((int(values[n.input[1]][0]), int(values[n.input[2]][0])))
        return out

    path = Path(__file__).resolve().parent / "retrieval" / "image-tower-int8.onnx"
    shipped = bounds(onnx.load(str(path)))
    assert shipped and set(shipped) == {(0, 4), (3, 7)}, shipped
    same = onnx.load(str(path))
    assert retarget(same, 224) == len(shipped) and bounds(same) == shipped
    bigger = onnx.load(str(path))
    assert retarget(bigger, 256) == len(shipped)
    assert set(bounds(bigger)) == {(0, 4), (4, 8)}, bounds(bigger)
    assert [d.dim_value for d in bigger.graph.input[0].type.tensor_type.shape.dim[2:]] == [256, 256]
    print(f"resolution: {len(shipped)} quadrant slices re-targeted (224 px unchanged, 256 px halves of 8)")


def main() -> int:
    try:
        run()
        return 0
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("smoke test FAILED", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
