"""Projection of measured latencies to hardware we did not measure: a roofline calibrated on the
machine that was measured.

For one forward pass of a batch (F FLOPs, B bytes of weights read) of a model of N params:

    time_ms = overhead_ms + overhead_ms_per_layer · L + max(F / compute_rate(N), B / memory_rate)
    compute_rate(N) = compute_rate_1M · (N / 1M)^size_exponent

On the measured machine the rates, the overheads and the size exponent are fitted per (machine,
backend, dtype) across its model sizes and batch sizes. The per-layer overhead (L = transformer
blocks, the results' `n_layers` column) is the floor an eager runtime pays per block whatever the
batch: per-op dispatch, and on a GPU the kernel launches. It is fitted only where the rows give
the layer count and at least two different ones (else it is 0 and the fixed overhead takes it
all); on the H200 it took the leave-one-model-out error from 11-24% to 4% (BENCHMARKS.md).
The exponent is there because small models run small matrix products, which reach a smaller
share of the peak (measured here, ORT fp32 on one thread: ~105 GFLOP/s on the 14 M-parameter
teacher, ~60 on the 0.27 M student); it is bounded to [0, 1] (efficiency never falls as models
grow). Nothing about that machine is looked up: its peak is the one the user states
(`local_peak_flop_s`) or, failing that, the best rate any of its rows achieved, so compute
efficiency = fitted rate / that peak. On a catalog target

    time_ms = overhead + max(F / (peak × compute_eff(N)), B / (bandwidth × memory_eff))

with the target's datasheet peak for the dtype and the same size dependence (capped at the
peak). Memory efficiency cannot be calibrated from compute-bound CPU runs (the local fit's
"memory rate" is an effective figure that also soaks up per-weight costs and a neighbour's
interference; it is kept for the measuring machine itself and for CPU instances), so on a
datasheet target it is a stated assumption (MEMORY_EFFICIENCY) unless the caller gives one. CPU
instances, which have no datasheet peak, scale the measured rates by their vCPUs.

The fit uses the mean latency, also what sizing uses: with a noisy neighbour on the CPU it is
the steadiest statistic (short calls often slip between the neighbour's bursts, long ones never,
so medians of different sizes see different machines).

Every projection is a P10–P90 band: the point estimate times the 10th and 90th percentiles of
the leave-one-model-out errors of its calibration (out-of-sample, so the band is honest about
predicting a size that was not measured). The band does not cover the error of carrying an
efficiency from one kind of chip to another; where a GPU was measured too, compare.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from contracts.errors import InputError

from .hardware import Hardware

log = logging.getLogger(__name__)

# Carrying a CPU calibration to an accelerator: the roofline's terms carry, the CPU's overheads
# do not (a GPU's small-model floor is its kernel launches, not the CPU's per-op work: with the
# CPU's 1.9 ms carried, an NVIDIA H200's torch rows came out 1.4-4.4x too slow, BENCHMARKS.md
# "GPU"). Such a projection takes an eager accelerator's launch floor instead: the fixed and
# per-layer overheads below, rounded from the H200's own fit (torch eager fp32 0.20 + 0.12 ms per
# layer, bf16 0.17 + 0.18 ms per layer; tests/fixtures/gpu_h200_results.csv). They are one card's
# figures, so the band widens by CROSS_KIND_BAND; a measured accelerator's own calibration (which
# pick_reference prefers) replaces them.
ACCEL_OVERHEAD_MS = 0.2
ACCEL_OVERHEAD_MS_PER_LAYER = 0.15
CROSS_KIND_BAND = (0.5, 2.0)
MEMORY_EFFICIENCY = 0.6  # fraction of datasheet bandwidth large streaming reads reach (STREAM-like)
DEFAULT_BAND = (0.7, 1.5)  # multipliers when too few model sizes were measured to estimate one
_RIDGE_GRID = np.concatenate([[0.0], np.geomspace(0.5, 2e4, 60)])  # FLOP per byte
_EXPONENT_GRID = np.linspace(0.0, 1.0, 41)
REFERENCE_PARAMS = 1e6  # compute rates are quoted at a 1 M-parameter model
STATISTIC = "latency_ms_mean"
MIN_POINTS = 2


@dataclass(frozen=True)
class Fit:
    """Calibration of one (machine, backend, dtype): time_ms = overhead_ms +
    overhead_ms_per_layer · L + max(F / rate(N), B / memory_rate),
    rate(N) = flop_per_ms · (N / 1M)^size_exponent.
    ridge (FLOP per byte, at 1M params) = flop_per_ms / memory rate; 0: memory never binds."""

    machine: str
    backend: str
    dtype: str
    overhead_ms: float
    flop_per_ms: float
    ridge_flop_per_byte: float
    size_exponent: float
    peak_flop_s: float
    peak_source: str
    threads: Optional[float]
    models: tuple[str, ...]
    model_params: tuple[tuple[str, int], ...]
    n_points: int
    band: tuple[float, float] = DEFAULT_BAND
    band_source: str = "default"
    loo_ape: tuple[float, ...] = field(default=(), repr=False)
    overhead_ms_per_layer: float = 0.0
    layers_ref: float = math.nan  # median layer count of its models: for a config without one

    def overhead_at(self, n_layers=None) -> np.ndarray:
        """Fixed + per-layer overhead for models of n_layers blocks (unknown: layers_ref)."""
        return _overhead(self.overhead_ms, self.overhead_ms_per_layer, self.layers_ref, n_layers)

    def predict_ms(self, flops, weight_bytes, params, n_layers=None) -> np.ndarray:
        x = _regressor(flops, weight_bytes, params, self.size_exponent,
                       self.ridge_flop_per_byte)
        return self.overhead_at(n_layers) + x / self.flop_per_ms

    def rate_flop_per_ms(self, params) -> np.ndarray:
        return self.flop_per_ms * _size_factor(params, self.size_exponent)

    @property
    def compute_flop_s(self) -> float:
        """At a 1 M-parameter model."""
        return self.flop_per_ms * 1e3

    def compute_efficiency(self, params) -> np.ndarray:
        return np.minimum(self.rate_flop_per_ms(params) * 1e3 / self.peak_flop_s, 1.0)

    @property
    def memory_bytes_s(self) -> float:
        """Fitted effective bandwidth; inf when memory never bound on this machine."""
        r = self.ridge_flop_per_byte
        return self.compute_flop_s / r if r > 0 else math.inf

    def record(self) -> dict:
        loo = float(np.median(self.loo_ape)) if self.loo_ape else None
        return {"machine": self.machine, "backend": self.backend, "dtype": self.dtype,
                "overhead_ms": self.overhead_ms,
                "overhead_ms_per_layer": self.overhead_ms_per_layer,
                "compute_gflop_s_at_1m_params": self.compute_flop_s / 1e9,
                "size_exponent": self.size_exponent,
                "memory_gb_s": None if math.isinf(self.memory_bytes_s)
                else float(self.memory_bytes_s / 1e9),
                "peak_gflop_s": self.peak_flop_s / 1e9, "peak_source": self.peak_source,
                "compute_efficiency_by_model": {
                    m: float(self.compute_efficiency(p)) for m, p in self.model_params},
                "models": list(self.models),
                "n_points": self.n_points, "band_p10_p90": list(self.band),
                "band_source": self.band_source, "loo_median_ape": loo}


# ------------------------------------------------------------------------------ fitting


def _overhead(fixed_ms: float, per_layer_ms: float, layers_ref: float, n_layers) -> np.ndarray:
    if per_layer_ms == 0:
        return np.asarray(fixed_ms, float) if n_layers is None else (
            np.zeros(np.shape(n_layers)) + fixed_ms)
    layers = np.asarray(np.nan if n_layers is None else n_layers, float)
    layers = np.where(np.isfinite(layers), layers, layers_ref if math.isfinite(layers_ref) else 0)
    return fixed_ms + per_layer_ms * layers


def _size_factor(params, exponent: float) -> np.ndarray:
    return (np.asarray(params, float) / REFERENCE_PARAMS) ** exponent


def _regressor(flops, weight_bytes, params, exponent, ridge) -> np.ndarray:
    """max(F / size factor, ridge · B): time = overhead + this / flop_per_ms."""
    f = np.asarray(flops, float) / _size_factor(params, exponent)
    return np.maximum(f, ridge * np.asarray(weight_bytes, float))


def uses_layers(layers) -> bool:
    """Fit a per-layer overhead: every point has a layer count and they are not all equal."""
    if layers is None:
        return False
    lay = np.asarray(layers, float)
    return bool(len(lay) and np.all(np.isfinite(lay)) and np.unique(lay).size >= 2)


def fit_points(flops, weight_bytes, params, time_ms, layers=None
               ) -> tuple[float, float, float, float, float]:
    """(overhead_ms, overhead_ms_per_layer, flop_per_ms, ridge, size_exponent) minimising the
    squared relative error; the per-layer term is 0 unless uses_layers(layers).

    For a fixed (exponent, ridge) the model is linear in (overheads, 1/rate): a weighted least-
    squares fit with the overheads kept >= 0. The two are searched on a coarse grid, all at
    once, then on a fine grid around the best coarse point."""
    f, b, n, t = (np.asarray(x, float) for x in (flops, weight_bytes, params, time_ms))
    lay = np.asarray(layers, float) if uses_layers(layers) else None
    expos, ridges = _EXPONENT_GRID, _RIDGE_GRID
    for _ in range(2):
        coef, i, j = _grid_best(f, b, n, t, lay, expos, ridges)
        expo, ridge = expos[i], ridges[j]
        expos = np.linspace(expos[max(i - 1, 0)], expos[min(i + 1, len(expos) - 1)], 21)
        ridges = _around(ridges, j)
    a, a_layer, slope = coef
    return a, a_layer, 1.0 / slope, float(ridge), float(expo)


def _around(grid: np.ndarray, j: int) -> np.ndarray:
    """A fine grid between the neighbours of grid[j] (0 stays exactly 0 when it won)."""
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
    if hi == 0:
        return np.array([0.0])
    fine = np.geomspace(max(lo, hi / 1e3, 1e-9), hi, 21)
    return np.concatenate([[0.0], fine]) if grid[j] == 0 or lo == 0 else fine


def _grid_best(f, b, n, t, layers, expos, ridges):
    g, r = expos[:, None, None], ridges[None, :, None]
    x = np.maximum(f / (n / REFERENCE_PARAMS) ** g, r * b)  # (G, R, points)
    ones = np.ones_like(x)
    cols = [ones, ones * (layers if layers is not None else 0.0), x]
    coef, loss = _nonneg_weighted_fit(np.stack(cols, -1), t, free=[0, 1] if layers is not None
                                      else [0])
    # ties (ridges that never bind fit alike): the first, i.e. the smallest, wins
    i, j = np.unravel_index(np.argmin(loss + 1e-12 * np.arange(loss.size).reshape(loss.shape)),
                            loss.shape)
    return tuple(float(c) for c in coef[i, j]), i, j


def _nonneg_weighted_fit(X: np.ndarray, t: np.ndarray, free: list[int]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """t ≈ X·c along the points axis (X: (..., points, K), last column the slope), weights 1/t²
    (relative error), the overhead columns `free` kept >= 0 and the slope > 0: every subset of
    the overhead columns is solved and the best feasible one kept (K <= 3, so at most 4 solves).
    Returns (c (..., K), sum of squared relative errors (...))."""
    import itertools

    w = 1.0 / t**2
    K = X.shape[-1]
    best_c = np.zeros(X.shape[:-2] + (K,))
    best_loss = np.full(X.shape[:-2], np.inf)
    for keep in itertools.chain.from_iterable(
            itertools.combinations(free, k) for k in range(len(free) + 1)):
        cols = [*keep, K - 1]
        Xs = X[..., cols]
        scale = np.sqrt(np.mean(Xs**2, -2, keepdims=True))  # columns of ~1: FLOPs are ~1e9
        Xs = Xs / scale
        A = np.einsum("...pi,p,...pj->...ij", Xs, w, Xs)
        rhs = np.einsum("...pi,p,p->...i", Xs, w, t)
        c = np.zeros(X.shape[:-2] + (K,))
        c[..., cols] = _solve(A, rhs) / scale[..., 0, :]
        ok = np.all(c >= 0, -1) & (c[..., -1] > 0)
        loss = np.sum((np.einsum("...pk,...k->...p", X, c) / t - 1) ** 2, -1)
        better = ok & (loss < best_loss - 1e-15)
        best_c = np.where(better[..., None], c, best_c)
        best_loss = np.where(better, loss, best_loss)
    return best_c, best_loss


def _solve(A: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """A⁻¹·rhs over the batch (A: (..., k, k) normal equations of columns scaled to ~1): an LU
    solve, ~10x cheaper than the SVD behind pinv; the pseudo-inverse only where some system is
    singular (a column that is all zeros, two columns alike)."""
    diag = np.prod(np.diagonal(A, axis1=-2, axis2=-1), -1)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0: a zero column, singular
        independent = np.abs(np.linalg.det(A)) / diag  # Hadamard ratio: 1 orthogonal, 0 singular
    if np.all(independent > 1e-9):
        return np.linalg.solve(A, rhs[..., None])[..., 0]
    return (np.linalg.pinv(A) @ rhs[..., None])[..., 0]


def calibrate(rows: pd.DataFrame, local_peak_flop_s: dict[str, float] | None = None,
              statistic: str = STATISTIC) -> list[Fit]:
    """One Fit per (machine, backend, dtype) group of measured rows with >= MIN_POINTS points."""
    fits = []
    for (machine, backend, dtype), g in rows.groupby(["machine", "backend", "dtype"], sort=True):
        if len(g) < MIN_POINTS or g["model"].nunique() < 1:
            log.info("%s %s/%s: %d point(s), too few to calibrate", machine, backend, dtype, len(g))
            continue
        peak, peak_source = _local_peak(rows, machine, dtype, local_peak_flop_s, statistic)
        fits.append(_fit_group(g, machine, backend, dtype, peak, peak_source, statistic))
    return fits


def _work(g: pd.DataFrame, statistic: str) -> tuple[np.ndarray, ...]:
    flops = (g["flops_per_sample"] * g["batch_size"]).to_numpy(float)
    return (flops, g["weight_bytes"].to_numpy(float), g["params"].to_numpy(float),
            g[statistic].to_numpy(float))


def _layers(g: pd.DataFrame) -> np.ndarray:
    if "n_layers" not in g.columns:
        return np.full(len(g), np.nan)
    return pd.to_numeric(g["n_layers"], errors="coerce").to_numpy(float)


def _fit_group(g, machine, backend, dtype, peak, peak_source, statistic) -> Fit:
    layers = _layers(g)
    a, a_layer, rate, ridge, expo = fit_points(*_work(g, statistic), layers=layers)
    loo = _leave_one_model_out(g, statistic)
    threads = _threads(g)
    sizes = g.groupby("model")["params"].first()
    best_rate = float(np.max(rate * _size_factor(sizes.to_numpy(float), expo))) * 1e3
    per_model = pd.Series(layers, index=g.index).groupby(g["model"]).first()
    ref = float(np.nanmedian(per_model)) if np.isfinite(per_model).any() else math.nan
    fit = Fit(machine, backend, dtype, a, rate, ridge, expo, max(peak, best_rate), peak_source,
              threads, tuple(sorted(g["model"].unique())),
              tuple((m, int(p)) for m, p in sizes.sort_values().items()), len(g),
              overhead_ms_per_layer=a_layer, layers_ref=ref)
    if len(loo) >= 3:  # log errors of predictions out of sample: P10 and P90 multipliers
        ratios = np.array([r for _, r in loo])
        band = (float(np.quantile(ratios, 0.1)), float(np.quantile(ratios, 0.9)))
        band = (min(band[0], 1.0), max(band[1], 1.0))
        ape = tuple(float(abs(1 / r - 1)) for _, r in loo)
        return _replace(fit, band=band, band_source="leave-one-model-out", loo_ape=ape)
    return fit


def _threads(g: pd.DataFrame) -> Optional[float]:
    """Threads the rows ran with: the threads column, else the machine's logical CPUs."""
    for col in ("threads", "env_logical_cpus", "env_cores"):
        if col in g.columns:
            values = pd.to_numeric(g[col], errors="coerce").dropna()
            if len(values):
                return float(values.iloc[0])
    return None


