"""`roi bench` and `roi plan` draw their own figures (reports.figures) into OUT/figures/:
valid PNG files, named on the console; bad input writes nothing. The bench run itself is
tests/integration/test_cli.py (it needs the bench extra); here its figures are drawn from the
checked-in results table and a speedups table."""

import pandas as pd
import pytest
from matplotlib.image import imread

from app.cli import main
from app.cli_measure import _bench_figures
from reports.measure_figures import bench_latency, bench_speedup

from .plan_helpers import FIXTURE


def _pngs(out, names):
    for name in names:
        image = imread(out / "figures" / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100, name
    assert sorted(p.stem for p in (out / "figures").iterdir()) == sorted(names)


def test_plan_writes_cost_and_sizing_figures(tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "--results", str(FIXTURE), "--scenario", "real-time-api",
                 "--scenario", "cloud-batch", "--out", str(out)]) == 0
    _pngs(out, ["cost_per_scenario", "throughput_per_dollar"])
    assert f"figures: {out / 'figures' / 'cost_per_scenario.png'}" in capsys.readouterr().out


def test_plan_no_figures_writes_the_plan_alone(tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "--results", str(FIXTURE), "--scenario", "real-time-api",
                 "--no-figures", "--out", str(out)]) == 0
    assert (out / "plan.json").is_file() and not (out / "figures").exists()
    assert "figures:" not in capsys.readouterr().out


def test_llm_plan_writes_cost_and_latency_figures(tmp_path, capsys):
    out = tmp_path / "llm"
    assert main(["plan", "--teacher", "config:llama-3-70b", "--scenario", "real-time-api",
                 "--out", str(out)]) == 0
    _pngs(out, ["llm-cost", "llm-latency"])
    assert str(out / "figures" / "llm-latency.png") in capsys.readouterr().out


@pytest.mark.parametrize("args", [
    ["--results", str(FIXTURE), "--scenario", "no-such-preset"],
    ["--teacher", "config:no-such-model", "--scenario", "real-time-api"],
    ["--teacher", "config:llama-3-70b", "--scenario", "real-time-api", "--llm-sla", "bogus"],
])
def test_bad_plan_input_writes_no_figure(tmp_path, capsys, args):
    assert main(["plan", *args, "--out", str(tmp_path / "out")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bench_figures_latency_and_speedup(tmp_path):
    results = pd.read_csv(FIXTURE)
    pd.DataFrame([{"student": "builtin:student-5x", "backend": b, "dtype": d, "batch_size": 1,
                   "seq_len": 128, "threads": 2, "speedup_p50": s, "speedup_ci95_low": s - .2,
                   "speedup_ci95_high": s + .3} for b, d, s in (("ort", "fp32", 3.5),
                                                                 ("ort", "int8", 5.1))]
                 ).to_csv(tmp_path / "speedups.csv", index=False)
    line = _bench_figures(results, tmp_path)
    _pngs(tmp_path, ["latency", "speedup"])
    assert line.startswith("figures: ") and "speedup.png" in line


def test_bench_figures_of_nothing_measured(tmp_path):
    failed = pd.read_csv(FIXTURE).assign(status="timeout")
    assert bench_latency(failed) is None and bench_speedup(pd.DataFrame()) is None
    assert _bench_figures(failed, tmp_path) == "figures: none (nothing measured to draw)"
    assert not (tmp_path / "figures").exists()
