"""RS Lens tiny-object detector: YOLOX-Nano (COCO) re-implemented in PyTorch plus the
RS-TinyNet-style modules (MDCA attention, PFDH head with a stride-4 level, ARB training branch).
See MODEL_CARD.md."""
