"""The planner's sizing checked against MLPerf LoadGen (issue 5; figures in BENCHMARKS.md).

For the default teacher and the recommended student (builtin:student-5x on ORT int8, what
`roi plan --scenario real-time-api` recommends from this machine's results), batch 1, 128
tokens, the backend's default threads (2):

1. the service time is measured as bench measures it (bench.timing.time_calls, back-to-back
   calls of one loaded model): the sizing model's input;
2. LoadGen Server runs at fixed QPS at utilizations 0.3, 0.5 and 0.7 of that service time:
   the sizing model's predicted p99 (roi.loadcheck, two-state: the service time after idle
   gaps like the run's, measured by run_one just before it, for requests that find the server
   idle) beside LoadGen's measured p99, median of REPEATS runs (goal: within 20%); the
   back-to-back-only prediction is recorded beside it;
3. a peak search under the real-time-api bound (p99 <= 100 ms): the planner's QPS per replica
   (roi.cost.evaluate on bench's row: back-to-back mean and CV, wake-up after idle) beside the
   found peak (goal: within 15%), and the highest QPS LoadGen should call VALID (sized at its
   early-stopping percentile) beside it.

This VM shares its two cores with other jobs, whose bursts double a 2-thread model's latency
for seconds at a time. So the service time is measured in the same process right before each
run and again right after it, each run starts at a quiet moment (/proc/stat), and a run whose
before/after service times differ by more than DRIFT (the machine changed under it) is
repeated, up to ATTEMPTS times; every attempt is recorded.

Run:  .venv/bin/python -m pytest tests/benchmarks/test_loadgen.py -s -p no:cacheprovider
(8-15 minutes depending on the machine's other load). ROI_LOADGEN_OUT=DIR keeps the run
directory (results table + LoadGen logs).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.runtime import default_threads
from bench.loadgen import LoadtestSettings, find_peak, run_one
from bench.loadgen_backends import Backend, load_backend
from bench.loadgen_sut import real_inputs
from bench.timing import TimingSettings, time_after_idle, time_calls, time_idle_calls
from checks import loadgen as predictor
from contracts.results import ResultsStore, load_samples
from roi.cost import evaluate
from roi.loadcheck import (
    idle_utilization,
    predicted_peak_qps,
    predicted_quantile_ms,
    relative_error,
    wake_mixture,
)
from roi.service import wake_ms
from roi.sizing import ServiceTime, max_qps_per_replica, response_time_quantile_ms

from .figures import record

MODELS = ("builtin:teacher", "builtin:student-5x")
VARIANT = "ort-int8"
UTILIZATIONS = (0.3, 0.5, 0.7)
BOUND_MS = 100.0  # real-time-api's SLA: p99 <= 100 ms
RUN_MS = int(os.environ.get("ROI_LOADGEN_RUN_MS", "20000"))  # fixed-QPS runs
REPEATS = int(os.environ.get("ROI_LOADGEN_REPEATS", "2"))  # runs per point; the median counts
PEAK_RUN_MS = int(os.environ.get("ROI_LOADGEN_PEAK_RUN_MS", "15000"))  # each peak-search run
THREADS = int(os.environ.get("ROI_LOADGEN_THREADS", str(default_threads())))
QUIET_WAIT_S = float(os.environ.get("ROI_LOADGEN_QUIET_WAIT_S", "600"))
ATTEMPTS, DRIFT = 4, 0.08
P99_GOAL, PEAK_GOAL = 0.20, 0.15
BASELINE = TimingSettings(warmup_calls=5, min_calls=100, min_time_s=2.0)


def busy_fraction(window_s: float = 2.0) -> float:
    """The machine's CPU use over a short window (/proc/stat), other tenants included."""
    def read():
        with open("/proc/stat") as f:
            v = list(map(int, f.readline().split()[1:9]))
        return sum(v), v[3] + v[4]

    t1, i1 = read()
    time.sleep(window_s)
    t2, i2 = read()
    return 1 - (i2 - i1) / max(1, t2 - t1)


def wait_quiet(max_busy: float = 0.1, timeout_s: float = QUIET_WAIT_S) -> float:
    """Wait (up to timeout_s) for a moment when the shared machine is idle before measuring."""
    start = time.time()
    busy = busy_fraction()
    while busy > max_busy and time.time() - start < timeout_s:
        busy = busy_fraction()
    return busy


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    keep = os.environ.get("ROI_LOADGEN_OUT")
    return Path(keep) if keep else tmp_path_factory.mktemp("loadgen")


def _settings(model: str, **kw) -> LoadtestSettings:
    return LoadtestSettings(model=model, variant=VARIANT, scenario="server",
                            latency_ms=BOUND_MS, threads=THREADS, seq_len=128, **kw)


def _baseline_ms(backend: Backend, samples: np.ndarray) -> np.ndarray:
    """Service times as bench measures them: back-to-back calls on one input, after warm-up."""
    one = samples[:1]
    return time_calls(lambda: backend.run(one), BASELINE, "cpu") / 1e6


