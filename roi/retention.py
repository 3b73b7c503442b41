"""Accuracy retention of a student (student accuracy / teacher accuracy) as a band.

Before a student is trained, the band is the seed's prior over compression ratio (teacher params
/ student params): 5×: 98–99.5%, 10×: 96–99%, 20×: 95–99%, 50×: 92–96%, interpolated linearly
in log(ratio). Ratio 1 is the teacher itself (100%). Beyond 50× the last segment is extended
(the band keeps falling) and the band says it was extrapolated. Once a distilled student's
metrics.json exists, its measured retention replaces the prior.

The seed's ranges are optimistic for general-purpose LLMs (Llama-3-8B keeps 84% of Llama-3-70B
on MMLU) and fair for task-specific encoder distillation (DistilBERT keeps 97% of BERT-base on
GLUE). So a prior band carries, beside the seed's numbers, the published teacher/student pairs
nearest its ratio (roi/data/retention_reference.yaml, each with its source and quote): the band
stays the seed's, labelled "prior", and its note says what the published pairs there reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.config import iso_date, read_json_object, read_yaml, validate
from contracts.errors import InputError

# (compression ratio, low, high): the seed's table; ratio 1 anchors the teacher at 100%.
SEED_PRIORS: tuple[tuple[float, float, float], ...] = (
    (1.0, 1.0, 1.0),
    (5.0, 0.98, 0.995),
    (10.0, 0.96, 0.99),
    (20.0, 0.95, 0.99),
    (50.0, 0.92, 0.96),
)
SEED_SOURCE = ("seed: Knowledge Distillation: Why Compress Models Today (Quality Loss and "
               "Accuracy Retention; FAQ)")


@dataclass(frozen=True)
class RetentionBand:
    """Retention as [low, high] (fractions of the teacher's accuracy)."""

    low: float
    high: float
    source: Literal["prior", "measured", "forecast"]
    compression_ratio: float
    note: str = ""
    # published pairs nearest this ratio, shown beside a prior (never used to set low/high)
    references: tuple["ReferencePair", ...] = ()
    # a forecast (roi.forecast): low/high are its P10/P90, mid its P50, at `steps` steps
    mid: Optional[float] = None
    steps: Optional[int] = None

    def as_list(self) -> list[float]:
        return [round(self.low, 6), round(self.high, 6)]

    def meets(self, threshold: float) -> bool:
        """The pessimistic end decides: a band that may fall under the threshold does not meet
        it."""
        return self.low >= threshold - 1e-12


def prior_band(compression_ratio: float) -> RetentionBand:
    """The seed's band at `compression_ratio`, interpolated in log(ratio)."""
    r = float(compression_ratio)
    if not math.isfinite(r) or r <= 0:
        raise InputError(f"compression_ratio must be a positive number; got {compression_ratio}")
    ratios, lows, highs = (np.array(c) for c in zip(*SEED_PRIORS))
    x, xs = math.log(max(r, 1.0)), np.log(ratios)
    if r <= ratios[-1]:
        low, high = float(np.interp(x, xs, lows)), float(np.interp(x, xs, highs))
        note = "" if r >= 1 else "ratio below 1 (student larger than teacher): taken as 1"
    else:  # extend the 20x-50x segment: compression beyond the seed's table loses more
        low, high = (_extend(x, xs[-2:], ys[-2:]) for ys in (lows, highs))
        note = f"{r:.1f}x is beyond the seed's table (<= 50x): extrapolated"
    refs = nearby_references(r) if r > 1 else ()  # ratio 1 is the teacher: nothing to compare
    note = "; ".join(n for n in (note, references_note(r, refs)) if n)
    return RetentionBand(max(low, 0.0), max(high, 0.0), "prior", r, note, refs)


def _extend(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
    return float(ys[1] + slope * (x - xs[1]))


# ------------------------------------------------------------------ published reference pairs

REFERENCE_FILE = "retention_reference.yaml"
DATE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
Kind = Literal["task-specific encoder, distilled", "general LLM, distilled",
               "general LLM, trained from scratch"]


class ReferencePair(BaseModel):
    """A published student beside its teacher: sizes, scores on one metric, and where the
    figures were read. Ratio and retention are computed, so a typo cannot make them disagree
    with the scores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student: str = Field(min_length=1, description="The smaller model, as its source names it.")
    teacher: str = Field(min_length=1, description="The model it is compared with.")
    student_params: float = Field(gt=0, allow_inf_nan=False, description="Parameters.")
    teacher_params: float = Field(gt=0, allow_inf_nan=False, description="Parameters.")
    metric: str = Field(min_length=1, description="Benchmark and setting, e.g. 'MMLU 5-shot'.")
    student_score: Optional[float] = Field(None, gt=0, allow_inf_nan=False)
    teacher_score: Optional[float] = Field(None, gt=0, allow_inf_nan=False)
    retention: Optional[float] = Field(None, gt=0, le=1.5, allow_inf_nan=False, description=(
        "Only where the source gives a retention fraction and no scores (a student may beat "
        "its teacher; above 1.5 is a typo)."))
    kind: Kind = Field(description="Encoder or LLM, and whether the student was distilled.")
    source: str = Field(min_length=1, description="Paper or model card, with its URL.")
    quote: str = Field(min_length=1, description="The sentence or table cells the figures "
                       "come from.")
    checked: str = Field(pattern=DATE_PATTERN, description="When the figures were read "
                         "against the source, YYYY-MM-DD.")
    note: str = ""

    _date = field_validator("checked", mode="before")(iso_date)

    @field_validator("source")
    @classmethod
    def _has_url(cls, v: str) -> str:
        if "http://" not in v and "https://" not in v:
            raise ValueError("must name the paper or model card with its URL (https://...)")
        return v

    @model_validator(mode="after")
    def _scores_or_retention(self) -> "ReferencePair":
        scores = (self.student_score, self.teacher_score)
        if self.retention is None and None in scores:
            raise ValueError("give student_score and teacher_score, or retention where the "
                             "source gives only a percentage")
        if self.retention is not None and scores != (None, None):
            raise ValueError("give either the two scores or retention, not both (retention "
                             "is computed from the scores)")
        if self.teacher_params <= self.student_params:
            raise ValueError(f"teacher_params ({self.teacher_params:g}) must exceed "
                             f"student_params ({self.student_params:g})")
        return self

    @property
    def compression_ratio(self) -> float:
        return self.teacher_params / self.student_params

    @property
    def retained(self) -> float:
        """Student score over teacher score (or the source's own retention figure)."""
        if self.retention is not None:
            return self.retention
        return self.student_score / self.teacher_score


def parse_references(data: Any, where: str) -> tuple[ReferencePair, ...]:
    """Pairs from parsed YAML ({pairs: [...]}); a bad entry is one InputError line naming the
    entry (its index and models) and the field."""
    if not isinstance(data, dict) or set(data) != {"pairs"}:
        got = (f"keys {', '.join(sorted(map(str, data)))}" if isinstance(data, dict)
               else type(data).__name__)
        raise InputError(f"{where}: must be a mapping with the one key 'pairs'; got {got}")
    rows = data["pairs"]
    if not isinstance(rows, list) or not rows:
        raise InputError(f"{where}: 'pairs' must be a non-empty list")
    return tuple(validate(ReferencePair, raw, f"{where}: pairs[{i}]{_label(raw)}: ")
                 for i, raw in enumerate(rows))


def _label(raw: Any) -> str:
    if isinstance(raw, dict) and raw.get("student"):
        return f" ({raw['student']} vs {raw.get('teacher', '?')})"
    return ""


def load_references(path: str | Path) -> tuple[ReferencePair, ...]:
    return parse_references(read_yaml(path, "retention reference"), str(path))


@lru_cache(maxsize=1)
def reference_pairs() -> tuple[ReferencePair, ...]:
    """The shipped pairs (roi/data/retention_reference.yaml), read once per process."""
    path = resources.files("roi") / "data" / REFERENCE_FILE
    with resources.as_file(path) as p:
        return load_references(p)


def nearby_references(compression_ratio: float, k: int = 3,
                      pairs: Sequence[ReferencePair] | None = None) -> tuple[ReferencePair, ...]:
    """The `k` pairs whose ratio is closest to `compression_ratio` in log(ratio), nearest
    first: compression acts multiplicatively, so 5x is as near 10x as 20x is."""
    r = float(compression_ratio)
    if not math.isfinite(r) or r <= 0:
        raise InputError(f"compression_ratio must be a positive number; got {compression_ratio}")
    if not isinstance(k, int) or k < 1:
        raise InputError(f"k must be a positive integer; got {k!r}")
    pool = reference_pairs() if pairs is None else tuple(pairs)

    def distance(p: ReferencePair) -> tuple[float, float]:
        # rounded so that float noise cannot break a tie; ties go to the smaller ratio
        return round(abs(math.log(p.compression_ratio / r)), 9), p.compression_ratio

    return tuple(sorted(pool, key=distance)[:k])


def references_note(compression_ratio: float, refs: Sequence[ReferencePair]) -> str:
    """One line for a band's note: the ratios and retentions the published pairs nearest
    `compression_ratio` span (the line names the ratio, since a report lists notes apart)."""
    if not refs:
        return ""
    ratios = [p.compression_ratio for p in refs]
    kept = [p.retained for p in refs]
    distilled = sum(p.kind != "general LLM, trained from scratch" for p in refs)
    return (f"{compression_ratio:.1f}x: the nearest published pairs "
            f"({min(ratios):.1f}x-{max(ratios):.1f}x) kept {min(kept):.0%}-{max(kept):.0%} of "
            f"their teacher ({len(refs)} pairs, {distilled} distilled; "
            f"roi/data/{REFERENCE_FILE})")


def measured_band(retention: float, compression_ratio: float, origin: str = "") -> RetentionBand:
    """A measured retention is one number; the band collapses to it."""
    if not isinstance(retention, (int, float)) or not math.isfinite(retention) or retention <= 0:
        raise InputError(f"{origin or 'measured'}: retention_accuracy must be a positive number; "
                         f"got {retention!r}")
    return RetentionBand(float(retention), float(retention), "measured",
                         float(compression_ratio), f"measured ({origin})" if origin else "measured")


def read_metrics_retention(path: str | Path) -> Optional[float]:
    """Retention from a distilled student's metrics.json: `retention_accuracy`, or
    student.accuracy / teacher.accuracy; None when the file holds neither."""
    data = read_json_object(path, "metrics")
    if isinstance(data.get("retention_accuracy"), (int, float)):
        return float(data["retention_accuracy"])
    try:
        return float(data["student"]["accuracy"]) / float(data["teacher"]["accuracy"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def metrics_for(model_spec: str) -> Optional[Path]:
    """A trainer checkpoint (`ckpt:DIR`) carries its metrics.json beside the weights."""
    kind, _, target = model_spec.partition(":")
    if kind != "ckpt":
        return None
    path = Path(target) / "metrics.json"
    return path if path.is_file() else None


def band_for(model_spec: str, compression_ratio: float,
             measured: dict[str, float] | None = None) -> RetentionBand:
    """Measured retention where known (explicit `measured`, else a ckpt's metrics.json);
    the seed's prior otherwise."""
    if measured and model_spec in measured:
        return measured_band(measured[model_spec], compression_ratio, "given for " + model_spec)
    path = metrics_for(model_spec)
    value = read_metrics_retention(path) if path is not None else None
    if value is not None:
        return measured_band(value, compression_ratio, str(path))
    return prior_band(compression_ratio)


def parse_metrics_args(items: list[str]) -> dict[str, float]:
    """`SPEC=FILE` pairs (FILE a metrics.json) as {spec: measured retention}."""
    out: dict[str, float] = {}
    for item in items:
        spec, sep, path = item.rpartition("=")
        if not sep or not spec or not path:
            raise InputError(f"--metrics: expected SPEC=FILE (e.g. builtin:student-10x="
                             f"runs/distill/metrics.json); got {item!r}")
        value = read_metrics_retention(path)
        if value is None:
            raise InputError(f"--metrics {path}: holds neither retention_accuracy nor "
                             f"student.accuracy and teacher.accuracy")
        out[spec] = value
    return out
