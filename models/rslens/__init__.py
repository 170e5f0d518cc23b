"""RS Lens model pipeline helpers: paths, RSICD readers, seeding, checkpoints,
TFLite reading, MobileNetV2 loading, CLIP tokenizer, ONNX export."""
