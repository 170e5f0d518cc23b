"""Re-target an exported image tower to another input size (test-time resolution).

    /usr/bin/python3 -m models.retrieval.resolution --size 256 IN.onnx OUT.onnx

The tower is fully convolutional up to the 1280-channel grid, and the adapters attend over the
grid tokens without position embeddings, so only two things depend on the 224 px input: the
declared input shape and the four quadrant means of the stage-2 head, exported as constant
slices rows/cols [0, 4) and [3, 7) of the 7x7 grid. For a G x G grid (G = size / 32) they
become [0, ceil(G/2)) and [floor(G/2), G): the same two overlapping halves that
adaptive average pooling to 2 x 2 takes, which is exactly [0, 4) / [3, 7) at G = 7.
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def const_values(graph: onnx.GraphProto):
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            values[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return values


def retarget(model: onnx.ModelProto, size: int) -> int:
    """Rewrites `model` in place; returns the number of quadrant slices changed."""
    if size % 32:
        raise ValueError(f"--size must be a multiple of 32 (the backbone's stride), got {size}")
    g = size // 32
    halves = {0: (0, math.ceil(g / 2)), 3: (g // 2, g)}  # keyed by the 7x7 start
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = size
    dims[3].dim_value = size
    values = const_values(graph)
    changed = 0
    for node in graph.node:
        if node.op_type != "Slice" or len(node.input) < 4:
            continue
        starts, ends, axes = (values.get(x) for x in node.input[1:4])
        if axes is None or axes.tolist() not in ([2], [3]) or starts is None or ends is None:
            continue
        key = (int(starts[0]), int(ends[0]))
        if key not in ((0, 4), (3, 7)):
            raise ValueError(f"unexpected spatial slice {key} in {node.name}")
        lo, hi = halves[key[0]]
        for slot, value in ((1, lo), (2, hi)):
            name = f"{node.name}_retarget_{slot}"
            graph.initializer.append(numpy_helper.from_array(np.array([value], dtype=np.int64), name))
            node.input[slot] = name
        changed += 1
    # shapes inferred for 224 px would now be wrong
    del graph.value_info[:]
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("src")
    ap.add_argument("dst")
    args = ap.parse_args(argv)
    model = onnx.load(args.src)
    n = retarget(model, args.size)
    onnx.checker.check_model(model)
    onnx.save(model, args.dst)
    print(f"{args.dst}: input {args.size} px, grid {args.size // 32}, {n} quadrant slices re-targeted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
