"""Student checkpoints: a directory with config.json and model.safetensors.

Nothing here unpickles: weights are safetensors, the config is JSON data. The same format is what
the trainer writes and what `ckpt:DIR` in bench reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from contracts.io import atomic_path, write_json_atomic

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FAMILY_BUILTIN = "builtin-gpt"


def save_checkpoint(model, out_dir: str | Path, extra: dict | None = None, dtype=None) -> Path:
    """Write a built-in GPT's config and weights atomically into out_dir (weights cast to
    `dtype` when given, e.g. torch.bfloat16 for a shipped asset; loading casts back to fp32)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype or v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    state.pop("lm_head.weight", None)  # tied to wte.weight; safetensors refuses shared storage
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    meta = {"family": FAMILY_BUILTIN, "config": model.config.to_dict(), **(extra or {})}
    write_json_atomic(out / CONFIG_FILE, meta)
    return out


def read_checkpoint_meta(ckpt_dir: str | Path) -> dict:
    """The checkpoint's config.json, checked for the fields the loader needs."""
    path = Path(ckpt_dir) / CONFIG_FILE
    meta = json.loads(path.read_text())
    if meta.get("family") != FAMILY_BUILTIN or not isinstance(meta.get("config"), dict):
        raise ValueError(f"{path} is not a {FAMILY_BUILTIN} checkpoint config")
    return meta


def load_checkpoint(ckpt_dir: str | Path):
    """Rebuild the built-in GPT from a checkpoint directory (safetensors, no pickle)."""
    from safetensors.torch import load_file

    from models.gpt import GPT, GPTConfig

    meta = read_checkpoint_meta(ckpt_dir)
    model = GPT(GPTConfig(**meta["config"]))
    state = {k: v.float() for k, v in load_file(str(Path(ckpt_dir) / WEIGHTS_FILE)).items()}
    state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state, strict=True)
    return model
