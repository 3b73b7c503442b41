"""The trainer on a tiny model: resume after SIGKILL is exact, NaN stops, settings validate."""

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from distill.config import load_config, make_config
from distill.trainer import STATE_FILE, TrainingDiverged, train
from contracts.errors import InputError

TINY = "builtin:n_layer=2,n_embd=32,n_head=2,block_size=32"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    """A few real stdlib modules cut into 40-line documents: fast to split, real code to learn."""
    root = Path(sysconfig.get_paths()["stdlib"])
    lines = "\n".join((root / m).read_text() for m in ("json/decoder.py", "json/encoder.py",
                                                         "textwrap.py", "string.py", "shlex.py"))
    lines = lines.splitlines()
    docs = ["\n".join(lines[i : i + 40]) for i in range(0, len(lines), 40)]
    path = tmp_path_factory.mktemp("corpus") / "code.jsonl"
    path.write_text("\n".join(json.dumps({"text": d}) for d in docs))
    return str(path)


def _cfg(corpus: str, **kw):
    base = dict(teacher=None, mode="ce", student=TINY, steps=12, batch_size=4, block_size=32,
                eval_every=6, ckpt_every=4, warmup_steps=2, eval_windows=8, threads=1,
                data_source=corpus, val_fraction=0.2, test_fraction=0.2)
    return make_config({**base, **kw})


def _weights(path: Path) -> dict:
    return load_file(str(path / "model.safetensors"))


def test_ce_training_learns_and_writes_a_checkpoint(tmp_path, corpus):
    result = train(_cfg(corpus, steps=40, eval_every=20, lr=3e-3), tmp_path / "run")
    hist = result.metrics["history"]
    assert hist[-1]["loss"] < hist[0]["loss"] < 5.6  # below uniform over 256 bytes (5.55 nats)
    run = tmp_path / "run"
    assert (run / "config.json").is_file() and (run / STATE_FILE).is_file()
    # logger auto with the tensorboard extra installed: event files, no scalars.jsonl
    assert list((run / "tb").glob("events.out.tfevents.*")) and not (run / "scalars.jsonl").exists()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["student"]["accuracy"] == result.metrics["student"]["accuracy"]


KILLER = """
import os, signal, sys
from distill.config import make_config
from distill.trainer import train
cfg = make_config({cfg})
def progress(step, total, loss):
    if step == 10:
        os.kill(os.getpid(), signal.SIGKILL)
train(cfg, sys.argv[1], progress=progress)
"""


def _scalars(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "scalars.jsonl").read_text().splitlines()]


def test_sigkill_then_resume_ends_with_identical_weights(tmp_path, corpus):
    cfg = _cfg(corpus, logger="jsonl", log_every=2)
    straight = train(cfg, tmp_path / "straight")
    script = KILLER.format(cfg=repr(cfg.model_dump()))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "killed")],
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    state = torch.load(tmp_path / "killed" / STATE_FILE, weights_only=True)
    assert state["step"] == 8 and len(state["history"]) == 1  # checkpoint before the kill
    assert [r["step"] for r in _scalars(tmp_path / "killed")][-1] == 10  # logged after it
    with pytest.raises(InputError, match="--resume"):
        train(cfg, tmp_path / "killed")
    resumed = train(cfg, tmp_path / "killed", resume=True)
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["history"] == straight.metrics["history"]  # evaluations survive too
    # the scalars: step 10 was logged before the kill, dropped and logged again on resume
    logged, once = _scalars(tmp_path / "killed"), _scalars(tmp_path / "straight")
    train_steps = [r["step"] for r in logged if "train/loss" in r]
    assert train_steps == [2, 4, 6, 8, 10, 12]
    assert [r["step"] for r in logged if "eval/loss" in r] == [6, 12]
    assert [r["train/loss"] for r in logged if "train/loss" in r] == [
        r["train/loss"] for r in once if "train/loss" in r]
    assert all(r["train/tokens_per_s"] > 0 and r["train/lr"] > 0 for r in logged
               if "train/loss" in r)


