"""One-time cost of teacher-generated training data (sequence-level distillation, issue 9).

Two ways to have the teacher write `samples` continuations of `prompt_tokens` in and
`completion_tokens` out each:

    local      hours = samples · (prompt_tokens / prefill tokens/s + completion_tokens / decode
               tokens/s) / 3600 on the training hardware, at its hourly price. The rates come
               from the results table (decode: batch / the measured or projected time per
               decode step; prefill: the teacher's forward throughput), or are given.
    api:MODEL  samples · (prompt_tokens · input price + completion_tokens · output price) / 1e6,
               prices per 1M tokens from roi/data/api_prices.yaml (each with its source) or
               given. Retried requests that a provider bills are not counted.

Pure Python (no torch): the planner prices generation wherever it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from contracts.config import read_yaml, safe_load
from contracts.errors import InputError

from .datagen_inputs import DataGenInputs

DEFAULT_PRICES = "api_prices.yaml"


@dataclass(frozen=True)
class DataGenCost:
    usd: float
    hours: Optional[float]  # local: hardware hours; api: None (the provider's time)
    inputs: dict  # every input with its value and source

    def record(self) -> dict:
        return {"usd": self.usd, "hours": self.hours, "inputs": self.inputs}


NO_GENERATION = DataGenCost(0.0, 0.0, {"teacher": {"value": "none", "source": "default: the "
                                                   "student trains on the corpus"}})


def load_api_prices(path: str | Path | None = None) -> dict[str, dict]:
    """Model name -> {usd_per_1m_input_tokens, usd_per_1m_output_tokens, source, as_of}."""
    if path is None:
        text = resources.files("roi").joinpath("data", DEFAULT_PRICES).read_text()
        doc, where = safe_load(text), f"roi/data/{DEFAULT_PRICES}"
    else:
        doc, where = read_yaml(path, "API price"), str(path)
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        raise InputError(f"{where}: expected a mapping with a models: section")
    out = {}
    for name, row in models.items():
        for key in ("usd_per_1m_input_tokens", "usd_per_1m_output_tokens", "source"):
            if not isinstance(row, dict) or row.get(key) is None:
                raise InputError(f"{where}: models.{name}.{key} is missing (every price needs "
                                 "both rates and its source)")
        out[str(name)] = {**row, "as_of": row.get("as_of", doc.get("as_of")), "catalog": where}
    return out


def api_price(inputs: DataGenInputs) -> tuple[float, float, str]:
    """(input, output) USD per 1M tokens and where they came from."""
    model = inputs.teacher.removeprefix("api:")
    given = (inputs.usd_per_1m_input_tokens, inputs.usd_per_1m_output_tokens)
    if None not in given:
        return given[0], given[1], "given"
    prices = load_api_prices(inputs.prices_file)
    if model not in prices:
        raise InputError(f"datagen teacher api:{model}: no price in "
                         f"{inputs.prices_file or 'roi/data/' + DEFAULT_PRICES}; known: "
                         f"{', '.join(sorted(prices))}; or give both prices per 1M tokens")
    row = prices[model]
    src = f"{row['source']} (as published; catalog as of {row['as_of']})"
    return (given[0] if given[0] is not None else float(row["usd_per_1m_input_tokens"]),
            given[1] if given[1] is not None else float(row["usd_per_1m_output_tokens"]), src)


def teacher_generation_rates(fwd: pd.DataFrame, teacher: str, hardware: str
                             ) -> tuple[Optional[float], Optional[float], str]:
    """(prefill tokens/s, decode tokens/s, source) of the teacher on `hardware`, best over the
    batch sizes of the service-time table (roi.service: fwd_ms_p50 per forward over seq_len
    tokens, step_ms_p50 per decode step of the whole batch)."""
    rows = fwd[(fwd["hardware"] == hardware) & (fwd["model"] == teacher)]
    if rows.empty:
        return None, None, f"the teacher has no measured or projected row on {hardware}"
    batch = rows["batch_size"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        prefill = batch * rows["seq_len"].astype(float) / (rows["fwd_ms_p50"].astype(float) / 1e3)
        decode = (batch / (rows["step_ms_p50"].astype(float) / 1e3)
                  if "step_ms_p50" in rows.columns else pd.Series(np.nan, index=rows.index))
    prefill, decode = prefill[np.isfinite(prefill)], decode[np.isfinite(decode)]
    best = rows.loc[decode.idxmax()] if len(decode) else None
    how = (f"{best['source']} on {hardware} (batch {int(best['batch_size'])}; "
           f"{best.get('note', '')})" if best is not None else "no decode rate")
    return (float(prefill.max()) if len(prefill) else None,
            float(decode.max()) if len(decode) else None, how)


def generation_cost(inputs: DataGenInputs, *, hardware: str, usd_per_hour: float,
                    prefill_tokens_per_s: Optional[float] = None,
                    decode_tokens_per_s: Optional[float] = None,
                    rate_source: str = "") -> DataGenCost:
    """The one-time cost of generating the training data, each input shown with its source."""
    if not inputs.active:
        return NO_GENERATION
    tokens_in = inputs.samples * inputs.prompt_tokens
    tokens_out = inputs.samples * inputs.completion_tokens
    shown = {"teacher": {"value": inputs.teacher},
             "samples": {"value": inputs.samples, "source": "given"},
             "prompt_tokens": {"value": tokens_in, "per_sample": inputs.prompt_tokens},
             "completion_tokens": {"value": tokens_out, "per_sample": inputs.completion_tokens}}
    if inputs.teacher.startswith("api:"):
        p_in, p_out, src = api_price(inputs)
        usd = (tokens_in * p_in + tokens_out * p_out) / 1e6
        shown["usd_per_1m_input_tokens"] = {"value": p_in, "source": src}
        shown["usd_per_1m_output_tokens"] = {"value": p_out, "source": src}
        shown["note"] = "retried requests the provider bills are not counted"
        return DataGenCost(usd, None, shown)
    decode, decode_src = decode_tokens_per_s, rate_source
    if inputs.tokens_per_s is not None:
        decode, decode_src = inputs.tokens_per_s, "given"
    if not decode:
        shown["hours"] = {"value": 0.0, "source": f"unknown ({rate_source}): taken as 0"}
        return DataGenCost(0.0, 0.0, shown)
    prefill = prefill_tokens_per_s or decode  # prefill is never slower per token than decode
    hours = (tokens_in / prefill + tokens_out / decode) / 3600
    shown.update({"hardware": {"value": hardware, "usd_per_hour": usd_per_hour},
                  "decode_tokens_per_s": {"value": decode, "source": decode_src},
                  "prefill_tokens_per_s": {"value": prefill, "source": "the teacher's forward "
                                           "throughput there" if prefill_tokens_per_s
                                           else "taken as the decode rate"},
                  "hours": {"value": hours, "source": "prompt tokens / prefill rate + "
                            "completion tokens / decode rate"}})
    return DataGenCost(hours * usd_per_hour, hours, shown)
