"""A `roi bench` worker dies with its parent (issue 18): SIGKILL to the main process leaves no
`bench.worker` behind; SIGINT exits 130 with one line, and no worker either."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from ..conftest import TINY, TINY_B

pytestmark = pytest.mark.slow


def _workers(pid: int) -> list[psutil.Process]:
    """Live bench.worker processes started by `pid` (zombies already count as gone)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status", "environ"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            env = p.info["environ"] or {}
        except psutil.Error:
            continue
        if ("bench.worker" in cmd and env.get("ROI_PARENT_PID") == str(pid)
                and p.info["status"] != psutil.STATUS_ZOMBIE):
            found.append(p)
    return found


def _start_hanging_bench(tmp_path) -> subprocess.Popen:
    """roi bench whose one worker hangs (the test hook of bench/worker.py) until killed."""
    env = {**os.environ, "ROI_BENCH_FAULT": json.dumps({"model": TINY, "kind": "hang"})}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "bench", "--teacher", TINY, "--students", TINY_B,
         "--backends", "torch-eager", "--batch-sizes", "1", "--seq-lens", "16", "--threads",
         "1", "--device", "cpu", "--quick", "--out", str(tmp_path / "bench")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_worker(proc: subprocess.Popen) -> psutil.Process:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = _workers(proc.pid)
        if found:
            time.sleep(1.0)  # past its start-up: it has asked for the parent-death signal
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no bench.worker started within 90 s")


def _gone(worker: psutil.Process, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if worker.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_bench_takes_its_worker_with_it(tmp_path, sig):
    proc = _start_hanging_bench(tmp_path)
    worker = None
    try:
        worker = _wait_for_worker(proc)
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert _gone(worker), f"bench.worker {worker.pid} outlived its parent"
    finally:
        proc.kill()
        if worker is not None and worker.is_running():
            worker.kill()


def test_sigint_to_bench_exits_130_in_one_line_and_stops_its_worker(tmp_path):
    proc = _start_hanging_bench(tmp_path)
    worker = None
    try:
        worker = _wait_for_worker(proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        lines = [x for x in err.strip().splitlines() if x.strip()]
        assert lines[-1].startswith("interrupted: ") and "Traceback" not in err, err
        assert "--resume` resumes where it stopped" in lines[-1]
        assert sum(x.startswith(("interrupted", "error")) for x in lines) == 1, err
        assert _gone(worker, within=10.0), f"bench.worker {worker.pid} outlived the Ctrl-C"
    finally:
        proc.kill()
        if worker is not None and worker.is_running():
            worker.kill()
