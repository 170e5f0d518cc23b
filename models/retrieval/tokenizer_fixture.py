"""Write the tokenizer parity fixture checked by src/core/text/tokenizer.test.ts.

    /usr/bin/python3 -m models.retrieval.tokenizer_fixture
"""
from __future__ import annotations

import json

from ..rslens import paths
from .vocab import load_tokenizer

FIXTURE = paths.REPO_ROOT / "src" / "core" / "text" / "fixtures" / "tokenizer-parity.json"

SENTENCES = [
    "Many planes are parked next to a long building in an airport.",
    "many planes are parked next to a long building at an airport .",
    "",
    "   ",
    "A RED roof, TWO white cars & 3 trees!!!",
    "it's a port; there're 12 boats (and 345 containers) -- isn't it?",
    "storage tanks:  4 big + 7 small ... \"round\" ones",
    "Dense residential area with 1,024 houses @ 5.5m/px #tiles",
    "naïve café near the Zürich Hauptbahnhof",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ and 東京 and Москва and مطار",
    "emoji \U0001F6E9\ufe0f over the runway \U0001F30A",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em-space\u3000ideographic",
    "zero\u200bwidth space and BOM\ufeff inside",
    "combining e\u0301 vs precomposed \u00e9 (NFC)",
    "baseballfield_12 near a viaduct",
    "the bareland is next to a pond, a river and a church's square.",
    "Ⅻ ½ ² numbers in unicode and 0123456789",
    "rare words: xylophone quixotic pneumonoultramicroscopicsilicovolcanoconiosis",
    "I'LL BE THERE, WE'VE GOT IT, YOU'D SEE, I'M HERE",
    "special <|endoftext|> strings <|STARTOFTEXT|> dropped<|startoftext|>x",
    "airport " * 1250,  # 10,000 characters: truncated to max_length
]


def main() -> None:
    tok = load_tokenizer()
    assert len(SENTENCES[-1]) == 10000
    # ids: compact ids (what the text tower sees); clip_ids: the CLIP BPE ids before
    # trimming (without BOS/EOS, first max_length-2), a stronger check of the BPE itself.
    cases = [{"text": s, "ids": tok.encode(s), "clip_ids": tok.bpe.encode(s)[: tok.max_length - 2]}
             for s in SENTENCES]
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    with open(FIXTURE, "w", encoding="utf-8") as f:
        json.dump({"generator": "models/retrieval/tokenizer_fixture.py", "vocab": "models/retrieval/vocab.json",
                   "max_length": tok.max_length, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {paths.rel(FIXTURE)} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
