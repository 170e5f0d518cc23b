"""Image-text retrieval model (HarMA-style, browser scale)."""
