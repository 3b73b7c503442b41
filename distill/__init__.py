"""distill: the bundled trainer. Its output is a checkpoint directory (safetensors + config.json)
that bench measures like any other model (`ckpt:DIR`).

    distill.train(config, out) -> DistillResult       one training run (KD or plain CE)
    distill.distill(config, out) -> DistillResult     KD student + no-KD baseline + ONNX/int8
    distill.TrainConfig / distill.load_config          the settings
"""

_LAZY = {"train": "trainer", "DistillResult": "trainer", "distill": "pipeline",
         "distill_from_plan": "pipeline", "TrainConfig": "config", "load_config": "config",
         "make_config": "config"}


def __getattr__(name: str):  # torch loads on first use, not on `import distill`
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'distill' has no attribute {name!r}")
