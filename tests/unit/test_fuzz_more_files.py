"""Fuzz the other files the planner and the report read (issue 18): a distillation's
metrics.json (--metrics), the API price catalog (--datagen-prices), an LLM architecture config
(--teacher config:FILE) and a run directory rendered by `roi report` (its plan and results
damaged). Same promise per case as the rest of the suite (tests/unit/fuzz_helpers)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from .fuzz_helpers import (FIXTURE_RESULTS, REPO, dump, fuzz_settings, mutated_data,
                           mutated_text, no_work, run_cli, write)

pytestmark = pytest.mark.usefixtures("no_work")
assert no_work  # the module fixture, used through pytestmark

METRICS = (REPO / "tests" / "fixtures" / "distill_metrics.json").read_text()
PRICES = (REPO / "roi" / "data" / "api_prices.yaml").read_text()
LLM = (REPO / "contracts" / "data" / "llm" / "llama-3-8b.yaml").read_text()
PLAN = ["plan", "--results", str(FIXTURE_RESULTS), "--scenario", "real-time-api",
        "--no-figures"]


def _mutation(draw, text: str, data, as_json: bool = False) -> bytes:
    if draw(st.booleans()):
        mutated = draw(mutated_data(data))
        return (json.dumps(mutated) if as_json else dump(mutated)).encode()
    return draw(mutated_text(text))


@fuzz_settings(20)
@given(data=st.data(), kind=st.sampled_from(["metrics", "prices", "llm"]))
def test_fuzz_metrics_prices_and_llm_configs(capsys, data, kind):
    if kind == "metrics":
        content, name = _mutation(data.draw, METRICS, json.loads(METRICS), True), "m.json"
    elif kind == "prices":
        content, name = _mutation(data.draw, PRICES, yaml.safe_load(PRICES)), "prices.yaml"
    else:
        content, name = _mutation(data.draw, LLM, yaml.safe_load(LLM)), "llm.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = write(tmp / name, content)
        out = tmp / "out"
        if kind == "metrics":
            argv = [*PLAN, "--metrics", f"builtin:student-10x={path}", "--out", out]
        elif kind == "prices":
            argv = [*PLAN, "--datagen", "api:gpt-4o-mini", "--datagen-samples", "1000",
                    "--datagen-prices", path, "--out", out]
        else:
            argv = ["plan", "--teacher", f"config:{path}", "--students", "config:llama-3.2-1b",
                    "--scenario", "real-time-api", "--out", out]
        run_cli(capsys, argv, out)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as `roi run` leaves it after its plan: bench/ and plan/."""
    from app.cli import main

    root = tmp_path_factory.mktemp("run")
    (root / "bench").mkdir()
    shutil.copy(FIXTURE_RESULTS, root / "bench" / "results.csv")
    assert main([*PLAN, "--out", str(root / "plan")]) == 0
    return root


DAMAGE = ["plan/plan.json", "plan/plan.yaml", "bench/results.csv"]


@pytest.mark.slow
@fuzz_settings(5)
@given(data=st.data(), target=st.sampled_from(DAMAGE))
def test_fuzz_report_of_a_damaged_run_directory(capsys, run_dir, data, target):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = tmp / "run"
        shutil.copytree(run_dir, run)
        original = (run / target).read_text()
        if target.endswith(".json") and data.draw(st.booleans()):
            content = json.dumps(data.draw(mutated_data(json.loads(original)))).encode()
        else:
            content = data.draw(mutated_text(original))
        write(run / target, content)
        out = tmp / "out"
        run_cli(capsys, ["report", run, "--out", out], out)
