"""A bag-of-words text tower, and its fusion with the shipped text side (session 17).

Why a second text tower of another kind: the shipped text side is a transformer trained from scratch on
RSICD captions, and on the same frozen image features a plain bag of words scored as well as it did
(session 16 probes). Two towers with different inductive biases (word order vs. an order-free bag)
should make partly different mistakes, so their sum can rank better than either. The bag is cheap to
train against the locked image tower (models.retrieval.locked_text --arch bow) and cheap to run.

Tower: mean of word-piece embeddings + mean of hashed bigram embeddings (consecutive real tokens,
bos/eos included, so "tanks beside a river" and "a river beside tanks" differ a little) -> LayerNorm ->
residual MLP -> linear projection to the joint space -> L2 norm. The hash is computed in the graph,
so the app feeds the same input_ids / attention_mask as to any text tower.

Fusion: embedding = L2normalise(shipped(text) + w * bag(text)), exported as ONE text-tower file with
the usual inputs and output, so the app, its stored image indexes and the image tower are unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import Linear, masked_mean

BIGRAM_MULTIPLIER = 7919  # a prime: bucket = (a * 7919 + b) mod buckets spreads the pairs of a ~2k-word vocabulary


def bigram_buckets(input_ids: torch.Tensor, attention_mask: torch.Tensor, buckets: int):
    """-> (bucket id [N,L-1] of each pair of consecutive tokens, float mask [N,L-1]: both tokens real)."""
    ids = torch.remainder(input_ids[:, :-1] * BIGRAM_MULTIPLIER + input_ids[:, 1:], buckets)
    m = attention_mask.to(torch.float32)
    return ids, m[:, :-1] * m[:, 1:]


class BagOfWordsText(nn.Module):
    def __init__(self, vocab_size: int, member_dim: int, width: int = 384, buckets: int = 8192, dropout: float = 0.1,
                 init_temperature: float = 0.05):
        super().__init__()
        self.config = dict(arch="bow", vocab_size=vocab_size, member_dim=member_dim, members=1, width=width,
                           buckets=buckets, dropout=dropout)
        self.buckets = buckets
        self.uni = nn.Embedding(vocab_size, width)
        self.bi = nn.Embedding(buckets, width)
        nn.init.normal_(self.uni.weight, std=0.1)
        nn.init.normal_(self.bi.weight, std=0.1)
        self.ln = nn.LayerNorm(width)
        self.mlp = nn.Sequential(Linear(width, 2 * width), nn.GELU(), nn.Dropout(dropout), Linear(2 * width, width))
        self.drop = nn.Dropout(dropout)
        self.proj = Linear(width, member_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32)
        pairs, pair_mask = bigram_buckets(input_ids, attention_mask, self.buckets)
        bag = masked_mean(self.uni(input_ids), mask) + masked_mean(self.bi(pairs), pair_mask)
        x = self.ln(self.drop(bag))
        x = x + self.mlp(x)
        return F.normalize(self.proj(x), dim=-1)


class FusedText(nn.Module):
    """L2normalise(primary(text) + weight * secondary(text)): two text towers in one image space."""

    def __init__(self, primary: nn.Module, secondary: nn.Module, weight: float = 1.0):
        super().__init__()
        self.primary, self.secondary, self.weight = primary, secondary, float(weight)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        a = self.primary.encode_text(input_ids, attention_mask)
        b = self.secondary.encode_text(input_ids, attention_mask)
        return F.normalize(a + self.weight * b, dim=-1)
