"""YOLOX-Nano in PyTorch (weights from the COCO ONNX export) and the RS-TinyNet-style detector.

YOLOX-Nano = CSPDarknet backbone (depth 0.33, width 0.25, depthwise convs) + PAFPN + decoupled
head (Megvii, Apache-2.0). The shared ONNX file has BatchNorm folded into the convolutions, so the
re-implementation uses plain convolutions with bias ("fused") for every pretrained layer. Module
names follow the upstream YOLOX code (backbone.backbone.dark3..., backbone.C3_p4..., head.stems...)
and `load_yolox_onnx` maps the ONNX initialisers onto them (named ones by name, the numbered,
BN-folded ones by the order of the Conv nodes in the graph = the execution order of the model).

Input convention (same as the original export): BGR, float 0-255, no normalisation.

`TinyDet` adds (all new layers use conv+BN+SiLU; BN folds into the conv at ONNX export):
  * MDCA  - multi-dimensional collaborative attention: three gates (channel, height, width) from
            mean+std squeezes and 1-D convolutions along that dimension, averaged; gates are
            2*sigmoid(.) with zero-initialised convs, so the module starts as the identity.
  * PFDH  - progressive fusion detection head: levels fused top-down one step at a time
            (P5 -> P4 -> P3 -> P2) with learnable gates (init 0 for pretrained levels), plus a new
            stride-4 level P2 built from the backbone's dark2 features and the fused P3.
  * ARB   - auxiliary reversible branch (training only): CBLinear/CBFuse-style paths from the raw
            backbone levels into an auxiliary decoupled head (extra detection loss) and a light
            decoder that reconstructs the (downsampled) input from the stride-4 features, so the
            high-resolution features keep the information tiny objects need. Not used in eval mode,
            not exported.
`TinyDet(tinynet=False)` is the ablation baseline: YOLOX-Nano backbone/neck/head (3 levels,
strides 8/16/32) with a new class head - no MDCA, no PFDH/stride-4, no ARB.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------- building blocks
class BaseConv(nn.Module):
    """Conv -> (BN) -> SiLU. fused=True: conv with bias, no BN (the BN-folded pretrained layers)."""

    def __init__(self, cin, cout, k, s=1, groups=1, act=True, fused=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=fused)
        self.bn = nn.Identity() if fused else nn.BatchNorm2d(cout, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class DWConv(nn.Module):
    def __init__(self, cin, cout, k, s=1, fused=True):
        super().__init__()
        self.dconv = BaseConv(cin, cin, k, s, groups=cin, fused=fused)
        self.pconv = BaseConv(cin, cout, 1, 1, fused=fused)

    def forward(self, x):
        return self.pconv(self.dconv(x))


class Bottleneck(nn.Module):
    def __init__(self, cin, cout, shortcut=True, fused=True):
        super().__init__()
        self.conv1 = BaseConv(cin, cout, 1, 1, fused=fused)
        self.conv2 = DWConv(cout, cout, 3, 1, fused=fused)
        self.use_add = shortcut and cin == cout

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class CSPLayer(nn.Module):
    def __init__(self, cin, cout, n=1, shortcut=True, fused=True):
        super().__init__()
        h = int(cout * 0.5)
        self.conv1 = BaseConv(cin, h, 1, 1, fused=fused)
        self.conv2 = BaseConv(cin, h, 1, 1, fused=fused)
        self.conv3 = BaseConv(2 * h, cout, 1, 1, fused=fused)
        self.m = nn.Sequential(*[Bottleneck(h, h, shortcut, fused=fused) for _ in range(n)])

    def forward(self, x):
        x1 = self.conv1(x)
        x2 = self.conv2(x)
        x1 = self.m(x1)
        return self.conv3(torch.cat((x1, x2), 1))


class SPPBottleneck(nn.Module):
    def __init__(self, cin, cout, ks=(5, 9, 13)):
        super().__init__()
        h = cin // 2
        self.conv1 = BaseConv(cin, h, 1, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in ks])
        self.conv2 = BaseConv(h * (len(ks) + 1), cout, 1, 1)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [m(x) for m in self.m], 1))


class Focus(nn.Module):
    def __init__(self, cin, cout, k=3):
        super().__init__()
        self.conv = BaseConv(cin * 4, cout, k, 1)

    def forward(self, x):
        tl = x[..., ::2, ::2]
        tr = x[..., ::2, 1::2]
        bl = x[..., 1::2, ::2]
        br = x[..., 1::2, 1::2]
        return self.conv(torch.cat((tl, bl, tr, br), 1))


class CSPDarknet(nn.Module):
    """depth 0.33 / width 0.25, depthwise. Returns dark2 (s4), dark3 (s8), dark4 (s16), dark5 (s32)."""

    def __init__(self):
        super().__init__()
        bc, bd = 16, 1
        self.stem = Focus(3, bc, 3)
        self.dark2 = nn.Sequential(DWConv(bc, bc * 2, 3, 2), CSPLayer(bc * 2, bc * 2, bd))
        self.dark3 = nn.Sequential(DWConv(bc * 2, bc * 4, 3, 2), CSPLayer(bc * 4, bc * 4, bd * 3))
        self.dark4 = nn.Sequential(DWConv(bc * 4, bc * 8, 3, 2), CSPLayer(bc * 8, bc * 8, bd * 3))
        self.dark5 = nn.Sequential(DWConv(bc * 8, bc * 16, 3, 2), SPPBottleneck(bc * 16, bc * 16),
                                   CSPLayer(bc * 16, bc * 16, bd, shortcut=False))

    def forward(self, x):
        x = self.stem(x)
        c2 = self.dark2(x)
        c3 = self.dark3(c2)
        c4 = self.dark4(c3)
        c5 = self.dark5(c4)
        return c2, c3, c4, c5


class YOLOPAFPN(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = CSPDarknet()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = BaseConv(256, 128, 1, 1)
        self.C3_p4 = CSPLayer(256, 128, 1, False)
        self.reduce_conv1 = BaseConv(128, 64, 1, 1)
        self.C3_p3 = CSPLayer(128, 64, 1, False)
        self.bu_conv2 = DWConv(64, 64, 3, 2)
        self.C3_n3 = CSPLayer(128, 128, 1, False)
        self.bu_conv1 = DWConv(128, 128, 3, 2)
        self.C3_n4 = CSPLayer(256, 256, 1, False)

    def forward(self, x, return_backbone=False):
        c2, x2, x1, x0 = self.backbone(x)
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.C3_p4(torch.cat([self.upsample(fpn_out0), x1], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(torch.cat([self.upsample(fpn_out1), x2], 1))
        pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
        outs = (pan_out2, pan_out1, pan_out0)
        if return_backbone:
            return outs, (c2, x2, x1, x0)
        return outs


class DecoupledHead(nn.Module):
    """YOLOX head for `len(in_channels)` levels. Returns per level [B, 4+1+C, H, W] raw logits."""

    def __init__(self, num_classes, in_channels=(64, 128, 256), width=64, fused=True, n_convs=2):
        super().__init__()
        self.num_classes = num_classes
        self.stems = nn.ModuleList([BaseConv(c, width, 1, 1, fused=fused) for c in in_channels])
        self.cls_convs = nn.ModuleList([nn.Sequential(*[DWConv(width, width, 3, 1, fused=fused) for _ in range(n_convs)])
                                        for _ in in_channels])
        self.reg_convs = nn.ModuleList([nn.Sequential(*[DWConv(width, width, 3, 1, fused=fused) for _ in range(n_convs)])
                                        for _ in in_channels])
        self.cls_preds = nn.ModuleList([nn.Conv2d(width, num_classes, 1) for _ in in_channels])
        self.reg_preds = nn.ModuleList([nn.Conv2d(width, 4, 1) for _ in in_channels])
        self.obj_preds = nn.ModuleList([nn.Conv2d(width, 1, 1) for _ in in_channels])

    def init_new_preds(self, prior=1e-2):
        b = -float(np.log((1 - prior) / prior))
        for conv in list(self.cls_preds) + list(self.obj_preds):
            nn.init.normal_(conv.weight, 0, 0.01)
            nn.init.constant_(conv.bias, b)

    def forward(self, feats, skip_stem=False):
        outs = []
        for k, x in enumerate(feats):
            if not skip_stem:
                x = self.stems[k](x)
            cls_out = self.cls_preds[k](self.cls_convs[k](x))
            reg_feat = self.reg_convs[k](x)
            outs.append(torch.cat([self.reg_preds[k](reg_feat), self.obj_preds[k](reg_feat), cls_out], 1))
        return outs


def flatten_levels(outs: Sequence[torch.Tensor]) -> torch.Tensor:
    """[B,K,H,W] per level -> [B, sum(H*W), K] (row-major: level, then y, then x)."""
    return torch.cat([o.flatten(2).permute(0, 2, 1) for o in outs], 1)


def make_grids(outs: Sequence[torch.Tensor], strides: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Grid cell (x, y) and stride per flattened position, matching flatten_levels()."""
    grids, ss = [], []
    for o, s in zip(outs, strides):
        h, w = o.shape[-2:]
        yv, xv = torch.meshgrid(torch.arange(h, device=o.device), torch.arange(w, device=o.device), indexing="ij")
        g = torch.stack((xv, yv), 2).reshape(1, -1, 2).to(o.dtype)
        grids.append(g)
        ss.append(torch.ones_like(g[..., :1]) * float(s))   # trace-friendly (dynamic H, W in ONNX)
    return torch.cat(grids, 1), torch.cat(ss, 1)


