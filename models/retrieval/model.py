"""Dual-encoder retrieval model: MobileNetV2 image tower + small transformer text tower,
with HarMA-style gated adapters (stage 2).

Image tower: pixels (RGB in [0,1]) -> (q-128)/128 normalisation of the TFLite model ->
MobileNetV2 features (frozen, cached during training) -> grid [N,1280,7,7] ->
[image adapter over the 49 grid tokens] -> global mean (+ 4 quadrant means in stage 2)
-> MLP head to D (trained in stage 1) -> [shared adapter over these 5 tokens] ->
global token -> L2 norm.

Text tower: compact token ids -> token + position embeddings -> pre-LN transformer
blocks [+ text adapter after each block] -> LayerNorm -> linear projection to D ->
[shared adapter] -> mean over real tokens -> L2 norm.

Adapters (stage 2, towers frozen): x + sigmoid(gate) * Up(h + Attn(LN(h))), h = GELU(Down(x)),
Up zero-initialised (the adapted model starts exactly at the stage-1 model), gate a
learned per-channel vector. One adapter in the joint space is SHARED by the two
modalities (same weights, one gate per modality).
"""
from __future__ import annotations

import copy
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..rslens.mobilenet import mobilenet_v2_from_tflite, normalize_unit, tf_style_mobilenet_v2



class Linear(nn.Linear):
    """nn.Linear that, on CPU, runs as a 1x1 convolution (oneDNN): Debian's torch 1.13 links the
    reference BLAS (~3 GFLOP/s), oneDNN convolutions are ~10x faster here. Same parameters and
    maths; plain F.linear on GPU and during ONNX export."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if x.device.type != "cpu" or torch.onnx.is_in_onnx_export():
            return F.linear(x, self.weight, self.bias)
        shp = x.shape
        y = F.conv2d(x.reshape(-1, shp[-1], 1, 1), self.weight[:, :, None, None], self.bias)
        return y.reshape(*shp[:-1], self.out_features)


def matmul_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [M,K] @ b[N,K].T; on CPU as a 1x1 convolution, for the reason given in `Linear`."""
    if a.device.type != "cpu" or torch.onnx.is_in_onnx_export():
        return a @ b.t()
    return F.conv2d(a[:, :, None, None], b[:, :, None, None]).flatten(1)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        assert dim % heads == 0
        self.heads = heads
        self.qkv = Linear(dim, 3 * dim)
        self.out = Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        n, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).reshape(n, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h))
        if mask is not None:  # mask [N,T] float 1 = keep
            att = att + (1.0 - mask[:, None, None, :]) * -1e4
        att = self.drop(att.softmax(-1))
        y = (att @ v).transpose(1, 2).reshape(n, t, d)
        return self.out(y)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(Linear(dim, mlp), nn.GELU(), Linear(mlp, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):
        x = x + self.drop(self.attn(self.ln1(x), mask))
        return x + self.drop(self.mlp(self.ln2(x)))


class GatedAdapter(nn.Module):
    """Down-projection, small self-attention, zero-initialised up-projection, learned gate(s)."""

    def __init__(self, dim: int, bottleneck: int = 64, heads: int = 2, n_gates: int = 1):
        super().__init__()
        self.down = Linear(dim, bottleneck)
        self.ln = nn.LayerNorm(bottleneck)
        self.attn = SelfAttention(bottleneck, heads)
        self.up = Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.gate = nn.Parameter(torch.zeros(n_gates, dim))  # sigmoid(0) = 0.5

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None, gate: int = 0) -> torch.Tensor:
        h = F.gelu(self.down(x))
        h = h + self.attn(self.ln(h), mask)
        return x + torch.sigmoid(self.gate[gate]) * self.up(h)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class TextTower(nn.Module):
    def __init__(self, vocab_size: int, max_len: int = 32, width: int = 256, layers: int = 4, heads: int = 4,
                 mlp: int = 1024, embed_dim: int = 256, dropout: float = 0.1):
        super().__init__()
        self.max_len = max_len
        self.tok = nn.Embedding(vocab_size, width)
        self.pos = nn.Parameter(torch.randn(max_len, width) * 0.01)
        nn.init.normal_(self.tok.weight, std=0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(width, heads, mlp, dropout) for _ in range(layers)])
        self.ln = nn.LayerNorm(width)
        self.proj = Linear(width, embed_dim, bias=False)
        self.adapters: Optional[nn.ModuleList] = None

    def add_adapters(self, bottleneck: int = 64, heads: int = 2) -> None:
        width = self.ln.normalized_shape[0]
        self.adapters = nn.ModuleList([GatedAdapter(width, bottleneck, heads) for _ in self.blocks])

    def tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """-> projected tokens [N,L,D] (before the shared adapter and pooling)."""
        mask = attention_mask.to(torch.float32)
        L = input_ids.shape[1]
        x = self.drop(self.tok(input_ids) + self.pos[:L])
        for i, blk in enumerate(self.blocks):
            x = blk(x, mask)
            if self.adapters is not None:
                x = self.adapters[i](x, mask)
        return self.proj(self.ln(x))


