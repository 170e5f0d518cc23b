"""Float MobileNetV2 (torchvision layout) initialised from the uint8 TFLite model.

The TFLite model (TensorFlow model garden, Apache-2.0) is MobileNetV2 1.0/224,
quantisation-aware trained, batch-norm folded into the convolutions, ReLU6 fused,
1001 ImageNet classes (index 0 = background), input uint8 with
real = (q - 128) / 128, i.e. values in [-1, 1].

Mapping notes:
* TFLite conv weights are OHWI -> OIHW; depthwise weights are 1HW(C) -> (C,1,H,W).
* Biases are int32 with scale = input_scale * weight_scale and zero point 0.
* BN is folded: we keep torchvision's BatchNorm2d modules but make them identity
  + bias (gamma=1, beta=folded bias, mean=0, var=1-eps), so the module tree and
  state_dict keys stay torchvision's.
* TF 'SAME' padding for stride-2 3x3 convs on even sizes pads 0 before / 1 after,
  whereas PyTorch pads 1 on both sides; stride-2 convs use `TFSamePadConv2d`.
"""
from __future__ import annotations

from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import mobilenet_v2

from .tflite import TFLiteModel, read_tflite


class TFSamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (asymmetric for stride 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ih, iw = x.shape[-2], x.shape[-1]
        oh, ow = -(-ih // sh), -(-iw // sw)
        ph = max((oh - 1) * sh + kh - ih, 0)
        pw = max((ow - 1) * sw + kw - iw, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _to_tf_same(conv: nn.Conv2d) -> nn.Conv2d:
    new = TFSamePadConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                          padding=0, groups=conv.groups, bias=conv.bias is not None)
    return new


def _conv_bn_pairs(model: nn.Module) -> List[tuple]:
    """(parent, conv_name, conv, bn) for every conv of torchvision MobileNetV2, in graph order."""
    pairs = []
    mods = list(model.features.named_modules())
    names = dict(mods)
    for name, m in mods:
        if isinstance(m, nn.Conv2d):
            parent_name, child = name.rsplit(".", 1)
            parent = names[parent_name]
            bn = parent[int(child) + 1]
            assert isinstance(bn, nn.BatchNorm2d)
            pairs.append((parent, int(child), m, bn))
    return pairs


def tf_style_mobilenet_v2(num_classes: int = 1001) -> nn.Module:
    """torchvision MobileNetV2 whose stride-2 convs use TF 'SAME' padding (randomly initialised).
    Use this (not plain torchvision) whenever weights from the TFLite model are loaded
    from a state_dict, or the features will differ."""
    model = mobilenet_v2(weights=None, num_classes=num_classes)
    for parent, idx, conv, bn in _conv_bn_pairs(model):
        if conv.stride != (1, 1):
            parent[idx] = _to_tf_same(conv)
    return model


def mobilenet_v2_from_tflite(path: str, tfl: TFLiteModel | None = None) -> nn.Module:
    """torchvision MobileNetV2 (1001-way classifier) with weights from the TFLite file."""
    tfl = tfl or read_tflite(path)
    model = tf_style_mobilenet_v2()
    pairs = _conv_bn_pairs(model)
    convs = [op for op in tfl.operators if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == len(pairs) + 1, (len(convs), len(pairs))  # + Logits
    for op, (parent, idx, conv, bn) in zip(convs[:-1], pairs):
        w_t, b_t = tfl.tensors[op.inputs[1]], tfl.tensors[op.inputs[2]]
        w = w_t.dequantize()
        if op.opcode == "DEPTHWISE_CONV_2D":
            w = np.transpose(w, (3, 0, 1, 2))  # 1HWC -> C1HW
        else:
            w = np.transpose(w, (0, 3, 1, 2))  # OHWI -> OIHW
        assert tuple(conv.weight.shape) == w.shape, (conv.weight.shape, w.shape)
        stride = (op.options["stride_h"], op.options["stride_w"])
        assert tuple(conv.stride) == stride, (conv.stride, stride)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b_t.dequantize()))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
    logits = convs[-1]
    w = tfl.tensors[logits.inputs[1]].dequantize().reshape(1001, 1280)
    b = tfl.tensors[logits.inputs[2]].dequantize()
    lin = model.classifier[1]
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
        lin.bias.copy_(torch.from_numpy(b))
    model.eval()
    return model


# Input normalisation expected by the TFLite graph: real = (q - 128) / 128.
def normalize_uint8(x: torch.Tensor) -> torch.Tensor:
    """x: float tensor of 0..255 RGB values -> [-1, 1) as in the TFLite graph."""
    return (x - 128.0) / 128.0


def normalize_unit(x: torch.Tensor) -> torch.Tensor:
    """x: float tensor of RGB values in [0, 1] (uint8 / 255) -> same as normalize_uint8."""
    return (x * 255.0 - 128.0) / 128.0


class TFLiteReference:
    """Executes the TFLite graph in float with fake quantisation of every activation.

    Independent of the torchvision mapping above (walks the operators generically);
    used only to verify the float model.
    """

    def __init__(self, tfl: TFLiteModel):
        self.tfl = tfl

    def _fq(self, idx: int, x: torch.Tensor) -> torch.Tensor:
        t = self.tfl.tensors[idx]
        if t.scale is None or len(t.scale) == 0 or t.dtype is not np.uint8:
            return x
        s, z = float(t.scale[0]), float(t.zero_point[0])
        return (torch.clamp(torch.round(x / s) + z, 0, 255) - z) * s

    @staticmethod
    def _act(x, a):
        return {0: x, 1: F.relu(x), 3: torch.clamp(x, 0, 6)}[a]

    @staticmethod
    def _same_pad(x, k, s):
        ih, iw = x.shape[-2:]
        oh, ow = -(-ih // s[0]), -(-iw // s[1])
        ph = max((oh - 1) * s[0] + k[0] - ih, 0)
        pw = max((ow - 1) * s[1] + k[1] - iw, 0)
        return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))

    @torch.no_grad()
    def __call__(self, pixels_uint8: torch.Tensor, stop_at_op: int | None = None) -> dict:
        """pixels: float NCHW 0..255. Returns dict of tensor index -> NCHW float value."""
        tfl = self.tfl
        vals = {tfl.inputs[0]: self._fq(tfl.inputs[0], normalize_uint8(pixels_uint8))}
        for i, op in enumerate(tfl.operators):
            if stop_at_op is not None and i >= stop_at_op:
                break
            x = vals[op.inputs[0]]
            if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w = torch.from_numpy(tfl.tensors[op.inputs[1]].dequantize())
                b = torch.from_numpy(tfl.tensors[op.inputs[2]].dequantize())
                s = (op.options["stride_h"], op.options["stride_w"])
                if op.opcode == "CONV_2D":
                    w = w.permute(0, 3, 1, 2)
                    groups = 1
                else:
                    w = w.permute(3, 0, 1, 2)
                    groups = w.shape[0]
                if op.options["padding"] == 0:
                    x = self._same_pad(x, w.shape[-2:], s)
                y = self._act(F.conv2d(x, w, b, s, 0, 1, groups), op.options["activation"])
            elif op.opcode == "ADD":
                y = self._act(x + vals[op.inputs[1]], op.options.get("activation", 0))
            elif op.opcode == "AVERAGE_POOL_2D":
                y = F.adaptive_avg_pool2d(x, 1) if x.shape[-1] == op.options["filter_w"] else None
            elif op.opcode == "RESHAPE":
                y = x.reshape(x.shape[0], -1)
            elif op.opcode == "SOFTMAX":
                y = torch.softmax(x, dim=-1)
            else:
                raise NotImplementedError(op.opcode)
            vals[op.outputs[0]] = self._fq(op.outputs[0], y)
        return vals
