"""The options of the LLM timing check (checks/llm_check.py), each defined once with its
default and help. Both command lines are derived from these fields: `roi check llm-timing`
(app/cli_check.py, typer) and `python -m checks.llm_check` (argparse, for a device machine
without typer). Light on purpose (pydantic only): the `roi` command reads the fields at start.
"""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_BATCHES = (1, 8, 32, 64, 128)
MODES = ("eager", "static", "graph")  # decode modes (checks/llm_timing.py's docstring)


class LLMCheckSettings(BaseModel):
    """The check's options, each with its default and help: both command lines read them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: list[str] = Field(min_length=1, description="config: spec (shipped name, YAML or "
                             "config.json); repeatable.")
    out: str = Field(description="Output directory: measured.json, comparison.csv/.json/.md.")
    device: str = Field("cuda", pattern=r"^(cpu|cuda(:\d+)?)$", description="cpu or cuda[:N].")
    dtype: Optional[str] = Field(None, description="Measured dtype [default: bf16 on CUDA, fp32 "
                                 "on CPU].")
    batch_sizes: str = Field(",".join(map(str, DEFAULT_BATCHES)),
                             description="Comma-separated batch sizes.")
    prompt_tokens: int = Field(512, gt=0, description="Prompt tokens per sequence.")
    output_tokens: int = Field(128, gt=0, description="Tokens written per sequence.")
    modes: Optional[str] = Field(None, description="Comma-separated decode modes of "
                                 f"{', '.join(MODES)} [default: eager,graph on CUDA, "
                                 "eager,static on CPU].")
    ttft_reps: int = Field(3, gt=0, description="Prefills timed per point (TTFT).")
    hardware: str = Field("h200", description="Catalog row to predict for.")
    predict_dtype: str = Field("bf16", description="dtype of the prediction.")
    smoke: bool = Field(False, description="Shrink each model (2 layers, width 256, vocabulary "
                        "2048): a rehearsal, not the figure.")
    threads: Optional[int] = Field(None, gt=0, description="torch CPU threads (1 on a shared "
                                   "machine: spinning threads that wait for a core distort "
                                   "every time).")

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, v: str) -> str:
        if not all(b.strip().isdigit() and int(b) > 0 for b in v.split(",")):
            raise ValueError("must be positive integers, comma-separated (e.g. 1,8,32)")
        return v

    @field_validator("modes")
    @classmethod
    def _modes(cls, v: Optional[str]) -> Optional[str]:
        bad = [m for m in (v or "").split(",") if m.strip() not in MODES]
        if v is not None and bad:
            raise ValueError(f"must be decode modes of {', '.join(MODES)}, comma-separated")
        return v

    def batches(self) -> list[int]:
        return [int(b) for b in self.batch_sizes.split(",")]

    def mode_list(self) -> list[str] | None:
        return [m.strip() for m in self.modes.split(",")] if self.modes else None
