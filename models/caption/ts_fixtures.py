"""Writes the tokenizer parity fixture the TypeScript tests read
(src/core/caption/fixtures/tokenizer_parity.json): prompt ids (Tok.ids, cut to MAX_PROMPT) and
decoded texts (Tok.decode) computed by the training code.

    /usr/bin/python3 -m models.caption.ts_fixtures
"""
import json
from pathlib import Path

from .data import CAPTION_INSTRUCTION
from .train import MAX_PROMPT, Tok

OUT = Path(__file__).resolve().parents[2] / "src" / "core" / "caption" / "fixtures" / "tokenizer_parity.json"

SENTENCES = [
    CAPTION_INSTRUCTION,
    "are there any ships?",
    "How many cars are there?",
    "what is next to the building?",
    "Is there a river?",
    "what type of scene is this?",
    "many planes are parked in an airport near a road .",
    "  Storage tanks   beside a RIVER!! ",
    "¿Hay barcos en el puerto?",
    "港口里有船吗？",
    "Are there any baseball fields, tennis courts or swimming pools near the dense residential area with trees?",
    "it's a bridge's shadow -- 12 boats; 3.5 km",
    "<|endoftext|> ships",
]


def main() -> None:
    tok = Tok()
    ids_cases = [{"text": s, "ids": tok.ids(s)[:MAX_PROMPT], "untruncated": len(tok.ids(s))} for s in SENTENCES]
    decode_cases = [{"ids": c["ids"], "text": tok.decode(c["ids"])} for c in ids_cases]
    decode_cases.append({"ids": [2, 3, 0, 1, 2066], "text": tok.decode([2, 3, 0, 1, 2066])})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"max_prompt_tokens": MAX_PROMPT, "encode": ids_cases, "decode": decode_cases}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