def _replace(fit: Fit, **kw) -> Fit:
    from dataclasses import replace

    return replace(fit, **kw)


def _leave_one_model_out(g: pd.DataFrame, statistic: str) -> list[tuple[str, float]]:
    """(model, measured / predicted) for every row, each predicted from the other models' rows."""
    out = []
    models = g["model"].unique()
    if len(models) < 3:  # two points cannot both fit an overhead and predict a third size
        return out
    f, b, n, t = _work(g, statistic)
    lay = _layers(g)
    for m in models:
        held = (g["model"] == m).to_numpy()
        use = lay[~held] if uses_layers(lay) else None  # the held-out model's count is known
        a, a_layer, rate, ridge, expo = fit_points(f[~held], b[~held], n[~held], t[~held], use)
        over = a + (a_layer * lay[held] if use is not None else 0.0)
        pred = over + _regressor(f[held], b[held], n[held], expo, ridge) / rate
        out += [(m, float(ti / pi)) for ti, pi in zip(t[held], pred)]
    return out


def _local_peak(rows, machine, dtype, given, statistic) -> tuple[float, str]:
    """The measured machine's peak for `dtype`: stated by the user, else the best rate any of its
    rows reached (a lower bound of the true peak, so efficiencies come out high)."""
    if given:
        for key in (f"{machine}/{dtype}", machine, dtype, "*"):
            if key in given:
                return float(given[key]), "given"
    g = rows[(rows["machine"] == machine) & (rows["dtype"] == dtype)]
    f, _, _, t = _work(g, statistic)
    return float(np.max(f / (t / 1e3))), "best achieved by a measured row"


