"""RS-MoE-style captioning / VQA model at browser scale.

    grid [N,1280,7,7] (retrieval image tower output)            instruction (caption request or question)
          |                                                            |
    GridQueryModule: LN+Linear -> 49 visual tokens;            Router: bag-of-words embedding -> MLP ->
    K learned queries, FiLM-conditioned on the instruction         instruction vector u [N,d],
    vector u, cross-attend to the 49 tokens (+ self-attn, MLP)     expert logits [N,E], task logits [N,2]
          |  query_features [N,K,d]                                    |
          +-----------------------------+------------------------------+
                                        |
    Expert e (decoder LM, pre-LN transformer, causal self-attn with KV cache, cross-attn to query_features)
       prompt  = [role_e] + instruction tokens + [bos];   target = answer / caption tokens + [eos]
       outputs = next-token logits over the compact vocab + a scalar fusion gate logit per position
    Caption: all experts decode the same sequence; per step p = sum_e w_e softmax(logits_e),
             w = softmax_e(gate_e + log router_prob_e)   (learned fusion)
    Question: the router's top-1 expert answers alone.

Stage 1 trains the dense decoder (= one Decoder with role "dense") + query module + instruction
encoder on all data; stage 2 copies it into E experts, adds LoRA adapters (rank r) to every linear
layer of each expert, and trains the adapters, expert role embeddings, gates and the router
(everything from stage 1 frozen).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    """y = W x + b + (alpha/r) B A x ; B zero-initialised (starts exactly at the base layer)."""

    def __init__(self, base: nn.Linear, rank: int = 0, alpha: float = 16.0):
        super().__init__()
        self.base = base
        self.rank = rank
        if rank > 0:
            self.A = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
            self.B = nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

    def forward(self, x):
        y = self.base(x)
        if self.rank > 0:
            y = y + (x @ self.A.t() @ self.B.t()) * self.scale
        return y

    def merged(self) -> nn.Linear:
        lin = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        w = self.base.weight.data.clone()
        if self.rank > 0:
            w += (self.B @ self.A).data * self.scale
        lin.weight.data.copy_(w)
        if self.base.bias is not None:
            lin.bias.data.copy_(self.base.bias.data)
        return lin


def lin(i, o, bias=True):
    return LoRALinear(nn.Linear(i, o, bias=bias))


class MHA(nn.Module):
    """Multi-head attention; self-attention supports a KV cache (past_k/v [N,H,P,dh])."""

    def __init__(self, dim: int, heads: int, cross: bool = False):
        super().__init__()
        self.h, self.dh = heads, dim // heads
        self.q = lin(dim, dim)
        self.kv = lin(dim, 2 * dim)
        self.o = lin(dim, dim)
        self.cross = cross

    def split(self, x):
        n, t, _ = x.shape
        return x.reshape(n, t, self.h, self.dh).transpose(1, 2)

    def forward(self, x, mem=None, past_k=None, past_v=None, causal: bool = False):
        n, t, d = x.shape
        q = self.split(self.q(x))
        k, v = self.kv(x if mem is None else mem).chunk(2, dim=-1)
        k, v = self.split(k), self.split(v)
        if past_k is not None:
            k = torch.cat([past_k, k], 2)
            v = torch.cat([past_v, v], 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.dh))
        if causal:
            s = k.shape[2]
            qpos = torch.arange(t, device=x.device) + (s - t)
            kpos = torch.arange(s, device=x.device)
            att = att.masked_fill(kpos[None, :] > qpos[:, None], -1e4)
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(n, t, d)
        return self.o(y), k, v


class MLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = lin(dim, hidden), lin(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class DecoderLayer(nn.Module):
    def __init__(self, dim, heads, mlp, dropout):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = MHA(dim, heads)
        self.cross_attn = MHA(dim, heads, cross=True)
        self.mlp = MLP(dim, mlp)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mem, past_k=None, past_v=None):
        a, k, v = self.self_attn(self.ln1(x), None, past_k, past_v, causal=True)
        x = x + self.drop(a)
        x = x + self.drop(self.cross_attn(self.ln2(x), mem)[0])
        x = x + self.drop(self.mlp(self.ln3(x)))
        return x, k, v


class Decoder(nn.Module):
    """Decoder LM over [prompt ; target]. Token embedding (tied output) may be shared between decoders."""

    def __init__(self, embed: nn.Embedding, n_vocab: int, dim=128, layers=2, heads=4, mlp=512, max_pos=64,
                 dropout=0.1):
        super().__init__()
        self.embed = embed  # shared module (vocab + role tokens); output logits over the first n_vocab rows
        self.n_vocab = n_vocab
        self.pos = nn.Parameter(torch.randn(max_pos, dim) * 0.01)
        self.layers = nn.ModuleList([DecoderLayer(dim, heads, mlp, dropout) for _ in range(layers)])
        self.ln = nn.LayerNorm(dim)
        self.out_bias = nn.Parameter(torch.zeros(n_vocab))
        self.gate = nn.Linear(dim, 1)  # fusion gate (used by experts)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids, mem, past: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = None,
                role_embed: Optional[torch.Tensor] = None):
        """ids [N,T] (ids >= n_vocab are role tokens); mem = query_features [N,K,d]; past list of (k,v).
        role_embed: optional [d] replacing the embedding at position 0 (expert role token) when past is None.
        -> logits [N,T,n_vocab], gate [N,T], presents"""
        P = 0 if past is None else past[0][0].shape[2]
        T = ids.shape[1]
        x = self.embed(ids)
        if role_embed is not None and P == 0:
            x = torch.cat([role_embed.expand(x.shape[0], 1, -1), x[:, 1:]], 1)
        x = self.drop(x + self.pos[P:P + T])
        presents = []
        for i, layer in enumerate(self.layers):
            pk, pv = (None, None) if past is None else past[i]
            x, k, v = layer(x, mem, pk, pv)
            presents.append((k, v))
        h = self.ln(x)
        logits = h @ self.embed.weight[: self.n_vocab].t() + self.out_bias
        return logits, self.gate(h).squeeze(-1), presents


class Router(nn.Module):
    """Instruction -> (instruction vector u [N,d], expert logits [N,E], task logits [N,2]: caption/question)."""

    def __init__(self, n_vocab, dim=128, emb=64, n_experts=3):
        super().__init__()
        self.emb = nn.Embedding(n_vocab, emb)
        self.mlp = nn.Sequential(nn.Linear(2 * emb, dim), nn.GELU(), nn.Linear(dim, dim))
        self.ln = nn.LayerNorm(dim)
        self.expert_head = nn.Linear(dim, n_experts)
        self.task_head = nn.Linear(dim, 2)

    def forward(self, ids, mask):
        m = mask.to(torch.float32).unsqueeze(-1)
        e = self.emb(ids)
        mean = (e * m).sum(1) / m.sum(1).clamp_min(1.0)
        mx = (e * m - (1 - m) * 1e4).max(1).values
        u = self.ln(self.mlp(torch.cat([mean, mx], -1)))
        return u, self.expert_head(u), self.task_head(u)


class GridQueryModule(nn.Module):
    """Instruction-aware learned queries over the 7x7 grid."""

    def __init__(self, grid_ch=1280, dim=128, n_queries=16, heads=4, mlp=512, dropout=0.1, pca_dim=256):
        super().__init__()
        # frozen PCA of the grid channels (set from models.caption.features before stage 1)
        self.register_buffer("pca_mean", torch.zeros(grid_ch))
        self.register_buffer("pca_proj", torch.eye(grid_ch, pca_dim))
        self.ln_in = nn.LayerNorm(pca_dim)
        self.proj = nn.Linear(pca_dim, dim)
        self.pos = nn.Parameter(torch.randn(49, dim) * 0.02)
        self.queries = nn.Parameter(torch.randn(n_queries, dim) * 0.02)
        self.film = nn.Linear(dim, 2 * dim)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.ln_q, self.ln_kv, self.ln_s, self.ln_m = (nn.LayerNorm(dim) for _ in range(4))
        self.cross = MHA(dim, heads, cross=True)
        self.self_attn = MHA(dim, heads)
        self.mlp = MLP(dim, mlp)
        self.ln_out = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def project(self, grid):
        """grid [N,1280,7,7] -> PCA tokens [N,49,pca_dim] (what the training cache holds)."""
        return (grid.flatten(2).transpose(1, 2) - self.pca_mean) @ self.pca_proj

    def forward(self, x, u):
        """x: grid [N,1280,7,7] or already projected tokens [N,49,pca_dim]; u: instruction vector [N,d]."""
        if x.dim() == 4:
            x = self.project(x)
        v = self.proj(self.ln_in(x)) + self.pos  # [N,49,d]
        g, b = self.film(u).chunk(2, -1)
        qy = self.queries.unsqueeze(0) * (1 + g.unsqueeze(1)) + b.unsqueeze(1)  # [N,K,d]
        kv = self.ln_kv(v)
        qy = qy + self.drop(self.cross(self.ln_q(qy), kv)[0])
        qy = qy + self.drop(self.self_attn(self.ln_s(qy))[0])
        qy = qy + self.drop(self.mlp(self.ln_m(qy)))
        return self.ln_out(qy)


class CaptionMoE(nn.Module):
    def __init__(self, n_vocab: int, dim=128, layers=2, heads=4, mlp=512, n_queries=16, n_experts=3,
                 max_pos=64, dropout=0.1):
        super().__init__()
        self.config = dict(n_vocab=n_vocab, dim=dim, layers=layers, heads=heads, mlp=mlp, n_queries=n_queries,
                           n_experts=n_experts, max_pos=max_pos, dropout=dropout)
        self.n_vocab = n_vocab
        self.dense_role = n_vocab  # role token id of the dense decoder; experts use role embeddings
        self.embed = nn.Embedding(n_vocab + 1, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.router = Router(n_vocab, dim, n_experts=n_experts)
        self.qmod = GridQueryModule(1280, dim, n_queries, heads, mlp, dropout)
        self.dense = Decoder(self.embed, n_vocab, dim, layers, heads, mlp, max_pos, dropout)
        self.experts: Optional[nn.ModuleList] = None
        self.role: Optional[nn.Parameter] = None

    # ------------------------------------------------------------------ stage 2
    def make_experts(self, rank: int = 16, alpha: float = 16.0, n: int = 0) -> None:
        """n: number of experts (default config n_experts; 1 = the single-expert control of the ablation)."""
        import copy
        E = n or self.config["n_experts"]
        exps = []
        for _ in range(E):
            d = copy.deepcopy(self.dense)
            d.embed = self.embed  # shared (frozen) token embedding
            for mod in list(d.modules()):
                for name, ch in list(mod.named_children()):
                    if isinstance(ch, LoRALinear):
                        setattr(mod, name, LoRALinear(ch.base, rank, alpha))
            exps.append(d)
        self.experts = nn.ModuleList(exps)
        self.role = nn.Parameter(self.embed.weight[self.dense_role].detach().clone().repeat(E, 1))
        self.config.update(lora_rank=rank, lora_alpha=alpha, experts_built=E)
        # copies of the base weights in each expert are frozen; only LoRA A/B, gates, role, router train

    def stage2_parameters(self):
        ps = [self.role] + list(self.router.parameters())
        for d in self.experts:
            for n, p in d.named_parameters():
                if n.endswith(".A") or n.endswith(".B") or n.startswith("gate."):
                    ps.append(p)
        return ps

    # ------------------------------------------------------------------ shared parts
    def encode(self, grid, instr_ids, instr_mask):
        u, expert_logits, task_logits = self.router(instr_ids, instr_mask)
        return self.qmod(grid, u), expert_logits, task_logits

    def dense_logits(self, mem, seq):
        """seq [N,T] = [dense_role] + prompt + bos + target (teacher forcing)."""
        return self.dense(seq, mem)[0]

    def expert_logits(self, e, mem, seq):
        return self.experts[e](seq, mem, role_embed=self.role[e])
