"""Interrupts at random points of the measuring commands (issue 18), in the harness of
test_interrupt_resume: `roi bench` and `roi loadtest` on a tiny model get SIGINT (the process
group) or SIGKILL (the main process) at a seeded random moment, are resumed by the documented
command, and must end with what an uninterrupted run writes:

- bench (two rounds, so that an interrupt can fall between a row's rounds): the same rows,
  equal in every column no clock decides, and each row's raw samples those its figures were
  computed from (the count, the percentiles, the after-idle median);
- loadtest: Ctrl-C exits 130 with the partial run written as a row marked `interrupted`; its
  documented resume (rerun the command) replaces that row with a finished one, equal to an
  uninterrupted run's in every column no clock decides.

Two writers: a second bench or loadtest on the --out of one stopped at a random moment is refused
naming its PID, and the first finishes unharmed; two benches exporting the same model into one fresh
cache, the second started at a random moment of the first, both measure their row.

ROI_INTERRUPT_TRIALS / ROI_INTERRUPT_SEED as in test_interrupt_resume.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from ..conftest import TINY, TINY_B
from .test_interrupt_resume import (SEED, TRIALS, Command, _finish, _popen, second_writer,
                                    straight, trial)

pytestmark = pytest.mark.slow  # each trial runs the command three or four times

# bench columns no clock decides: the key, what was run, and how many rounds were pooled
BENCH_STABLE = ("model", "role", "backend", "device", "dtype", "batch_size", "seq_len",
                "threads", "status", "error", "source", "variant", "params",
                "flops_per_sample", "weight_bytes", "n_layers", "rounds", "row_id",
                "decode_mode", "model_family")
LOADTEST_STABLE = ("model", "role", "backend", "device", "dtype", "batch_size", "seq_len",
                   "threads", "status", "error", "source", "params", "loadgen_scenario",
                   "loadgen_mode", "loadgen_target_qps", "loadgen_latency_bound_ms",
                   "loadgen_percentile", "loadgen_samples", "loadgen_min_duration_ms",
                   "loadgen_min_query_count", "loadgen_workers", "loadgen_max_batch", "row_id")


def rows(out: Path) -> list[dict]:
    text = (out / "results.jsonl").read_text()
    assert text.endswith("\n"), f"{out}: results.jsonl ends in a torn line"
    return [json.loads(x) for x in text.splitlines()]


def stable_rows(out: Path, columns: tuple[str, ...]) -> list[tuple]:
    found = sorted(tuple((c, r.get(c)) for c in columns) for r in rows(out))
    assert len(found) == len(set(found)), f"{out}: duplicated rows"
    return found


def samples_match_rows(out: Path) -> None:
    """Each ok row's figures are those of its raw samples: none lost, none counted twice."""
    from bench.stats import summarize_ns
    from contracts.results import load_samples

    for r in rows(out):
        if r["status"] != "ok":
            continue
        raw = load_samples(out, r["row_id"])
        where = f"{out} row {r['model']} {r['backend']} (rounds {r['rounds']})"
        assert "latency_ns" in raw, f"{where}: no raw samples"
        got = summarize_ns(raw["latency_ns"])
        assert got["n_calls"] == r["n_calls"], f"{where}: {got['n_calls']} samples, row " \
                                               f"says {r['n_calls']}"
        for p in ("latency_ms_p50", "latency_ms_p99", "latency_ms_mean"):
            assert got[p] == pytest.approx(r[p], rel=1e-9), (where, p, got[p], r[p])
        if "after_idle_ns" in raw:
            assert len(raw["after_idle_ns"]) == r["after_idle_n"], where
            median = float(np.median(raw["after_idle_ns"])) / 1e6
            assert median == pytest.approx(r["after_idle_ms_p50"], rel=1e-9), where


def same_bench(a: Path, b: Path) -> None:
    x, y = stable_rows(a, BENCH_STABLE), stable_rows(b, BENCH_STABLE)
    assert x == y, f"rows differ: {sorted(set(x) ^ set(y))[:4]}"
    assert all(dict(r)["status"] == "ok" for r in y), y
    samples_match_rows(b)
    assert (b / "results.csv").is_file() and (b / "speedups.csv").is_file()


def same_loadtest(a: Path, b: Path) -> None:
    x, y = stable_rows(a, LOADTEST_STABLE), stable_rows(b, LOADTEST_STABLE)
    assert x == y, f"rows differ: {x} vs {y}"
    assert (b / "results.csv").is_file()


