"""bench/loadgen.py: LoadGen's summary parsed from stored files, the SUT's bookkeeping (every
issued sample answered exactly once, with its output), and a short real LoadGen run on a stub
backend."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bench.loadgen import LoadtestSettings, check_settings, run_one
from bench.loadgen_backends import Backend
from bench.loadgen_sut import BatchingSUT, real_inputs
from checks import loadgen as predictor
from contracts.errors import InputError
from contracts.mlperf_log import parse_summary
from contracts.results import ResultsStore, load_samples

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "loadgen"


def _summary(name: str) -> dict:
    return parse_summary((FIXTURES / name).read_text())


def test_parse_server_valid():
    s = _summary("server_valid.txt")
    assert s["scenario"] == "Server" and s["mode"] == "PerformanceOnly"
    assert s["result"] == "VALID" and s["valid"] and s["invalid_reasons"] == []
    assert s["early_stopping_met"] is True and s["early_stopping"] == "Run successful."
    assert s["completed_qps"] == 98.24 and s["scheduled_qps"] == 98.24
    assert s["target_qps"] == 100 and s["target_latency_ns"] == 50_000_000
    assert s["min_query_count"] == 662
    assert set(s["latency_ms"]) == {"min", "max", "mean", "p50", "p90", "p95", "p97", "p99",
                                    "p99.9"}
    lat = list(s["latency_ms"].values())
    assert s["latency_ms"]["min"] == 0.265543 and all(x > 0 for x in lat)
    assert s["latency_ms"]["p50"] <= s["latency_ms"]["p99"] <= s["latency_ms"]["max"]


def test_parse_server_invalid_reasons_and_early_stopping():
    late = _summary("server_invalid_latency.txt")
    assert late["result"] == "INVALID" and not late["valid"]
    assert late["invalid_reasons"] == ["performance constraints not satisfied",
                                       "early stopping not satisfied"]
    assert late["recommendations"] == "Reduce target QPS to improve latency."
    assert late["early_stopping"].startswith("Run unsuccessful. Processed 498 queries.")
    assert "8925 more queries" in late["early_stopping"]
    assert late["latency_ms"]["p99"] > late["target_latency_ns"] / 1e6
    short = _summary("server_invalid_early_stopping.txt")
    assert short["invalid_reasons"] == ["early stopping not satisfied"]
    assert short["checks"]["performance constraints satisfied"] is True
    assert "503 more queries" in short["early_stopping"]


def test_parse_singlestream_claimed_percentile_and_estimates():
    s = _summary("singlestream_valid.txt")
    assert s["valid"] and s["claimed_percentile"] == 90.0
    assert s["claimed_latency_ms"] == 4.211378 == s["latency_ms"]["p90"]
    assert s["early_stopping_estimate_ms"] == 4.216702
    assert s["qps_with_overhead"] == 238.23 and s["completed_qps"] is None
    assert "Would discard 94 highest latency queries" in s["early_stopping"]


def test_parse_refuses_other_text():
    with pytest.raises(ValueError, match="not a LoadGen summary"):
        parse_summary("hello\n")


# ------------------------------------------------------------------------------ the SUT


class _Sample:
    def __init__(self, id_: int, index: int):
        self.id, self.index = id_, index


class _Recorder:
    """Stands in for lg.QuerySamplesComplete / lg.QuerySampleResponse; reads each response's
    data while the call lasts, as LoadGen does."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got: dict[int, list[int]] = {}

    def response(self, id_: int, ptr: int, size: int):
        return (id_, ptr, size)

    def complete(self, responses) -> None:
        import ctypes

        with self.lock:
            for id_, ptr, size in responses:
                value = ctypes.c_int64.from_address(ptr).value if size == 8 else None
                self.got.setdefault(id_, []).append(value)


def _sut(run, n=32, **kw):
    samples = np.arange(n * 4, dtype=np.int64).reshape(n, 4)
    rec = _Recorder()
    sut = BatchingSUT(run, samples, rec.complete, rec.response, **kw).start()
    return sut, rec, samples


def _first_token(ids: np.ndarray) -> np.ndarray:
    return ids[:, 0].copy()


