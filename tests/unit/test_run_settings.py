"""`roi run` passes its settings on whole where a function takes them under the same names
(app/run.py): every bench setting is a keyword of bench.sweep.plan_sweep, every pilot setting
(but enabled) one of distill.pilot.pilot, every PLAN_SETTINGS one of roi.planner.plan, so a
setting added to the run config cannot be dropped on the way."""

import inspect
from pathlib import Path

import pytest

from app.run import PLAN_SETTINGS, Run, _bench_kwargs
from app.runconfig import BenchSettings, RunConfig, resolved


def test_every_bench_setting_is_a_keyword_of_the_sweep():
    from bench.sweep import plan_sweep

    taken = inspect.signature(plan_sweep).parameters
    assert set(BenchSettings.model_fields) <= set(taken)


@pytest.mark.parametrize("profile", ["default", "quick"])
def test_the_runs_bench_settings_reach_the_sweep_as_set(tmp_path, profile):
    from bench.sweep import plan_sweep

    bench = {"threads": [1], "timeout_s": 5.0, "isolate": False, "device": "cpu",
             "batch_sizes": [2, 4]}
    settings = resolved(RunConfig(bench=bench), profile)
    kwargs = _bench_kwargs(Run(Path(tmp_path), settings))
    assert kwargs["resume"] is True and {k: kwargs[k] for k in bench} == bench
    plan = plan_sweep(teacher="builtin:teacher", students="builtin:student-10x",
                      out=tmp_path / "bench", **kwargs)
    assert sorted({c.batch_size for c in plan.configs}) == [2, 4]


def test_every_pilot_setting_but_enabled_is_a_keyword_of_the_pilots():
    from app.runconfig import PilotSettings
    from distill.pilot import pilot

    taken = inspect.signature(pilot).parameters
    assert set(PilotSettings.model_fields) - {"enabled"} <= set(taken)
    assert set(resolved(RunConfig(), "quick")["pilot"]) - {"enabled"} <= set(taken)


def test_the_plan_settings_are_the_planners_keywords_and_the_runs():
    from roi.planner import plan

    assert set(PLAN_SETTINGS) <= set(inspect.signature(plan).parameters)
    assert set(PLAN_SETTINGS) <= set(resolved(RunConfig(), "quick"))
