"""Optional smaller variant: float16 storage of the large weights of the exported towers.

    /usr/bin/python3 -m models.retrieval.fp16

Every float32 initializer with >= 1024 elements is stored as float16 and cast back to
float32 by a Cast node at load time (compute stays float32; no other graph change). Writes
image-tower-fp16.onnx and text-tower-fp16.onnx next to the float32 files. Use them only if
`npx tsx models/retrieval/check_onnx.ts --suffix -fp16` shows val mR within 0.5 of float32.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

OUT = Path(__file__).resolve().parent


def to_fp16_storage(src: Path, dst: Path, min_size: int = 1024) -> None:
    m = onnx.load(str(src))
    g = m.graph
    new_inits, casts = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= min_size:
            name16 = init.name + "__fp16"
            new_inits.append(numpy_helper.from_array(arr.astype(np.float16), name16))
            casts.append(helper.make_node("Cast", [name16], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            new_inits.append(init)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))
    print(f"{dst.name}: {dst.stat().st_size / 1e6:.2f} MB ({len(casts)} weights in float16)")


def main() -> None:
    for n in ("image-tower", "text-tower"):
        to_fp16_storage(OUT / f"{n}.onnx", OUT / f"{n}-fp16.onnx")


if __name__ == "__main__":
    main()
