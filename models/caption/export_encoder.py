"""Export the captioning image encoder: the frozen ImageNet MobileNetV2 (from the TFLite file) up to its
final 1x1 convolution, i.e. the grid the caption model was trained on.

    /usr/bin/python3 -m models.caption.export_encoder

Writes models/caption/image-encoder.onnx (float32, gitignored) and image-encoder-fp16.onnx (weights stored
as float16, the shipped file): pixels float32 [N,3,224,224] RGB in [0,1] -> grid float32 [N,1280,7,7],
with the MobileNetV2 input normalisation in the graph (the retrieval image tower's preprocessing).

Why a file of its own: the retrieval image tower may fine-tune its backbone (models.retrieval.finetune);
the caption model needs the frozen grid, and onnxruntime computes every output of a graph, so a tower that
also gave the frozen grid would make every search indexing run pay for it.
Checks, before writing: the grid equals the float16 val feature cache the caption model was trained on\n(when models/cache holds it).
The parity inputs/outputs for check_onnx (4 val images) go to models/runs/caption/encoder-parity/.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..retrieval.fp16 import to_fp16_storage
from ..rslens import paths
from ..rslens.data import load_images_uint8, read_split
from ..rslens.mobilenet import mobilenet_v2_from_tflite, normalize_unit
from ..rslens.onnx_export import export_onnx
from ..rslens.utils import get_device

OUT = Path(__file__).resolve().parent


class FrozenGridEncoder(nn.Module):
    """pixels [N,3,224,224] in [0,1] -> MobileNetV2 features (after the last ReLU6) [N,1280,7,7]."""

    def __init__(self, tflite_path: str):
        super().__init__()
        self.features = mobilenet_v2_from_tflite(tflite_path).features.eval()

    def forward(self, pixels):
        return self.features(normalize_unit(pixels))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    get_device("cpu")
    out = Path(args.out)
    enc = FrozenGridEncoder(str(paths.mobilenet_tflite())).eval()
    items = read_split("val", limit=4)
    pixels = load_images_uint8(items).float() / 255.0
    with torch.no_grad():
        grid = enc(pixels)

    from ..retrieval.features import load_cache
    try:
        cached, index = load_cache("val", ["id"], mmap=True)
    except FileNotFoundError as err:  # a fresh clone: the cache is built by models.retrieval.features
        print(f"not checked against the training cache: {err}")
    else:
        assert index[:4] == [it.image for it in items]
        diff = float((grid - torch.from_numpy(np.asarray(cached[0][:4], dtype=np.float32))).abs().max())
        print(f"grid vs the float16 training cache: max abs diff {diff:.4f}")
        if diff > 0.1:
            raise RuntimeError(f"the encoder does not reproduce the training features (max diff {diff})")

    f32 = out / "image-encoder.onnx"
    export_onnx(enc, (pixels,), f32, ["pixels"], ["grid"],
                doc="RS Lens caption image encoder: frozen ImageNet MobileNetV2 (TFLite, dequantised) -> 1280x7x7 grid.")
    to_fp16_storage(f32, out / "image-encoder-fp16.onnx")

    par = paths.runs_dir() / "caption" / "encoder-parity"
    par.mkdir(parents=True, exist_ok=True)
    np.save(par / "pixels.npy", pixels.numpy())
    np.save(par / "grid.npy", grid.numpy())
    with open(par / "images.json", "w", encoding="utf-8") as fh:
        json.dump([it.image for it in items], fh)
    print(f"parity inputs/outputs: {par}")


if __name__ == "__main__":
    main()
