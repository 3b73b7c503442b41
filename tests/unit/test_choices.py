"""roi.choices: the planner stores the cheapest configuration per scenario and model and the
seed's ranges (as numbers) beside our figures; reports and the console render what is stored,
and a plan written before these fields renders the same as one that has them."""

import copy
import io

import pytest
from rich.console import Console

import reports
from reports import figure_kit
from app.console import _best_table, _students_table
from contracts.plan import parse_plan
from contracts.results import read_table
from reports.markdown import render
from roi.choices import band_position, cheapest, seed_figures
from roi.planner import plan
from roi.scenarios import SeedRanges

from .plan_helpers import FIXTURE

PILOT = FIXTURE.parent / "forecast" / "long-curves.csv"


def _cost(scenario, hardware, usd, feasible=True, reason=""):
    return {"scenario": scenario, "hardware": hardware, "model": "t", "role": "teacher",
            "usd_per_month": usd, "feasible": feasible, "reason": reason}


def _size(scenario, hardware, p90):
    return {"scenario": scenario, "hardware": hardware, "model": "t", "service_ms_p50": p90 / 2,
            "service_ms_p90": p90}


def test_cheapest_picks_the_cheapest_feasible_row_and_lists_every_miss():
    cost = [_cost("a", "h1", 50.0), _cost("a", "h2", 20.0), _cost("a", "h3", 20.0),
            _cost("b", "h1", 1.0, False, "too slow"), _cost("b", "h2", None, False, "too big"),
            _cost("b", "h3", 3.0, False, "too slow")]
    sizing = [_size("a", "h1", 5), _size("a", "h2", 9), _size("a", "h3", 4),
              _size("b", "h1", 30), _size("b", "h2", 1), _size("b", "h3", 2)]
    best = cheapest(cost, sizing, ["b", "a"])
    assert [r["scenario"] for r in best] == ["b", "a"]  # the plan's scenario order
    miss, hit = best
    assert miss["feasible"] is False and miss["hardware"] == "h1"  # the cheapest miss
    assert miss["misses"] == ["too slow", "too big"]
    assert hit["hardware"] == "h3" and hit["service_ms_p50"] == 2  # tie on cost: faster P90
    assert hit["misses"] == []


def test_seed_figures_store_the_seed_ranges_as_numbers_and_where_ours_lies():
    seed = SeedRanges(scenario="x", inference_cost_reduction="40-60%",
                      latency_improvement="20-30%", data_transfer="Offline",
                      best_fit_model_size="1B-3B distilled")
    best = [{"scenario": "s", "model": "t", "usd_per_month": 100.0, "feasible": True},
            {"scenario": "s", "model": "st", "usd_per_month": 30.0, "feasible": True}]
    rows = seed_figures([("s", seed), ("custom", None)], best, None, "t", "st", {})
    by = {(r["scenario"], r["figure"]): r for r in rows}
    cost = by["s", "inference_cost_reduction"]
    assert cost["band"] == {"low": 0.4, "high": 0.6} and cost["value"] == pytest.approx(0.7)
    assert cost["verdict"] == "above" and cost["expected"] == "40-60%"
    assert by["s", "data_transfer"]["band"] is None  # "Offline": no range to compare with
    assert by["s", "latency_improvement"]["basis"] == "no results table"
    custom = by["custom", "inference_cost_reduction"]
    assert custom["expected"] == "" and custom["band"] is None and custom["verdict"] is None
    assert band_position(0.5, (0.4, 0.6)) == "inside"
    assert band_position(0.3, (0.4, 0.6)) == "below" and band_position(None, (0, 1)) is None


@pytest.fixture(scope="module")
def planned():
    return plan(FIXTURE, ["real-time-api", "cloud-batch", "mobile-on-device"], pilot=PILOT)


def test_the_plan_stores_the_cheapest_configuration_and_the_seed_figures(planned):
    typed = planned.typed()
    student = typed.recommended.model
    assert len(typed.cheapest) == 3 * (1 + 1 + len(typed.alternatives))
    # the configuration the recommendation was costed at, ties on cost included (on phones
    # every device costs the deployment $0: the faster at P90 is the one costed)
    for entry in typed.recommended.per_scenario:
        row = next(r for r in typed.cheapest
                   if r.scenario == entry.scenario and r.model == student)
        assert row.hardware == entry.hardware and row.usd_per_month == entry.usd_per_month
    rta = [f for f in typed.seed_figures if f.scenario == "real-time-api"]
    assert [f.figure for f in rta] == ["inference_cost_reduction", "latency_improvement",
                                       "data_transfer"]
    assert (rta[0].band.low, rta[0].band.high) == (0.7, 0.8)  # the seed's "70-80%"
    assert all(f.student == student for f in typed.seed_figures)
    headline = next(e for e in typed.recommended.per_scenario if e.scenario == typed.roi.scenario)
    assert typed.recommended.headline_usd_per_month == headline.usd_per_month
    budget = typed.recommended.budget  # KD's gain at the chosen budget, from the pilot grids
    kd = {r.steps: r.retention_p50 for r in budget.grid}
    ce = {r.steps: r.retention_p50 for r in budget.baseline_grid}
    at = budget.kd_gain.steps
    assert budget.kd_gain.points == pytest.approx(100 * (kd[at] - ce[at]))


@pytest.fixture
def no_figures(monkeypatch):
    """Reports without drawing (the text is what these tests read): seconds, not tens."""
    monkeypatch.setattr(figure_kit, "missing", lambda: "not drawn in this test")


def _markdown(doc: dict) -> str:
    """The report of the plan with the results table it was planned from."""
    return render(reports.build(read_table(FIXTURE), parse_plan(doc)))


def test_reports_and_console_render_the_stored_choices(planned, no_figures):
    doc = copy.deepcopy(planned.to_dict())
    row = next(r for r in doc["cheapest"] if r["scenario"] == "cloud-batch"
               and r["role"] == "teacher")
    row["usd_per_month"], row["hardware"] = 123456.0, "stored-hw"
    figure = next(f for f in doc["seed_figures"] if f["figure"] == "latency_improvement")
    figure["basis"] = "as stored by the planner"
    doc["recommended"]["headline_usd_per_month"] = 98765.0
    doc["recommended"]["budget"]["kd_gain"] = {"points": 12.5, "steps": 4321}
    text = _markdown(doc)
    assert "stored-hw" in text and "123,456" in text and "as stored by the planner" in text
    assert "98,765" in text and "+12.5 points (at 4,321 steps)" in text
    out = Console(width=250, record=True, file=io.StringIO())
    out.print(_best_table(doc))
    out.print(_students_table(doc))
    shown = out.export_text()
    assert "stored-hw" in shown and "123,456" in shown and "98,765" in shown


def test_a_plan_without_the_stored_choices_renders_the_same(planned, no_figures):
    doc = planned.to_dict()
    old = copy.deepcopy({k: v for k, v in doc.items() if k not in ("cheapest", "seed_figures")})
    for c in [old["recommended"], *old["alternatives"]]:
        del c["headline_usd_per_month"]
        c["budget"].pop("kd_gain")
    assert "headline_usd_per_month" not in str(old) and "kd_gain" not in str(old)
    assert _markdown(old) == _markdown(doc)
