"""LLM architectures read, not run: parameters, weight bytes, FLOPs and KV cache from a config.

A `config:` model spec names a decoder-only transformer by its architecture numbers alone, so the
planner can cost a 70B teacher that this machine could never load:

    config:NAME        a shipped architecture (contracts/data/llm/NAME.yaml; `shipped_names()`)
    config:FILE.yaml   our YAML: {name, architecture: {...}, published_params?, source?}
    config:FILE.json   a Hugging Face config.json (llama, mistral, qwen2, qwen3, gpt2 types)
    config:DIR         a directory holding config.json

Counting (per token, one forward pass; d = hidden_size, L = layers, H / K = query / key-value
heads of size h, f = intermediate_size, V = vocabulary):

- params: embedding V·d; per layer q d·H·h, k and v d·K·h each (grouped-query attention),
  o H·h·d, MLP 3·d·f (gated: gate, up, down) or 2·d·f, norms, biases where the type has them;
  final norm; the LM head V·d unless tied to the embedding; learned positions where used.
- FLOPs: 2 per multiply-add of every matrix a token passes through (the embedding is a lookup,
  the LM head a matmul even when tied), plus attention's scores and weighted sum, 4·L·H·h per
  token of context. Prefill of P tokens is causal: Σ_{t=1..P} of the context term.
- KV cache: 2 (keys, values) · L · K · h · bytes per element, per token of context.
- Weight bytes: fp32 4, bf16/fp16 2, int8/fp8 1 byte per parameter; int4 0.5 byte plus one fp16
  scale and one fp16 zero point per group of 128 (AWQ/GPTQ's common layout).

Pure Python: reading a config.json needs json, never transformers or torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.config import iso_date, read_json_object, read_yaml, validate
from contracts.errors import InputError

INT4_GROUP = 128
# Bytes per parameter of the stored weights, per dtype (int4: 4 bits + fp16 scale and zero per
# group of INT4_GROUP weights).
WEIGHT_BYTES_PER_PARAM: dict[str, float] = {
    "fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0,
    "int4": 0.5 + 4.0 / INT4_GROUP,
}
DTYPES = tuple(WEIGHT_BYTES_PER_PARAM)
HF_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gpt2")
MOE_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size")


class PublishedParams(BaseModel):
    """A parameter count as its publisher states it, to test our counting against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(gt=0, description="Total parameters (embeddings included).")
    source: str = Field(min_length=1, description="Where the count is published (URL).")
    note: Optional[str] = Field(None, description="How precise it is, what it counts.")


class Architecture(BaseModel):
    """The numbers that fix a decoder-only transformer's size and cost per token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden_size: int = Field(ge=1, description="Model width d.")
    num_layers: int = Field(ge=1, description="Transformer blocks L.")
    num_heads: int = Field(ge=1, description="Query heads H.")
    num_kv_heads: Optional[int] = Field(None, ge=1, description="Key/value heads K (grouped-"
                                        "query attention); default: num_heads (multi-head).")
    head_dim: Optional[int] = Field(None, ge=1, description="Size of one head; default: "
                                    "hidden_size / num_heads.")
    intermediate_size: int = Field(ge=1, description="MLP inner width f.")
    vocab_size: int = Field(ge=1, description="Vocabulary V (rows of the embedding).")
    tie_embeddings: bool = Field(False, description="LM head shares the embedding's weights.")
    mlp: Literal["gated", "plain"] = Field("gated", description="gated: SwiGLU (3 matrices); "
                                           "plain: up and down (2 matrices).")
    norm: Literal["rms", "layer"] = Field("rms", description="rms: one weight vector per norm; "
                                          "layer: weight and bias.")
    qkv_bias: bool = Field(False, description="q, k and v projections carry biases (Qwen2).")
    linear_bias: bool = Field(False, description="Every linear layer carries a bias (GPT-2).")
    qk_norm: bool = Field(False, description="RMS norm on each head's q and k (Qwen3).")
    learned_positions: bool = Field(False, description="A learned position embedding of "
                                    "max_position_embeddings rows (GPT-2/3); RoPE otherwise.")
    max_position_embeddings: Optional[int] = Field(None, ge=1, description="Longest context.")

    @model_validator(mode="after")
    def _heads_fit(self) -> "Architecture":
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_heads "
                             f"{self.num_heads}: give head_dim")
        if self.num_heads % self.kv_heads:
            raise ValueError(f"num_heads {self.num_heads} must be a multiple of num_kv_heads "
                             f"{self.kv_heads}")
        if self.learned_positions and not self.max_position_embeddings:
            raise ValueError("learned_positions needs max_position_embeddings")
        return self

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads


class ModelConfig(BaseModel):
    """A shipped or user YAML architecture file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Short name (used as the model column).")
    family: str = Field("", description="Model family; students of a teacher's family share "
                        "its tokenizer, which logit distillation needs.")
    hf_id: Optional[str] = Field(None, description="Hugging Face repository id.")
    source: Optional[str] = Field(None, description="Where the architecture numbers come from.")
    source_date: Optional[str] = Field(None, description="When the source was read or published.")
    published_params: Optional[PublishedParams] = None
    architecture: Architecture

    @model_validator(mode="before")
    @classmethod
    def _dates_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and "source_date" in data:
            data = {**data, "source_date": iso_date(data["source_date"])}
        return data


