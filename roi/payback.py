"""Return on a distillation: one-time cost, monthly savings, payback, net over a horizon,
break-even volume, a tornado over the main inputs and a Monte Carlo band.

One-time cost = teacher inference to label the training tokens + training hours × the training
hardware's price + engineering weeks × a weekly rate + generating training data with the teacher
(locally or through an API; roi.datagen_cost, zero unless asked for). Every input has a
default, and the plan shows each one with where it came from. Savings scale with request
volume (costs are taken as proportional to volume, which replica rounding makes only roughly
true).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from contracts.defaults import ENGINEERING_USD_PER_WEEK, ENGINEERING_WEEKS, TRAINING_HARDWARE
from contracts.errors import InputError

from .datagen_cost import DataGenCost, DataGenInputs

Z90 = 1.2815515655446004  # standard normal 90th percentile: P10/P90 -> sigma


@dataclass(frozen=True)
class RoiInputs:
    """Inputs of the one-time cost and of the sensitivity analysis (defaults stated)."""

    engineering_weeks: float = ENGINEERING_WEEKS
    engineering_usd_per_week: float = ENGINEERING_USD_PER_WEEK
    training_hardware: str = TRAINING_HARDWARE  # where labeling and training run (catalog name)
    training_hours: Optional[float] = None  # None: 6·params·tokens at training_mfu of bf16 peak
    labeling_hours: Optional[float] = None  # None: tokens / the teacher's tokens per second there
    training_mfu: float = 0.3  # model FLOP utilisation of a small training job (assumption)
    training_tokens: Optional[float] = None  # None: trainer steps × batch_size × block_size
    horizon_months: int = 12
    monte_carlo_draws: int = 10_000
    seed: int = 0
    datagen: DataGenInputs = DataGenInputs()  # teacher-generated training data (none)

    def __post_init__(self) -> None:
        for name in ("engineering_weeks", "engineering_usd_per_week"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise InputError(f"{name} must be a finite number >= 0; got {getattr(self, name)}")
        for name in ("training_hours", "labeling_hours", "training_tokens"):
            v = getattr(self, name)
            if v is not None and not (v >= 0 and math.isfinite(v)):
                raise InputError(f"{name} must be a finite number >= 0; got {v}")
        if not (0 < self.training_mfu <= 1):
            raise InputError(f"training_mfu must be in (0, 1]; got {self.training_mfu}")
        if self.horizon_months < 1 or self.monte_carlo_draws < 100:
            raise InputError("horizon_months must be >= 1 and monte_carlo_draws >= 100; got "
                             f"{self.horizon_months} and {self.monte_carlo_draws}")


@dataclass(frozen=True)
class OneTimeCost:
    labeling_usd: float
    training_usd: float
    engineering_usd: float
    inputs: dict  # every input with its value and where it came from
    generation_usd: float = 0.0  # teacher-generated training data (roi.datagen_cost)

    @property
    def total_usd(self) -> float:
        return self.labeling_usd + self.training_usd + self.engineering_usd + self.generation_usd

    def record(self) -> dict:
        return {"labeling_usd": self.labeling_usd, "training_usd": self.training_usd,
                "engineering_usd": self.engineering_usd, "generation_usd": self.generation_usd,
                "total_usd": self.total_usd, "inputs": self.inputs}


def one_time_cost(inputs: RoiInputs, *, usd_per_hour: float, training_tokens: float,
                  student_params: int, peak_bf16_flop_s: Optional[float],
                  teacher_tokens_per_s: Optional[float],
                  generation: Optional[DataGenCost] = None) -> OneTimeCost:
    """Labeling + training + engineering (+ data generation), each input with its source."""
    tokens = inputs.training_tokens if inputs.training_tokens is not None else training_tokens
    label_h, label_src = _labeling_hours(inputs, tokens, teacher_tokens_per_s)
    train_h, train_src = _training_hours(inputs, tokens, student_params, peak_bf16_flop_s)
    shown = {
        "training_tokens": {"value": tokens, "source": "given" if inputs.training_tokens
                            is not None else "trainer steps x batch_size x block_size"},
        "training_hardware": {"value": inputs.training_hardware, "usd_per_hour": usd_per_hour},
        "labeling_hours": {"value": label_h, "source": label_src},
        "training_hours": {"value": train_h, "source": train_src},
        "engineering_weeks": {"value": inputs.engineering_weeks,
                              "source": "default: the seed's 1-2 week project"},
        "engineering_usd_per_week": {"value": inputs.engineering_usd_per_week,
                                     "source": "default assumption: ~$200K loaded a year"},
    }
    if generation is not None:
        shown["data_generation"] = generation.record()
    return OneTimeCost(label_h * usd_per_hour, train_h * usd_per_hour,
                       inputs.engineering_weeks * inputs.engineering_usd_per_week, shown,
                       generation.usd if generation is not None else 0.0)


def _labeling_hours(inputs, tokens, teacher_tokens_per_s) -> tuple[float, str]:
    if inputs.labeling_hours is not None:
        return inputs.labeling_hours, "given"
    if teacher_tokens_per_s and teacher_tokens_per_s > 0:
        return tokens / teacher_tokens_per_s / 3600, (
            "training tokens / the teacher's tokens per second on the training hardware")
    return 0.0, "unknown (teacher speed on the training hardware not projectable): taken as 0"


def _training_hours(inputs, tokens, params, peak) -> tuple[float, str]:
    if inputs.training_hours is not None:
        return inputs.training_hours, "given"
    if peak and peak > 0:
        return 6 * params * tokens / (peak * inputs.training_mfu) / 3600, (
            f"6 x student params x tokens at {inputs.training_mfu:.0%} of the bf16 peak")
    return 0.0, "unknown (no bf16 peak for the training hardware): taken as 0"


@dataclass(frozen=True)
class Roi:
    one_time: OneTimeCost
    teacher_usd_per_month: float
    student_usd_per_month: float
    requests_per_month: float
    horizon_months: int

    @property
    def monthly_savings_usd(self) -> float:
        return self.teacher_usd_per_month - self.student_usd_per_month

    @property
    def payback_months(self) -> Optional[float]:
        """None when the student saves nothing (it never pays back in money)."""
        s = self.monthly_savings_usd
        return self.one_time.total_usd / s if s > 0 else None

    @property
    def net_usd(self) -> float:
        return self.horizon_months * self.monthly_savings_usd - self.one_time.total_usd

    @property
    def break_even_requests_per_month(self) -> Optional[float]:
        """The volume at which the horizon's savings repay the one-time cost (None when the
        student is not cheaper per request)."""
        s = self.monthly_savings_usd
        if s <= 0 or self.requests_per_month <= 0:
            return None
        per_request = s / self.requests_per_month
        return self.one_time.total_usd / (self.horizon_months * per_request)

    def record(self) -> dict:
        return {"one_time": self.one_time.record(),
                "teacher_usd_per_month": self.teacher_usd_per_month,
                "student_usd_per_month": self.student_usd_per_month,
                "monthly_savings_usd": self.monthly_savings_usd,
                "payback_months": self.payback_months,
                f"net_{self.horizon_months}_months_usd": self.net_usd,
                "requests_per_month": self.requests_per_month,
                "break_even_requests_per_month": self.break_even_requests_per_month,
                "horizon_months": self.horizon_months}


# ------------------------------------------------------------------------------ sensitivity

@dataclass(frozen=True)
class Bands:
    """P10/P50/P90 of the monthly costs (from the projection bands)."""

    teacher: tuple[float, float, float]
    student: tuple[float, float, float]


def tornado(roi: Roi, bands: Bands) -> list[dict]:
    """Net over the horizon with each main input at its low and high value, the others at
    their base; sorted by swing, widest first."""
    ot, h = roi.one_time, roi.horizon_months
    base = dict(label=ot.labeling_usd, train=ot.training_usd, eng=ot.engineering_usd,
                gen=ot.generation_usd, teacher=roi.teacher_usd_per_month,
                student=roi.student_usd_per_month, vol=1.0)

    def net(**kw) -> float:
        v = {**base, **kw}
        one_time = v["label"] + v["train"] + v["eng"] + v["gen"]
        return h * (v["teacher"] - v["student"]) * v["vol"] - one_time

    weeks = ot.inputs["engineering_weeks"]["value"]
    rows = [
        ("engineering weeks", weeks / 2, weeks * 2, dict(eng=ot.engineering_usd / 2),
         dict(eng=ot.engineering_usd * 2)),
        ("training + labeling cost", 0.5, 5.0, dict(train=ot.training_usd / 2,
                                                   label=ot.labeling_usd / 2),
         dict(train=ot.training_usd * 5, label=ot.labeling_usd * 5)),
        ("teacher monthly cost (projection band)", bands.teacher[0], bands.teacher[2],
         dict(teacher=bands.teacher[0]), dict(teacher=bands.teacher[2])),
        ("student monthly cost (projection band)", bands.student[0], bands.student[2],
         dict(student=bands.student[0]), dict(student=bands.student[2])),
        ("request volume (x0.5 / x2)", 0.5, 2.0, dict(vol=0.5), dict(vol=2.0)),
    ]
    if ot.generation_usd > 0:
        rows.append(("data generation cost (x0.5 / x3)", 0.5, 3.0,
                     dict(gen=ot.generation_usd / 2), dict(gen=ot.generation_usd * 3)))
    out = [{"input": name, "low_value": lo, "high_value": hi, "net_at_low_usd": net(**a),
            "net_at_high_usd": net(**b), "swing_usd": abs(net(**b) - net(**a))}
           for name, lo, hi, a, b in rows]
    return sorted(out, key=lambda r: -r["swing_usd"])


def monte_carlo(roi: Roi, bands: Bands, draws: int = 10_000, seed: int = 0) -> dict:
    """P10/P50/P90 of monthly savings and payback months. Draws: engineering weeks triangular
    (half, base, double); weekly rate and compute costs log-normal (sigma 0.25 and 0.5); the
    two monthly costs from their projection bands in one draw (monthly_costs); volume
    log-normal (sigma 0.25)."""
    rng = np.random.default_rng(seed)
    ot = roi.one_time
    weeks = ot.inputs["engineering_weeks"]["value"]
    rate = ot.inputs["engineering_usd_per_week"]["value"]
    eng = (rng.triangular(weeks / 2, weeks, max(weeks * 2, weeks / 2 + 1e-9), draws)
           if weeks > 0 else np.zeros(draws)) * rate * rng.lognormal(0, 0.25, draws)
    compute = (ot.labeling_usd + ot.training_usd + ot.generation_usd) * rng.lognormal(0, 0.5,
                                                                                   draws)
    teacher, student = monthly_costs(bands, rng.standard_normal(draws))
    savings = (teacher - student) * rng.lognormal(0, 0.25, draws)
    one_time = eng + compute
    with np.errstate(divide="ignore"):
        payback = np.where(savings > 0, one_time / savings, np.inf)
    q = (0.1, 0.5, 0.9)
    return {"draws": draws, "seed": seed,
            "monthly_savings_usd": dict(zip(("p10", "p50", "p90"),
                                            _quantiles(savings, q))),
            "payback_months": dict(zip(("p10", "p50", "p90"), _quantiles(payback, q))),
            "probability_savings_positive": float(np.mean(savings > 0))}


def monthly_costs(bands: Bands, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Teacher and student monthly costs for standard-normal draws `z`, each from its band
    (split normal in log space, P10/P90 as given). One draw moves both: their bands come from
    the same projection calibration (the same efficiency fit, the same leave-one-out errors),
    so a machine that runs the teacher slower than projected runs the student slower too.
    Drawn independently, the savings band would be far wider than the inputs allow."""
    return _split_lognormal(bands.teacher, z), _split_lognormal(bands.student, z)


def _split_lognormal(p: tuple[float, float, float], z: np.ndarray) -> np.ndarray:
    lo, mid, hi = (max(float(x), 1e-12) for x in p)
    if mid <= 1e-12:
        return np.zeros(len(z))
    s_lo, s_hi = math.log(mid / lo) / Z90, math.log(hi / mid) / Z90
    return mid * np.exp(np.where(z < 0, z * s_lo, z * s_hi))


def _quantiles(x: np.ndarray, q) -> list[Optional[float]]:
    vals = np.quantile(x, q, method="inverted_cdf")  # no interpolation across inf
    return [float(v) if math.isfinite(v) else None for v in vals]


def record_inputs(inputs: RoiInputs) -> dict:
    return {**asdict(inputs), "datagen": inputs.datagen.model_dump()}
