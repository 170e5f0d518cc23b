"""Fold the TF-SAME `Pad` nodes of an exported MobileNetV2 graph into their convolutions.

    /usr/bin/python3 -m models.rslens.fold_pads IN.onnx OUT.onnx

Our TFLite-initialised MobileNetV2 pads every stride-2 convolution the TensorFlow way (asymmetric,
`TFSamePadConv2d`). torch.onnx exports that as a Pad whose amounts are computed at run time from the
input's shape (Shape/Gather/.../Cast), so onnxruntime cannot fuse it and runs a separate Pad kernel
(7-8 % of the image tower's kernel time, `profile_onnx.ts`). The towers take a FIXED spatial size
(224x224), so every amount is a constant: this writes it into the Conv's own `pads` attribute and
drops the Pad. The maths is unchanged (zero padding either way); check the outputs afterwards.

Spatial size of a Pad's input: the graph input's size divided by the product of the strides of the
convolutions on the way (every tensor on the convolution path carries its cumulative stride).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict

import onnx
from onnx import helper


def _attrs(node) -> Dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def fold_pads(model: onnx.ModelProto) -> int:
    """Folds in place; -> number of Pad nodes removed."""
    g = model.graph
    dims = g.input[0].type.tensor_type.shape.dim
    h, w = dims[2].dim_value, dims[3].dim_value
    if not (h and w):
        raise ValueError("the graph input needs a fixed spatial size to fold its TF-SAME pads")
    stride: Dict[str, int] = {g.input[0].name: 1}  # cumulative stride of the tensors on the conv path
    for n in g.node:  # nodes are topologically sorted
        ins = [stride[i] for i in n.input if i in stride]
        if not ins:
            continue
        s = max(ins)
        if n.op_type == "Conv":
            s *= int(_attrs(n).get("strides", [1, 1])[0])
        for o in n.output:
            stride[o] = s
    consumers: Dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    removed = []
    for pad in [n for n in g.node if n.op_type == "Pad"]:
        users = consumers.get(pad.output[0], [])
        mode = _attrs(pad).get("mode", b"constant")
        if len(users) != 1 or users[0].op_type != "Conv" or mode != b"constant" or (len(pad.input) > 2 and pad.input[2]):
            raise ValueError(f"{pad.name}: not a zero Pad feeding one Conv")
        conv = users[0]
        a = _attrs(conv)
        if any(a.get("pads", [0, 0, 0, 0])) or a.get("auto_pad", b"NOTSET") != b"NOTSET":
            raise ValueError(f"{conv.name} already pads")
        (kh, kw), (sh, sw) = a["kernel_shape"], a.get("strides", [1, 1])
        f = stride[pad.input[0]]
        ih, iw = h // f, w // f
        ph = max((-(-ih // sh) - 1) * sh + kh - ih, 0)
        pw = max((-(-iw // sw) - 1) * sw + kw - iw, 0)
        pads = [ph // 2, pw // 2, ph - ph // 2, pw - pw // 2]  # ONNX: top, left, bottom, right
        kept = [x for x in conv.attribute if x.name != "pads"]
        del conv.attribute[:]
        conv.attribute.extend(kept + [helper.make_attribute("pads", pads)])
        conv.input[0] = pad.input[0]
        removed.append(pad)
    for pad in removed:
        g.node.remove(pad)
    # the Shape/Gather/... chains that computed the amounts are now dead
    live = {o.name for o in g.output}
    for n in reversed(list(g.node)):
        if any(o in live for o in n.output):
            live.update(n.input)
        else:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    kept_inits = [i for i in g.initializer if i.name in used or i.name in live]
    del g.initializer[:]
    g.initializer.extend(kept_inits)
    return len(removed)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = Path(argv[0]), Path(argv[1])
    model = onnx.load(str(src))
    before = len(model.graph.node)
    n = fold_pads(model)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dst))
    print(f"{dst.name}: {n} Pad nodes folded into their Conv, {before} -> {len(model.graph.node)} nodes, "
          f"{dst.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
