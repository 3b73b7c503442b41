"""What the plan is told about teacher-generated training data (roi/datagen_cost.py prices it):
a frozen pydantic model whose fields' descriptions and defaults are `roi plan --datagen-*`'s
help and defaults (app/cli_options.py derives the options). Light (pydantic alone), so the
command line builds its options without importing the planner.
"""

from __future__ import annotations

from typing import Optional

from pydantic import ConfigDict, Field, ValidationError

from contracts.config import Checked, describe
from contracts.defaults import DATAGEN_COMPLETION_TOKENS, DATAGEN_PROMPT_TOKENS

# the fields that are rates or prices: finite numbers >= 0 (tokens_per_s: > 0)
NUMBERS = ("prompt_tokens", "completion_tokens", "tokens_per_s", "usd_per_1m_input_tokens",
           "usd_per_1m_output_tokens")


class DataGenInputs(Checked):
    """What the plan is told about data generation (defaults: none, nothing generated)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    teacher: str = Field("none", pattern=r"^(none|local|api:.+)$",
                         description="Teacher-generated training data to price into the "
                         "one-time cost: none, local (the teacher on the training hardware) or "
                         "api:MODEL (roi/data/api_prices.yaml).")
    samples: int = Field(0, ge=0, description="Samples the teacher generates.")
    prompt_tokens: float = Field(DATAGEN_PROMPT_TOKENS, ge=0, allow_inf_nan=False,
                                 description="Prompt tokens per sample.")
    completion_tokens: float = Field(DATAGEN_COMPLETION_TOKENS, ge=0, allow_inf_nan=False,
                                     description="Generated tokens per sample.")
    tokens_per_s: Optional[float] = Field(None, gt=0, allow_inf_nan=False,
                                          description="local: the teacher's decode rate "
                                          "[default: from the results table].")
    usd_per_1m_input_tokens: Optional[float] = Field(None, ge=0, allow_inf_nan=False,
                                                     description="api: USD per 1M input tokens "
                                                     "[default: the price catalog's].")
    usd_per_1m_output_tokens: Optional[float] = Field(None, ge=0, allow_inf_nan=False,
                                                      description="api: USD per 1M output "
                                                      "tokens [default: the catalog's].")
    prices_file: Optional[str] = Field(None, description="api: a price catalog YAML in the "
                                       "shape of roi/data/api_prices.yaml.")

    @property
    def active(self) -> bool:
        return self.teacher != "none" and self.samples > 0

    @classmethod
    def refusal(cls, err: ValidationError) -> str:
        problem = err.errors()[0]
        name, value = (problem["loc"] or ("",))[0], problem.get("input")
        if name == "teacher":
            return f"datagen teacher: allowed none, local or api:MODEL; received {value!r}"
        if name == "samples":
            return f"datagen samples: must be an integer >= 0; received {value!r}"
        if name in NUMBERS:
            bound = ">" if name == "tokens_per_s" else ">="
            return f"datagen {name}: must be a finite number {bound} 0; received {value!r}"
        return f"datagen {describe(err, cls)}"