class ImageTower(nn.Module):
    """Frozen MobileNetV2 backbone (all of `features`) + trainable head.

    tokens: the global mean of the 7x7 grid plus 4 overlapping quadrant means (rows/cols
    0-3 and 3-6), each through the same head (LN -> MLP with a linear skip) to D.
    The embedding is the global token (after the shared adapter in stage 2).
    """

    def __init__(self, tflite_path: Optional[str] = None, embed_dim: int = 256, dropout: float = 0.1,
                 head_hidden: int = 1024, tune_cut: Optional[int] = None):
        super().__init__()
        mnv2 = mobilenet_v2_from_tflite(tflite_path) if tflite_path else _random_mnv2()
        self.stem = mnv2.features  # frozen (cached during training)
        for p in self.stem.parameters():
            p.requires_grad_(False)
        # Optional fine-tuned copy of the top blocks features[tune_cut:]: it feeds the embedding,
        # while the frozen `stem` still produces the exported `grid` (the captioning model was
        # trained on the frozen backbone grid).
        self.tune_cut = tune_cut
        self.tuned: Optional[nn.Sequential] = None
        if tune_cut is not None:
            self.tuned = copy.deepcopy(self.stem[tune_cut:])
            for p in self.tuned.parameters():
                p.requires_grad_(True)
        c = self.grid_channels = 1280
        self.ln = nn.LayerNorm(c)
        self.fc1 = Linear(c, head_hidden)
        self.fc2 = Linear(head_hidden, embed_dim)
        self.skip = Linear(c, embed_dim, bias=False)
        self.drop = nn.Dropout(dropout)
        self.adapter: Optional[GatedAdapter] = None

    def add_adapter(self, bottleneck: int = 64, heads: int = 2) -> None:
        self.adapter = GatedAdapter(self.grid_channels, bottleneck, heads)

    def train(self, mode: bool = True):
        super().train(mode)
        self.stem.eval()  # frozen backbone: BN statistics (folded from TFLite) never change
        if self.tuned is not None:
            self.tuned.eval()  # BN folded (identity + bias), no dropout: eval == train maths
        return self

    def stem_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels RGB in [0,1] -> grid [N,1280,7,7]."""
        return self.stem(normalize_unit(pixels))

    def frozen_and_tuned(self, pixels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """pixels -> (frozen backbone grid, grid of the fine-tuned top blocks), both [N,1280,7,7]."""
        if self.tuned is None:
            g = self.stem_features(pixels)
            return g, g
        mid = self.stem[:self.tune_cut](normalize_unit(pixels))
        return self.stem[self.tune_cut:](mid), self.tuned(mid)

    def tuned_grid(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels -> the grid the embedding is computed from: the fine-tuned top blocks' grid (the
        frozen grid when nothing is fine-tuned). Without the frozen grid a fine-tuned tower also exports."""
        if self.tuned is None:
            return self.stem_features(pixels)
        return self.tuned(self.stem[:self.tune_cut](normalize_unit(pixels)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln(x)
        return self.skip(x) + self.fc2(self.drop(F.gelu(self.fc1(x))))

    def grid_and_tokens(self, grid: torch.Tensor, n_tokens: int = 5) -> Tuple[torch.Tensor, torch.Tensor]:
        """grid [N,1280,7,7] -> (adapted grid [N,1280,7,7], tokens [N,n_tokens,D]); n_tokens 1 or 5."""
        if self.adapter is not None:
            n, c, h, w = grid.shape
            t = self.adapter(grid.flatten(2).transpose(1, 2))
            grid = t.transpose(1, 2).reshape(n, c, h, w)
        pooled = [grid.mean((2, 3))]
        if n_tokens == 5:
            pooled += [grid[:, :, r:r + 4, q:q + 4].mean((2, 3)) for r in (0, 3) for q in (0, 3)]
        return grid, self.head(torch.stack(pooled, 1))


def _random_mnv2():
    # Same module tree (TF-SAME padded stride-2 convs) as the TFLite-initialised backbone:
    # weights come from a checkpoint's state_dict.
    m = tf_style_mobilenet_v2()
    m.eval()
    return m


class RetrievalModel(nn.Module):
    def __init__(self, vocab_size: int, tflite_path: Optional[str] = None, embed_dim: int = 256,
                 max_len: int = 32, text_width: int = 256, text_layers: int = 3, text_heads: int = 4,
                 text_mlp: int = 768, dropout: float = 0.1, init_temperature: float = 0.07, head_hidden: int = 768,
                 tune_cut: Optional[int] = None):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, embed_dim=embed_dim, max_len=max_len, text_width=text_width,
                           text_layers=text_layers, text_heads=text_heads, text_mlp=text_mlp, dropout=dropout,
                           head_hidden=head_hidden)
        if tune_cut is not None:  # old checkpoints have no tune_cut key
            self.config["tune_cut"] = tune_cut
        self.image = ImageTower(tflite_path, embed_dim, dropout, head_hidden, tune_cut)
        self.text = TextTower(vocab_size, max_len, text_width, text_layers, text_heads, text_mlp, embed_dim, dropout)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.shared: Optional[GatedAdapter] = None

    def add_adapters(self, bottleneck: int = 64, heads: int = 2) -> None:
        """Stage 2: image adapter, one adapter per text block, one shared (2 gates) in the joint space."""
        self.image.add_adapter(bottleneck, heads)
        self.text.add_adapters(bottleneck, heads)
        d = self.config["embed_dim"]
        self.shared = GatedAdapter(d, bottleneck, heads, n_gates=2)

    def has_adapters(self) -> bool:
        return self.shared is not None

    def encode_image_from_stem(self, grid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """grid: frozen backbone output [N,1280,7,7] (cached in training)."""
        if self.shared is None:
            grid, tok = self.image.grid_and_tokens(grid, n_tokens=1)
        else:
            grid, tok = self.image.grid_and_tokens(grid, n_tokens=5)
            tok = self.shared(tok, None, gate=0)
        return F.normalize(tok[:, 0], dim=-1), grid

    def encode_image(self, pixels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """pixels: [N,3,224,224] RGB in [0,1]. -> (embedding [N,D], grid [N,1280,7,7]).

        With fine-tuned top blocks (tune_cut), the embedding comes from the tuned copy and the
        returned grid is the FROZEN backbone grid (what the captioning model was trained on)."""
        if self.image.tuned is None:
            return self.encode_image_from_stem(self.image.stem_features(pixels))
        frozen, tuned = self.image.frozen_and_tuned(pixels)
        return self.encode_image_from_stem(tuned)[0], frozen

    def embed_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """The `embedding` output of `encode_image`, without computing the exported grid."""
        return self.encode_image_from_stem(self.image.tuned_grid(pixels).contiguous())[0]

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        tok = self.text.tokens(input_ids, attention_mask)
        mask = attention_mask.to(torch.float32)
        if self.shared is not None:
            tok = self.shared(tok, mask, gate=1)
        return F.normalize(masked_mean(tok, mask), dim=-1)


class ImageTowerExport(nn.Module):
    def __init__(self, model: RetrievalModel):
        super().__init__()
        self.m = model

    def forward(self, pixels):
        emb, grid = self.m.encode_image(pixels)
        return emb, grid


class TextTowerExport(nn.Module):
    def __init__(self, model: RetrievalModel):
        super().__init__()
        self.m = model

    def forward(self, input_ids, attention_mask):
        return self.m.encode_text(input_ids, attention_mask)
