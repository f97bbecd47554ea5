"""ONNX export of the fine-tuned model: ``build`` writes the variants, ``optimize`` fuses and quantizes them,
``choose`` checks each against torch, times it and picks the one served on CPU."""