def test_resume_with_other_settings_is_refused(tmp_path, corpus):
    train(_cfg(corpus, steps=4), tmp_path / "r")
    with pytest.raises(InputError, match="other settings"):
        train(_cfg(corpus, steps=4, lr=0.5), tmp_path / "r", resume=True)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, corpus):
    with pytest.raises(TrainingDiverged, match="step"):
        train(_cfg(corpus, steps=30, lr=1e6, grad_clip=1e9, warmup_steps=0, ckpt_every=1),
              tmp_path / "nan")
    state = torch.load(tmp_path / "nan" / STATE_FILE, weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize("field,value,match", [
    ("temperature", 0, "temperature"),
    ("alpha", 1.5, "alpha"),
    ("mode", "magic", "mode"),
    ("steps", -1, "steps"),
    ("unknown_field", 1, "unknown_field"),
])
def test_bad_settings_name_the_field(field, value, match):
    with pytest.raises(InputError, match=match):
        make_config({field: value})


def test_yaml_config_and_overrides(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("steps: 7\ntemperature: 4.0\n")
    cfg = load_config(path, {"alpha": 0.9, "steps": None})
    assert (cfg.steps, cfg.temperature, cfg.alpha) == (7, 4.0, 0.9)
    path.write_text("steps: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(path)


def test_kd_from_a_trained_teacher_reports_retention(tmp_path, corpus):
    teacher = train(_cfg(corpus, steps=20, lr=3e-3), tmp_path / "teacher").metrics
    cfg = _cfg(corpus, teacher=f"ckpt:{tmp_path / 'teacher'}", mode="kd", steps=8,
               student="builtin:n_layer=1,n_embd=32,n_head=2,block_size=32", alpha=0.7,
               temperature=2.0)
    result = train(cfg, tmp_path / "kd")
    m = result.metrics
    assert m["init"] == "teacher layers [0]"
    assert m["retention_accuracy"] == m["student"]["accuracy"] / m["teacher"]["accuracy"]
    assert 0 < m["student"]["loss"] < 10 and m["teacher"]["loss"] < 5.6
    assert m["teacher_params"] == teacher["student_params"] > m["student_params"] > 0


def test_student_init_copies_selected_teacher_layers_or_stays_random():
    from models.gpt import GPT, GPTConfig
    from distill.students import init_from_teacher_layers

    torch.manual_seed(0)
    teacher = GPT(GPTConfig(n_layer=4, n_embd=32, n_head=2, block_size=32))
    student = GPT(GPTConfig(n_layer=2, n_embd=32, n_head=2, block_size=32))
    assert init_from_teacher_layers(student, teacher) == "teacher layers [0, 3]"
    for i, j in [(0, 0), (1, 3)]:
        for (n, a), b in zip(student.blocks[i].state_dict().items(),
                             teacher.blocks[j].state_dict().values()):
            assert torch.equal(a, b), n
    assert torch.equal(student.wte.weight, teacher.wte.weight)
    narrow = GPT(GPTConfig(n_layer=2, n_embd=16, n_head=2, block_size=32))
    before = [p.clone() for p in narrow.parameters()]
    assert init_from_teacher_layers(narrow, teacher).startswith("random")
    assert all(torch.equal(a, b) for a, b in zip(before, narrow.parameters()))


def test_device_is_resolved_and_an_absent_gpu_refused(monkeypatch):
    from distill.trainer import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu" and resolve_device("cpu").type == "cpu"
    with pytest.raises(InputError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(InputError, match="device"):
        make_config({"device": "tpu"})


INTERRUPTER = """
import os, signal, sys
from distill.config import make_config
from distill.trainer import train
cfg = make_config({cfg})
def progress(step, total, loss):
    if step == 5:
        os.kill(os.getpid(), signal.SIGINT)
try:
    train(cfg, sys.argv[1], progress=progress)
except KeyboardInterrupt as e:
    print("interrupted:", e)
    sys.exit(130)
"""


def test_sigint_saves_a_checkpoint_and_resume_finishes_identically(tmp_path, corpus):
    cfg = _cfg(corpus, ckpt_every=100)  # no periodic checkpoint before the interrupt
    straight = train(cfg, tmp_path / "straight")
    script = INTERRUPTER.format(cfg=repr(cfg.model_dump()))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "stopped")],
                          capture_output=True, text=True)
    assert proc.returncode == 130 and "checkpoint saved" in proc.stdout, proc.stderr
    state = torch.load(tmp_path / "stopped" / STATE_FILE, weights_only=True)
    assert 5 <= state["step"] < cfg.steps
    assert not (tmp_path / "stopped" / "model.safetensors").exists()  # unfinished: no student
    train(cfg, tmp_path / "stopped", resume=True)
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "stopped")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.metrics["history"][-1]["step"] == cfg.steps


@pytest.mark.slow
def test_compiled_student_and_live_teacher_train_to_the_same_loss(tmp_path, corpus):
    train(_cfg(corpus, steps=4), tmp_path / "teacher")
    kd = {"teacher": f"ckpt:{tmp_path / 'teacher'}", "mode": "kd", "teacher_cache": False,
          "steps": 4, "eval_every": 4, "student": "builtin:n_layer=1,n_embd=32,n_head=2,"
          "block_size=32"}
    eager = train(_cfg(corpus, **kd), tmp_path / "eager").metrics
    compiled = train(_cfg(corpus, **kd, compile=True), tmp_path / "c").metrics
    assert compiled["history"][-1]["loss"] == pytest.approx(eager["history"][-1]["loss"], rel=1e-3)
