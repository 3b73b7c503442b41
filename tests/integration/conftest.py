"""Integration fixtures shared across modules: one expensive run serves several tests."""

import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """One `roi run --quick` on the default (the whole pipeline, about 3 minutes on 2 cores),
    as a user runs it (a subprocess): (run directory, config file, the finished process).
    force: true makes it distill whatever the machine's measurements decide (the gate itself is
    tested in tests/unit/test_run.py). test_run_cli.py asserts on it; the walkthrough notebook
    (test_notebooks.py) resumes a copy of it, as the notebook's own rerun does."""
    root = tmp_path_factory.mktemp("roi-run")
    config = root / "config.yaml"
    config.write_text("force: true\n")
    out = root / "run"
    proc = subprocess.run([sys.executable, "-m", "app.cli", "run", "--quick", "--config",
                           str(config), "--out", str(out)], capture_output=True, text=True,
                          timeout=1800)  # a hang guard: ~3 min alone, 10+ on a shared busy host
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, config, proc