@pytest.mark.parametrize("max_batch,workers,window", [(1, 1, 0.0), (8, 1, 2.0), (4, 3, 0.5)])
def test_every_issued_sample_answered_once_with_its_output(max_batch, workers, window):
    sut, rec, samples = _sut(_first_token, max_batch=max_batch, workers=workers,
                             batch_window_ms=window)
    issuers = [threading.Thread(target=lambda k=k: [
        sut.issue_query([_Sample(1000 * k + j, (k + j) % 32) for j in range(3)])
        for _ in range(1)]) for k in range(40)]
    for t in issuers:
        t.start()
    for t in issuers:
        t.join()
    deadline = time.time() + 5
    while len(rec.got) < 120 and time.time() < deadline:
        time.sleep(0.005)
    sut.stop()
    assert sut.check() == []
    assert len(rec.got) == 120 and all(len(v) == 1 for v in rec.got.values())
    for k in range(40):
        for j in range(3):  # each response carries its own sample's output
            assert rec.got[1000 * k + j] == [samples[(k + j) % 32, 0]]
    assert max(sut.batches) <= max_batch and sum(sut.batches) == 120


def test_batching_window_gathers_a_batch():
    sut, rec, _ = _sut(_first_token, max_batch=8, batch_window_ms=200.0)
    for j in range(8):
        sut.issue_query([_Sample(j, j)])
        time.sleep(0.002)
    deadline = time.time() + 5
    while len(rec.got) < 8 and time.time() < deadline:
        time.sleep(0.005)
    sut.stop()
    assert sut.batches == [8] and sut.mean_batch == 8.0


def test_a_failing_backend_still_answers_and_is_reported():
    def broken(ids):
        raise RuntimeError("boom")

    sut, rec, _ = _sut(broken)
    sut.issue_query([_Sample(1, 0), _Sample(2, 1)])
    deadline = time.time() + 5
    while len(rec.got) < 2 and time.time() < deadline:
        time.sleep(0.005)
    sut.stop()
    assert rec.got == {1: [None], 2: [None]}  # answered (LoadGen would hang otherwise), no data
    problems = sut.check()
    assert problems[0] == "RuntimeError: boom" and "2 response(s) without output" in problems


def test_check_finds_unanswered_and_duplicated_samples():
    sut, _, _ = _sut(_first_token)
    sut.stop()
    sut.issued = {1: 1, 2: 1, 3: 2}
    sut.answered = {1: 1, 3: 2}
    problems = sut.check()
    assert "1 issued sample(s) never answered" in problems
    assert "1 sample(s) issued or answered more than once" in problems


# ------------------------------------------------------------------------------ inputs, settings


def test_real_inputs_are_source_bytes_of_the_measured_shape():
    x = real_inputs(16, 64, 256, byte_level=True)
    assert x.shape == (16, 64) and x.dtype == np.int64 and x.max() < 256
    text = bytes(x[0].astype(np.uint8))
    assert sum(32 <= c < 127 or c in (9, 10) for c in text) / len(text) > 0.95  # source code
    ids = real_inputs(4, 8, 1000, byte_level=False)
    assert ids.shape == (4, 8) and ids.max() < 1000
    assert np.array_equal(real_inputs(4, 8, 1000, False), ids)  # seeded


@pytest.mark.parametrize("kw,needle", [
    (dict(qps=0, latency_ms=10), "--qps must be > 0"),
    (dict(qps=-5, latency_ms=10), "--qps must be > 0"),
    (dict(qps=5, latency_ms=0), "--latency-ms must be > 0"),
    (dict(qps=5), "needs a latency bound"),
    (dict(latency_ms=5), "needs a target QPS"),
    (dict(scenario="burst", qps=5, latency_ms=5), "unknown scenario 'burst'"),
    (dict(variant="tensorrt", qps=5, latency_ms=5), "unknown backend 'tensorrt'"),
    (dict(model="builtin:nope", qps=5, latency_ms=5), "unknown built-in model"),
    (dict(model="hf:/no/such", qps=5, latency_ms=5), "does not exist"),
    (dict(qps=5, latency_ms=5, max_batch=0), "--max-batch must be a positive integer"),
    (dict(qps=5, latency_ms=5, percentile=100), "--percentile must be in"),
    (dict(qps=5, latency_ms=5, batch_window_ms=-1), "--batch-window-ms must be >= 0"),
])
def test_bad_settings_are_refused(kw, needle):
    base = dict(model="builtin:student-50x", variant="ort-fp32", scenario="server")
    with pytest.raises(InputError, match=needle.replace("(", r"\(")):
        check_settings(LoadtestSettings(**{**base, **kw}))


# ------------------------------------------------------------------------------ LoadGen itself


def _stub_backend(ms: float = 0.3) -> Backend:
    def run(ids):
        time.sleep(ms / 1000)
        return ids[:, -1].copy()

    return Backend(run, vocab_size=256, max_seq_len=None, byte_level=True,
                   thread_settings={"stub_threads": 1}, params=1)


