"""Fuzz the files the CLI reads (issue 18): the shipped scenario and hardware YAML, a trainer
config, a run config, a plan and a results table, each mutated as data (wrong types, missing
fields, hostile values and strings, unknown keys) or as text (truncated, a line doubled into a
duplicate key, a line dropped, a byte flipped, binary spliced in). Each case: exit 2 (0 where the
mutation left it valid), no traceback, at most 3 lines, nothing written into --out on error."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from .fuzz_helpers import (FIXTURE_RESULTS, HOSTILE_TEXT, REPO, dump, fuzz_settings,
                           hostile_value, mutated_data, mutated_text, no_work, run_cli, write)

pytestmark = pytest.mark.usefixtures("no_work")
assert no_work  # the module fixture, used through pytestmark

TINY = "builtin:n_layer=2,n_embd=32,n_head=2,block_size=64"
TINY_B = "builtin:n_layer=1,n_embd=16,n_head=2,block_size=64"
SCENARIOS = (REPO / "roi" / "data" / "scenarios.yaml").read_text()
HARDWARE = (REPO / "roi" / "data" / "hardware.yaml").read_text()
TRAINER = {"teacher": TINY, "student": TINY_B, "init": "random", "steps": 4, "batch_size": 2,
           "block_size": 32, "lr": 0.001, "warmup_steps": 1, "eval_every": 2, "ckpt_every": 2,
           "temperature": 2.0, "alpha": 0.5, "kd_loss": "forward_kl", "dtype": "fp32",
           "device": "cpu", "data_source": "stdlib", "schedule": "wsd"}
RUN = {"teacher": TINY, "students": [TINY_B], "scenarios": ["real-time-api"],
       "retention_threshold": 0.9, "bench": {"backends": ["torch-eager"], "batch_sizes": [1],
                                             "rounds": 1, "device": "cpu"},
       "pilot": {"enabled": False}, "economics": {"engineering_weeks": 1},
       "trainer": {"steps": 4}}
PLAN = {"decision": {"go": True, "reasons": ["fuzz"]}, "recommended": {"model": TINY_B},
        "trainer": dict(TRAINER), "note": "fuzz"}


def _yaml_file(draw, base_text: str, base_data) -> bytes:
    """A mutation of a YAML document: as data (half the time) or as text."""
    if draw(st.booleans()):
        return dump(draw(mutated_data(base_data))).encode()
    return draw(mutated_text(base_text))


def _case(capsys, content: bytes, argv_for) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write(tmp / "input.yaml", content)
        out = tmp / "out"
        run_cli(capsys, argv_for(path, out, tmp), out)


def _go_plan(tmp: Path) -> Path:
    return write(tmp / "plan.yaml", dump(PLAN))


FILES = {
    "scenario": (SCENARIOS, lambda p, o, t: ["scenarios", "--scenario", p]),
    "scenario-plan": (SCENARIOS, lambda p, o, t: ["plan", "--results", FIXTURE_RESULTS,
                                                  "--scenario", p, "--out", o]),
    "hardware": (HARDWARE, lambda p, o, t: ["hardware", "--hardware", p]),
    "trainer": (dump(TRAINER), lambda p, o, t: ["distill", "--plan", _go_plan(t),
                                                "--config", p, "--out", o]),
    "pilot-trainer": (dump(TRAINER), lambda p, o, t: ["pilot", "--teacher", TINY, "--students",
                                                      TINY_B, "--config", p, "--out", o]),
    "run": (dump(RUN), lambda p, o, t: ["run", "--config", p, "--out", o]),
    "plan": (dump(PLAN), lambda p, o, t: ["distill", "--plan", p, "--out", o]),
}


@fuzz_settings(80)
@given(data=st.data(), kind=st.sampled_from(["scenario", "hardware"]))
def test_fuzz_scenario_and_hardware_yaml(capsys, data, kind):
    text, argv_for = FILES[kind]
    content = _yaml_file(data.draw, text, yaml.safe_load(text))
    _case(capsys, content, argv_for)


@fuzz_settings(12)
@given(data=st.data())
def test_fuzz_scenario_yaml_through_plan(capsys, data):
    text, argv_for = FILES["scenario-plan"]
    _case(capsys, _yaml_file(data.draw, text, yaml.safe_load(text)), argv_for)


@fuzz_settings(150)
@given(data=st.data(), kind=st.sampled_from(["trainer", "pilot-trainer", "run", "plan"]))
def test_fuzz_config_and_plan_yaml(capsys, data, kind):
    text, argv_for = FILES[kind]
    _case(capsys, _yaml_file(data.draw, text, yaml.safe_load(text)), argv_for)


# ---------------------------------------------------------------------------- results tables

RESULTS = pd.read_csv(FIXTURE_RESULTS)
CELLS = ["", "nan", "inf", "-inf", "-1", "0", "1e300", "ok", "<img onerror=x>", "a" * 300,
         "teacher", "student", "1,2", '"', "\x00", "NaN", "None", "true"]


@st.composite
def mutated_table(draw) -> bytes:
    """The fixture table with columns dropped, cells replaced, rows cut, or its text damaged."""
    op = draw(st.sampled_from(["cells", "cells", "drop-column", "text", "rows"]))
    df = RESULTS.copy().astype(object)
    if op == "text":
        return draw(mutated_text(FIXTURE_RESULTS.read_text()))
    if op == "drop-column":
        for _ in range(draw(st.integers(1, 3))):
            df = df.drop(columns=[draw(st.sampled_from(list(df.columns)))])
    elif op == "rows":
        df = df.iloc[: draw(st.integers(0, len(df)))]
    else:
        for _ in range(draw(st.integers(1, 4))):
            row = draw(st.integers(0, len(df) - 1))
            col = draw(st.sampled_from(list(df.columns)))
            df.at[row, col] = draw(st.sampled_from(CELLS) | hostile_value().map(str))
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue().encode()


@fuzz_settings(12)
@given(table=mutated_table(), suffix=st.sampled_from([".csv", ".csv", ".jsonl"]))
def test_fuzz_results_table(capsys, table, suffix):
    if suffix == ".jsonl":  # the same rows as bench's own JSON lines
        try:
            df = pd.read_csv(io.BytesIO(table))
            table = df.to_json(orient="records", lines=True).encode()
        except Exception:  # noqa: BLE001 (unreadable CSV: keep its bytes as a damaged file)
            pass
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write(tmp / f"results{suffix}", table)
        out = tmp / "out"
        run_cli(capsys, ["plan", "--results", path, "--scenario", "real-time-api",
                         "--out", out], out)


def test_hostile_strings_reach_reports_escaped(capsys):
    """A hostile model name in a results table is escaped in every page the report writes."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        df = RESULTS.copy()
        df["model"] = df["model"].str.replace("builtin:", f"builtin:{HOSTILE_TEXT[0]}",
                                              regex=False)
        (run / "bench").mkdir(parents=True)
        df.to_csv(run / "bench" / "results.csv", index=False)
        code, _ = run_cli(capsys, ["plan", "--results", run / "bench" / "results.csv",
                                   "--scenario", "real-time-api", "--out", run / "plan"])
        assert code == 0
        code, _ = run_cli(capsys, ["report", run])
        assert code == 0
        pages = [*run.rglob("*.html"), *run.rglob("*.md")]
        assert len(pages) >= 2
        for page in pages:
            assert HOSTILE_TEXT[0] not in page.read_text(), page
