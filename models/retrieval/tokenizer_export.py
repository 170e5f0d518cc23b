"""Writes the text tower's runtime tokenizer files into models/retrieval/.

The browser has no access to ../shared, so the tokenizer travels with the model like its
weights do: the CLIP byte-level BPE (OpenAI, MIT licence) re-serialised compactly, plus its
config. Tokenization stays exactly CLIP's (all merges kept), then our compact vocabulary
(vocab.json) maps ids; the TypeScript parity test checks both sides agree.

  /usr/bin/python3 -m models.retrieval.tokenizer_export
"""
from __future__ import annotations

import json

from models.rslens import paths

OUT_DIR = paths.MODELS_DIR / "retrieval"


def main() -> None:
    source = paths.clip_tokenizer_json()
    tokenizer = json.loads(source.read_text(encoding="utf-8"))
    config = json.loads((source.parent / "tokenizer_config.json").read_text(encoding="utf-8"))
    for name, data in (("clip-tokenizer.json", tokenizer), ("clip-tokenizer_config.json", config)):
        out = OUT_DIR / name
        out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        print(f"wrote {out.relative_to(paths.REPO_ROOT)} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
