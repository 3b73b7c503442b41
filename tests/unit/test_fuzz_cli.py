"""Fuzz the command line (issue 18): hostile numbers in every numeric option and hostile paths
in every path option, across the subcommands. Each case: exit 2 (0 where the value is valid),
no traceback, at most 3 lines, nothing written into --out on error (tests/unit/fuzz_helpers)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from .fuzz_helpers import (FIXTURE_RESULTS, PATH_KINDS, fuzz_settings, make_path, no_work,
                           numbers, out_path, run_cli)

pytestmark = pytest.mark.usefixtures("no_work")
assert no_work  # the module fixture, used through pytestmark

TINY = "builtin:n_layer=2,n_embd=32,n_head=2,block_size=64"
TINY_B = "builtin:n_layer=1,n_embd=16,n_head=2,block_size=64"
GO_PLAN = {"decision": {"go": True, "reasons": ["fuzz"]},
           "trainer": {"teacher": TINY, "student": TINY_B, "steps": 2}}

# subcommand -> (its valid arguments before the fuzzed option, the numeric options)
NUMERIC = {
    "bench": (["--teacher", TINY, "--students", TINY_B, "--backends", "torch-eager",
               "--device", "cpu"],
              ["--timeout-s", "--memory-budget-mb", "--rounds", "--batch-sizes", "--seq-lens",
               "--threads"]),
    "loadtest": (["--model", TINY, "--backend", "torch-eager", "--scenario", "server",
                  "--qps", "10", "--latency-ms", "100"],
                 ["--qps", "--latency-ms", "--percentile", "--seq-len", "--threads",
                  "--max-batch", "--batch-window-ms", "--workers", "--min-duration-ms",
                  "--min-query-count", "--samples", "--precision", "--max-runs"]),
    "plan": (["--results", str(FIXTURE_RESULTS), "--scenario", "real-time-api", "--no-figures"],
             ["--retention-threshold", "--engineering-weeks", "--engineering-usd-per-week",
              "--training-hours", "--local-peak-gflops", "--max-steps", "--datagen-samples",
              "--datagen-prompt-tokens", "--datagen-completion-tokens",
              "--datagen-tokens-per-s"]),
    "generate": (["--teacher", TINY, "--prompts", "{prompts}"],
                 ["--num-prompts", "--max-new-tokens", "--temperature", "--top-p", "--seed",
                  "--batch-size", "--concurrency", "--max-requests"]),
    "pilot": (["--teacher", TINY, "--students", TINY_B], ["--steps", "--points"]),
    "distill": (["--plan", "{plan}"], ["--set steps", "--set lr", "--set batch_size",
                                      "--set temperature", "--set alpha", "--set seq_len"]),
}


def _fixtures(tmp: Path) -> dict:
    plan = tmp / "plan.yaml"
    plan.write_text(yaml.safe_dump(GO_PLAN))
    prompts = tmp / "prompts.jsonl"
    prompts.write_text('{"prompt": "hello there"}\n{"prompt": "general kenobi"}\n')
    return {"plan": str(plan), "prompts": str(prompts)}


def _numeric_case(capsys, command: str, option: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base, _ = NUMERIC[command]
        base = [a.format(**_fixtures(tmp)) for a in base]
        out = tmp / "out"
        if option.startswith("--set "):
            arg = ["--set", f"{option.split()[1]}={value}"]
        else:
            arg = [f"{option}={value}"]  # '=' keeps a value such as -5 from reading as a flag
        run_cli(capsys, [command, *base, *arg, "--out", str(out)], out)


def _numeric_strategy(commands: list[str]):
    pairs = [(c, o) for c in commands for o in NUMERIC[c][1]]
    return st.tuples(st.sampled_from(pairs), numbers())


@fuzz_settings(150)
@given(case=_numeric_strategy(["bench", "loadtest", "pilot"]))
def test_fuzz_numbers_bench_loadtest_pilot(capsys, case):
    (command, option), value = case
    _numeric_case(capsys, command, option, value)


@fuzz_settings(10)
@given(case=_numeric_strategy(["plan"]))
def test_fuzz_numbers_plan(capsys, case):
    (command, option), value = case
    _numeric_case(capsys, command, option, value)


@fuzz_settings(50)
@given(case=_numeric_strategy(["generate", "distill"]))
def test_fuzz_numbers_generate_distill(capsys, case):
    (command, option), value = case
    _numeric_case(capsys, command, option, value)


# --------------------------------------------------------------------------------- paths

RES = str(FIXTURE_RESULTS)
PLAN_BASE = ["plan", "--results", RES, "--scenario", "real-time-api", "--no-figures"]
# an input path P in each place one is read ({out} is a fresh directory)
INPUT_PATHS = [
    ["scenarios", "--scenario", "{p}"],
    ["hardware", "--hardware", "{p}"],
    ["scenarios", "--scenario", "cloud-batch", "--hardware", "{p}"],
    ["plan", "--results", "{p}", "--scenario", "cloud-batch", "--out", "{out}"],
    ["plan", "--results", RES, "--scenario", "{p}", "--out", "{out}"],
    [*PLAN_BASE, "--hardware", "{p}", "--out", "{out}"],
    [*PLAN_BASE, "--pilot", "{p}", "--out", "{out}"],
    [*PLAN_BASE, "--metrics", "builtin:student-10x={p}", "--out", "{out}"],
    [*PLAN_BASE, "--datagen", "api:gpt-4o-mini", "--datagen-samples", "10",
     "--datagen-prices", "{p}", "--out", "{out}"],
    ["plan", "--teacher", "config:{p}", "--scenario", "cloud-batch", "--out", "{out}"],
    ["distill", "--plan", "{p}", "--out", "{out}"],
    ["distill", "--plan", "{plan}", "--config", "{p}", "--out", "{out}"],
    ["generate", "--teacher", TINY, "--prompts", "{p}", "--out", "{out}"],
    ["generate", "--config", "{p}", "--out", "{out}"],
    ["pilot", "--config", "{p}", "--out", "{out}"],
    ["report", "{p}", "--out", "{out}"],
    ["run", "--config", "{p}", "--out", "{out}"],
    ["bench", "--teacher", "onnx:{p}", "--out", "{out}"],
    ["bench", "--teacher", "hf:{p}", "--out", "{out}"],
    ["bench", "--teacher", "ckpt:{p}", "--out", "{out}"],
    ["bench", "--teacher", TINY, "--students", "ckpt:{p}", "--out", "{out}"],
    ["loadtest", "--model", "onnx:{p}", "--scenario", "offline", "--out", "{out}"],
    ["generate", "--teacher", "ckpt:{p}", "--prompts", "{prompts}", "--out", "{out}"],
]
# an --out of a hostile kind after otherwise valid arguments
OUT_PATHS = [
    [*PLAN_BASE, "--out", "{o}"],
    ["plan", "--teacher", "config:llama-3-8b", "--scenario", "real-time-api", "--out", "{o}"],
    ["distill", "--plan", "{plan}", "--out", "{o}"],
    ["generate", "--teacher", TINY, "--prompts", "{prompts}", "--out", "{o}"],
    ["bench", "--teacher", TINY, "--backends", "torch-eager", "--device", "cpu", "--out", "{o}"],
    ["loadtest", "--model", TINY, "--backend", "torch-eager", "--scenario", "offline",
     "--out", "{o}"],
    ["pilot", "--teacher", TINY, "--students", TINY_B, "--out", "{o}"],
    ["run", "--out", "{o}"],
]
# no file of these kinds is a valid input anywhere (an empty file is an empty config; a
# directory is a model for hf:/ckpt: specs)
UNREADABLE = ("missing", "file-under-file", "dev-null", "proc-missing", "proc-file", "binary",
              "long-name", "text", "hostile-name", "nul-byte")
UNWRITABLE = ("text", "file-under-file", "dev-null", "proc-missing", "proc-file", "long-name",
              "nul-byte")
OUT_KINDS = ("missing", "directory", "text", "file-under-file", "dev-null", "proc-missing",
             "proc-file", "long-name", "fifo-like-dir-dot", "nul-byte")


def _path_case(capsys, template: list[str], kind: str, where: str) -> None:
    """`template` with a path of `kind` as its input path {p} (then {out} is a fresh --out)
    or as its --out {o}."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fresh = tmp / "out"
        p = make_path(tmp, kind) if where == "input" else out_path(tmp, kind)
        args = [a.format(p=p, o=p, out=fresh, **_fixtures(tmp)) for a in template]
        watched = p if where == "out" else fresh if "{out}" in template else None
        code, err = run_cli(capsys, args, watched)
        if where == "out" and kind in UNWRITABLE or where == "input" and kind in UNREADABLE:
            assert code == 2, (args, err)  # refused up front, before any work