def leave_one_out_report(fits: list[Fit]) -> list[dict]:
    """Median absolute percentage error of leave-one-model-out predictions, per machine and
    backend (all dtypes of the backend pooled) and per (backend, dtype)."""
    out = []
    for (machine, backend), group in _group_fits(fits).items():
        ape = [e for f in group for e in f.loo_ape]
        if ape:
            out.append({"machine": machine, "backend": backend,
                        "dtypes": sorted({f.dtype for f in group}),
                        "median_ape": float(np.median(ape)), "max_ape": float(np.max(ape)),
                        "n_predictions": len(ape)})
    return out


def _group_fits(fits: list[Fit]) -> dict[tuple[str, str], list[Fit]]:
    groups: dict[tuple[str, str], list[Fit]] = {}
    for f in fits:
        groups.setdefault((f.machine, f.backend), []).append(f)
    return groups


# ------------------------------------------------------------------------------ targets

# dtype -> catalog figures to try, in order, with the factor applied and why
_PEAKS = {
    "fp32": (("peak_fp32_flop_s", 1.0, ""),
             ("peak_bf16_flop_s", 1.0, "no fp32 figure: the runtime's bf16/fp16 path assumed"),
             ("peak_int8_op_s", 0.5, "no fp32 or bf16 figure: fp16 taken as half the int8 TOPS")),
    "bf16": (("peak_bf16_flop_s", 1.0, ""),
             ("peak_int8_op_s", 0.5, "no bf16 figure: taken as half the int8 TOPS"),
             ("peak_fp32_flop_s", 1.0, "no bf16 figure: fp32 rate")),
    "int8": (("peak_int8_op_s", 1.0, ""),
             ("peak_bf16_flop_s", 1.0, "no int8 figure: bf16 rate"),
             ("peak_fp32_flop_s", 1.0, "no int8 figure: fp32 rate")),
}
_PEAKS["fp16"] = _PEAKS["bf16"]


