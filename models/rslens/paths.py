"""Locations of shared inputs and of our outputs.

Shared data (read-only) lives in `../shared` relative to the repo root unless
RSLENS_SHARED points elsewhere; RSLENS_DATA overrides the RSICD folder itself.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"


def shared_dir() -> Path:
    env = os.environ.get("RSLENS_SHARED")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT / ".." / "shared").resolve()


def rsicd_dir() -> Path:
    env = os.environ.get("RSLENS_DATA")
    return Path(env).expanduser().resolve() if env else shared_dir() / "data" / "rsicd"


def mobilenet_tflite() -> Path:
    return shared_dir() / "weights" / "mobilenet_v2_1.0_224_quant.tflite"


def clip_tokenizer_json() -> Path:
    return shared_dir() / "tokenizers" / "clip" / "tokenizer.json"


def runs_dir() -> Path:
    """Checkpoints and logs (gitignored)."""
    env = os.environ.get("RSLENS_RUNS")
    return Path(env).expanduser().resolve() if env else MODELS_DIR / "runs"


def cache_dir() -> Path:
    """Feature caches (gitignored)."""
    env = os.environ.get("RSLENS_CACHE")
    return Path(env).expanduser().resolve() if env else MODELS_DIR / "cache"


def rel(p: Path) -> str:
    """Path for logs/metadata: relative to the repo root when possible (never absolute)."""
    p = Path(p).resolve()
    try:
        return os.path.relpath(p, REPO_ROOT)
    except ValueError:
        return p.name
