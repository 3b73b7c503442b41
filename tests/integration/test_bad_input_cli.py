"""Hostile input to bench, distill and generate (issue 18): one line, exit 2, no traceback,
nothing written; a bench that measures nothing says so; Ctrl-C exits 130 naming how to resume."""

import json
import subprocess
import sys

import pytest
import torch
import yaml

from contracts.io import LOCK_FILE
from app.cli import main

from ..conftest import TINY, TINY_B
from .test_trainer import _cfg, corpus  # noqa: F401  (module-scoped fixture)

BINARY = bytes(range(256)) * 4  # not UTF-8 from its 129th byte on


def roi(*args):
    return subprocess.run([sys.executable, "-m", "app.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def _one_error_line(code: int, err: str, needle: str) -> None:
    lines = err.strip().splitlines()  # (distill's progress display may leave a blank line)
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], err
    assert "Traceback" not in err


@pytest.fixture
def files(tmp_path):
    """A binary file, a plain file, a plan that passes the gate, and YAML with a key twice."""
    paths = {"binary": tmp_path / "binary.yaml", "file": tmp_path / "a-file",
             "plan": tmp_path / "plan.yaml", "dup": tmp_path / "dup.yaml"}
    paths["binary"].write_bytes(BINARY)
    paths["file"].write_text("x")
    paths["plan"].write_text(yaml.safe_dump({"decision": {"go": True}, "trainer": {}}))
    paths["dup"].write_text("decision: {go: true}\ntrainer: {steps: 3}\ntrainer: {steps: 4}\n")
    return paths


# ------------------------------------------------------------------- a bench that measures nothing


@pytest.mark.parametrize("args", [
    # the LLM-scale path: config: models are projected, never run
    ["--teacher", "config:llama-3-70b", "--students", "config:llama-3-8b",
     "--backends", "ort-fp32", "--batch-sizes", "1"],
    # every configuration skipped: the sequence exceeds the models' context
    ["--teacher", TINY, "--students", TINY_B, "--backends", "torch-eager", "--batch-sizes", "1",
     "--seq-lens", "100000", "--device", "cpu"],
])
def test_a_bench_with_nothing_measured_completes_and_says_so(tmp_path, args):
    out = tmp_path / "bench"
    proc = roi("bench", *args, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "nothing was measured: of 2 rows, 2 skipped" in proc.stderr
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["skipped", "skipped"]  # written as they are
    assert (out / "results.csv").is_file() and not (out / "deploy_as.csv").exists()


def test_deploy_as_table_of_rows_without_latency_is_empty():
    import pandas as pd

    from bench.deploy import COLUMNS, deploy_as_table

    df = pd.DataFrame([{"model": "m", "role": "teacher", "status": "timeout", "error": "slow"}])
    table = deploy_as_table(df)
    assert table.empty and list(table.columns) == list(COLUMNS)


# ------------------------------------------------------------------------------- bad numbers


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_bench_timeout_must_be_finite_and_positive(tmp_path, capsys, value):
    code = main(["bench", "--teacher", TINY, f"--timeout-s={value}", "--out",
                 str(tmp_path / "o")])
    _one_error_line(code, capsys.readouterr().err, "--timeout-s must be a finite number of "
                                                   "seconds > 0")
    assert not (tmp_path / "o").exists()


def test_bench_memory_budget_nan_is_refused(tmp_path, capsys):
    code = main(["bench", "--teacher", TINY, "--memory-budget-mb", "nan", "--out",
                 str(tmp_path / "o")])
    _one_error_line(code, capsys.readouterr().err, "--memory-budget-mb must be a finite")


# ---------------------------------------------------- binary files, files where folders belong


@pytest.mark.parametrize("args,needle", [
    (["distill", "--plan", "{binary}", "--out", "{out}"], "plan file"),
    (["distill", "--plan", "{plan}", "--config", "{binary}", "--out", "{out}"], "config file"),
    (["generate", "--config", "{binary}", "--out", "{out}"], "generate settings file"),
    (["generate", "--prompts", "{binary}", "--out", "{out}"], "prompts file"),
])
def test_a_binary_file_is_one_line(tmp_path, capsys, files, args, needle):
    args = [a.format(**files, out=tmp_path / "out") for a in args]
    code = main(args)
    _one_error_line(code, capsys.readouterr().err, f"{needle} {files['binary']} is not UTF-8 text")
    assert not (tmp_path / "out").exists()


def test_a_binary_hf_config_is_one_line(tmp_path, capsys):
    model = tmp_path / "hf"
    model.mkdir()
    (model / "config.json").write_bytes(BINARY)
    code = main(["bench", "--teacher", f"hf:{model}", "--out", str(tmp_path / "out")])
    _one_error_line(code, capsys.readouterr().err, "config.json is not valid JSON")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["distill", "--plan", "{plan}"], ["generate"]])
@pytest.mark.parametrize("out,needle", [
    ("{file}", "--out: must be a directory; got the file"),
    ("{file}/sub", "is a file, so no directory can be made under it"),
])
def test_out_naming_a_file_is_one_line(capsys, files, command, out, needle):
    args = [a.format(**files) for a in [*command, "--out", out]]
    code = main(args)
    _one_error_line(code, capsys.readouterr().err, needle)
    assert files["file"].read_text() == "x"


@pytest.mark.parametrize("content", [BINARY, b'{"model": "m", "status": "ok"}\n{"model": "m", "st'])
def test_bench_resume_over_damaged_results_is_one_line(tmp_path, capsys, content):
    out = tmp_path / "bench"
    out.mkdir()
    (out / "results.jsonl").write_bytes(content)
    code = main(["bench", "--teacher", TINY, "--backends", "torch-eager", "--device", "cpu",
                 "--resume", "--out", str(out)])
    err = capsys.readouterr().err
    needle = "is not UTF-8 text" if content == BINARY else "results.jsonl:2: damaged results row"
    _one_error_line(code, err, needle)
    assert (out / "results.jsonl").read_bytes() == content
    assert [p.name for p in out.iterdir() if p.name != LOCK_FILE] == ["results.jsonl"]