@dataclass(frozen=True)
class TargetRates:
    """What a target offers one (backend, dtype): its compute rate in FLOP/ms at 1 M params (the
    calibrated size dependence applies), memory rate in bytes/ms."""

    flop_per_ms: float
    byte_per_ms: float
    overhead_ms: float
    band: tuple[float, float]
    note: str
    fit: Fit
    peak_flop_per_ms: float = math.inf  # the size dependence never takes a model past the peak
    overhead_ms_per_layer: float = 0.0

    def overhead_at(self, n_layers=None) -> np.ndarray:
        return _overhead(self.overhead_ms, self.overhead_ms_per_layer, self.fit.layers_ref,
                         n_layers)

    def predict_ms(self, flops, weight_bytes, params, n_layers=None) -> np.ndarray:
        rate = np.minimum(self.flop_per_ms * _size_factor(params, self.fit.size_exponent),
                          self.peak_flop_per_ms)
        f, b = np.asarray(flops, float), np.asarray(weight_bytes, float)
        return self.overhead_at(n_layers) + np.maximum(f / rate, b / self.byte_per_ms)


def target_rates(fit: Fit, hw: Hardware, memory_efficiency: float = MEMORY_EFFICIENCY,
                 cross_kind: bool = False) -> TargetRates | str:
    """The calibrated backend carried to catalog hardware `hw`; a reason string when the
    catalog lacks the figures to do so. cross_kind: `fit` was measured on a CPU and `hw` is an
    accelerator, so the overheads are the accelerator launch floor and the band widens."""
    from .hardware import _flat

    flat = _flat(hw)
    if hw.vcpus and not any(_finite(flat[k]) for k, _, _ in _PEAKS[fit.dtype]):
        return _cpu_instance(fit, hw)
    for key, factor, note in _PEAKS[fit.dtype]:
        if _finite(flat[key]):  # efficiency at 1 M params; predict_ms applies the size factor
            peak = flat[key] * factor / 1e3
            compute = peak * (fit.compute_flop_s / fit.peak_flop_s)
            break
    else:
        return (f"{hw.name}: the catalog has no compute figure for {fit.dtype} "
                f"(add peak_* with --hardware FILE, or measure it and pass its results)")
    bw = flat["memory_bandwidth_bytes_s"]
    memory = bw * memory_efficiency / 1e3 if _finite(bw) else math.inf
    why = "; ".join(x for x in (note, "" if _finite(bw) else "no bandwidth figure: memory "
                                "term left out") if x)
    if not cross_kind:
        return TargetRates(compute, memory, fit.overhead_ms, fit.band, why, fit, peak,
                           fit.overhead_ms_per_layer)
    floor = (f"calibrated on a CPU, carried to an accelerator: the CPU's overheads replaced by "
             f"an eager accelerator's launch floor ({ACCEL_OVERHEAD_MS} ms + "
             f"{ACCEL_OVERHEAD_MS_PER_LAYER} ms per layer, one H200's figures) and the band "
             f"widened x{CROSS_KIND_BAND[0]}-x{CROSS_KIND_BAND[1]}; measure the accelerator "
             "to cost it from its own rows")
    band = (fit.band[0] * CROSS_KIND_BAND[0], fit.band[1] * CROSS_KIND_BAND[1])
    return TargetRates(compute, memory, ACCEL_OVERHEAD_MS, band,
                       "; ".join(x for x in (why, floor) if x), fit, peak,
                       ACCEL_OVERHEAD_MS_PER_LAYER)


