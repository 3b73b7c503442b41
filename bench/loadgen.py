"""Load tests on MLPerf LoadGen (`mlperf_loadgen`, PyPI mlcommons-loadgen).

LoadGen generates the traffic, times every sample and decides VALID / INVALID; around it go the
system under test (SUT) and the query-sample library (QSL) it draws from (bench/loadgen_sut.py)
on any bench model and backend (bench/loadgen_backends.py). This module holds the check of
the settings (bench/loadtest_settings.py), one run, its row and the search for the peak QPS:

    LoadGen ──issue_query──► queue ──► worker thread(s): take up to max_batch samples (waiting
       ▲                                at most batch_window_ms after the first), run one batch
       └────────QuerySamplesComplete◄── on the backend, answer each sample with its output

Scenarios: singlestream (one query at a time, p90), multistream (queries of N samples back to
back, p99), server (Poisson arrivals at a target QPS, p99 under a latency bound), offline (all
samples at once, throughput). Every run leaves LoadGen's own logs (mlperf_log_summary.txt,
mlperf_log_detail.txt, ...) in its own directory under OUT/loadgen/, and its summary, parsed,
becomes one row of OUT's results table (source = loadgen), the table `roi plan` reads.

The QSL holds real inputs of the measured shape: windows of seq_len bytes of the Python standard
library's own sources for byte-level models (the built-in GPT's vocabulary), seeded token ids
for other vocabularies.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from contracts.config import MAX_QPS
from contracts.errors import InputError
from contracts.io import LOCK_FILE, dir_lock, has_content
from contracts.mlperf_log import read_run_summary
from contracts.results import ResultsStore, row_key

from . import env
from .interrupt import (NO_SUMMARY, LoadgenInterrupted, LoadtestInterrupted, interrupted_fields,
                        start_test)
from .loadgen_accuracy import ACCURACY_SUMMARY, accuracy_fields
from .loadgen_backends import Backend, load_backend
from .loadgen_conf import apply_user_conf, from_config, read_user_conf
from .loadgen_sut import BatchingSUT, real_inputs
from .loadtest_settings import SCENARIOS, TEST_MODES, LoadtestSettings
from .measure import VARIANTS

LOG_DIR = "loadgen"


def check_settings(s: LoadtestSettings) -> LoadtestSettings:
    """Refuse bad settings with one line (before any model is loaded); return them completed."""
    if s.user_conf:  # (the choices, scenario to role, were checked making the settings)
        s = apply_user_conf(s, read_user_conf(s.user_conf), SCENARIOS[s.scenario])
    if s.scenario == "server" and s.qps is None:
        raise InputError("--qps: the server scenario needs a target QPS (> 0)")
    if s.scenario == "server" and s.latency_ms is None:
        raise InputError("--latency-ms: the server scenario needs a latency bound in ms (> 0)")
    for name, value in (("qps", s.qps), ("latency-ms", s.latency_ms)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"--{name} must be > 0; got {value:g}")
    if s.qps is not None and s.qps > MAX_QPS:  # a runaway value: no single SUT comes close
        raise InputError(f"--qps must be at most {MAX_QPS:g} (the scenarios' bound); got "
                         f"{s.qps:g}")
    p = s.percentile
    if p is not None and not (0 < p < 100):
        raise InputError(f"--percentile must be in (0, 100); got {p:g}")
    ints = {"seq-len": s.seq_len, "threads": s.threads, "max-batch": s.max_batch,
            "workers": s.workers, "samples": s.samples, "samples-per-query": s.samples_per_query,
            "min-duration-ms": s.min_duration_ms, "min-query-count": s.queries}
    bad = {k: v for k, v in ints.items() if not (isinstance(v, int) and v >= 1)}
    if bad:
        k, v = next(iter(bad.items()))
        raise InputError(f"--{k} must be a positive integer; got {v!r}")
    if not (math.isfinite(s.batch_window_ms) and s.batch_window_ms >= 0):
        raise InputError(f"--batch-window-ms must be >= 0; got {s.batch_window_ms:g}")
    from models.zoo import parse_spec

    spec = parse_spec(s.model)
    if VARIANTS[s.variant][0] == "torch-eager" and not spec.torch_capable:
        raise InputError(f"{s.model}: an ONNX model runs on the ort backends only "
                         f"(ort-fp32, ort-int8); got --backend {s.variant}")
    return s


# --------------------------------------------------------------------------- one run


@dataclass
class LoadtestResult:
    row: dict
    summary: dict
    log_dir: Path
    problems: list[str]

    @property
    def valid(self) -> bool:
        return bool(self.summary.get("valid")) and not self.problems


def _test_settings(lg, s: LoadtestSettings, expected_ms: float | None):
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, SCENARIOS[s.scenario])
    ts.mode = getattr(lg.TestMode, TEST_MODES[s.test_mode])
    ts.min_duration_ms = s.min_duration_ms
    ts.min_query_count = s.queries
    ts.max_duration_ms = s.max_duration_ms
    ts.qsl_rng_seed = ts.sample_index_rng_seed = ts.schedule_rng_seed = s.seed
    pct = (s.claimed_percentile or 99.0) / 100
    if s.scenario == "server":
        ts.server_target_qps = float(s.qps)
        ts.server_target_latency_ns = int(s.latency_ms * 1e6)
        ts.server_target_latency_percentile = pct
    elif s.scenario == "singlestream":
        ts.single_stream_target_latency_percentile = pct
        if expected_ms:  # LoadGen plans min_duration / expected queries: err on the short side
            ts.single_stream_expected_latency_ns = int(0.7 * expected_ms * 1e6)
    elif s.scenario == "multistream":
        ts.multi_stream_samples_per_query = s.samples_per_query
        ts.multi_stream_target_latency_percentile = pct
        if expected_ms:
            per_query = expected_ms * math.ceil(s.samples_per_query / s.max_batch)
            ts.multi_stream_expected_latency_ns = int(0.7 * per_query * 1e6)
    elif s.scenario == "offline":
        # LoadGen sizes the one query as expected QPS x min duration; ask for 25% more than
        # the estimate so the run does outlast min_duration (otherwise it is INVALID).
        qps = s.qps or (1000.0 * s.max_batch * s.workers / expected_ms if expected_ms else 100)
        ts.offline_expected_qps = float(qps) * 1.25
    if s.user_conf:
        from_config(ts, s.user_conf, s.model, SCENARIOS[s.scenario])
    return ts


class Predictor(Protocol):
    """The planner's figures set beside a measured run (checks/loadgen.py is one): bench does
    not import the planner, the application hands them in."""

    def predictions(self, s: LoadtestSettings, out: Path,
                    after_idle_ms: np.ndarray | None = None) -> dict: ...

    def predicted_under_load(self, s: LoadtestSettings, ms: np.ndarray) -> dict: ...


def _holding_out(fn: Callable) -> Callable:
    """`fn(s, out, ...)` run holding the lock on `out` (contracts.io.dir_lock): a second load
    test on the same --out is refused naming this one, instead of both rewriting its table. A
    bad input found inside (a --seq-len over the model's context) leaves no new directory."""
    @functools.wraps(fn)
    def locked(s: LoadtestSettings, out: str | Path, *args, **kwargs):
        fresh = not Path(out).exists()
        with dir_lock(out):  # reentrant: find_peak's runs share its lock
            try:
                return fn(s, out, *args, **kwargs)
            except InputError:
                if fresh and not has_content(out):  # ours alone: made by this call, empty
                    (Path(out) / LOCK_FILE).unlink(missing_ok=True)
                    Path(out).rmdir()
                raise
    return locked


@_holding_out
def run_one(s: LoadtestSettings, out: str | Path, backend: Backend | None = None,
            samples: np.ndarray | None = None, *, mode: str = "performance",
            store: bool = True, predictor: Predictor | None = None) -> LoadtestResult:
    """Run one LoadGen test; keep its logs in OUT/loadgen/<run>/ and append its row to OUT's
    results table (unless store=False), with the predictor's figures beside it if given."""
    import mlperf_loadgen as lg

    out = Path(out)
    accuracy = s.test_mode == "accuracy"
    mode = "accuracy" if accuracy else mode  # the row's loadgen_mode
    backend = backend or load_backend(s.model, s.variant, s.threads, s.device, s.seq_len)
    if backend.max_seq_len and s.seq_len > backend.max_seq_len:
        raise InputError(f"--seq-len {s.seq_len} exceeds {s.model}'s context of "
                         f"{backend.max_seq_len}")
    if samples is None:
        samples = real_inputs(s.samples, s.seq_len, backend.vocab_size, backend.byte_level,
                              s.seed)
    expected_ms = _warm_up(backend, samples)
    idle_ns = _after_idle_ns(s, backend, samples)
    log_dir = out / LOG_DIR / _run_name(s)
    log_dir.mkdir(parents=True, exist_ok=True)
    sut = BatchingSUT(backend.run, samples, lg.QuerySamplesComplete, lg.QuerySampleResponse,
                      max_batch=s.max_batch, batch_window_ms=s.batch_window_ms,
                      workers=s.workers).start()
    sut_handle = lg.ConstructSUT(sut.issue_query, sut.flush_queries)
    n = len(samples)
    qsl = lg.ConstructQSL(n, n, lambda idx: None, lambda idx: None)  # all held in memory
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(log_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    t0 = time.perf_counter()
    interrupted = False  # then LoadGen's threads may still run: nothing may be destroyed
    try:
        start_test(lg, sut_handle, qsl, _test_settings(lg, s, expected_ms), log_settings)
    except LoadgenInterrupted:
        interrupted = True
        row = result_row(s, NO_SUMMARY, sut, backend, log_dir, out, time.perf_counter() - t0,
                         mode, [])
        row.update(interrupted_fields(row["loadgen_wall_s"], row["n_calls"]))
        service = np.asarray(sut.service_ns, np.int64)
        if service.size:
            row.update(service_under_load(s, service / 1e6, out, predictor))
        table = ResultsStore(out)
        if store and not any(r.get("status") == "ok" and row_key(r) == row_key(row)
                             for r in table.rows):  # never over a finished run of the same
            table.append(row)
        raise LoadtestInterrupted(row) from None
    finally:
        if not interrupted:
            sut.stop()
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut_handle)
    wall_s = time.perf_counter() - t0
    summary = ACCURACY_SUMMARY if accuracy else read_run_summary(log_dir)
    problems = sut.check()
    row = result_row(s, summary, sut, backend, log_dir, out, wall_s, mode, problems)
    if accuracy:  # the responses LoadGen logged, against the reference model's
        row.update(accuracy_fields(s, log_dir, samples, out))
    elif predictor is not None:
        row.update(predictor.predictions(s, out, None if idle_ns is None else idle_ns / 1e6))
    service = np.asarray(sut.service_ns, np.int64)
    if service.size:  # the backend's own time per batch under this load, beside LoadGen's
        row.update(service_under_load(s, service / 1e6, out, predictor))
    if store:
        raw = {"service_ns": service, "idle_ns": np.asarray(sut.idle_ns, np.int64),
               "in_sut_ns": np.asarray(sut.in_sut_ns, np.int64)}
        if idle_ns is not None:
            raw["after_idle_ns"] = idle_ns
        ResultsStore(out).append(row, raw if service.size else None)
    return LoadtestResult(row, summary, log_dir, problems)


AFTER_IDLE_CALLS = 50


def _after_idle_ns(s: LoadtestSettings, backend: Backend, samples: np.ndarray
                   ) -> np.ndarray | None:
    """For a Server run of one sample at a time: the backend's service time after an idle gap
    like the run's (exponential, mean 1/QPS), the "after idle" state of the sizing model's
    two-state service time (roi.loadcheck.two_state_service)."""
    if (s.scenario != "server" or s.max_batch != 1 or s.workers != 1 or not s.qps
            or s.test_mode != "performance"):
        return None
    from .timing import time_after_idle

    one = samples[:1]
    return time_after_idle(lambda: backend.run(one), AFTER_IDLE_CALLS, 1000.0 / s.qps, s.seed)


def _warm_up(backend: Backend, samples: np.ndarray, calls: int = 5) -> float:
    """A few untimed calls (first-call allocations out of the test); their median, in ms, tells
    LoadGen what latency to expect where a scenario needs it."""
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        backend.run(samples[i % len(samples)][None])
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times[1:] if len(times) > 1 else times))


