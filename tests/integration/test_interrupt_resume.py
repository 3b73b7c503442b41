"""Interrupts at random points (issue 18): `roi distill`, `roi generate` and `roi run` on tiny
settings get SIGINT (Ctrl-C: the whole process group, as a terminal sends it) or SIGKILL (the
main process alone, as the OOM killer does) at a seeded random moment of their work, are resumed
with the documented command (the one the Ctrl-C line prints; after SIGKILL the same command with
--resume, or as it was for `roi run`), and must end with what an uninterrupted run writes:

- distill: metrics (every figure but wall times and speed) and the student's and baseline's
  weights bit for bit;
- generate: the same set of whole JSONL lines (the `time` field aside), none torn or duplicated;
- run: every step finished, the distillation bit for bit, the same benchmark rows (keys and
  status) and the same distilled student; latencies are measurements that differ between any
  two runs, and so may the plan's decision that follows them.

Each trial interrupts a run and then its resumed run (2 random points), so that resuming an
interrupted resume is tried too. CI runs one trial per command; ROI_INTERRUPT_TRIALS=N runs N,
ROI_INTERRUPT_SEED picks another sequence of points. A failure names the seed, the trial, each
signal and its moment. A moment counts from when the command holds its --out's lock (its work
has started): a Ctrl-C during the interpreter's own start-up, before any of roi's code runs, is
a KeyboardInterrupt that no program can catch.

Two writers (second_writer): a run stopped at a random moment while a second one starts on the
same --out; the second is refused naming the first's PID, and the first finishes unharmed.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil
import pytest
import yaml

from ..conftest import TINY
from .test_trainer import corpus  # noqa: F401  (module-scoped fixture)

pytestmark = pytest.mark.slow  # each trial runs the command twice or three times, in subprocesses

TRIALS = int(os.environ.get("ROI_INTERRUPT_TRIALS", "1"))
POINTS = 2  # interrupts per trial: the run, then its resumed run
SEED = int(os.environ.get("ROI_INTERRUPT_SEED", "18"))
STUDENT = "builtin:n_layer=1,n_embd=32,n_head=2,block_size=32"
TRAINER = dict(student=STUDENT, steps=12, batch_size=4, block_size=32, eval_every=4,
               ckpt_every=4, warmup_steps=2, eval_windows=8, threads=1, lr=3e-3,
               val_fraction=0.2, test_fraction=0.2)


@dataclass
class Command:
    """One `roi` invocation under test: its arguments, its --out, how SIGKILL is resumed."""

    name: str
    argv: list[str]
    out: Path
    resume_flag: list[str]
    compare: Callable[[Path, Path], None]
    env: dict = field(default_factory=dict)
    # checks --out after an interrupt: (out, signal, exit code, stderr)
    after_interrupt: Callable[[Path, signal.Signals, int, str], None] | None = None


@dataclass
class Reference:
    """The uninterrupted run: its output and how long its work took after it locked --out."""

    out: Path
    work_s: float


def _popen(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
                            start_new_session=True)  # its own process group, as in a terminal


def _wait_for(out: Path, proc: subprocess.Popen) -> float:
    """Seconds until `proc` holds the lock on `out` (its PID in the lock file: its work has
    started, past the interpreter's start-up, where no program can catch a Ctrl-C) or ended.
    Not --out's existence: a resumed run finds it there before it starts."""
    from contracts.io import LOCK_FILE

    t0, lock = time.monotonic(), out / LOCK_FILE
    while proc.poll() is None:
        try:
            if lock.read_text().strip() == str(proc.pid):
                break
        except OSError:  # not made yet
            pass
        time.sleep(0.02)
    return time.monotonic() - t0


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    """Wait for `proc`; then no process of its group may be left running (a worker that
    outlives its parent could write into --out under the resumed run)."""
    _, err = proc.communicate(timeout=timeout)
    deadline = time.monotonic() + 10
    while _group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _group(proc.pid)
    for p in left:
        p.kill()
    assert not left, f"left running after the command ended: {[p.cmdline() for p in left]}"
    return proc.returncode, err


def _group(pgid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def straight(cmd: Command) -> Reference:
    proc = _popen(cmd.argv, cmd.env)
    t0 = time.monotonic()
    started = _wait_for(cmd.out, proc)
    code, err = _finish(proc)
    assert code == 0, err[-3000:]
    return Reference(cmd.out, time.monotonic() - t0 - started)


def interrupt(cmd: Command, argv: list[str], sig: signal.Signals, delay: float
              ) -> tuple[int, str]:
    """Start `roi argv`, send `sig` `delay` seconds after it locked its --out; (exit code,
    stderr)."""
    proc = _popen(argv, cmd.env)
    _wait_for(cmd.out, proc)
    time.sleep(delay)
    if proc.poll() is None:
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
    return _finish(proc)


def resume_argv(cmd: Command, argv: list[str], sig: signal.Signals, code: int, err: str
                ) -> list[str]:
    """The documented resume command of `roi argv`: the one its Ctrl-C line names (the same
    command where the line says to rerun it), else the same command with the resume flag."""
    if sig == signal.SIGINT and code == 130:
        lines = [x for x in err.strip().splitlines() if x.strip()]
        assert lines and lines[-1].startswith("interrupted: "), err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        assert sum(x.startswith(("interrupted", "error")) for x in lines) == 1, err[-3000:]
        if "`" not in lines[-1]:
            assert lines[-1].endswith("rerun the command to measure again"), lines[-1]
            return argv
        again = shlex.split(lines[-1].split("`")[1])
        assert again[0] == "roi", lines[-1]
        return again[1:]
    return argv + [f for f in cmd.resume_flag if f not in argv]


def trial(cmd: Command, ref: Reference, index: int) -> None:
    """POINTS interrupts in a row (SIGINT and SIGKILL in turn, each at a random moment of what
    is left, the resumed run interrupted again), then a resume to the end and the comparison."""
    rng = random.Random(f"{SEED}-{cmd.name}-{index}")
    argv, done = cmd.argv, []
    for point in range(POINTS):
        sig = (signal.SIGINT, signal.SIGKILL)[(index + point) % 2]
        delay = rng.uniform(0, ref.work_s)
        done.append(f"{sig.name} {delay:.2f} s into `roi {shlex.join(argv)}`")
        where = (f"{cmd.name} trial {index} (ROI_INTERRUPT_SEED={SEED}, {ref.work_s:.1f} s of "
                 f"work uninterrupted): " + "; then ".join(done))
        code, err = interrupt(cmd, argv, sig, delay)
        allowed = {signal.SIGINT: (130, 0), signal.SIGKILL: (-signal.SIGKILL, 0)}[sig]
        assert code in allowed, f"{where}: exit {code}\n{err[-3000:]}"
        if cmd.after_interrupt:
            _checked(where, cmd.after_interrupt, cmd.out, sig, code, err)
        argv = resume_argv(cmd, argv, sig, code, err)
    code, err = _finish(_popen(argv, cmd.env))
    assert code == 0, f"{where}: resume `roi {shlex.join(argv)}` exit {code}\n{err[-3000:]}"
    _checked(f"{where}: resumed output differs from an uninterrupted run", cmd.compare, ref.out,
             cmd.out)


def _checked(where: str, check: Callable, *args) -> None:
    """`check(*args)`, its AssertionError prefixed with `where` (seed, trial, signals)."""
    try:
        check(*args)
    except AssertionError as e:
        raise AssertionError(f"{where}: {e}") from None


def _stopped_holding(cmd: Command, window: float, rng: random.Random
                     ) -> tuple[subprocess.Popen, float]:
    """`cmd` started and stopped (SIGSTOP, its whole group) at a random moment of the first
    `window` seconds after it locked --out, while it still holds the lock; a moment past its
    locked work (this run was faster than the reference) is drawn again, earlier, on a fresh
    run. (the stopped process, the moment)"""
    import shutil

    from contracts.errors import InputError
    from contracts.io import check_unlocked

    for _ in range(4):
        delay = rng.uniform(0, window)
        first = _popen(cmd.argv, cmd.env)
        _wait_for(cmd.out, first)
        time.sleep(delay)
        try:
            os.killpg(first.pid, signal.SIGSTOP)
            check_unlocked(cmd.out)
        except InputError:  # stopped while it holds --out
            return first, delay
        except ProcessLookupError:  # its whole group has ended
            pass
        os.killpg(first.pid, signal.SIGCONT)
        assert _finish(first)[0] == 0, f"{cmd.name}: the first run failed"
        shutil.rmtree(cmd.out)
        window = delay / 2
    raise AssertionError(f"{cmd.name}: no run was stopped while it held {cmd.out}")


def second_writer(cmd: Command, ref: Reference, index: int) -> None:
    """A run stopped at a random moment of its work while a second one on the same --out starts
    (with or without the resume flag, in turn): the second is refused in one line naming the
    first's PID, exit 2; the first, continued, finishes with what an uninterrupted run writes."""
    rng = random.Random(f"{SEED}-{cmd.name}-writers-{index}")
    argv = cmd.argv + (cmd.resume_flag if index % 2 else [])
    first, delay = _stopped_holding(cmd, 0.6 * ref.work_s, rng)
    where = (f"{cmd.name} two writers {index} (ROI_INTERRUPT_SEED={SEED}): the first stopped "
             f"{delay:.2f} s into its work, then `roi {shlex.join(argv)}`")
    try:
        code, err = _finish(_popen(argv, cmd.env), timeout=300)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1, f"{where}: exit {code}\n{err[-3000:]}"
    assert f"is in use by another process (PID {first.pid})" in lines[0], f"{where}: {lines}"
    code, err = _finish(first)
    assert code == 0, f"{where}: the first ended with exit {code}\n{err[-3000:]}"
    _checked(f"{where}: the first's output differs from an uninterrupted run", cmd.compare,
             ref.out, cmd.out)


# ------------------------------------------------------------------------------ comparisons

VOLATILE = ("wall_s", "speed", "time", "updated", "started", "created", "invocations")


def stable(doc):
    """`doc` without the fields that are clocks or speeds."""
    if isinstance(doc, dict):
        return {k: stable(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [stable(v) for v in doc]
    return doc


def same_tensors(a: Path, b: Path) -> None:
    from safetensors.numpy import load_file

    x, y = load_file(str(a)), load_file(str(b))
    assert x.keys() == y.keys(), (a, b)
    differ = [k for k in x if x[k].dtype != y[k].dtype or x[k].tobytes() != y[k].tobytes()]
    assert not differ, f"{b}: tensors {differ[:5]} differ from {a}"


def same_json(a: Path, b: Path) -> None:
    x, y = (stable(json.loads(p.read_text())) for p in (a, b))
    if x != y:
        keys = [k for k in dict.fromkeys([*x, *y]) if x.get(k) != y.get(k)]
        raise AssertionError(f"{b.name}: {keys} differ: {[(x.get(k), y.get(k)) for k in keys]}")


def same_distillation(a: Path, b: Path) -> None:
    same_json(a / "metrics.json", b / "metrics.json")
    for weights in ("model.safetensors", "baseline/model.safetensors"):
        same_tensors(a / weights, b / weights)


def same_samples(a: Path, b: Path) -> None:
    def lines(out: Path) -> list[str]:
        data = (out / "samples.jsonl").read_text()
        assert data.endswith("\n"), f"{out}: samples.jsonl ends in a torn line"
        return [json.dumps(stable(json.loads(x)), sort_keys=True) for x in data.split("\n") if x]

    x, y = lines(a), lines(b)
    ids = [json.loads(line)["id"] for line in y]
    assert len(ids) == len(set(ids)), f"duplicated samples: {len(ids) - len(set(ids))}"
    assert set(x) == set(y), f"{len(set(x) - set(y))} lines missing, {len(set(y) - set(x))} new"
    m = json.loads((b / "manifest.json").read_text())
    assert m["samples"] == m["prompts"] == len(y) and m["missing"] == 0, stable(m)


def bench_rows(run: Path, table: str) -> list[tuple]:
    """The rows' keys and status (the run's own directory, in a ckpt: spec, as RUN)."""
    import pandas as pd

    path = run / table
    df = pd.read_csv(path)
    keys = ["model", "role", "backend", "device", "dtype", "batch_size", "seq_len", "threads",
            "status"]
    df["model"] = df["model"].astype(str).str.replace(str(run.resolve()), "RUN", regex=False)
    rows = [tuple(r) for r in df[keys].astype(str).itertuples(index=False)]
    assert len(rows) == len(set(rows)), f"{path}: duplicated rows"
    return sorted(rows)


# the parts of the answer that no measurement decides (the plan's go and its recommended
# student follow the latencies, which differ between any two runs on a busy machine)
ANSWER = ("stopped", "distilled_student", "trainer_steps", "achieved_retention")


def same_run(a: Path, b: Path) -> None:
    from app.run import STEPS

    state = json.loads((b / "state.json").read_text())  # a step redone is recorded last
    assert sorted(state["steps"]) == sorted(s.name for s in STEPS), list(state["steps"])
    assert "stopped" not in state, state
    missing = [o for s in STEPS for o in s.outputs if not (b / o).is_file()]
    assert not missing, f"outputs missing: {missing}"
    x, y = (json.loads((p / "summary.json").read_text()) for p in (a, b))
    assert {k: x[k] for k in ANSWER} == {k: y[k] for k in ANSWER}
    same_distillation(a / "distill", b / "distill")
    for table in ("bench/results.csv", "bench-student/results.csv"):
        assert bench_rows(a, table) == bench_rows(b, table), table
    for doc in ("plan/plan.json", "replan/plan.json"):  # whole documents, decided
        assert isinstance(json.loads((b / doc).read_text())["decision"]["go"], bool), doc
    assert (b / "report" / "report.html").stat().st_size > 1000


# ------------------------------------------------------------------------------ the commands


def _distill(root: Path, corpus_path: str) -> Command:
    plan = root.parent / "plan.yaml"
    if not plan.exists():
        trainer = {**TRAINER, "teacher": TINY, "mode": "kd", "data_source": corpus_path}
        plan.write_text(yaml.safe_dump({"version": 1, "decision": {"go": True, "reasons": []},
                                        "trainer": trainer}))
    out = root / "out"
    return Command("distill", ["distill", "--plan", str(plan), "--out", str(out)], out,
                   ["--resume"], same_distillation, {"ROI_CACHE_DIR": str(root / "cache")})


def _generate(root: Path, corpus_path: str) -> Command:
    out = root / "out"
    argv = ["generate", "--out", str(out), "--teacher", TINY, "--num-prompts", "48",
            "--batch-size", "2", "--max-new-tokens", "24", "--set", f"data_source={corpus_path}",
            "--set", "val_fraction=0.2", "--set", "test_fraction=0.2", "--set",
            "prompt_chars=24", "--set", "threads=1"]
    return Command("generate", argv, out, ["--resume"], same_samples)


def _run(root: Path, corpus_path: str) -> Command:
    config = root.parent / "run.yaml"
    if not config.exists():
        trainer = {k: v for k, v in TRAINER.items() if k not in ("student", "lr")}
        config.write_text(yaml.safe_dump({
            "teacher": TINY, "students": [STUDENT], "scenarios": ["real-time-api"],
            "force": True, "pilot": {"enabled": False},
            "bench": {"backends": ["torch-eager"], "batch_sizes": [1], "seq_lens": [16],
                      "threads": [1], "rounds": 1, "quick": True, "isolate": False,
                      "device": "cpu"},
            "trainer": {**trainer, "steps": 8, "data_source": corpus_path}}))
    out = root / "out"
    return Command("run", ["run", "--quick", "--config", str(config), "--out", str(out)], out,
                   [], same_run, {"ROI_CACHE_DIR": str(root / "cache")})


MAKERS = {"distill": _distill, "generate": _generate, "run": _run}


@pytest.fixture(scope="module")
def references(tmp_path_factory, corpus):  # noqa: F811
    """Each command's uninterrupted run, made when a test first needs it."""
    made: dict[str, Reference] = {}

    def get(name: str) -> Reference:
        if name not in made:
            made[name] = straight(MAKERS[name](tmp_path_factory.mktemp(f"{name}-ref"), corpus))
        return made[name]

    return get


@pytest.mark.parametrize("index", range(TRIALS))
def test_a_second_distill_on_one_out_is_refused_naming_the_first(
        tmp_path_factory, corpus, references, index):  # noqa: F811
    ref = references("distill")
    second_writer(_distill(tmp_path_factory.mktemp(f"writers-{index}"), corpus), ref, index)


@pytest.mark.parametrize("name,index", [pytest.param(n, i, id=f"{n}-{i}")
                                        for n in MAKERS for i in range(TRIALS)])
def test_interrupted_at_random_points_resumes_to_the_same_result(
        tmp_path_factory, corpus, references, name, index):  # noqa: F811
    ref = references(name)
    trial(MAKERS[name](tmp_path_factory.mktemp(f"{name}-{index}"), corpus), ref, index)
