"""Model specs: what a user may name on the command line, and how each becomes something to run.

    builtin:NAME        a preset of the built-in GPT (teacher, student-5x ... student-50x)
    builtin:k=v,k=v     the built-in GPT with fields overridden from the teacher's config
    hf:DIR              a local Hugging Face checkpoint directory (safetensors), loaded offline
    hf:ORG/NAME[@REV]   a model id, its snapshot in the local Hugging Face cache (models/hf_hub.py)
    onnx:FILE           an existing ONNX model (onnxruntime backends only)
    ckpt:DIR            a student written by the trainer (config.json + model.safetensors)
    config:FILE         an architecture only (a Hugging Face config.json, our YAML, or a shipped
                        name such as config:llama-3-70b): never run, costed by roi/llm_serving.py

Validation (`parse_spec`) touches only files and configs, never torch, so bad input is refused
before anything is created. Loading (`load_torch`) builds the torch module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from contracts.errors import InputError

KINDS = ("builtin", "hf", "onnx", "ckpt", "config")

# Teacher ≈ 14.4 M params. Students shrink depth and width to the seed's compression ratios by
# parameter count (5.2×, 10.0×, 20.5×, 52.7×; a test keeps each within 10% of its target).
PRESETS: dict[str, dict[str, int]] = {
    "teacher": dict(n_layer=8, n_embd=384, n_head=6),
    "student-5x": dict(n_layer=6, n_embd=192, n_head=3),
    "student-10x": dict(n_layer=3, n_embd=192, n_head=3),
    "student-20x": dict(n_layer=2, n_embd=160, n_head=5),
    "student-50x": dict(n_layer=2, n_embd=96, n_head=3),
}
DEFAULT_TEACHER = "builtin:teacher"
AUTO_STUDENTS = tuple(f"builtin:{n}" for n in PRESETS if n != "teacher")
BUILTIN_SEED = 0  # random init is seeded, so a preset's weights (and export cache key) are stable
# The teacher preset has learned weights, shipped with the package (python -m distill.build_teacher
# rebuilds them); every other preset is an architecture with seeded random weights.
TEACHER_ASSET = Path(__file__).resolve().parent / "assets" / "teacher"


def shipped_weights(target: str) -> Path | None:
    """The shipped checkpoint directory of a preset, if it has one."""
    if target == "teacher" and (TEACHER_ASSET / "model.safetensors").is_file():
        return TEACHER_ASSET
    return None


@dataclass(frozen=True)
class ModelSpec:
    spec: str  # as the user wrote it; used as the `model` column
    kind: str
    target: str  # preset / overrides for builtin, a path otherwise

    @property
    def path(self) -> Path:
        return Path(self.target)

    @property
    def torch_capable(self) -> bool:
        return self.kind not in ("onnx", "config")

    @property
    def runnable(self) -> bool:
        """False for `config:` models: an architecture without weights is projected, not run."""
        return self.kind != "config"


@dataclass
class TorchModel:
    """A loaded torch model plus what bench needs to feed it."""

    module: Any  # torch.nn.Module
    input_names: tuple[str, ...]
    make_inputs: Callable[[int, int, Any], dict]  # (batch, seq, device) -> kwargs
    vocab_size: int
    max_seq_len: int | None
    is_causal_lm: bool
    family: str
    extra: dict = field(default_factory=dict)
    # Non-tensor keyword arguments of a plain forward pass (HF: use_cache=False), shared by the
    # timed call, the FLOP count and the ONNX export so all three run the same computation.
    forward_kwargs: dict = field(default_factory=dict)


def parse_spec(spec: str) -> ModelSpec:
    """Check a model spec and the files it names; raise InputError with one clear line."""
    kind, sep, target = spec.partition(":")
    if not sep or kind not in KINDS or not target:
        split = (" (a YAML list splits builtin:k=v,k=v at its commas: quote the whole spec, "
                 "e.g. ['builtin:n_layer=1,n_embd=32'])" if not sep and "=" in spec else "")
        raise InputError(
            f"unknown model spec {spec!r}: expected builtin:NAME ({', '.join(PRESETS)}), "
            f"hf:DIR, hf:ORG/NAME[@REVISION], onnx:FILE, ckpt:DIR or config:FILE{split}"
        )
    if kind == "hf":
        from .hf_hub import is_hub_id, resolve

        target = resolve(spec, target) if is_hub_id(target) else target
    parsed = ModelSpec(spec, kind, target)
    _VALIDATORS[kind](parsed)
    return parsed


def builtin_config(target: str):
    """GPTConfig for a preset name or a `k=v,k=v` override list (starting from the teacher)."""
    from models.gpt import GPTConfig  # torch-free module import is fine: dataclass only

    if "=" not in target:
        if target not in PRESETS:
            raise InputError(
                f"unknown built-in model {target!r}: allowed {', '.join(PRESETS)} "
                "or overrides such as builtin:n_layer=2,n_embd=64,n_head=2"
            )
        return GPTConfig(**PRESETS[target])
    allowed = {f.name: f.type for f in fields(GPTConfig)}
    values: dict[str, Any] = dict(PRESETS["teacher"])
    for item in target.split(","):
        key, _, raw = item.partition("=")
        if key not in allowed:
            raise InputError(f"unknown built-in field {key!r}: allowed {', '.join(allowed)}")
        values[key] = _parse_field(key, raw)
    try:
        return GPTConfig(**values)
    except ValueError as e:
        raise InputError(str(e)) from None


def _parse_field(key: str, raw: str) -> int | bool:
    if key == "bias":
        if raw.lower() not in ("true", "false"):
            raise InputError(f"built-in field bias must be true or false, got {raw!r}")
        return raw.lower() == "true"
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"built-in field {key} must be an integer, got {raw!r}") from None


def _validate_builtin(spec: ModelSpec) -> None:
    builtin_config(spec.target)


def _validate_dir_with(spec: ModelSpec, required: tuple[str, ...], what: str) -> None:
    path = spec.path
    if not path.exists():
        raise InputError(f"{spec.spec}: path {str(path)!r} does not exist")
    if not path.is_dir():
        raise InputError(f"{spec.spec}: {what} must be a directory, got a file")
    for name in required:
        if not (path / name).is_file():
            raise InputError(f"{spec.spec}: {name} missing in {str(path)!r}: not a {what}")


def _validate_hf(spec: ModelSpec) -> None:
    _validate_dir_with(spec, ("config.json",), "Hugging Face checkpoint directory")
    try:
        cfg = json.loads((spec.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{spec.spec}: config.json is not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or "model_type" not in cfg:
        raise InputError(f"{spec.spec}: config.json has no model_type: not a Hugging Face config")
    if not list(spec.path.glob("*.safetensors")):
        raise InputError(
            f"{spec.spec}: no *.safetensors weights in {str(spec.path)!r} "
            "(pickled .bin weights are refused; convert them with save_pretrained)"
        )
    _check_head(spec, cfg)


# Heads whose first output is one tensor per text (or per pair) that ONNX export, the timing
# and the quality gate read: a body's hidden states, a sequence classifier's logits (a
# cross-encoder's score), a language model's logits. Others (token classification, QA's start
# and end logits, multiple choice's (B, C, T) inputs) would be exported as a wrong graph.
SUPPORTED_HEADS = ("a bare encoder or sentence-transformers directory (embedding), "
                   "*ForMaskedLM (its body: embedding), *ForSequenceClassification "
                   "(classification with num_labels >= 2, cross-encoder with num_labels 1)")
_READ_HEADS = ("CausalLM", "ConditionalGeneration", "MaskedLM", "PreTraining",
               "SequenceClassification")


def _check_head(spec: ModelSpec, cfg: dict) -> None:
    archs = cfg.get("architectures")
    arch = str(archs[0]) if isinstance(archs, list) and archs else ""
    head = re.search(r"For(\w+)$", arch)
    if head and head.group(1) not in _READ_HEADS:
        raise InputError(f"{spec.spec}: a {arch} head is not supported (ONNX export and the "
                         f"quality gate read one output per text); supported: "
                         f"{SUPPORTED_HEADS}, or a causal LM")


def _validate_ckpt(spec: ModelSpec) -> None:
    from models.checkpoint import CONFIG_FILE, WEIGHTS_FILE, read_checkpoint_meta

    _validate_dir_with(spec, (CONFIG_FILE, WEIGHTS_FILE), "trainer checkpoint directory")
    try:
        meta = read_checkpoint_meta(spec.path)
        builtin_config(",".join(f"{k}={v}" for k, v in meta["config"].items()))
    except (ValueError, json.JSONDecodeError) as e:
        raise InputError(f"{spec.spec}: {e}") from None


def _validate_onnx(spec: ModelSpec) -> None:
    """An ONNX model file: it exists, is a readable non-empty file, and parses to a model with
    a graph (protobuf parses 0 bytes, and many short byte strings, as an empty model)."""
    path = spec.path
    if path.is_dir():
        raise InputError(f"{spec.spec}: {str(path)!r} is a directory; onnx: takes a .onnx file")
    if not path.is_file():
        raise InputError(f"{spec.spec}: file {str(path)!r} does not exist")
    if not os.access(path, os.R_OK):
        raise InputError(f"{spec.spec}: {str(path)!r} cannot be read (permission denied)")
    if path.stat().st_size == 0:
        raise InputError(f"{spec.spec}: {str(path)!r} is empty (0 bytes), not an ONNX model")
    import onnx  # protobuf only; cheap compared with a session

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and friends for non-models
        raise InputError(f"{spec.spec}: {str(path)!r} is not an ONNX model "
                         f"({type(e).__name__})") from None
    if not model.opset_import or not model.graph.output:
        raise InputError(f"{spec.spec}: {str(path)!r} is not an ONNX model (it holds no "
                         "graph outputs or no opset)")


def _validate_config(spec: ModelSpec) -> None:
    from contracts.llm_arch import load_config

    load_config(spec.target)  # InputError names the file and field


_VALIDATORS = {
    "builtin": _validate_builtin,
    "hf": _validate_hf,
    "onnx": _validate_onnx,
    "ckpt": _validate_ckpt,
    "config": _validate_config,
}


def split_specs(text: str) -> list[str]:
    """Split a comma-separated spec list; commas inside `builtin:k=v,k=v` stay with their spec
    (a new spec starts only where a comma is followed by a known `kind:` prefix)."""
    pattern = r",\s*(?=(?:%s):)" % "|".join(KINDS)
    return [s.strip() for s in re.split(pattern, text) if s.strip()]


def parse_students(students: str | list[str] | tuple[str, ...]) -> list[ModelSpec]:
    if isinstance(students, str):
        students = split_specs(students)
    if list(students) == ["auto"]:
        students = list(AUTO_STUDENTS)
    return [parse_spec(s.strip()) for s in students]


# --------------------------------------------------------------------------- loading (torch)


def load_torch(spec: ModelSpec) -> TorchModel:
    """Build the torch module for a spec (fp32, eval mode, on CPU; callers move it)."""
    if spec.kind == "builtin":
        import torch

        from models.gpt import GPT

        shipped = shipped_weights(spec.target)
        if shipped is not None:
            from models.checkpoint import load_checkpoint

            return _builtin_model(load_checkpoint(shipped).eval(), "builtin")
        torch.manual_seed(BUILTIN_SEED)
        return _builtin_model(GPT(builtin_config(spec.target)).eval(), "builtin")
    if spec.kind == "ckpt":
        from models.checkpoint import load_checkpoint

        return _builtin_model(load_checkpoint(spec.path).eval(), "ckpt")
    if spec.kind == "hf":
        return _load_hf(spec.path)
    if spec.kind == "config":
        raise InputError(f"{spec.spec}: an architecture without weights cannot run; it is "
                         "projected (roi/llm_serving.py)")
    raise InputError(f"{spec.spec}: an ONNX model cannot run on a torch backend")


def _builtin_model(module, family: str) -> TorchModel:
    import torch

    cfg = module.config

    def make_inputs(batch: int, seq: int, device) -> dict:
        g = torch.Generator().manual_seed(1234)
        return {"idx": torch.randint(0, cfg.vocab_size, (batch, seq), generator=g).to(device)}

    return TorchModel(
        module=module,
        input_names=("idx",),
        make_inputs=make_inputs,
        vocab_size=cfg.vocab_size,
        max_seq_len=cfg.block_size,
        is_causal_lm=True,
        family=family,
        extra={"config": cfg.to_dict()},
    )


def hf_model_class(config) -> type:
    """The transformers class for a config, picked from the config alone.

    `architectures` names the exact class a checkpoint was saved from; without it (or when it
    names nothing this transformers has as a torch model), a decoder-only model type gets
    AutoModelForCausalLM and anything else the bare AutoModel."""
    import transformers
    from transformers.models.auto import modeling_auto as ma

    if getattr(config, "is_encoder_decoder", False):
        raise InputError(
            f"model_type {config.model_type!r} is an encoder-decoder: not supported; "
            "allowed are encoders and decoder-only causal LMs"
        )
    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        # transformers 4.x also exports TF/Flax classes (TFBertModel...) under the same names
        if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
            return cls
    causal = ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    masked = ma.MODEL_FOR_MASKED_LM_MAPPING_NAMES
    # Types in both tables (bert, roberta...) are encoders unless the config says decoder.
    is_decoder = config.model_type not in masked or getattr(config, "is_decoder", False)
    if config.model_type in causal and is_decoder:
        return transformers.AutoModelForCausalLM
    return transformers.AutoModel


HF_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _load_hf(path: Path) -> TorchModel:
    import torch
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, local_files_only=True)
    # Named outputs everywhere: a config saved with return_dict=False makes some transformers
    # versions' causal LMs fail inside their own forward (they read .last_hidden_state).
    config.return_dict = True
    cls = hf_model_class(config)
    kwargs = {"config": config, "local_files_only": True, "use_safetensors": True}
    if hasattr(config, "_attn_implementation"):
        kwargs["attn_implementation"] = "sdpa" if _supports_sdpa(cls) else "eager"
    module = cls.from_pretrained(path, **kwargs).eval().to(torch.float32)
    names = hf_input_names(module, config)
    vocab = _hf_vocab_size(module, config)
    max_len = _hf_max_seq_len(module, config)

    def make_inputs(batch: int, seq: int, device) -> dict:
        g = torch.Generator().manual_seed(1234)
        ids = torch.randint(0, vocab, (batch, seq), generator=g)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                  "token_type_ids": torch.zeros_like(ids)}
        return {k: inputs[k].to(device) for k in names}

    return TorchModel(
        module=module,
        input_names=names,
        make_inputs=make_inputs,
        vocab_size=vocab,
        max_seq_len=max_len,
        is_causal_lm=bool(module.can_generate()),
        family=f"hf-{config.model_type}",
        extra={"hf_class": type(module).__name__},
        forward_kwargs=plain_forward_kwargs(module),
    )


def hf_input_names(module, config) -> tuple[str, ...]:
    """The token inputs a HF model takes, in HF_INPUTS order.

    token_type_ids only where the config has segment embeddings: GPT-2 accepts the argument but
    would look the ids up in its token embedding, and DeBERTa-v2 sets type_vocab_size=0."""
    accepted = forward_params(module)
    names = [n for n in HF_INPUTS if n in accepted]
    if not getattr(config, "type_vocab_size", 0):
        names = [n for n in names if n != "token_type_ids"]
    if "input_ids" not in names:
        raise InputError(f"{type(module).__name__}.forward takes no input_ids: not a text model")
    return tuple(names)


def _hf_vocab_size(module, config) -> int:
    """Rows of the input embedding (what ids may index); config.vocab_size where there is none."""
    try:
        rows = getattr(module.get_input_embeddings(), "num_embeddings", None)
    except NotImplementedError:  # models without a standard embedding accessor
        rows = None
    return int(rows or config.vocab_size)


def _hf_max_seq_len(module, config) -> int | None:
    """The longest sequence the config allows (None where it names no limit).

    RoBERTa-style embeddings number positions from padding_idx + 1 (their position embedding is
    built with that padding_idx), so padding_idx + 1 of its rows are never a usable position."""
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if not limit:
        return None
    for name, sub in module.named_modules():
        pad = getattr(sub, "padding_idx", None)
        if name.endswith("position_embeddings") and pad is not None:
            return int(limit) - int(pad) - 1
    return int(limit)


def plain_forward_kwargs(module) -> dict:
    """Keyword arguments that make a forward a plain one: no KV cache built or returned (decode
    is measured separately, and a cache object in the outputs breaks the ONNX exporters)."""
    return {"use_cache": False} if "use_cache" in forward_params(module) else {}


def forward_params(module) -> set[str]:
    """Names the module's forward accepts (HF models differ: token_type_ids, use_cache...)."""
    import inspect

    return set(inspect.signature(module.forward).parameters)