def _run_name(s: LoadtestSettings) -> str:
    model = re.sub(r"[^A-Za-z0-9.=-]+", "_", s.model).strip("_")[:60]
    rate = f"-{s.qps:g}qps" if s.qps and s.scenario == "server" else ""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return f"{s.scenario}-{model}-{s.variant}{rate}-{stamp}"


# --------------------------------------------------------------------------- the row


def default_role(model: str, out: Path) -> str:
    """The role a results table already gives the model, else teacher for the default teacher."""
    from models.zoo import DEFAULT_TEACHER

    for r in ResultsStore(out).rows:
        if r.get("model") == model and r.get("role") in ("teacher", "student"):
            return r["role"]
    return "teacher" if model == DEFAULT_TEACHER else "student"


def result_row(s: LoadtestSettings, summary: dict, sut: BatchingSUT, backend: Backend,
               log_dir: Path, out: Path, wall_s: float, mode: str,
               problems: list[str]) -> dict:
    backend_col, dtype = VARIANTS[s.variant]
    lat = summary["latency_ms"]
    completed = summary.get("completed_qps") or summary.get("offline_qps") or summary.get(
        "qps_with_overhead")
    reasons = summary["invalid_reasons"] + problems
    row = {
        "model": s.model, "role": s.role or default_role(s.model, out), "backend": backend_col,
        "device": s.device, "dtype": dtype, "batch_size": s.max_batch, "seq_len": s.seq_len,
        "threads": s.threads,
        "status": "error" if problems else "ok", "error": "; ".join(problems), "source": "loadgen",
        **{f"latency_ms_{k}": lat.get(k) for k in ("p50", "p90", "p95", "p99", "mean", "min",
                                                   "max")},
        "latency_ms_p99.9": lat.get("p99.9"),
        "n_calls": len(sut.answered), "throughput_samples_s": completed,
        "throughput_tokens_s": completed * s.seq_len if completed else None,
        "params": backend.params,
        "loadgen_scenario": s.scenario, "loadgen_mode": mode,
        "loadgen_target_qps": float(s.qps) if s.qps and s.scenario in ("server", "offline")
        else None,
        "loadgen_latency_bound_ms": float(s.latency_ms) if s.latency_ms else None,
        "loadgen_percentile": s.claimed_percentile,
        "loadgen_scheduled_qps": summary.get("scheduled_qps"),
        "loadgen_completed_qps": completed,
        "loadgen_result": summary["result"] if not problems else "INVALID",
        "loadgen_valid": bool(summary["valid"] and not problems),
        "loadgen_invalid_reasons": "; ".join(reasons),
        "loadgen_early_stopping": {True: "satisfied", False: "not satisfied"}.get(
            summary.get("early_stopping_met"), "n/a"),
        "loadgen_early_stopping_detail": summary.get("early_stopping", ""),
        "loadgen_early_stopping_estimate_ms": summary.get("early_stopping_estimate_ms"),
        "loadgen_claimed_latency_ms": summary.get("claimed_latency_ms"),
        "loadgen_queries": len(sut.issued), "loadgen_wall_s": wall_s,
        "loadgen_min_duration_ms": s.min_duration_ms, "loadgen_min_query_count": s.queries,
        "loadgen_workers": s.workers, "loadgen_max_batch": s.max_batch,
        "loadgen_batch_window_ms": s.batch_window_ms, "loadgen_mean_batch": sut.mean_batch,
        "loadgen_samples": len(sut.samples), "loadgen_seed": s.seed,
        "loadgen_user_conf": str(s.user_conf or ""),
        "loadgen_log_dir": str(log_dir.relative_to(out)) if log_dir.is_relative_to(out)
        else str(log_dir),
        **{f"backend_{k}": v for k, v in backend.thread_settings.items()},
        **env.fingerprint(),
    }
    return row


