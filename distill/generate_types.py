"""What distill.generate and its teachers (the local ones there, distill.api_teacher) hand each
other: the settings of a generation run, a prompt, a teacher's answer, and the per-sample seed.
A module of its own so that both import it and neither imports the other."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


class GenerateConfig(BaseModel):
    """Settings of one generation run; every field documented where it is declared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher: str = Field("builtin:teacher", description="builtin:NAME, ckpt:DIR, hf:DIR, or "
                         "api:MODEL (an OpenAI-compatible endpoint at api_base_url).")
    prompts: str = Field("corpus", description="corpus (cut from the training split of "
                         "data_source) or a .jsonl file of {\"prompt\": ..., \"id\": ...} lines.")
    num_prompts: Optional[int] = Field(None, gt=0, description="How many prompts [default: 256 "
                                       "from the corpus; every line of a prompts file].")
    prompt_chars: int = Field(64, gt=0, description="Length of a corpus prompt, in bytes of "
                              "UTF-8 text (= tokens of the byte-level built-in models).")
    max_new_tokens: int = Field(128, gt=0, description="Most tokens the teacher writes per "
                                "prompt.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling: keep the most likely "
                         "tokens whose probabilities sum to top_p, in (0, 1].")
    seed: int = Field(0, description="Seeds prompt choice and sampling.")
    batch_size: int = Field(32, gt=0, description="Prompts per batched generate call (local).")
    data_source: str = Field("stdlib", description="Corpus of the prompts (as the trainer's).")
    val_fraction: float = Field(0.05, gt=0, lt=0.5)
    test_fraction: float = Field(0.05, gt=0, lt=0.5)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    dtype: Literal["fp32", "bf16"] = "fp32"
    threads: Optional[int] = Field(None, gt=0, description="torch intra-op threads.")
    # The API teacher (api:MODEL) ------------------------------------------------------------
    api_base_url: Optional[str] = Field(None, description="Base URL ending in /v1, e.g. "
                                        "http://127.0.0.1:8000/v1.")
    api_endpoint: Literal["completions", "chat"] = Field(
        "completions", description="completions: POST /completions with the prompt to "
        "continue; chat: POST /chat/completions with the prompt as one user message.")
    api_key_env: str = Field("OPENAI_API_KEY", min_length=1, description="Environment "
                             "variable holding the API key (sent as a Bearer token).")
    concurrency: int = Field(4, gt=0, le=256, description="Requests in flight at once.")
    max_retries: int = Field(5, ge=0, description="Retries of a request on 429, 5xx, timeouts "
                             "and connection errors (exponential backoff with jitter; "
                             "Retry-After respected).")
    max_requests: Optional[int] = Field(None, gt=0, description="Request budget of one "
                                        "invocation, retries included; prompts left are "
                                        "done by a resumed run.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout.")
    backoff_s: float = Field(1.0, gt=0, description="First retry delay; doubles per retry.")
    backoff_max_s: float = Field(60.0, gt=0, description="Longest delay between retries.")

    @field_validator("teacher")
    @classmethod
    def _teacher_kind(cls, v: str) -> str:
        kind = v.partition(":")[0]
        if kind not in ("builtin", "ckpt", "hf", "api") or not v.partition(":")[2]:
            raise ValueError("expected builtin:NAME, ckpt:DIR, hf:DIR or api:MODEL")
        return v

    @field_validator("api_base_url")
    @classmethod
    def _url(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @property
    def is_api(self) -> bool:
        return self.teacher.startswith("api:")

    def sampling(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "seed": self.seed}


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str


@dataclass
class Completion:
    """One teacher answer: its text and token counts, or the error that stopped it."""

    id: str
    prompt: str
    completion: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = ""
    error: str | None = None
    status: int | None = None
    attempts: int = 1
    body: str | None = None


def sample_seed(seed: int, sample_id: str) -> int:
    """A 63-bit seed per sample from the run seed and the sample's id."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
