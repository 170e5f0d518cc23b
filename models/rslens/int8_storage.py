"""Smaller variant of an exported ONNX model: int8 storage of its weight matrices.

    /usr/bin/python3 -m models.rslens.int8_storage SRC.onnx DST.onnx

Each large weight (>= 1024 elements) that a Conv (its kernel, except depthwise ones), a MatMul or
Gemm (its 2-D right-hand side) or a Gather (an embedding table) reads is stored in 8 bits and turned back
into float32 by a DequantizeLinear node:
- exactly, as uint8 with one scale and zero point, when its values already lie on such a grid (the
  layers taken unchanged from the uint8 TFLite backbone);
- otherwise as symmetric int8 with one float32 scale per output channel (Conv: kernel axis 0;
  MatMul/Gemm: output column; Gather: row, axis 0).
Compute stays float32; weights already in float16 storage (a Cast node after a float16
initializer, see models/retrieval/fp16.py) are read through their Cast. Every other tensor is left
as it is. The app folds the DequantizeLinear nodes at load (src/runtime/sessionConfig.ts). Use the
result only where an evaluation of the app's pipeline shows it within the family's accuracy bar.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_SIZE = 1024


def quantise_per_channel(w: np.ndarray, axis: int) -> Tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per slice along `axis`; returns (int8 values, float32 scales)."""
    moved = np.moveaxis(w.astype(np.float32), axis, 0)
    peak = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(moved / scale.reshape((-1,) + (1,) * (moved.ndim - 1))), -127, 127).astype(np.int8)
    return np.moveaxis(q, 0, axis), scale


def exact_uint8_grid(w: np.ndarray, tolerance: float = 0.15) -> Optional[Tuple[np.ndarray, np.float32, np.uint8]]:
    """(uint8 values, scale, zero point) when every value of w is scale * (q - zero point) up to float16
    rounding, as the weights dequantised from the uint8 TFLite backbone are; None otherwise. Storing those
    as uint8 is exact, where per-channel int8 would round them a second time."""
    u = np.unique(w.astype(np.float64))
    if len(u) < 2 or len(u) > 256:
        return None
    # The step from the gaps between the values nearest zero (float16 rounding is finest there), then
    # refined over the whole span: (largest - smallest) is a whole number of steps.
    near_zero = np.sort(u[np.argsort(np.abs(u))[:24]])
    gaps = np.diff(near_zero)
    step = float(np.median(gaps[gaps < 1.5 * gaps.min()]))
    step = float(u[-1] - u[0]) / max(1.0, float(np.rint((u[-1] - u[0]) / step)))
    first = u[0]
    for _ in range(4):  # codes from the line, then the least-squares line through (code, value)
        k = np.rint((u - first) / step)
        step, first = np.polyfit(k, u, 1)
    if k.min() < 0 or k.max() > 255 or np.abs((u - first) / step - k).max() > tolerance:
        return None
    offset = -first / step  # the zero point minus the smallest value's code
    zero = float(np.rint(offset))
    if abs(offset - zero) > tolerance or not 0 <= zero <= 255:
        return None
    q = np.rint(w.astype(np.float64) / step + zero)
    if q.min() < 0 or q.max() > 255:
        return None
    return q.astype(np.uint8), np.float32(step), np.uint8(zero)


def quantised_axis(node: onnx.NodeProto, input_index: int, ndim: int) -> Optional[int]:
    """The per-channel axis for a weight read by node's input `input_index`, or None to leave it alone.
    Depthwise kernels (grouped Conv) stay as they are: 9 values per channel are the most sensitive to
    rounding (measured on the image tower) and a small part of the bytes."""
    op_type = node.op_type
    if op_type == "Conv" and input_index == 1:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        return 0 if group == 1 else None
    if op_type == "MatMul" and input_index == 1 and ndim == 2:
        return 1
    if op_type == "Gemm" and input_index == 1:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if op_type == "Gather" and input_index == 0 and ndim == 2:
        return 0
    return None


def to_int8_storage(src: Path, dst: Path, min_size: int = MIN_SIZE) -> Dict[str, float]:
    model = onnx.load(str(src))
    graph = model.graph
    if not any(o.domain in ("", "ai.onnx") and o.version >= 13 for o in model.opset_import):
        raise SystemExit(f"{src}: per-axis DequantizeLinear needs opset >= 13")
    inits = {i.name: i for i in graph.initializer}
    # float value name -> (initializer name, Cast node or None): where the weight's float32 values come from
    sources: Dict[str, Tuple[str, Optional[onnx.NodeProto]]] = {name: (name, None) for name, i in inits.items()
                                                                  if i.data_type == TensorProto.FLOAT}
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in inits and inits[node.input[0]].data_type == TensorProto.FLOAT16:
            sources[node.output[0]] = (node.input[0], node)

    # Every reader of a weight must agree on its axis; a weight read any other way stays as it is.
    axes: Dict[str, Optional[int]] = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name not in sources:
                continue
            arr_shape = inits[sources[name][0]].dims
            axis = quantised_axis(node, k, len(arr_shape))
            axes[name] = axis if axes.get(name, axis) == axis else None

    replaced_casts, new_nodes, removed = set(), [], set()
    stats = {"weights": 0, "exact": 0, "max_rel_error": 0.0}
    for name, axis in axes.items():
        init_name, cast = sources[name]
        w = numpy_helper.to_array(inits[init_name]).astype(np.float32)
        if axis is None or w.size < min_size:
            continue
        grid = exact_uint8_grid(w)
        base = name + "__int8"
        if grid is not None:  # per tensor, exact
            q, scale, zero = grid
            back = (q.astype(np.float32) - np.float32(zero)) * scale
            dq_attrs = {}
            stats["exact"] += 1
        else:
            q, scale = quantise_per_channel(w, axis)
            zero = np.zeros_like(scale, dtype=np.int8)
            back = q.astype(np.float32) * np.expand_dims(scale, tuple(d for d in range(w.ndim) if d != axis))
            dq_attrs = {"axis": axis}
        stats["max_rel_error"] = max(stats["max_rel_error"], float(np.abs(back - w).max() / max(np.abs(w).max(), 1e-12)))
        graph.initializer.extend([
            numpy_helper.from_array(q, base),
            numpy_helper.from_array(np.asarray(scale, dtype=np.float32), base + "_scale"),
            numpy_helper.from_array(np.asarray(zero), base + "_zero"),
        ])
        new_nodes.append(helper.make_node("DequantizeLinear", [base, base + "_scale", base + "_zero"], [name],
                                          name=base + "_dequantize", **dq_attrs))
        removed.add(init_name)
        if cast is not None:
            replaced_casts.add(id(cast))
        stats["weights"] += 1

    kept = [i for i in graph.initializer if i.name not in removed]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = [n for n in graph.node if id(n) not in replaced_casts]
    del graph.node[:]
    graph.node.extend(new_nodes + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    stats["mb"] = dst.stat().st_size / 1e6
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--min-size", type=int, default=MIN_SIZE)
    args = ap.parse_args()
    stats = to_int8_storage(Path(args.src), Path(args.dst), args.min_size)
    print(f"{Path(args.dst).name}: {stats['mb']:.2f} MB ({stats['weights']} weights in 8 bits, {stats['exact']} of them "
          f"exactly on their uint8 grid; max relative rounding error {stats['max_rel_error']:.4f})")


if __name__ == "__main__":
    main()
