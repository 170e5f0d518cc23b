"""Run an ONNX model with onnxruntime-node (from the repo's node_modules) on float32 inputs.

There is no onnxruntime for Debian's Python, so this writes the input to a temporary .bin, runs a
tiny node script, and reads the outputs back. Used to verify ONNX files against PyTorch."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Dict

import numpy as np

from models.rslens import paths

_JS = r"""
const ort = require('onnxruntime-node');
const fs = require('fs');
const [model, inName, inBin, shapeJson, outDir] = process.argv.slice(2);
(async () => {
  const shape = JSON.parse(shapeJson);
  const buf = fs.readFileSync(inBin);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const sess = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'disabled' });
  const res = await sess.run({ [inName]: new ort.Tensor('float32', data, shape) });
  const meta = {};
  for (const [k, t] of Object.entries(res)) {
    fs.writeFileSync(`${outDir}/${k}.bin`, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    meta[k] = t.dims;
  }
  fs.writeFileSync(`${outDir}/meta.json`, JSON.stringify(meta));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def run_onnx(model_path: Path, x: np.ndarray, input_name: str = "images") -> Dict[str, np.ndarray]:
    x = np.ascontiguousarray(x, dtype=np.float32)
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        (td / "run.js").write_text(_JS)
        x.tofile(td / "in.bin")
        subprocess.run(["node", str(td / "run.js"), str(Path(model_path).resolve()), input_name, str(td / "in.bin"),
                        json.dumps(list(x.shape)), str(td)], check=True, cwd=paths.REPO_ROOT,
                       env={**__import__("os").environ, "NODE_PATH": str(paths.REPO_ROOT / "node_modules")})
        meta = json.loads((td / "meta.json").read_text())
        return {k: np.fromfile(td / f"{k}.bin", dtype=np.float32).reshape(v) for k, v in meta.items()}
