"""roi report --plan FILE [--results FILE] [--metrics FILE] --out DIR: a plan and the table it
was planned from, rendered like a run directory; bad combinations refused in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import roi
from app.cli import main
from roi.planner import write_plan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RESULTS = FIXTURES / "bench_results.csv"
METRICS = FIXTURES / "distill_metrics.json"


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> Path:
    """plan/plan.json planned from the fixture table (no run directory around it)."""
    root = tmp_path_factory.mktemp("files")
    write_plan(roi.plan(pd.read_csv(RESULTS), ["real-time-api"]), root / "plan")
    return root / "plan" / "plan.json"


def test_a_plan_and_its_results_render_like_a_run_directory(planned, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--plan", str(planned), "--results", str(RESULTS), "--metrics",
                 str(METRICS), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"report: {out / 'report.html'} (+ report.md")
    md = (out / "report.md").read_text()
    assert "## Measurements" in md and "## Hardware sizing" in md and str(RESULTS) in md
    assert {p.stem for p in (out / "figures").glob("*.png")} >= {"latency_vs_batch",
                                                                 "cost_per_scenario"}
    for part in ("decision", "sizing", "distill-plan"):
        assert (out / part / "report.html").is_file()
    # the same inputs as a run directory: the same sections
    run = tmp_path / "run"
    (run / "bench").mkdir(parents=True)
    shutil.copy(RESULTS, run / "bench" / "results.csv")
    shutil.copytree(planned.parent, run / "plan")
    (run / "distill").mkdir()
    shutil.copy(METRICS, run / "distill" / "metrics.json")
    assert main(["report", str(run)]) == 0
    heads = lambda text: [x for x in text.splitlines() if x.startswith("## ")]  # noqa: E731
    assert heads(md) == heads((run / "report" / "report.md").read_text())


def test_a_plan_alone_renders_beside_it_by_default(planned):
    assert main(["report", "--plan", str(planned)]) == 0
    assert (planned.parent / "report" / "report.html").is_file()


@pytest.mark.parametrize("args, message", [
    ([], "roi report: give a run directory DIR, or --plan FILE [--results FILE] "
         "[--metrics FILE]"),
    (["--results", "{results}"], "roi report: --results without --plan; give a run directory "
                                 "DIR, or --plan FILE [--results FILE] [--metrics FILE]"),
    (["{tmp}", "--plan", "{plan}"], "roi report: give a run directory DIR, or --plan FILE "
                                    "[--results FILE] [--metrics FILE]; not both"),
    (["--plan", "{tmp}/nothing.json"], "--plan {tmp}/nothing.json: does not exist; expected a "
                                       "file"),
    (["--plan", "{plan}", "--metrics", "{tmp}"], "--metrics {tmp}: is a directory; expected a "
                                                 "file"),
])
def test_bad_combinations_are_one_line(planned, tmp_path, capsys, args, message):
    fill = dict(tmp=tmp_path, plan=planned, results=RESULTS)
    args = [a.format(**fill) for a in args]
    assert main(["report", *args, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {message.format(**fill)}\n"
    assert not (tmp_path / "out").exists()
