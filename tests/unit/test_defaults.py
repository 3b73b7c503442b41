"""Each default that several layers use is stated once (contracts/defaults.py): the `roi`
options, `roi run`'s settings and the planner's inputs read it from there."""

import typer.main

from app.cli import app
from app.runconfig import BENCH_PROFILES, Economics, RunConfig
from bench.measure import VARIANTS  # torch-free
from contracts import defaults
from roi.payback import RoiInputs
from roi.scenarios import presets


def _option_defaults(command: str) -> dict:
    return {p.name: p.default for p in typer.main.get_command(app).commands[command].params}


def test_the_command_line_takes_its_defaults_and_help_from_one_place():
    plan = _option_defaults("plan")
    assert plan["retention_threshold"] == defaults.RETENTION_THRESHOLD
    assert plan["engineering_weeks"] == defaults.ENGINEERING_WEEKS
    assert plan["engineering_usd_per_week"] == defaults.ENGINEERING_USD_PER_WEEK
    assert plan["training_hardware"] == defaults.TRAINING_HARDWARE
    assert _option_defaults("bench")["backends"] == ",".join(defaults.BACKENDS)
    helps = {p.name: p.help for p in typer.main.get_command(app).commands["plan"].params}
    assert helps["retention_threshold"] == defaults.RETENTION_THRESHOLD_HELP


def test_run_settings_and_the_planner_share_them():
    assert RunConfig().retention_threshold == defaults.RETENTION_THRESHOLD
    assert Economics().model_dump() == {
        "engineering_weeks": defaults.ENGINEERING_WEEKS,
        "engineering_usd_per_week": defaults.ENGINEERING_USD_PER_WEEK,
        "training_hardware": defaults.TRAINING_HARDWARE, "training_hours": None}
    inputs = RoiInputs()
    assert (inputs.engineering_weeks, inputs.engineering_usd_per_week, inputs.training_hardware) \
        == (defaults.ENGINEERING_WEEKS, defaults.ENGINEERING_USD_PER_WEEK,
            defaults.TRAINING_HARDWARE)
    assert all(p["backends"] == list(defaults.BACKENDS) for p in BENCH_PROFILES.values())


def test_the_default_backends_are_variants_bench_knows():
    assert set(defaults.BACKENDS) <= set(VARIANTS)


def test_the_preset_names_are_the_shipped_presets_in_order():
    assert defaults.SCENARIO_PRESETS == tuple(presets())
    assert RunConfig().scenarios == list(defaults.SCENARIO_PRESETS)
    helps = {p.name: p.help for p in typer.main.get_command(app).commands["plan"].params}
    assert all(name in helps["scenario"] for name in defaults.SCENARIO_PRESETS)
