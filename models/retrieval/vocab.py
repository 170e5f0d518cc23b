"""Build the compact vocabulary of the text tower from RSICD *train* captions.

    /usr/bin/python3 -m models.retrieval.vocab

Writes models/retrieval/vocab.json (CLIP ids seen at least MIN_COUNT times in
train captions; everything else maps to UNK). Deterministic.
"""
from __future__ import annotations

from pathlib import Path

from ..rslens import paths
from ..rslens.clip_tokenizer import ClipBPE, CompactTokenizer
from ..rslens.data import read_split

MAX_LENGTH = 32
MIN_COUNT = 2
VOCAB_PATH = Path(__file__).resolve().parent / "vocab.json"


def load_tokenizer(vocab_path: Path = VOCAB_PATH) -> CompactTokenizer:
    return CompactTokenizer.load(ClipBPE(paths.clip_tokenizer_json()), vocab_path)


def main() -> None:
    bpe = ClipBPE(paths.clip_tokenizer_json())
    caps = [c for it in read_split("train") for c in it.captions]
    tok = CompactTokenizer.build(bpe, caps, MAX_LENGTH, MIN_COUNT)
    tok.save(VOCAB_PATH)
    print(f"wrote {paths.rel(VOCAB_PATH)}: {tok.vocab_size} ids ({len(tok.clip_ids)} CLIP ids + 4 special) "
          f"from {len(caps)} train captions")


if __name__ == "__main__":
    main()