def _attempt(out: Path, s: LoadtestSettings, backend, samples) -> dict:
    """One LoadGen run between two baseline measurements, started at a quiet moment."""
    busy = wait_quiet()
    before = _baseline_ms(backend, samples)
    r = run_one(s, out, backend, samples, predictor=predictor)
    after = _baseline_ms(backend, samples)
    row = ResultsStore(out).rows[-1]
    raw = load_samples(out, row["row_id"])
    drift = after.mean() / before.mean() - 1
    return {"qps": s.qps, "p99_ms": r.row["latency_ms_p99"], "p50_ms": r.row["latency_ms_p50"],
            "result": r.row["loadgen_result"], "queries": r.row["loadgen_queries"],
            "busy_before": round(busy, 3), "baseline_ms_mean": float(before.mean()),
            "baseline_after_ms_mean": float(after.mean()), "drift": float(drift),
            "disturbed": bool(abs(drift) > DRIFT),
            "in_situ_service_ms_mean": row.get("loadgen_service_ms_mean"),
            "harness_ms_mean": float(r.row["latency_ms_mean"] - raw["in_sut_ns"].mean() / 1e6),
            "after_idle_ms_mean": float(raw["after_idle_ns"].mean() / 1e6),
            "before": before, "service": raw["service_ns"] / 1e6,
            "after_idle": raw["after_idle_ns"] / 1e6, "row": r.row}


def _run(out, s, backend, samples) -> tuple[dict, list[dict]]:
    """Attempts until one is undisturbed (or ATTEMPTS are spent: the last one counts)."""
    tries = []
    for _ in range(ATTEMPTS):
        tries.append(_attempt(out, s, backend, samples))
        if not tries[-1]["disturbed"]:
            break
    return tries[-1], tries


def _plain(a: dict) -> dict:
    return {k: v for k, v in a.items() if k not in ("before", "service", "after_idle", "row")}


@pytest.mark.parametrize("model", MODELS)
def test_predicted_p99_vs_loadgen(out, model):
    backend = load_backend(model, VARIANT, THREADS, "cpu", 128)
    samples = real_inputs(256, 128, backend.vocab_size, backend.byte_level)
    wait_quiet()
    mean_ms = float(_baseline_ms(backend, samples).mean())
    points = []
    for u in UTILIZATIONS:
        qps = round(u * 1000 / mean_ms, 1)
        runs, tries = [], []
        for _ in range(REPEATS):
            chosen, attempts = _run(out, _settings(model, qps=qps, min_duration_ms=RUN_MS),
                                    backend, samples)
            runs.append(chosen)
            tries.extend(attempts)
        back_to_back = [predicted_quantile_ms(ServiceTime.from_samples(r["before"]), qps, 99)
                        for r in runs]
        predicted = [predicted_quantile_ms(ServiceTime.from_samples(r["before"]), qps, 99,
                                           ServiceTime.from_samples(r["after_idle"]))
                     for r in runs]
        in_situ = [predicted_quantile_ms(ServiceTime.from_samples(r["service"]), qps, 99)
                   for r in runs]
        planner = [_planner_p99(r["before"], r["after_idle"], qps) for r in runs]
        measured = float(np.median([r["p99_ms"] for r in runs]))
        points.append({"utilization": u, "qps": qps, "measured_p99_ms": measured,
                       "predicted_p99_ms": float(np.median(predicted)),
                       "back_to_back_predicted_p99_ms": float(np.median(back_to_back)),
                       "back_to_back_error": relative_error(float(np.median(back_to_back)),
                                                            measured),
                       "in_situ_predicted_p99_ms": float(np.median(in_situ)),
                       "planner_p99_ms": float(np.median(planner)),
                       "planner_error": relative_error(float(np.median(planner)), measured),
                       "error": relative_error(float(np.median(predicted)), measured),
                       "runs": [_plain(r) for r in runs],
                       "disturbed_attempts": sum(t["disturbed"] for t in tries)})
    record("loadgen_p99_vs_predicted", model=model, backend=VARIANT, threads=THREADS,
           service_ms_mean=mean_ms,
           run_ms=RUN_MS, repeats=REPEATS, points=points)
    worst = max(abs(p["error"]) for p in points)
    assert worst <= P99_GOAL, f"{model}: predicted p99 off by {worst:.1%} (goal {P99_GOAL:.0%})"