@fuzz_settings(100)
@given(template=st.sampled_from(INPUT_PATHS), kind=st.sampled_from(PATH_KINDS))
def test_fuzz_input_paths(capsys, template, kind):
    _path_case(capsys, template, kind, "input")


@fuzz_settings(60)
@given(template=st.sampled_from(OUT_PATHS), kind=st.sampled_from(OUT_KINDS))
def test_fuzz_out_paths(capsys, template, kind):
    _path_case(capsys, template, kind, "out")


# ------------------------------------------------------------------------ free-text options

TEXT_OPTIONS = [
    (["bench", "--device", "cpu", "--out", "{out}"], "--teacher"),
    (["bench", "--teacher", TINY, "--device", "cpu", "--out", "{out}"], "--students"),
    (["bench", "--teacher", TINY, "--device", "cpu", "--out", "{out}"], "--backends"),
    (["bench", "--teacher", TINY, "--out", "{out}"], "--device"),
    ([*PLAN_BASE, "--out", "{out}"], "--training-hardware"),
    ([*PLAN_BASE, "--out", "{out}"], "--datagen"),
    (["plan", "--results", RES, "--out", "{out}"], "--scenario"),
    (["plan", "--scenario", "real-time-api", "--out", "{out}"], "--teacher"),
    (["loadtest", "--model", TINY, "--scenario", "offline", "--out", "{out}"], "--backend"),
    (["loadtest", "--model", TINY, "--out", "{out}"], "--scenario"),
    (["loadtest", "--model", TINY, "--scenario", "offline", "--out", "{out}"], "--role"),
    (["loadtest", "--scenario", "offline", "--out", "{out}"], "--model"),
    (["pilot", "--teacher", TINY, "--out", "{out}"], "--modes"),
    (["pilot", "--teacher", TINY, "--out", "{out}"], "--students"),
    (["generate", "--prompts", "{prompts}", "--out", "{out}"], "--teacher"),
    (["generate", "--teacher", "api:m", "--prompts", "{prompts}", "--out", "{out}"],
     "--api-base-url"),
    (["generate", "--teacher", "api:m", "--api-base-url", "http://127.0.0.1:9/v1",
      "--prompts", "{prompts}", "--out", "{out}"], "--api-endpoint"),
    (["distill", "--plan", "{plan}", "--out", "{out}"], "--set"),
]
SPEC_WORDS = ["builtin:", "hf:", "onnx:", "ckpt:", "config:", "api:", "auto", "teacher",
              "student-10x", "n_layer=0", "n_embd=-1", "block_size=1e9", ",", ",,", "=", ":",
              "torch-eager", "ort-int8", "cuda", "cpu", "kd", "ce", "server", "a10g", "local",
              "<img onerror=x>", "..", "/", "~", "%", "\t", " ", "é", "\x7f", "nan", "-1"]


@fuzz_settings(120)
@given(case=st.sampled_from(TEXT_OPTIONS),
       words=st.lists(st.sampled_from(SPEC_WORDS) | st.text(max_size=8), min_size=1,
                      max_size=5))
def test_fuzz_text_options(capsys, case, words):
    template, option = case
    value = "".join(words)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = tmp / "out"
        args = [a.format(out=out, **_fixtures(tmp)) for a in template]
        run_cli(capsys, [*args, f"{option}={value}"], out)