def single_call_row(s: LoadtestSettings, out: Path) -> dict | None:
    """bench's single-call measurement of this configuration at batch 1 in OUT's table."""
    backend_col, dtype = VARIANTS[s.variant]
    want = (s.model, backend_col, s.device, dtype, 1, s.seq_len, s.threads)
    for r in ResultsStore(out).rows:
        if r.get("source", "measured") in ("measured", None) and r.get("status") == "ok" and (
                r["model"], r["backend"], r["device"], r["dtype"], r["batch_size"],
                r["seq_len"], r["threads"]) == want:
            return r
    return None


def service_under_load(s: LoadtestSettings, ms: np.ndarray, out: Path,
                       predictor: Predictor | None = None) -> dict:
    """The backend's service times as the SUT timed them during the run, and (with a
    predictor) the sizing model's p99 from them: set beside the prediction from bench's
    isolated back-to-back calls, it tells a wrong queueing model from a service time that
    changed under load."""
    figures = {"loadgen_service_ms_mean": float(ms.mean()),
               "loadgen_service_ms_p50": float(np.percentile(ms, 50)),
               "loadgen_service_ms_p99": float(np.percentile(ms, 99)),
               "loadgen_service_ms_cv": float(ms.std() / ms.mean())}
    if predictor is not None:
        figures.update(predictor.predicted_under_load(s, ms))
    base = single_call_row(s, out) if s.max_batch == 1 else None
    if base:  # how much slower the backend ran under load than bench measured it alone
        figures["service_inflation_under_load"] = float(ms.mean()) / base["latency_ms_mean"]
    return figures