def _supports_sdpa(cls) -> bool:
    return bool(getattr(cls, "_supports_sdpa", False))


# --------------------------------------------------------------------------- size figures

_HF_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")


def layer_count(spec: ModelSpec) -> int | None:
    """Transformer blocks of a model, read from its config without loading weights; None where
    the spec does not say (an ONNX file). The planner's projection charges a per-layer overhead
    (kernel launches, per-op dispatch) with it."""
    try:
        if spec.kind == "builtin":
            return int(builtin_config(spec.target).n_layer)
        if spec.kind == "ckpt":
            from models.checkpoint import read_checkpoint_meta

            return int(read_checkpoint_meta(spec.path)["config"]["n_layer"])
        if spec.kind == "hf":
            cfg = json.loads((spec.path / "config.json").read_text())
            cfg = cfg.get("text_config", cfg)
            return next((int(cfg[k]) for k in _HF_LAYER_KEYS if k in cfg), None)
        if spec.kind == "config":
            from contracts.llm_arch import load_config

            return int(load_config(spec.target).arch.num_layers)
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return None


# --------------------------------------------------------------------------- identity


def content_hash(spec: ModelSpec) -> str:
    """A stable hash of what the model computes: its files, or a preset's config + seed."""
    h = hashlib.sha256()
    if spec.kind == "config":
        from contracts.llm_arch import load_config

        h.update(load_config(spec.target).arch.model_dump_json().encode())
        return h.hexdigest()[:20]
    if spec.kind == "builtin" and shipped_weights(spec.target) is None:
        cfg = builtin_config(spec.target).to_dict()
        h.update(json.dumps({"builtin": cfg, "seed": BUILTIN_SEED}, sort_keys=True).encode())
        return h.hexdigest()[:20]
    path = shipped_weights(spec.target) if spec.kind == "builtin" else spec.path
    files = [path] if path.is_file() else sorted(p for p in path.iterdir())
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:20]