@pytest.mark.parametrize("scenario,extra", [
    ("server", dict(qps=400.0, latency_ms=20.0)),
    ("singlestream", {}),
    ("offline", dict(qps=2000.0, max_batch=16)),
])
def test_loadgen_run_on_a_stub_backend(tmp_path, scenario, extra):
    s = LoadtestSettings(model="builtin:student-50x", scenario=scenario, seq_len=16,
                         min_duration_ms=300, samples=32, role="student",
                         **{"min_query_count": 100, **extra})
    r = run_one(s, tmp_path, _stub_backend(), predictor=predictor)
    assert r.problems == [] and r.row["status"] == "ok"
    assert (r.log_dir / "mlperf_log_summary.txt").is_file()
    assert (r.log_dir / "mlperf_log_detail.txt").is_file()
    row = ResultsStore(tmp_path).rows[-1]
    assert row["source"] == "loadgen" and row["loadgen_scenario"] == scenario
    assert row["n_calls"] == row["loadgen_queries"] >= 100 * (1 if scenario != "offline" else 0)
    assert row["loadgen_result"] in ("VALID", "INVALID") and row["latency_ms_p99"] > 0
    assert row["backend_stub_threads"] == 1 and row["env_cpu"]
    assert (tmp_path / row["loadgen_log_dir"]).is_dir()
    assert 0.2 < row["loadgen_service_ms_mean"] < 50  # the stub sleeps 0.3 ms per batch
    if scenario == "server":
        assert row["loadgen_target_qps"] == 400.0 and row["loadgen_scheduled_qps"] > 0
        assert row["predicted_latency_ms_under_load"] > row["loadgen_service_ms_p50"]
        assert row["loadgen_latency_bound_ms"] == 20.0 and row["loadgen_percentile"] == 99.0


def test_server_run_predicts_with_the_two_state_service_time(tmp_path):
    """With bench's single-call row in the table, a Server run measures the backend after idle
    gaps like its own and predicts with both states; a backend that is slower after idle gets
    a higher p99 than the back-to-back figure alone."""
    import time as _time

    last = {"t": 0.0}

    def run(ids):  # 0.3 ms, plus 0.3 ms more after more than 5 ms of idleness
        now = _time.perf_counter()
        _time.sleep(0.0006 if now - last["t"] > 0.005 else 0.0003)
        last["t"] = _time.perf_counter()
        return ids[:, -1].copy()

    backend = Backend(run, vocab_size=256, max_seq_len=None, byte_level=True,
                      thread_settings={"stub_threads": 1}, params=1)
    s = LoadtestSettings(model="builtin:student-50x", scenario="server", qps=100.0,
                         latency_ms=20.0, seq_len=16, min_duration_ms=300, samples=32,
                         role="student", min_query_count=100)
    ResultsStore(tmp_path).append({  # what bench measured back to back
        "model": s.model, "role": "student", "backend": "ort", "device": "cpu",
        "dtype": "fp32", "batch_size": 1, "seq_len": 16, "threads": 1, "status": "ok",
        "source": "measured", "latency_ms_mean": 0.4, "latency_ms_cv": 0.1})
    r = run_one(s, tmp_path, backend, predictor=predictor)
    row = r.row
    assert row["predicted_model"] == "two-state"
    assert row["service_after_idle_ms_mean"] > 0.5  # 50 calls after ~10 ms idle gaps
    assert row["predicted_latency_ms_at_target"] > row[
        "predicted_latency_ms_at_target_back_to_back"]
    assert row["predicted_peak_qps"] < row["predicted_peak_qps_back_to_back"]
    raw = load_samples(tmp_path, ResultsStore(tmp_path).rows[-1]["row_id"])
    assert raw["after_idle_ns"].size == 50


# ------------------------------------------------------------------------------ user.conf, accuracy


def test_user_conf_reaches_loadgen_and_the_row(tmp_path):
    """A mirrored key (target_qps) changes the row and LoadGen's run alike; a key only LoadGen
    reads (max_async_queries) reaches it through FromConfig."""
    from contracts.mlperf_log import parse_mllog

    conf = tmp_path / "user.conf"
    conf.write_text("# overrides\n*.Server.target_qps = 300\n"
                    "builtin:student-50x.Server.max_async_queries = 7\n"
                    "*.Offline.target_qps = 5\n")
    s = check_settings(LoadtestSettings(
        model="builtin:student-50x", scenario="Server", qps=50.0, latency_ms=20.0, seq_len=16,
        min_duration_ms=300, samples=32, role="student", min_query_count=100,
        user_conf=str(conf)))
    assert s.qps == 300.0  # the file wins over --qps (Offline's key is not Server's)
    r = run_one(s, tmp_path, _stub_backend(), predictor=predictor)
    detail = parse_mllog((r.log_dir / "mlperf_log_detail.txt").read_text())
    assert detail["requested_server_target_qps"] == 300
    assert detail["requested_server_max_async_queries"] == 7
    assert r.row["loadgen_target_qps"] == 300.0 and r.row["loadgen_user_conf"] == str(conf)


