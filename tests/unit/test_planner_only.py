"""The planner-only install (`pip install distill-roi`, no extras): the planner commands work
without torch, ONNX, ONNX Runtime, LoadGen or transformers, and a command that needs an extra
says which one in one line (exit 2, no traceback). The missing packages are simulated in a
subprocess (None in sys.modules makes `import torch` fail as if it were not installed); CI also
runs this file in a clean venv where they are really absent (.ci/run)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import _missing_extra

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "bench_results.csv"
HEAVY = ("torch", "onnx", "onnxscript", "onnxruntime", "mlperf_loadgen", "transformers",
         "psutil", "safetensors")


def roi(tmp_path, *args, blocked=HEAVY):
    code = ("import sys\n"
            f"for m in {list(blocked)!r}: sys.modules[m] = None\n"
            "from app.cli import main\n"
            "code = main(sys.argv[1:])\n"
            f"loaded = [m for m in {[*HEAVY, *blocked]!r} if sys.modules.get(m) is not None]\n"
            "assert not loaded, loaded\n"
            "sys.exit(code)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's roi, as in the test process
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=300)


def test_plan_on_a_results_table_without_the_extras(tmp_path):
    out = tmp_path / "plan"
    proc = roi(tmp_path, "plan", "--results", FIXTURE, "--scenario", "real-time-api",
               "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads((out / "plan.json").read_text())["decision"]


def test_llm_config_plan_and_report_without_the_extras(tmp_path):
    out = tmp_path / "llm"
    proc = roi(tmp_path, "plan", "--teacher", "config:llama-3-70b", "--scenario",
               "real-time-api", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "plan.yaml").is_file() and (out / "report" / "report.html").is_file()
    run = tmp_path / "run"
    (run / "bench").mkdir(parents=True)
    (run / "bench" / "results.csv").write_text(FIXTURE.read_text())
    assert roi(tmp_path, "plan", "--results", FIXTURE, "--scenario", "cloud-batch",
               "--out", run / "plan").returncode == 0
    proc = roi(tmp_path, "report", run, "--out", tmp_path / "report")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "report" / "report.html").is_file()


def test_plans_without_matplotlib_say_how_to_get_the_figures(tmp_path):
    """matplotlib is the figures extra: roi plan writes the plans and reports without it,
    and names the extra once per command (the report: once per missing figure)."""
    line = "figures: none (matplotlib is not installed: pip install 'distill-roi[figures]')"
    for args in (["--teacher", "config:llama-3-70b"], ["--results", FIXTURE]):
        out = tmp_path / args[0].strip("-")
        proc = roi(tmp_path, "plan", *args, "--scenario", "real-time-api", "--out", out,
                   blocked=(*HEAVY, "matplotlib"))
        assert proc.returncode == 0 and line in proc.stdout.splitlines(), proc.stderr
        assert (out / "plan.json").is_file() and not (out / "figures").exists()
    md = (tmp_path / "teacher" / "report" / "report.md").read_text()
    assert "figure: matplotlib is not installed: pip install 'distill-roi[figures]'" in md


def test_catalog_commands_without_the_extras(tmp_path):
    for command in ("hardware", "scenarios"):
        proc = roi(tmp_path, command)
        assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr


@pytest.mark.parametrize("argv, extra", [
    (["bench", "--quick"], "bench"),
    (["loadtest", "--model", "builtin:teacher"], "loadtest"),
    (["distill", "--plan", "plan.yaml", "--out", "d"], "train"),
    (["pilot"], "train"),
    (["generate"], "train"),
])
def test_a_command_without_its_extra_names_it_in_one_line(tmp_path, argv, extra):
    proc = roi(tmp_path, *argv)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: roi {argv[0]} needs the {extra} extra: pip install 'distill-roi[{extra}]'"]
    assert not list(tmp_path.iterdir())  # checked before any work: no runs/ directory


def test_run_needs_bench_and_train_and_help_needs_nothing(tmp_path):
    proc = roi(tmp_path, "run", "--quick")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: roi run needs the bench and train extras: "
                                   "pip install 'distill-roi[bench,train]'")
    proc = roi(tmp_path, "bench", "--help")  # help lists the options; the run names the extra
    assert proc.returncode == 0 and "--teacher" in proc.stdout, proc.stderr


def test_roi_check_needs_bench_and_hf(tmp_path):
    proc = roi(tmp_path, "check", "llm-timing", "--model", "llama-3.2-1b", "--out", "o")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: roi check needs the bench and hf extras: pip install 'distill-roi[bench,hf]'")
    assert not list(tmp_path.iterdir())


def test_only_the_missing_extra_is_named(tmp_path):
    proc = roi(tmp_path, "loadtest", "--model", "builtin:teacher", blocked=("mlperf_loadgen",))
    assert proc.stderr.strip().endswith("pip install 'distill-roi[loadtest]'")
    assert proc.returncode == 2


def test_a_module_missing_later_is_named_by_its_extra():
    """What main() prints for a ModuleNotFoundError past the up-front check (hf: teachers)."""
    assert _missing_extra("bench", "transformers.models") == (
        "roi bench needs the hf extra: pip install 'distill-roi[hf]'")
    assert _missing_extra("distill", "torch.nn") == (
        "roi distill needs the train extra: pip install 'distill-roi[train]'")
    assert _missing_extra("bench", "no_such_module") is None  # a real bug: the traceback stays