def _cpu_instance(fit: Fit, hw: Hardware) -> TargetRates:
    """A CPU instance: the measured machine's rates per thread times the instance's vCPUs."""
    threads = fit.threads or 1.0
    scale = hw.vcpus / threads
    memory = fit.memory_bytes_s * scale / 1e3
    note = (f"CPU instance: the measured machine's rate per thread x {hw.vcpus} vCPUs "
            f"(assumes equally fast vCPUs and linear scaling; not verified)")
    return TargetRates(fit.flop_per_ms * scale, memory, fit.overhead_ms, fit.band, note, fit,
                       fit.peak_flop_s / 1e3 * scale, fit.overhead_ms_per_layer)


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def own_rates(fit: Fit) -> TargetRates:
    """A measured machine predicting its own unmeasured configurations."""
    memory = fit.memory_bytes_s / 1e3
    return TargetRates(fit.flop_per_ms, memory, fit.overhead_ms, fit.band,
                       "from this hardware's own calibration", fit, fit.peak_flop_s / 1e3,
                       fit.overhead_ms_per_layer)


def pick_reference(fits: list[Fit], backend: str, dtype: str, gpu_target: bool,
                   machines_kind: dict[str, str]) -> Fit | None:
    """The calibration to carry to an unmeasured target: same kind of machine (GPU for an
    accelerator, CPU for a CPU) where one was measured, then the one with the most points."""
    cands = [f for f in fits if f.backend == backend and f.dtype == dtype]
    if not cands:
        return None
    want = "gpu" if gpu_target else "cpu"
    same = [f for f in cands if machines_kind.get(f.machine) == want]
    pool = same or cands
    return sorted(pool, key=lambda f: (-f.n_points, f.machine))[0]


def check_memory_efficiency(value: float) -> float:
    if not (0 < value <= 1):
        raise InputError(f"memory_efficiency must be in (0, 1]; got {value}")
    return value