def loadtest_interrupted(out: Path, sig: signal.Signals, code: int, err: str) -> None:
    """After Ctrl-C (exit 130) the run cut short is a row marked interrupted, unless a finished
    run of the same settings is there already (it is never overwritten by a partial one)."""
    if sig != signal.SIGINT or code != 130:
        return
    assert "marked interrupted" in err, err[-2000:]
    statuses = [r["status"] for r in rows(out)]
    assert len(statuses) == 1 and statuses[0] in ("interrupted", "ok"), statuses


def _bench(root: Path) -> Command:
    out = root / "out"
    argv = ["bench", "--teacher", TINY, "--students", TINY_B, "--backends", "torch-eager",
            "--batch-sizes", "1", "--seq-lens", "16", "--threads", "1", "--device", "cpu",
            "--quick", "--rounds", "2", "--no-isolate", "--out", str(out)]
    return Command("bench", argv, out, ["--resume"], same_bench,
                   {"ROI_CACHE_DIR": str(root / "cache")})


def _loadtest(root: Path) -> Command:
    out = root / "out"
    argv = ["loadtest", "--model", TINY, "--backend", "torch-eager", "--seq-len", "16",
            "--threads", "1", "--samples", "16", "--qps", "50", "--latency-ms", "100",
            "--min-duration-ms", "1500", "--min-query-count", "32", "--out", str(out)]
    return Command("loadtest", argv, out, [], same_loadtest,
                   after_interrupt=loadtest_interrupted)


MAKERS = {"bench": _bench, "loadtest": _loadtest}


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    made: dict = {}

    def get(name: str):
        if name not in made:
            made[name] = straight(MAKERS[name](tmp_path_factory.mktemp(f"{name}-ref")))
        return made[name]

    return get


@pytest.mark.parametrize("name,index", [pytest.param(n, i, id=f"{n}-{i}")
                                        for n in MAKERS for i in range(TRIALS)])
def test_measuring_interrupted_at_random_points_resumes_to_the_same_rows(
        tmp_path_factory, references, name, index):
    ref = references(name)
    trial(MAKERS[name](tmp_path_factory.mktemp(f"{name}-{index}")), ref, index)


# The default run (1 trial) checks bench's second writer (the case that once mixed two runs'
# rows and raw samples); loadtest's lock is the same dir_lock, held and refused at fixed points
# in tests/unit/test_loadgen.py; ROI_INTERRUPT_TRIALS >= 2 runs it at random points too.
WRITERS = [pytest.param(n, i, id=f"{n}-{i}") for n in MAKERS for i in range(TRIALS)
           if n == "bench" or TRIALS > 1]


@pytest.mark.parametrize("name,index", WRITERS)
def test_a_second_writer_on_one_out_is_refused_naming_the_first(tmp_path_factory, references,
                                                                 name, index):
    second_writer(MAKERS[name](tmp_path_factory.mktemp(f"{name}-writers-{index}")),
                  references(name), index)


def test_two_benches_racing_one_fresh_export_cache_both_measure_their_row(tmp_path):
    delay = random.Random(f"{SEED}-export-race").uniform(0, 2.0)
    env = {"ROI_CACHE_DIR": str(tmp_path / "cache")}
    outs = [tmp_path / "a", tmp_path / "b"]
    argv = ["bench", "--teacher", TINY, "--students", TINY, "--backends", "ort-fp32",
            "--batch-sizes", "1", "--seq-lens", "16", "--threads", "1", "--device", "cpu",
            "--quick", "--no-isolate", "--out"]  # one model (a student equal to the teacher)
    first = _popen(argv + [str(outs[0])], env)
    time.sleep(delay)  # within the first's start-up and export: both export the same model
    second = _popen(argv + [str(outs[1])], env)
    results = [_finish(first), _finish(second)]
    where = f"second bench started {delay:.2f} s after the first (ROI_INTERRUPT_SEED={SEED})"
    for out, (code, err) in zip(outs, results):
        assert code == 0, f"{where}: {out.name} exit {code}\n{err[-3000:]}"
        statuses = {(r["model"], r["status"], r["error"]) for r in rows(out)}
        assert statuses == {(TINY, "ok", "")}, f"{where}: {statuses}"
    entries = sorted((tmp_path / "cache" / "onnx").iterdir())
    assert len(entries) == 1, entries  # built once, used by both
    for e in entries:
        assert (e / "model.onnx").is_file() and json.loads((e / "info.json").read_text()), e
    left = [p for p in (tmp_path / "cache").rglob("*") if "tmp" in p.name]
    assert not left, f"{where}: temporary files left in the cache: {left}"
