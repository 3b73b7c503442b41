"""distill: the bundled trainer. Its output is a checkpoint directory (safetensors + config.json)
that bench measures like any other model (`ckpt:DIR`)."""
