"""Accuracy retention of a student (student accuracy / teacher accuracy) as a band.

Before a student is trained, the band is the seed's prior over compression ratio (teacher params
/ student params): 5×: 98–99.5%, 10×: 96–99%, 20×: 95–99%, 50×: 92–96%, interpolated linearly
in log(ratio). Ratio 1 is the teacher itself (100%). Beyond 50× the last segment is extended
(the band keeps falling) and the band says it was extrapolated. Once a distilled student's
metrics.json exists, its measured retention replaces the prior.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from .errors import InputError

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
    source: Literal["prior", "measured"]
    compression_ratio: float
    note: str = ""

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
    return RetentionBand(max(low, 0.0), max(high, 0.0), "prior", r, note)


def _extend(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
    return float(ys[1] + slope * (x - xs[1]))


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
    path = Path(path)
    if not path.is_file():
        raise InputError(f"metrics file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"metrics file {path} cannot be read as JSON: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"metrics file {path}: must hold a JSON object; got "
                         f"{type(data).__name__}")
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
