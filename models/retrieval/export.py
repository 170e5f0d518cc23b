"""Export the trained retrieval model to ONNX + metadata.

    /usr/bin/python3 -m models.retrieval.export [--stage 2]

Writes into models/retrieval/:
  image-tower.onnx   pixels float32 [N,3,224,224] (RGB, values in [0,1]) ->
                     embedding [N,D] (L2-normalised), grid [N,1280,7,7]
  text-tower.onnx    input_ids int64 [N,L], attention_mask int64 [N,L] -> embedding [N,D]
  retrieval.json     metadata (dims, preprocessing, temperature, val metrics, commands)
and models/runs/retrieval/parity/ (gitignored: it holds decoded RSICD pixels): inputs + PyTorch
outputs for check_onnx.ts (ONNX vs PyTorch max abs diff).
Adapters (stage 2) are part of the exported graphs.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ..rslens import paths
from ..rslens.data import load_images_uint8, read_split
from ..rslens.onnx_export import OPSET, export_onnx
from ..rslens.utils import get_device
from .model import ImageTowerExport, TextTowerExport
from .train import build_model_from_checkpoint, stage_dir
from .vocab import VOCAB_PATH, load_tokenizer

OUT = Path(__file__).resolve().parent
PREPROCESSING = {
    "input": "pixels",
    "layout": "NCHW float32",
    "channel_order": "RGB",
    "size": [224, 224],
    "resize": "if the image is not 224x224: bilinear resize of the whole image to 224x224 "
              "(PIL Image.BILINEAR semantics, no crop, aspect ratio not kept); RSICD images are already 224x224",
    "value_range": "[0, 1]: pixels = uint8_value / 255",
    "mean": [0.0, 0.0, 0.0],
    "std": [1.0, 1.0, 1.0],
    "in_graph_normalisation": "the graph itself computes (pixels*255 - 128) / 128 (the TFLite MobileNetV2 input "
                              "quantisation: uint8 q -> (q - 128) / 128); do NOT apply ImageNet mean/std",
    "alpha": "drop alpha; grey images: replicate the channel",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", type=int, default=2)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--run-dir", default=None, help="run folder with stage1/ stage2/ (default models/runs/retrieval)")
    args = ap.parse_args()
    get_device("cpu")
    out = Path(args.out)
    ckpt = stage_dir(args.stage, args.run_dir) / "last.pt"
    model, ck = build_model_from_checkpoint(ckpt, "cpu")
    model.eval()
    tok = load_tokenizer()
    D = model.config["embed_dim"]

    items, pixels, ids, mask = parity_inputs(tok)

    # The full pixel path must reproduce the cached backbone features the model was trained on
    # (guards e.g. against a backbone rebuilt without the TF-SAME padding).
    from .features import load_cache
    cached, index = load_cache("val", ["id"])
    assert index[:4] == [it.image for it in items]
    with torch.no_grad():
        g = model.image.stem_features(pixels)
    gdiff = float((g - torch.from_numpy(np.asarray(cached[0][:4], dtype=np.float32))).abs().max())
    print(f"backbone grid, full fp32 pixel path vs float16 training cache: max abs diff {gdiff:.4f}")
    if gdiff > 0.1:
        raise RuntimeError(f"image tower does not reproduce the training features (max diff {gdiff})")
    tune_cut = model.config.get("tune_cut")
    if tune_cut is not None:  # fine-tuned top blocks: the tuned pixel path must match training too
        from .train import tuned_grid
        mid, _ = load_cache("val", ["id"], cut=tune_cut)
        with torch.no_grad():
            frozen, tuned = model.image.frozen_and_tuned(pixels)
        ref = tuned_grid(model, mid[0][:4])
        tdiff = float((tuned - torch.from_numpy(ref)).abs().max())
        fdiff = float((frozen - g).abs().max())
        print(f"tuned grid, pixel path vs cut{tune_cut} cache + tuned blocks: max abs diff {tdiff:.4f}; "
              f"exported (frozen) grid vs frozen stem: {fdiff:.2e}; tuned vs frozen grid: "
              f"{float((tuned - frozen).abs().max()):.3f}")
        if tdiff > 0.1 or fdiff > 1e-5:
            raise RuntimeError("tuned image tower does not reproduce the training path")

    s1 = json.load(open(stage_dir(1, args.run_dir) / "summary.json"))
    hist = ck["history"]
    meta = {
        "name": "rslens-retrieval-harma-mnv2",
        "stage": args.stage,
        "embedding_dim": D,
        "grid": {"channels": 1280, "height": 7, "width": 7,
                 "what": ("MobileNetV2 final 1x1-conv map (after ReLU6) of the FROZEN ImageNet backbone "
                          f"(the embedding uses a fine-tuned copy of features[{tune_cut}:19] instead; the grid "
                          "is what the captioning model was trained on)") if tune_cut is not None else
                 "MobileNetV2 final 1x1-conv map (after ReLU6 and, for stage 2, the image adapter)"},
        "fine_tuned_backbone_blocks": (f"features[{tune_cut}:19] (a copy; the frozen original gives the grid output)"
                                       if tune_cut is not None else None),
        "params": {"stage1_trainable": s1["trainable_params"], "total": ck["total_params"],
                   "stage2_trainable": ck["trainable_params"] if args.stage == 2 else None},
        "val_metrics_pytorch": hist[-1].get("val"),
        "stage1_val_metrics": s1["history"][-1].get("val"),
        "ablation": {"stage1_only_mR": s1["history"][-1].get("val", {}).get("mR"),
                     "with_adapters_mR": hist[-1].get("val", {}).get("mR") if args.stage == 2 else None},
        "training": {"commands": ["/usr/bin/python3 -m models.retrieval.features",
                                  "/usr/bin/python3 -m models.retrieval.train --stage 1",
                                  "/usr/bin/python3 -m models.retrieval.train --stage 2",
                                  "/usr/bin/python3 -m models.retrieval.export",
                                  "npx tsx models/retrieval/check_onnx.ts"],
                     "stage1_command": s1["command"], "final_command": ck["command"]},
    }
    write_towers(ImageTowerExport(model), TextTowerExport(model), out, meta, tok)


def parity_inputs(tok):
    """4 val images and 4 texts (incl. an empty and an over-long one) for the ONNX-vs-PyTorch check."""
    items = read_split("val", limit=4)
    pixels = load_images_uint8(items).float() / 255.0
    texts = [items[0].captions[0], items[1].captions[1], "", "a big airport with many planes " * 10]
    ids, mask = tok.batch(texts)
    return items, pixels, ids, mask


def save_parity(img, txt, tok, frozen_grid=None):
    """Run the PyTorch towers on the parity inputs and save inputs + outputs for check_onnx.ts
    (RSLENS_RUNS/retrieval/parity). -> (pixels, ids, mask, embedding dim, whether the tower has a grid)."""
    _, pixels, ids, mask = parity_inputs(tok)
    with torch.no_grad():
        ref = img(pixels)
        ref_emb, ref_grid = ref if isinstance(ref, tuple) else (ref, frozen_grid(pixels))
        ref_txt = txt(ids, mask)
    par = paths.runs_dir() / "retrieval" / "parity"
    par.mkdir(parents=True, exist_ok=True)
    for name, value in (("pixels", pixels), ("input_ids", ids), ("attention_mask", mask),
                        ("image_embedding", ref_emb), ("image_grid", ref_grid), ("text_embedding", ref_txt)):
        np.save(par / f"{name}.npy", value.numpy())
    return pixels, ids, mask, int(ref_emb.shape[1]), isinstance(ref, tuple)


def write_towers(img, txt, out: Path, meta: dict, tok, frozen_grid=None) -> None:
    """Export the two towers, save the parity inputs/outputs for check_onnx.ts, write retrieval.json
    (common fields + `meta`). An image tower without a grid output (returns the embedding only) needs
    `frozen_grid` (pixels -> frozen backbone grid): its parity grid is checked against the caption encoder."""
    pixels, ids, mask, D, with_grid = save_parity(img, txt, tok, frozen_grid)
    export_onnx(img, (pixels,), out / "image-tower.onnx", ["pixels"], ["embedding", "grid"] if with_grid else ["embedding"],
                doc="RS Lens retrieval image tower (MobileNetV2 from TFLite, heads trained on RSICD train).")
    export_onnx(txt, (ids, mask), out / "text-tower.onnx", ["input_ids", "attention_mask"], ["embedding"],
                extra_dynamic_axes={"input_ids": {1: "length"}, "attention_mask": {1: "length"}},
                doc="RS Lens retrieval text tower (CLIP BPE, compact vocab models/retrieval/vocab.json).")

    full = {
        "name": "rslens-retrieval-harma-mnv2",
        "embedding_dim": D,
        "max_length": tok.max_length,
        "similarity": "dot product of the L2-normalised embeddings (cosine)",
        "image_tower": {"file": "image-tower.onnx", "inputs": {"pixels": "float32 [N,3,224,224]"},
                        "outputs": {"embedding": f"float32 [N,{D}] L2-normalised",
                                    **({"grid": "float32 [N,1280,7,7]"} if with_grid else {})},
                        "preprocessing": PREPROCESSING},
        "text_tower": {"file": "text-tower.onnx",
                       "inputs": {"input_ids": "int64 [N,L], L <= max_length", "attention_mask": "int64 [N,L]"},
                       "outputs": {"embedding": f"float32 [N,{D}] L2-normalised"},
                       "tokenizer": {"base": "shared tokenizers/clip/tokenizer.json (+ tokenizer_config.json)",
                                     "vocab": VOCAB_PATH.name, "pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3,
                                     "sequence": "[bos] + compact(clip_bpe(text))[:max_length-2] + [eos], "
                                                 "right-padded with pad_id (mask 0)",
                                     "typescript": "src/core/text/tokenizer.ts (RetrievalTokenizer)"}},
        "opset": OPSET,
        "val_metrics_note": "PyTorch numbers are computed from the float16 feature cache (PIL JPEG decode); "
                            "val_metrics_onnx from the exported graphs end to end (check_onnx.ts)",
        "val_split": "RSICD val.jsonl (1,094 images x 5 captions); not used for training",
        **meta,
    }
    # A new export starts a fresh retrieval.json: ONNX-measured fields of the previous export would be
    # stale (check_onnx.ts adds them again for these files).
    with open(out / "retrieval.json", "w", encoding="utf-8") as f:
        json.dump(full, f, indent=1)
        f.write("\n")
    for n in ("image-tower.onnx", "text-tower.onnx"):
        print(f"{n}: {(out / n).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
