"""CLIP byte-level BPE tokenizer (Hugging Face `tokenizer.json` semantics) and a
trimmed ("compact") vocabulary on top of it.

Pipeline, identical to tokenizer.json (and to src/core/text/ in the app):
  normalise: NFC -> every run of whitespace -> " " -> lower-case
  pre-tokenise: keep matches of  's|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+
  byte-level: UTF-8 bytes -> GPT-2 byte-to-unicode characters
  BPE: merges by rank, end-of-word suffix "</w>" on the last symbol
Compact ids: 0 PAD, 1 UNK, 2 BOS (<|startoftext|>), 3 EOS (<|endoftext|>), then
4 + i for the i-th CLIP id listed in the vocab file; any CLIP id not listed -> UNK.
Sequences are [BOS] + tokens[:max_length-2] + [EOS] (no padding here).
"""
from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
N_SPECIAL = 4
VOCAB_FORMAT = "rslens-compact-clip-vocab-v1"

# Oniguruma/Rust `\s` (Unicode White_Space) as used by tokenizer.json regexes.
_WS = set("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {chr(c) for c in range(0x2000, 0x200B)}
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _is_number(ch: str) -> bool:
    return unicodedata.category(ch).startswith("N")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    out, prev_ws = [], False
    for ch in text:
        if ch in _WS:
            if not prev_ws:
                out.append(" ")
            prev_ws = True
        else:
            out.append(ch)
            prev_ws = False
    return "".join(out).lower()


def pre_tokenize(text: str) -> List[str]:
    pieces, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _WS:
            i += 1
            continue
        if ch == "'":
            m = next((c for c in _CONTRACTIONS if text.startswith(c, i)), None)
            if m:
                pieces.append(m)
                i += len(m)
                continue
        j = i + 1
        if _is_letter(ch):
            while j < n and _is_letter(text[j]):
                j += 1
        elif _is_number(ch):
            pass
        else:
            while j < n and not (text[j] in _WS or _is_letter(text[j]) or _is_number(text[j])):
                j += 1
        pieces.append(text[i:j])
        i = j
    return pieces


def _bytes_to_unicode() -> Dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


class ClipBPE:
    """CLIP BPE -> CLIP ids (49,408-token vocabulary)."""

    def __init__(self, tokenizer_json: Path):
        with open(tokenizer_json, encoding="utf-8") as f:
            d = json.load(f)
        m = d["model"]
        assert m["type"] == "BPE" and m["end_of_word_suffix"] == "</w>"
        self.vocab: Dict[str, int] = m["vocab"]
        merges = [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in m["merges"]]
        self.ranks = {pair: r for r, pair in enumerate(merges)}
        self.unk = self.vocab[m["unk_token"]]
        self.bos = self.vocab["<|startoftext|>"]
        self.eos = self.vocab["<|endoftext|>"]
        self.byte_enc = _bytes_to_unicode()
        self._bpe = lru_cache(maxsize=65536)(self._bpe_word)

    def _bpe_word(self, word: str) -> tuple:
        syms = list(word[:-1]) + [word[-1] + "</w>"]
        while len(syms) > 1:
            best, best_rank = None, None
            for k in range(len(syms) - 1):
                r = self.ranks.get((syms[k], syms[k + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = k, r
            if best is None:
                break
            a, b = syms[best], syms[best + 1]
            merged, k = [], 0
            while k < len(syms):
                if k < len(syms) - 1 and syms[k] == a and syms[k + 1] == b:
                    merged.append(a + b)
                    k += 2
                else:
                    merged.append(syms[k])
                    k += 1
            syms = merged
        return tuple(syms)

    def tokens(self, text: str) -> List[str]:
        """BPE tokens; literal special-token strings are dropped, as in the app (they are
        matched like tokenizer.json's added tokens: <|endoftext|> on the raw text,
        <|startoftext|> on the normalised text)."""
        out: List[str] = []
        for raw in text.split("<|endoftext|>"):
            for part in normalize(raw).split("<|startoftext|>"):
                for piece in pre_tokenize(part):
                    word = "".join(self.byte_enc[b] for b in piece.encode("utf-8"))
                    out.extend(self._bpe(word))
        return out

    def encode(self, text: str) -> List[int]:
        """CLIP ids without BOS/EOS."""
        return [self.vocab.get(t, self.unk) for t in self.tokens(text)]


class CompactTokenizer:
    """CLIP BPE + trimmed vocabulary -> compact ids used by our text tower."""

    def __init__(self, bpe: ClipBPE, clip_ids: Sequence[int], max_length: int):
        self.bpe = bpe
        self.clip_ids = list(clip_ids)
        self.map = {cid: N_SPECIAL + i for i, cid in enumerate(self.clip_ids)}
        self.max_length = max_length

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + len(self.clip_ids)

    def encode(self, text: str) -> List[int]:
        ids = [self.map.get(c, UNK_ID) for c in self.bpe.encode(text)]
        return [BOS_ID] + ids[: self.max_length - 2] + [EOS_ID]

    def batch(self, texts: Iterable[str]):
        """-> (input_ids, attention_mask) int64 tensors padded with PAD to the longest."""
        import torch
        seqs = [self.encode(t) for t in texts]
        L = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), L), PAD_ID, dtype=torch.long)
        mask = torch.zeros((len(seqs), L), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        return ids, mask

    def to_json(self) -> dict:
        return {"format": VOCAB_FORMAT, "base": "openai-clip-bpe (tokenizer.json, 49408 tokens)",
                "max_length": self.max_length, "pad_id": PAD_ID, "unk_id": UNK_ID, "bos_id": BOS_ID,
                "eos_id": EOS_ID, "n_special": N_SPECIAL,
                "note": "compact id = n_special + index of the CLIP id in clip_ids; other CLIP ids -> unk_id",
                "clip_ids": self.clip_ids}

    def save(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, separators=(",", ":"))
            f.write("\n")

    @classmethod
    def load(cls, bpe: ClipBPE, path: Path) -> "CompactTokenizer":
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        assert d["format"] == VOCAB_FORMAT
        return cls(bpe, d["clip_ids"], d["max_length"])

    @classmethod
    def build(cls, bpe: ClipBPE, corpus: Iterable[str], max_length: int, min_count: int = 1) -> "CompactTokenizer":
        counts: Dict[int, int] = {}
        for t in corpus:
            for c in bpe.encode(t):
                counts[c] = counts.get(c, 0) + 1
        keep = sorted(c for c, n in counts.items() if n >= min_count and c not in (bpe.unk, bpe.bos, bpe.eos))
        return cls(bpe, keep, max_length)
