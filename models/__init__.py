"""models: what bench (measuring) and distill (training) share, so neither imports the other.

    models.gpt           the GPT (nanoGPT-style; torch)
    models.zoo           model specs (builtin:, ckpt:, hf:, config:) and loading them
    models.checkpoint    checkpoint directories (safetensors + config.json)
    models.corpus        the corpus: documents, deterministic splits, evaluation windows
    models.runtime       ONNX export (verified against torch), int8, ONNX Runtime sessions
    models.decode_export the KV-cache decoding graph (ONNX) of a causal LM
    models/assets        the shipped teacher's weights

`import models` and `models.zoo`, `models.corpus` load no torch; `models.gpt` does.
"""