# ------------------------------------------------------------------------------ duplicate keys


def test_a_duplicate_key_in_a_plan_is_one_line_naming_it(tmp_path, capsys, files):
    code = main(["distill", "--plan", str(files["dup"]), "--out", str(tmp_path / "out")])
    _one_error_line(code, capsys.readouterr().err, "(line 3, column 1): duplicate key 'trainer'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command,text", [
    ("scenarios", "name: dup\nqps: 5\nqps: 50\n"),
    ("hardware", "hardware:\n  - name: box\n    usd_per_hour: 1\n    usd_per_hour: 2\n"),
])
def test_a_duplicate_key_in_scenario_or_hardware_yaml_is_refused(tmp_path, capsys, command,
                                                                 text):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    option = "--scenario" if command == "scenarios" else "--hardware"
    code = main([command, option, str(path)])
    key = "qps" if command == "scenarios" else "usd_per_hour"
    _one_error_line(code, capsys.readouterr().err, f"duplicate key '{key}'")


# ------------------------------------------------------------------------- damaged checkpoint


def test_a_truncated_train_state_on_resume_is_one_line(tmp_path, corpus):  # noqa: F811
    from distill.trainer import STATE_FILE, train
    from contracts.errors import InputError

    cfg = _cfg(corpus, steps=2, eval_every=2, ckpt_every=1)
    train(cfg, tmp_path / "run")
    state = tmp_path / "run" / STATE_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    with pytest.raises(InputError, match="this checkpoint is damaged") as e:
        train(cfg, tmp_path / "run", resume=True)
    assert str(state) in str(e.value) and "another --out" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content", [b"", BINARY, "torch-list"])
def test_read_state_names_any_damage(tmp_path, content):
    from distill.train_state import read_state
    from contracts.errors import InputError

    path = tmp_path / "train_state.pt"
    if content == "torch-list":
        torch.save([1, 2], path)  # readable, but not a training state
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match="damaged and cannot be resumed"):
        read_state(path, torch.device("cpu"))


# ----------------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("command,target,args", [
    ("bench", "bench.sweep.plan_sweep", ["--teacher", TINY]),
    ("distill", "distill.pipeline.distill_from_plan", ["--plan", "plan.yaml"]),
    ("generate", "distill.generate.generate", []),
])
def test_ctrl_c_exits_130_with_the_command_that_resumes(tmp_path, capsys, monkeypatch, command,
                                                        target, args):
    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    out = str(tmp_path / "out")
    code = main([command, *args, "--out", out])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 130 and len(lines) == 1 and lines[0].startswith("interrupted: "), err
    again = " ".join(["roi", command, *args, "--out", out, "--resume"])
    assert f"`{again}` resumes where it stopped" in lines[0], err


def test_ctrl_c_without_out_names_the_default_directory(capsys, monkeypatch):
    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr("bench.sweep.plan_sweep", interrupted)
    assert main(["bench", "--resume"]) == 130
    err = capsys.readouterr().err
    assert "`roi bench --out runs/bench-" in err and err.count("--resume") == 1, err


def test_sigint_to_a_running_bench_exits_130_and_keeps_its_rows(tmp_path):
    import signal
    import time

    out = tmp_path / "bench"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "bench", "--teacher", TINY, "--students", TINY_B,
         "--backends", "torch-eager", "--no-isolate", "--seq-lens", "16,32,48,64",
         "--batch-sizes", "1,2,4,8", "--device", "cpu", "--quick", "--threads", "1",
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "results.jsonl").is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # mid-sweep: at least one row written, many to go
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted: ") and "Traceback" not in err
    assert f"--out {out} --resume` resumes where it stopped" in err
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert 1 <= len(rows) < 32 and all(r["status"] == "ok" for r in rows)


# ------------------------------------------------------------------------------- concurrency


def test_two_exports_of_one_model_into_one_cache_do_not_share_a_temporary_file(tmp_path,
                                                                              monkeypatch):
    """Both exporters have written their file before either renames it into place: with one
    fixed temporary name the second rename found nothing (FileNotFoundError)."""
    import threading

    from models import runtime

    both_written = threading.Barrier(2, timeout=10)

    def fake_export(tm, inputs, path):
        path.write_bytes(tm.encode() * 1000)
        both_written.wait()

    monkeypatch.setattr(runtime, "_export_dynamo", fake_export)
    monkeypatch.setattr(runtime, "verify_onnx", lambda tm, path: 0.0)
    target = tmp_path / "model.onnx"
    results, errors = [], []

    def run(name):
        try:
            results.append(runtime.export_onnx(name, {}, target))
        except Exception as e:  # noqa: BLE001 (the failure is the assertion)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [("dynamo", 0.0)] * 2
    assert target.read_bytes() in (b"a" * 1000, b"b" * 1000)  # one whole file, not a mix
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary left over


def test_a_plan_for_a_config_teacher_says_to_bring_the_checkpoint(tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "decision": {"go": True, "reasons": ["x"]},
        "trainer": {"teacher": "config:llama-3-70b", "note": "config: teachers have no "
                    "weights; distill with the real checkpoint (hf:DIR)"}}))
    code = main(["distill", "--plan", str(plan), "--out", str(tmp_path / "out")])
    _one_error_line(code, capsys.readouterr().err, "is an architecture, not a model")
    assert not (tmp_path / "out").exists()