def test_accuracy_mode_logs_every_sample_and_scores_agreement(tmp_path, monkeypatch):
    """AccuracyOnly issues each QSL sample once; the row's agreement is the share of logged
    predictions equal to the reference backend's (here: wrong on odd first bytes)."""
    from bench import loadgen_accuracy

    def reference(model, variant, threads, device, seq_len):
        assert variant == "torch-eager"  # a builtin model's reference is its PyTorch model
        return Backend(lambda ids: ids[:, -1] + ids[:, 0] % 2, vocab_size=256,
                       max_seq_len=None, byte_level=True, thread_settings={}, params=1)

    monkeypatch.setattr(loadgen_accuracy, "load_backend", reference)
    s = check_settings(LoadtestSettings(model="builtin:student-50x", scenario="offline",
                                        seq_len=16, samples=40, role="student",
                                        min_duration_ms=100, test_mode="accuracy"))
    r = run_one(s, tmp_path, _stub_backend())
    samples = real_inputs(40, 16, 256, True, 0)
    assert r.problems == [] and r.row["loadgen_mode"] == "accuracy"
    assert r.row["accuracy_samples"] == 40 and r.row["n_calls"] == 40
    assert r.row["accuracy_agreement"] == pytest.approx(np.mean(samples[:, 0] % 2 == 0))
    assert (tmp_path / r.row["accuracy_log"]).is_file()
    assert ResultsStore(tmp_path).rows[-1]["accuracy_reference"] == "torch-eager"
    # ort-fp32 against PyTorch is held to the gate's fp32 tolerance (99.9%): about half fails
    assert (r.row["accuracy_gate"], r.row["accuracy_min_agreement"]) == ("fail", 0.999)


def test_unknown_test_mode_is_refused():
    with pytest.raises(InputError, match="--mode: allowed performance, accuracy; got 'peak'"):
        check_settings(LoadtestSettings(model="builtin:student-50x", scenario="offline",
                                        test_mode="peak"))


def test_peak_search_announces_each_probe_and_draws_its_latencies(tmp_path):
    """find_peak tells the caller of each run before it starts (number, rate, bracket so far);
    reports.figures draws the probes (PNG) and nothing without a latency to draw."""
    from matplotlib import image as mpimg

    from bench.loadgen import find_peak
    from reports.measure_figures import peak_search

    heard = []
    s = LoadtestSettings(model="builtin:student-50x", scenario="server", qps=200.0,
                         latency_ms=0.05, seq_len=16, min_duration_ms=200, samples=32,
                         role="student", min_query_count=60)  # 0.05 ms: every run INVALID
    result = find_peak(s, tmp_path, max_runs=2, backend=_stub_backend(),
                       probing=lambda n, q, b: heard.append((n, q, b)))
    assert heard == [(1, 200.0, (None, None)), (2, float(f"{200 / 1.5:.4g}"), (None, 200.0))]
    assert result.peak_qps is None and len(result.runs) == 2
    png = peak_search([r.row for r in result.runs], 0.05, 99.0, None)
    assert mpimg.imread(io.BytesIO(png)).shape[2] in (3, 4)
    assert peak_search([{"loadgen_target_qps": 1.0, "latency_ms_p99": None,
                         "loadgen_valid": False}], 5.0, 99.0, None) is None


def test_a_seq_len_over_the_context_leaves_no_out_and_a_held_out_is_refused(tmp_path):
    from contracts.io import dir_lock

    s = LoadtestSettings(model="builtin:student-50x", scenario="singlestream", seq_len=16,
                         min_duration_ms=300, samples=32, role="student")
    short = Backend(lambda ids: ids[:, -1], vocab_size=256, max_seq_len=8, byte_level=True,
                    thread_settings={}, params=1)
    with pytest.raises(InputError, match="exceeds"):
        run_one(s, tmp_path / "new", short)
    assert not (tmp_path / "new").exists()  # nothing written, not even the lock
    from .test_dir_lock import _holder

    held = tmp_path / "held"
    proc = _holder(held)  # another process holds --out
    try:
        with pytest.raises(InputError, match=rf"in use by another process \(PID {proc.pid}\)"):
            run_one(s, held, _stub_backend())
    finally:
        proc.kill()
        proc.wait()
    assert not (held / "results.jsonl").exists()
    with dir_lock(held):  # this process holds it: a run inside the block shares the lock
        assert run_one(s, held, _stub_backend(), predictor=predictor).row["status"] == "ok"