@dataclass(frozen=True)
class LLMSpec:
    """An architecture with everything the planner derives from it (no weights anywhere)."""

    name: str
    arch: Architecture
    family: str = ""
    source: str = ""
    published_params: Optional[PublishedParams] = None

    # --- sizes ------------------------------------------------------------------------------
    @property
    def embedding_params(self) -> int:
        a = self.arch
        return a.vocab_size * a.hidden_size

    @property
    def head_params(self) -> int:
        """The LM head's own weights (0 when tied to the embedding)."""
        return 0 if self.arch.tie_embeddings else self.embedding_params

    @property
    def layer_params(self) -> int:
        a = self.arch
        d, h, q_width, kv_width = a.hidden_size, a.head_size, a.num_heads * a.head_size, \
            a.kv_heads * a.head_size
        attn = d * q_width + 2 * d * kv_width + q_width * d
        mlp = (3 if a.mlp == "gated" else 2) * d * a.intermediate_size
        norms = 2 * d * (2 if a.norm == "layer" else 1)
        bias = 0
        if a.qkv_bias or a.linear_bias:
            bias += q_width + 2 * kv_width
        if a.linear_bias:
            bias += d + a.intermediate_size * (2 if a.mlp == "gated" else 1) + d
        qk_norm = 2 * h if a.qk_norm else 0
        return attn + mlp + norms + bias + qk_norm

    @property
    def params(self) -> int:
        a = self.arch
        final_norm = a.hidden_size * (2 if a.norm == "layer" else 1)
        positions = a.max_position_embeddings * a.hidden_size if a.learned_positions else 0
        return (self.embedding_params + positions + a.num_layers * self.layer_params
                + final_norm + self.head_params)

    @property
    def non_embedding_params(self) -> int:
        """Parameters outside the input embedding (and outside positions): what model cards
        call non-embedding (the untied LM head is counted as embedding there too)."""
        return self.params - self.embedding_params - self.head_params - (
            self.arch.max_position_embeddings * self.arch.hidden_size
            if self.arch.learned_positions else 0)

    def weight_bytes(self, dtype: str = "bf16") -> float:
        return self.params * bytes_per_param(dtype)

    # --- per-token cost ---------------------------------------------------------------------
    @property
    def matmul_params(self) -> int:
        """Weights a token multiplies by: every layer's matrices and the LM head (the embedding
        is a lookup; a tied head is still a matmul)."""
        return self.arch.num_layers * self.layer_params + self.embedding_params

    @property
    def attention_flops_per_context_token(self) -> int:
        """4·L·H·h: scores (q·k) and the weighted sum of v, per token of context."""
        a = self.arch
        return 4 * a.num_layers * a.num_heads * a.head_size

    def decode_flops_per_token(self, context: float) -> float:
        """FLOPs to generate one token with `context` tokens already in the KV cache."""
        return 2.0 * self.matmul_params + self.attention_flops_per_context_token * context

    def prefill_flops(self, prompt_tokens: float, logits_tokens: float | None = None) -> float:
        """FLOPs to process a prompt of `prompt_tokens` (causal attention: token t attends to
        t tokens), with the LM head run for `logits_tokens` of them: all (None, a plain forward
        pass, what bench measures) or 1 (serving's prefill: only the last position's logits
        pick the first token; the head is a fifth of a 1B model's matmul FLOPs)."""
        p = float(prompt_tokens)
        head = self.embedding_params  # the head's V·d matmul, tied or not
        n = p if logits_tokens is None else float(logits_tokens)
        return (2.0 * (self.matmul_params - head) * p + 2.0 * head * n
                + self.attention_flops_per_context_token * p * (p + 1) / 2)

    def kv_bytes_per_token(self, kv_dtype: str = "bf16") -> float:
        a = self.arch
        return 2.0 * a.num_layers * a.kv_heads * a.head_size * bytes_per_param(kv_dtype)

    def kv_bytes_per_token_per_gpu(self, tp: int, kv_dtype: str = "bf16") -> float:
        """A tensor-parallel shard holds ceil(K / tp) key-value heads: past tp = K they are
        replicated, not split further."""
        a = self.arch
        heads = math.ceil(a.kv_heads / tp)
        return 2.0 * a.num_layers * heads * a.head_size * bytes_per_param(kv_dtype)

    def summary(self) -> dict[str, Any]:
        """The static columns bench writes for a `config:` model (no measurement)."""
        return {"params": self.params, "non_embedding_params": self.non_embedding_params,
                "weight_bytes_bf16": self.weight_bytes("bf16"),
                "weight_bytes_int8": self.weight_bytes("int8"),
                "weight_bytes_int4": self.weight_bytes("int4"),
                "kv_bytes_per_token_bf16": self.kv_bytes_per_token("bf16"),
                "decode_flops_per_token": self.decode_flops_per_token(0)}


