"""Ctrl-C during `roi loadtest` (issue 18): exit 130 with one line, no crash (it used to die
with SIGSEGV/SIGABRT, 'terminate called without an active exception'), and the partial run
written as a row marked interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import TINY

pytestmark = pytest.mark.slow


def test_sigint_mid_loadtest_writes_an_interrupted_row_and_exits_130(tmp_path):
    out = tmp_path / "lt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "loadtest", "--model", TINY, "--backend",
         "torch-eager", "--seq-len", "32", "--threads", "1", "--samples", "32", "--qps", "50",
         "--latency-ms", "100", "--min-duration-ms", "60000", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180

        def started() -> bool:  # LoadGen itself has begun its log (the run's directory comes
            # earlier, before the model is loaded and warmed up: slow on a busy machine)
            return any(p.stat().st_size > 0
                       for p in (out / "loadgen").glob("*/mlperf_log_detail.txt"))

        while not started() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        time.sleep(1.5)  # LoadGen's test is running: queries issued and answered
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, (proc.returncode, err)
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), err
    assert "Traceback" not in err + stdout and "terminate called" not in err
    assert f"{out}/results.jsonl" in lines[0] and "marked interrupted" in lines[0]
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "interrupted" and row["source"] == "loadgen", row
    assert row["model"] == TINY and row["loadgen_target_qps"] == 50
    assert row["n_calls"] > 0 and "interrupted (Ctrl-C)" in row["error"]
    assert (out / "results.csv").is_file()


def test_an_interrupted_row_is_never_planned_on():
    import pandas as pd

    from contracts.errors import InputError
    from roi.hardware import load_catalog
    from contracts.results import STATUSES
    from roi.measurements import prepare

    assert "interrupted" in STATUSES
    df = pd.DataFrame([{"model": TINY, "role": "teacher", "backend": "torch", "dtype": "fp32",
                        "batch_size": 1, "seq_len": 32, "status": "interrupted",
                        "params": 1000, "latency_ms_p50": 1.0, "source": "loadgen"}])
    with pytest.raises(InputError, match="no row is ok"):
        prepare(df, load_catalog([]))