@pytest.mark.parametrize("model", MODELS)
def test_predicted_peak_vs_found_peak(out, model):
    backend = load_backend(model, VARIANT, THREADS, "cpu", 128)
    samples = real_inputs(256, 128, backend.vocab_size, backend.byte_level)
    wait_quiet()
    before = _baseline_ms(backend, samples)
    service = ServiceTime.from_samples(before)
    s = _settings(model, min_duration_ms=PEAK_RUN_MS)
    flat = predicted_peak_qps(service, 99, BOUND_MS, min_duration_s=PEAK_RUN_MS / 1e3,
                              min_queries=s.queries)
    one = samples[:1]  # after idle gaps as short as near that peak's
    idle = time_after_idle(lambda: backend.run(one), 50, 1000.0 / flat.qps) / 1e6
    predicted = predicted_peak_qps(service, 99, BOUND_MS, min_duration_s=PEAK_RUN_MS / 1e3,
                                   min_queries=s.queries,
                                   after_idle=ServiceTime.from_samples(idle))
    nominal = float(max_qps_per_replica(service, 99, BOUND_MS))
    planner = _planner_peak(backend, samples, before)

    def step(r):  # each search step starts at a quiet moment
        wait_quiet()

    start = s.model_copy(update={"qps": round(0.9 * predicted.qps, 1)})
    search = find_peak(start, out, precision=0.04, max_runs=6, step=1.1, progress=step,
                       backend=backend, samples=samples, predictor=predictor)
    after = _baseline_ms(backend, samples)
    found = search.peak_qps
    error = relative_error(predicted.qps, found) if found else math.inf
    planner_error = relative_error(planner["qps"], found) if found else math.inf
    record("loadgen_peak_vs_predicted", model=model, backend=VARIANT, threads=THREADS,
           bound_ms=BOUND_MS,
           run_ms=PEAK_RUN_MS, service_ms_mean=float(before.mean()),
           service_after_ms_mean=float(after.mean()), predicted_peak_qps=predicted.qps,
           after_idle_ms_mean=float(idle.mean()), back_to_back_predicted_peak_qps=flat.qps,
           predicted_percentile=predicted.percentile, nominal_p99_peak_qps=nominal,
           found_peak_qps=found, first_invalid_qps=search.bracket[1], error=error,
           planner_peak_qps=planner["qps"], planner_wake_ms=planner["wake_ms"],
           planner_back_to_back_qps=planner["back_to_back_qps"], planner_error=planner_error,
           runs=[{"qps": r.row["loadgen_target_qps"], "result": r.row["loadgen_result"],
                  "p99_ms": r.row["latency_ms_p99"], "reasons": r.row["loadgen_invalid_reasons"],
                  "in_situ_service_ms_mean": r.row.get("loadgen_service_ms_mean")}
                 for r in search.runs])
    # The goal is the planner's figure: the most QPS per replica under the p99 bound, which is
    # what a plan buys replicas by. `predicted` (LoadGen's early-stopping percentile) predicts
    # where LoadGen's verdict flips, a stricter figure kept beside it as a diagnostic.
    assert found is not None and abs(planner_error) <= PEAK_GOAL, (
        f"{model}: the planner's QPS per replica {planner['qps']:.1f} vs found {found} QPS "
        f"(early-stopping prediction {predicted.qps:.1f}, {error:+.1%})")


def _planner_p99(before_ms: np.ndarray, after_idle_ms: np.ndarray, qps: float) -> float:
    """The planner's form of the two-state model at a fixed rate: bench's mean and CV of
    back-to-back calls, plus wake_ms (after-idle median - back-to-back median) for the requests
    that find the server idle (roi.loadcheck.wake_mixture, as roi.cost.evaluate sizes)."""
    busy = ServiceTime.from_mean_cv(before_ms.mean(), before_ms.std(ddof=1) / before_ms.mean())
    wake = max(float(np.median(after_idle_ms) - np.median(before_ms)), 0.0)
    mean = float(busy.mean_ms)
    rho = idle_utilization(mean, mean + wake, qps)
    return float(response_time_quantile_ms(wake_mixture(busy, np.array(wake), np.array(rho)),
                                           qps, 99))


def _planner_peak(backend: Backend, samples: np.ndarray, before_ms: np.ndarray) -> dict:
    """The planner's own QPS per replica for this row (`roi plan`, no LoadGen peak in the
    table): bench's row (mean and CV of back-to-back calls, bench's after-idle calls) through
    roi.service.wake_ms and roi.cost.evaluate as roi/fleet.py feeds them. It sizes at the
    nominal p99, not at the stricter percentile LoadGen's early stopping certifies."""
    one = samples[:1]
    idle_ns, gap = time_idle_calls(lambda: backend.run(one), TimingSettings(),
                                   float(np.median(before_ms)))
    row = {"latency_ms_p50": float(np.median(before_ms)),
           "after_idle_ms_p50": float(np.median(idle_ns)) / 1e6}
    grid = pd.DataFrame({"service_ms_mean": [before_ms.mean()] * 2,
                         "service_ms_cv": before_ms.std(ddof=1) / before_ms.mean(),
                         "batch_size": 1, "sla_percentile": 99.0, "sla_latency_ms": BOUND_MS,
                         "design_qps": 100.0, "usd_per_hour": 1.0,
                         "wake_ms": [wake_ms(row), 0.0]})
    qps = evaluate(grid)["qps_per_replica"].to_numpy()
    return {"qps": float(qps[0]), "back_to_back_qps": float(qps[1]), "wake_ms": wake_ms(row),
            "after_idle_gap_ms": gap, "after_idle_n": int(idle_ns.size)}
