"""`roi loadtest` on the command line: a short Server run (and a peak search) on a tiny model
through real LoadGen, its row in the results table and LoadGen's logs in the run directory; bad
input is one line, exit 2, nothing written."""

import json
import subprocess
import sys

import pytest

from app.cli import main

from ..conftest import TINY

SHORT = ["--backend", "torch-eager", "--seq-len", "32", "--threads", "1",
         "--min-duration-ms", "300", "--samples", "32"]


def roi(*args):
    return subprocess.run([sys.executable, "-m", "app.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args,needle", [
    (["--qps", "0", "--latency-ms", "10"], "--qps must be > 0; got 0"),
    (["--qps", "-3", "--latency-ms", "10"], "--qps must be > 0; got -3"),
    (["--qps", "10", "--latency-ms", "0"], "--latency-ms must be > 0; got 0"),
    (["--qps", "10", "--latency-ms", "-5"], "--latency-ms must be > 0"),
    (["--qps", "10"], "needs a latency bound"),
    (["--scenario", "burst", "--qps", "10", "--latency-ms", "5"], "unknown scenario 'burst'"),
    (["--scenario", "offline", "--find-peak"], "--find-peak searches a server QPS"),
    (["--backend", "tensorrt", "--qps", "10", "--latency-ms", "5"], "unknown backend"),
    (["--model", "builtin:nope", "--qps", "10", "--latency-ms", "5"], "unknown built-in model"),
    (["--model", "ckpt:/no/such/dir", "--qps", "10", "--latency-ms", "5"], "does not exist"),
    (["--model", "onnx:{junk}", "--qps", "10", "--latency-ms", "5"], "not an ONNX model"),
    (["--qps", "ten", "--latency-ms", "5"], "Invalid value for '--qps'"),
    (["--scenario", "offline", "--mode", "speed"], "--mode: allowed performance, accuracy"),
    (["--qps", "10", "--latency-ms", "5", "--find-peak", "--mode", "accuracy"],
     "--find-peak times performance runs"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, needle):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    args = [a.replace("{junk}", str(junk)) for a in args]
    if "--model" not in args:
        args = ["--model", "builtin:student-50x", *args]
    code = main(["loadtest", *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert needle in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("conf,needle", [
    (None, "cannot read it"),
    ("*.Server.target_qps = 10\n*.Server.latency = 5\n", "line 2: unknown key 'latency'"),
])
def test_a_bad_user_conf_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, conf, needle):
    path = tmp_path / "user.conf"
    if conf is not None:
        path.write_text(conf)
    code = main(["loadtest", "--model", "builtin:student-50x", "--qps", "10", "--latency-ms",
                 "5", "--user-conf", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "out").exists()


def test_a_model_that_does_not_load_is_one_line(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"config": {"n_layer": 1, "n_embd": 16,
                                                             "n_head": 2, "block_size": 64}}))
    (ckpt / "model.safetensors").write_bytes(b"\0" * 16)  # not safetensors
    proc = roi("loadtest", "--model", f"ckpt:{ckpt}", "--qps", 10, "--latency-ms", 5,
               "--out", tmp_path / "out", *SHORT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ckpt:")


@pytest.mark.slow
def test_short_server_run_and_peak_search_on_a_tiny_model(tmp_path):
    out = tmp_path / "run"
    proc = roi("loadtest", "--model", TINY, "--scenario", "server", "--qps", 500,
               "--latency-ms", 50, "--out", out, *SHORT)
    assert proc.returncode == 0, proc.stderr
    assert "server 500 QPS; VALID" in proc.stdout
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["source"] == "loadgen" and row["status"] == "ok" and row["role"] == "student"
    assert row["loadgen_result"] == "VALID" and row["loadgen_early_stopping"] == "satisfied"
    assert row["n_calls"] == row["loadgen_queries"] >= 662  # p99's early-stopping minimum
    assert 400 < row["loadgen_scheduled_qps"] < 600 and row["latency_ms_p99"] < 50
    assert row["backend_torch_intra_op_threads"] == 1 and row["loadgen_workers"] == 1
    logs = out / row["loadgen_log_dir"]
    assert (logs / "mlperf_log_summary.txt").is_file()
    assert (logs / "mlperf_log_detail.txt").is_file()

    # rising rates keep the search short: each run is 500 queries at 800 QPS or more
    proc = roi("loadtest", "--model", TINY, "--qps", 800, "--latency-ms", 5, "--find-peak",
               "--max-runs", 3, "--min-query-count", 500, "--out", out, *SHORT)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["loadgen_mode"] == "find-peak-step"]
    peaks = [r for r in rows if r["loadgen_mode"] == "find-peak"]
    assert 1 <= len(steps) <= 3 and len(rows) == 1 + len(steps) + len(peaks)
    assert "probe 1/3: 800 QPS (VALID up to ?, INVALID from ?)" in proc.stdout
    assert proc.stdout.count("probe ") == len(steps) and (out / "find-peak.png").is_file()
    if peaks:  # the highest VALID rate of the search, which never saw it INVALID below
        (peak,) = peaks
        valid = [s["loadgen_target_qps"] for s in steps if s["loadgen_valid"]]
        assert peak["loadgen_peak_qps"] == max(valid) and peak["loadgen_valid"]
        assert "peak:" in proc.stdout
    else:
        assert "no VALID run" in proc.stdout


def test_accuracy_mode_on_a_tiny_model(tmp_path, capsys):
    """Offline AccuracyOnly through the CLI: every sample answered once and logged, the row
    scored against the PyTorch model (the same model here: full agreement)."""
    out = tmp_path / "acc"
    code = main(["loadtest", "--model", TINY, "--scenario", "Offline", "--mode", "accuracy",
                 "--out", str(out), *SHORT])
    printed = capsys.readouterr().out
    assert code == 0 and "100.0% of 32 samples agree with torch-eager" in printed, printed
    (row,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert row["loadgen_mode"] == "accuracy" and row["accuracy_agreement"] == 1.0
    assert row["accuracy_gate"] == "reference"  # torch-eager is its own reference
    assert row["accuracy_samples"] == row["n_calls"] == 32 and row["status"] == "ok"