def decode(outs: Sequence[torch.Tensor], strides: Sequence[int]) -> torch.Tensor:
    """Raw level outputs -> [B, N, 5+C]: cx, cy, w, h in input pixels, obj and class probabilities."""
    p = flatten_levels(outs)
    grid, s = make_grids(outs, strides)
    xy = (p[..., :2] + grid) * s
    wh = torch.exp(p[..., 2:4]) * s
    return torch.cat([xy, wh, torch.sigmoid(p[..., 4:])], -1)


class YOLOXNano(nn.Module):
    """The COCO YOLOX-Nano exactly as exported (raw reg, sigmoid obj/cls; decode=True also decodes)."""
    strides = (8, 16, 32)

    def __init__(self, num_classes=80):
        super().__init__()
        self.backbone = YOLOPAFPN()
        self.head = DecoupledHead(num_classes)

    def forward(self, x, decode_boxes=False):
        outs = self.head(self.backbone(x))
        if decode_boxes:
            return decode(outs, self.strides)
        p = flatten_levels(outs)
        return torch.cat([p[..., :4], torch.sigmoid(p[..., 4:])], -1)


# ----------------------------------------------------------------------------- ONNX weight loading
def load_yolox_onnx(model: nn.Module, onnx_path: str, log=print) -> Dict[str, float]:
    """Copy the initialisers of the YOLOX-Nano ONNX into `model` (a YOLOXNano, or TinyDet whose
    `.backbone` and `.head` have the same layout). Numbered (BN-folded) convs are matched by the order
    of the ONNX Conv nodes vs. the execution order of our convs (recorded with hooks on a dummy
    forward), checking every shape. Returns stats."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(onnx_path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    onnx_convs = [n for n in m.graph.node if n.op_type == "Conv"]

    ref = YOLOXNano(80)
    order: List[str] = []
    name_of = {mod: n for n, mod in ref.named_modules()}
    hooks = [mod.register_forward_hook(lambda mod, i, o: order.append(name_of[mod]))
             for mod in ref.modules() if isinstance(mod, nn.Conv2d)]
    with torch.no_grad():
        ref(torch.zeros(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert len(order) == len(onnx_convs) == 113, (len(order), len(onnx_convs))
    sd = {}
    for name, node in zip(order, onnx_convs):
        w, b = inits[node.input[1]], inits[node.input[2]]
        mod = ref.get_submodule(name)
        assert tuple(mod.weight.shape) == w.shape, (name, mod.weight.shape, w.shape)
        sd[name + ".weight"] = torch.from_numpy(w.copy())
        sd[name + ".bias"] = torch.from_numpy(b.copy())
    # named head initialisers must agree with the order-based mapping
    for k in ("head.cls_preds.0.weight", "head.reg_preds.2.bias", "head.obj_preds.1.weight"):
        assert np.array_equal(sd[k].numpy(), inits[k]), k
    ref.load_state_dict(sd, strict=True)
    if isinstance(model, YOLOXNano) and model.head.num_classes == 80:
        model.load_state_dict(ref.state_dict())
        return {"loaded": len(sd), "skipped": 0}
    # partial copy (TinyDet): everything with matching name and shape
    own = model.state_dict()
    n_ok, skipped = 0, []
    for k, v in ref.state_dict().items():
        if k in own and own[k].shape == v.shape:
            own[k] = v
            n_ok += 1
        else:
            skipped.append(k)
    model.load_state_dict(own)
    log(f"loaded {n_ok} tensors from {len(sd)} YOLOX-Nano tensors; skipped {len(skipped)} (class preds etc.)")
    return {"loaded": n_ok, "skipped": len(skipped)}


# ----------------------------------------------------------------------------- RS-TinyNet modules
class MDCA(nn.Module):
    """Multi-dimensional collaborative attention (channel, height and width jointly).

    For each dimension d in (C, H, W): squeeze the other two dimensions with a learned mix of mean
    and standard deviation, excite with a 1-D conv along d (kernel k), gate = 2*sigmoid (identity
    at init because the convs start at zero). The three recalibrated tensors are averaged."""

    def __init__(self, channels, k_c=3, k_s=5):
        super().__init__()
        self.conv_c = nn.Conv1d(1, 1, k_c, padding=k_c // 2, bias=False)
        self.conv_h = nn.Conv1d(1, 1, k_s, padding=k_s // 2, bias=False)
        self.conv_w = nn.Conv1d(1, 1, k_s, padding=k_s // 2, bias=False)
        for c in (self.conv_c, self.conv_h, self.conv_w):
            nn.init.zeros_(c.weight)
        self.mix = nn.Parameter(torch.full((3, 2), 0.5))  # (mean, std) weights per branch

    @staticmethod
    def _squeeze(x, dims, mix):
        mu = x.mean(dims)
        sd = torch.sqrt(((x - x.mean(dims, keepdim=True)) ** 2).mean(dims) + 1e-5)
        return mix[0] * mu + mix[1] * sd

    def forward(self, x):
        b, c, h, w = x.shape
        sc = self._squeeze(x, (2, 3), self.mix[0])            # [B,C]
        sh = self._squeeze(x, (1, 3), self.mix[1])            # [B,H]
        sw = self._squeeze(x, (1, 2), self.mix[2])            # [B,W]
        gc = 2 * torch.sigmoid(self.conv_c(sc.unsqueeze(1))).squeeze(1)  # [B,C]
        gh = 2 * torch.sigmoid(self.conv_h(sh.unsqueeze(1))).squeeze(1)  # [B,H]
        gw = 2 * torch.sigmoid(self.conv_w(sw.unsqueeze(1))).squeeze(1)  # [B,W]
        g = (gc[:, :, None, None] + gh[:, None, :, None] + gw[:, None, None, :]) / 3.0
        return x * g


class PFDHFusion(nn.Module):
    """Progressive top-down fusion over head-width (64 ch) features P5 -> P4 -> P3 -> P2.

    F5 = S5; F4 = S4 + a4 * conv(up(F5)); F3 = S3 + a3 * conv(up(F4)); F2 = S2 + conv(up(F3)).
    S_k are the (pretrained) head stems; a3, a4 are learnable gates starting at 0 so the pretrained
    levels are unchanged at init; P2 (stride 4) is new: its stem takes dark2 (32 ch)."""

    def __init__(self, width=64, c2=32):
        super().__init__()
        self.stem2 = BaseConv(c2, width, 1, 1, fused=False)
        self.fuse = nn.ModuleList([DWConv(width, width, 3, 1, fused=False) for _ in range(3)])  # ->P4, ->P3, ->P2
        self.gates = nn.Parameter(torch.zeros(2))

    def forward(self, s2, s3, s4, s5):
        up = lambda t: F.interpolate(t, scale_factor=2.0, mode="nearest")
        f5 = s5
        f4 = s4 + self.gates[0] * self.fuse[0](up(f5))
        f3 = s3 + self.gates[1] * self.fuse[1](up(f4))
        f2 = self.stem2(s2) + self.fuse[2](up(f3))
        return f2, f3, f4, f5


class ARB(nn.Module):
    """Auxiliary reversible branch (training only): CBLinear/CBFuse-like projection of every raw
    backbone level to the head width, fused into each target level (resize + sum), an auxiliary
    decoupled head (1 conv per branch) on strides 4/8/16/32, and a decoder that reconstructs the
    input at 1/4 resolution from the fused stride-4 features."""

    def __init__(self, num_classes, chans=(32, 64, 128, 256), width=32):
        super().__init__()
        self.proj = nn.ModuleList([BaseConv(c, width, 1, 1, fused=False) for c in chans])
        self.head = DecoupledHead(num_classes, in_channels=(width,) * 4, width=width, fused=False, n_convs=1)
        self.head.init_new_preds()
        self.recon = nn.Sequential(DWConv(width, width, 3, 1, fused=False), nn.Conv2d(width, 3, 1))

    def forward(self, feats):
        proj = [p(f) for p, f in zip(self.proj, feats)]
        fused = []
        for i, tgt in enumerate(proj):
            acc = tgt
            for j, src in enumerate(proj):
                if j != i:
                    acc = acc + F.interpolate(src, size=tgt.shape[-2:], mode="nearest")
            fused.append(acc)
        return self.head(fused, skip_stem=False), self.recon(fused[0])


class TinyDet(nn.Module):
    """YOLOX-Nano backbone/neck + new class head. tinynet=True adds MDCA + PFDH (stride-4 level) + ARB."""

    def __init__(self, num_classes: int, tinynet: bool = True):
        super().__init__()
        self.num_classes = num_classes
        self.tinynet = tinynet
        self.backbone = YOLOPAFPN()
        self.head = DecoupledHead(num_classes)
        self.head.init_new_preds()
        if tinynet:
            self.strides = (4, 8, 16, 32)
            self.mdca = nn.ModuleList([MDCA(64) for _ in range(4)])
            self.pfdh = PFDHFusion(64, 32)
            # stride-4 branches of the head (initialised from the stride-8 ones after loading)
            # (one DWConv per branch instead of two: the stride-4 map has 4x the positions)
            self.cls_convs_p2 = nn.Sequential(DWConv(64, 64, 3, 1))
            self.reg_convs_p2 = nn.Sequential(DWConv(64, 64, 3, 1))
            self.cls_pred_p2 = nn.Conv2d(64, num_classes, 1)
            self.reg_pred_p2 = nn.Conv2d(64, 4, 1)
            self.obj_pred_p2 = nn.Conv2d(64, 1, 1)
            self.arb = ARB(num_classes)
        else:
            self.strides = (8, 16, 32)

    def freeze_stem(self, parts=("stem", "dark2")):
        """Freeze the highest-resolution pretrained backbone stages (CPU budget; both variants)."""
        for n in parts:
            for p in getattr(self.backbone.backbone, n).parameters():
                p.requires_grad_(False)

    def init_p2_from_p3(self):
        """After loading YOLOX weights: copy the stride-8 head branches into the stride-4 ones."""
        if not self.tinynet:
            return
        self.cls_convs_p2[0].load_state_dict(self.head.cls_convs[0][0].state_dict())
        self.reg_convs_p2[0].load_state_dict(self.head.reg_convs[0][0].state_dict())
        self.reg_pred_p2.load_state_dict(self.head.reg_preds[0].state_dict())
        self.cls_pred_p2.load_state_dict(self.head.cls_preds[0].state_dict())
        self.obj_pred_p2.load_state_dict(self.head.obj_preds[0].state_dict())

    def forward_raw(self, x):
        """Returns (list of raw level outputs, aux dict for training)."""
        if not self.tinynet:
            return self.head(self.backbone(x)), {}
        (p3, p4, p5), (c2, c3, c4, c5) = self.backbone(x, return_backbone=True)
        h = self.head
        s3, s4, s5 = h.stems[0](p3), h.stems[1](p4), h.stems[2](p5)
        f2, f3, f4, f5 = self.pfdh(c2, s3, s4, s5)
        f2, f3, f4, f5 = [m(f) for m, f in zip(self.mdca, (f2, f3, f4, f5))]
        outs = []
        cf, rf = self.cls_convs_p2(f2), self.reg_convs_p2(f2)
        outs.append(torch.cat([self.reg_pred_p2(rf), self.obj_pred_p2(rf), self.cls_pred_p2(cf)], 1))
        outs += h([f3, f4, f5], skip_stem=True)
        aux = {}
        if self.training:
            aux["arb_outs"], aux["recon"] = self.arb((c2, c3, c4, c5))
        return outs, aux

    def forward(self, x):
        """Inference/export: decoded [B, N, 5+C] (cx, cy, w, h in input px; obj, class probs)."""
        outs, _ = self.forward_raw(x)
        return decode(outs, self.strides)


def build_detector(variant: str, num_classes: int, onnx_path: Optional[str] = None, log=print) -> TinyDet:
    model = TinyDet(num_classes, tinynet=(variant == "tinynet"))
    if onnx_path:
        load_yolox_onnx(model, onnx_path, log=log)
        model.init_p2_from_p3()
        # COCO class predictors do not fit our classes: fresh init (prior 0.01). The COCO
        # objectness predictors are kept (vehicles and boats are COCO objects).
        for conv in list(model.head.cls_preds) + ([model.cls_pred_p2] if model.tinynet else []):
            nn.init.normal_(conv.weight, 0, 0.01)
            nn.init.constant_(conv.bias, -float(np.log(99.0)))
    return model
