"""Build the tiny test model for RS Lens's runtime tests.

A fixed-seed, untrained conv net (no data involved) exported to ONNX, plus a
reference output computed by PyTorch on a deterministic input, so the browser
(onnxruntime-web, WASM and WebGPU) and the Node CLI (onnxruntime-node) can be
checked against PyTorch.

    /usr/bin/python3 models/tiny/make_tiny_model.py

Writes tiny-cnn.onnx and tiny-cnn.reference.json next to this script and prints
the size and sha256 to copy into models/manifest.json.
"""
import hashlib
import json
import os

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ONNX_PATH = os.path.join(HERE, "tiny-cnn.onnx")
REFERENCE_PATH = os.path.join(HERE, "tiny-cnn.reference.json")
INPUT_SHAPE = (1, 3, 32, 32)
CLASSES = 4


class TinyCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)  # exported as GlobalAveragePool
        self.fc = nn.Linear(16, CLASSES)  # exported as Gemm

    def forward(self, pixels):
        x = torch.relu(self.conv1(pixels))
        x = torch.relu(self.conv2(x))
        x = self.pool(x).flatten(1)
        return torch.softmax(self.fc(x) * 4.0, dim=1)  # ×4 spreads the probabilities so errors show


def reference_input():
    """Deterministic input every language can rebuild: values in [-1, 1]."""
    n = 1
    for d in INPUT_SHAPE:
        n *= d
    idx = torch.arange(n, dtype=torch.float64)
    values = torch.sin(idx * 0.37) * torch.cos(idx * 0.011)
    return values.to(torch.float32).reshape(INPUT_SHAPE)


def main():
    torch.manual_seed(20240607)
    torch.set_num_threads(2)
    model = TinyCnn().eval()
    pixels = reference_input()
    with torch.no_grad():
        probs = model(pixels)
        # float64 twin of the same weights: the reference the float32 runtimes are compared to
        probs64 = model.double()(pixels.double())
        model.float()

    torch.onnx.export(
        model,
        (pixels,),
        ONNX_PATH,
        input_names=["pixels"],
        output_names=["probs"],
        opset_version=17,
        do_constant_folding=True,
    )

    reference = {
        "model": "tiny-cnn",
        "note": "Computed by PyTorch %s in float64 from the exported float32 weights." % torch.__version__,
        "inputs": {"pixels": {"dtype": "float32", "dims": list(INPUT_SHAPE), "data": [float(v) for v in pixels.flatten()]}},
        "outputs": {"probs": {"dtype": "float32", "dims": list(probs64.shape), "data": [float(v) for v in probs64.flatten()]}},
        "float32_pytorch_max_abs_diff": float((probs.double() - probs64).abs().max()),
    }
    with open(REFERENCE_PATH, "w") as f:
        json.dump(reference, f, separators=(",", ":"))
        f.write("\n")

    for path in (ONNX_PATH, REFERENCE_PATH):
        data = open(path, "rb").read()
        print("%s  %d bytes  sha256 %s" % (os.path.relpath(path, os.path.dirname(HERE)), len(data), hashlib.sha256(data).hexdigest()))
    print("probs", [round(float(v), 6) for v in probs64.flatten()])


if __name__ == "__main__":
    main()
