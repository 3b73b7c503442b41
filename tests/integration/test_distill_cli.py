"""`roi distill` end to end on a tiny teacher: gate, train, baseline, export, int8, bench.

The refusals go through `app.cli.main` in-process (the function the `roi` script calls: same
exit code and stderr, without a Python start-up importing torch per case); the runs are
subprocesses."""

import json
import subprocess
import sys

import pytest
import yaml

from distill.config import make_config
from distill.trainer import train
from app.cli import main

from .test_trainer import corpus  # noqa: F401  (module-scoped fixture)

pytestmark = pytest.mark.slow  # end to end: subprocesses that import torch; still run in CI

STUDENT = "builtin:n_layer=1,n_embd=32,n_head=2,block_size=32"


def roi(*args):
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def plan_files(tmp_path_factory, corpus):  # noqa: F811
    root = tmp_path_factory.mktemp("distill")
    teacher_cfg = dict(teacher=None, mode="ce", student="builtin:n_layer=2,n_embd=32,n_head=2,"
                       "block_size=32", steps=20, batch_size=4, block_size=32, eval_every=10,
                       ckpt_every=10, warmup_steps=2, eval_windows=8, threads=1, lr=3e-3,
                       data_source=corpus, val_fraction=0.2, test_fraction=0.2)
    train(make_config(teacher_cfg), root / "teacher")
    trainer = {**teacher_cfg, "teacher": f"ckpt:{root / 'teacher'}", "mode": "kd",
               "student": STUDENT, "steps": 6, "eval_every": 6, "ckpt_every": 3}
    plans = {}
    for name, go in (("go", True), ("nogo", False)):
        plans[name] = root / f"{name}.yaml"
        plans[name].write_text(yaml.safe_dump({
            "version": 1,
            "decision": {"go": go, "reasons": ["bill $120/month is under $10K/month"]},
            "trainer": trainer,
        }))
    return root, plans


def test_distill_trains_student_and_baseline_and_exports(plan_files):
    root, plans = plan_files
    out = root / "student"
    proc = roi("distill", "--plan", str(plans["go"]), "--out", str(out), "--set", "alpha=0.8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    for key in ("teacher", "student", "baseline", "student_onnx", "student_int8"):
        assert 0 < m[key]["accuracy"] <= 1, key
    assert m["settings"]["alpha"] == 0.8 and m["settings"]["steps"] == 6
    assert m["teacher_params"] > m["student_params"] > 0  # recorded: 2 layers teach 1
    assert "smaller than its student" not in proc.stdout
    assert m["retention_accuracy"] == pytest.approx(
        m["student"]["accuracy"] / m["teacher"]["accuracy"])
    # the ONNX fp32 export computes what torch computes
    assert m["student_onnx"]["accuracy"] == pytest.approx(m["student"]["accuracy"], abs=2e-3)
    assert m["export"]["rel_err"] < 1e-3
    for name in ("config.json", "model.safetensors", "student.onnx", "student.int8.onnx",
                 "student.decode.onnx", "student.decode.int8.onnx"):
        assert (out / name).is_file()
    # what ships for generation: the KV-cache graph, verified against torch at export
    decode = m["export"]["decode"]
    assert decode["mode"] == "kv-cache" and decode["rel_err"] < 1e-3
    assert decode["file"] == "student.decode.onnx"
    assert (out / "baseline" / "model.safetensors").is_file()
    assert "KD gain over baseline" in proc.stdout
    again = roi("distill", "--plan", str(plans["go"]), "--out", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr
    bench = roi("bench", "--teacher", f"ckpt:{root / 'teacher'}", "--students", f"ckpt:{out}",
                "--backends", "ort-int8", "--seq-lens", "16", "--threads", "1", "--quick",
                "--device", "cpu", "--out", str(root / "bench"))
    assert bench.returncode == 0, bench.stderr[-2000:]


def test_no_go_plan_is_refused_unless_forced(plan_files, capsys):
    root, plans = plan_files
    code = main(["distill", "--plan", str(plans["nogo"]), "--out", str(root / "refused")])
    assert code == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "no-go" in line and "under $10K/month" in line
    assert not (root / "refused").exists()


@pytest.mark.parametrize("setup,needle", [
    ("missing", "does not exist"),
    ("garbage", "not valid YAML"),
    ("nodecision", "decision.go"),
    ("badtemp", "temperature"),
    ("badset", "key=value"),
])
def test_bad_plans_and_settings_are_one_line_exit_2(plan_files, tmp_path, capsys, setup, needle):
    _, plans = plan_files
    plan = plans["go"]
    extra = []
    if setup == "missing":
        plan = tmp_path / "nope.yaml"
    elif setup == "garbage":
        plan = tmp_path / "g.yaml"
        plan.write_text("decision: [unclosed\n")
    elif setup == "nodecision":
        plan = tmp_path / "n.yaml"
        plan.write_text("trainer: {}\n")
    elif setup == "badtemp":
        extra = ["--set", "temperature=0"]
    elif setup == "badset":
        extra = ["--set", "steps"]
    code = main(["distill", "--plan", str(plan), "--out", str(tmp_path / "o"), *extra])
    stderr = capsys.readouterr().err  # an exception escaping main fails the test
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in stderr
    assert not (tmp_path / "o").exists()