def bytes_per_param(dtype: str) -> float:
    if dtype not in WEIGHT_BYTES_PER_PARAM:
        raise InputError(f"dtype {dtype!r} is not known; allowed: {', '.join(DTYPES)}")
    return WEIGHT_BYTES_PER_PARAM[dtype]


# --------------------------------------------------------------------------- reading configs


def _shipped_dir():
    return resources.files("contracts") / "data" / "llm"


def shipped_names() -> list[str]:
    """Names of the shipped architectures (contracts/data/llm/*.yaml)."""
    return sorted(p.name[:-5] for p in _shipped_dir().iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=None)
def _load_shipped(name: str) -> LLMSpec:
    path = _shipped_dir() / f"{name}.yaml"
    with resources.as_file(path) as p:
        return _from_yaml(p)


def shipped(name: str) -> LLMSpec:
    if name not in shipped_names():
        raise InputError(f"unknown shipped architecture {name!r}; shipped: "
                         f"{', '.join(shipped_names())}")
    return _load_shipped(name)


def load_config(target: str | Path) -> LLMSpec:
    """An LLMSpec from a shipped name, our YAML, a Hugging Face config.json or its directory."""
    text = str(target)
    path = Path(text)
    if not path.exists() and text in shipped_names():
        return shipped(text)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise InputError(f"config:{text}: no such file, and not a shipped architecture "
                         f"(shipped: {', '.join(shipped_names())})")
    if path.suffix in (".yaml", ".yml"):
        return _from_yaml(path)
    return from_hf_config(read_json_object(path, "architecture config"),
                          name=path.parent.name or path.stem,
                          where=str(path))


def _from_yaml(path: Path) -> LLMSpec:
    data = read_yaml(path, "architecture")
    if isinstance(data, dict) and "model_type" in data:  # a config.json written as YAML
        return from_hf_config(data, name=Path(path).stem, where=str(path))
    cfg = validate(ModelConfig, data, f"{path}: ")
    return LLMSpec(cfg.name, cfg.architecture, cfg.family, cfg.source or "",
                   cfg.published_params)


def from_hf_config(cfg: dict, name: str, where: str = "config.json") -> LLMSpec:
    """An LLMSpec from a Hugging Face config dict (decoder-only dense types in HF_TYPES)."""
    cfg = cfg.get("text_config", cfg) if isinstance(cfg.get("text_config"), dict) else cfg
    model_type = cfg.get("model_type")
    moe = [k for k in MOE_KEYS if cfg.get(k)]
    if moe:
        raise InputError(f"{where}: mixture-of-experts config ({moe[0]}) is not supported: "
                         f"only dense decoder-only models are costed")
    if model_type not in HF_TYPES:
        raise InputError(f"{where}: model_type {model_type!r} is not supported; allowed: "
                         f"{', '.join(HF_TYPES)} (or write our YAML: contracts/data/llm/*.yaml)")
    arch = _gpt2_arch(cfg) if model_type == "gpt2" else _llama_like_arch(cfg, model_type)
    spec = validate(Architecture, arch, f"{where}: ")
    return LLMSpec(name, spec, family=str(model_type), source=where)


def _need(cfg: dict, key: str, model_type: str) -> Any:
    if key not in cfg:
        raise InputError(f"config ({model_type}): {key} is missing")
    return cfg[key]


def _llama_like_arch(cfg: dict, model_type: str) -> dict:
    heads = _need(cfg, "num_attention_heads", model_type)
    return {
        "hidden_size": _need(cfg, "hidden_size", model_type),
        "num_layers": _need(cfg, "num_hidden_layers", model_type),
        "num_heads": heads,
        "num_kv_heads": cfg.get("num_key_value_heads") or heads,
        "head_dim": cfg.get("head_dim"),
        "intermediate_size": _need(cfg, "intermediate_size", model_type),
        "vocab_size": _need(cfg, "vocab_size", model_type),
        # These types' config classes default to untied embeddings.
        "tie_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "mlp": "gated",
        "norm": "rms",
        "qkv_bias": model_type == "qwen2" or bool(cfg.get("attention_bias", False)),
        "linear_bias": bool(cfg.get("mlp_bias", False)),
        "qk_norm": model_type == "qwen3",
        "max_position_embeddings": cfg.get("max_position_embeddings"),
    }


def _gpt2_arch(cfg: dict) -> dict:
    d = _need(cfg, "n_embd", "gpt2")
    return {
        "hidden_size": d, "num_layers": _need(cfg, "n_layer", "gpt2"),
        "num_heads": _need(cfg, "n_head", "gpt2"), "intermediate_size": cfg.get("n_inner") or 4 * d,
        "vocab_size": _need(cfg, "vocab_size", "gpt2"),
        "tie_embeddings": bool(cfg.get("tie_word_embeddings", True)), "mlp": "plain",
        "norm": "layer", "linear_bias": True, "learned_positions": True,
        "max_position_embeddings": _need(cfg, "n_positions", "gpt2"),
    }