# --------------------------------------------------------------------------- the peak


@dataclass
class PeakSearch:
    """The highest server QPS LoadGen calls VALID, by bracketing then bisection over runs."""

    peak_qps: float | None
    runs: list[LoadtestResult]
    bracket: tuple[float, float | None]


@_holding_out
def find_peak(s: LoadtestSettings, out: str | Path, *, precision: float = 0.05,
              max_runs: int = 10, step: float = 1.5,
              progress: Callable[[LoadtestResult], None] | None = None,
              backend: Backend | None = None, samples: np.ndarray | None = None,
              predictor: Predictor | None = None,
              probing: Callable[[int, float, tuple], None] | None = None) -> PeakSearch:
    """Search the highest target QPS whose run stays VALID, starting from s.qps: multiply (or
    divide) by `step` until the verdict flips, then bisect (geometric midpoint) until the
    bracket is within `precision` (relative) or `max_runs` runs are spent. LoadGen's own
    FindPeakPerformance mode does the same kind of search but reports through its logs only;
    running the search here keeps every run's row and logs. The peak row (loadgen_mode
    find-peak) repeats the last VALID run's figures with loadgen_peak_qps set. `probing` hears
    of each run before it starts (its number, rate and the (VALID, INVALID) bracket so far);
    `progress` of each when it ends."""
    if not (precision > 0 and max_runs >= 2 and step > 1):
        raise InputError("find-peak needs precision > 0, max_runs >= 2 and step > 1")
    backend = backend or load_backend(s.model, s.variant, s.threads, s.device, s.seq_len)
    if samples is None:
        samples = real_inputs(s.samples, s.seq_len, backend.vocab_size, backend.byte_level,
                              s.seed)
    lo: LoadtestResult | None = None
    hi: float | None = None
    runs: list[LoadtestResult] = []
    qps = float(s.qps)
    while len(runs) < max_runs:
        if probing:
            probing(len(runs) + 1, qps, (lo.row["loadgen_target_qps"] if lo else None, hi))
        r = run_one(s.model_copy(update={"qps": qps}), out, backend, samples, mode="find-peak-step",
                    predictor=predictor)
        runs.append(r)
        if progress:
            progress(r)
        if r.problems:
            break  # a broken SUT: no verdict to search on
        if r.valid:
            lo = r
        else:
            hi = qps if hi is None else min(hi, qps)
        lo_qps = lo.row["loadgen_target_qps"] if lo else None
        if lo_qps is not None and hi is not None and hi / lo_qps <= 1 + precision:
            break
        if hi is None:
            qps = qps * step
        elif lo_qps is None:
            qps = qps / step
        else:
            qps = math.sqrt(lo_qps * hi)
        qps = float(f"{qps:.4g}")  # rates a reader can type back in
    peak = lo.row["loadgen_target_qps"] if lo else None
    if lo is not None:
        row = {**lo.row, "loadgen_mode": "find-peak", "loadgen_peak_qps": peak,
               "loadgen_peak_bracket_high_qps": hi, "loadgen_peak_runs": len(runs),
               "loadgen_peak_precision": precision}
        ResultsStore(out).append(row)
    return PeakSearch(peak, runs, (peak or 0.0, hi))
