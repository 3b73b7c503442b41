"""reports: build, write and render_run_dir on the real fixture table and real plans."""

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

import reports
import roi
from reports import fmt, html, markdown
from reports.document import Figure
from contracts.errors import InputError
from contracts.plan import parse_plan
from roi.planner import write_plan

from .plan_helpers import old_plan_bytes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RESULTS = FIXTURES / "bench_results.csv"
METRICS = FIXTURES / "distill_metrics.json"  # a real 600-step distillation of student-10x
SCENARIOS = ["real-time-api", "cloud-batch", "mobile-on-device"]
EVIL = "<script>alert(1)</script>"
SECTION_IDS = ["summary", "decision", "scenarios", "sizing", "measurements", "students", "roi",
               "distill-plan", "achieved", "method"]
NO_MISSING = re.compile(r"\b(?i:nan|inf)\b|\bNone\b|\bNaT\b")


def visible_html(page: str) -> str:
    """The page without its base64 images (random letters could spell anything)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)


def student_bench(model: str = "builtin:student-10x", factor: float = 1.1) -> pd.DataFrame:
    """A re-bench of the distilled student: the architecture's rows, renamed, 10% slower."""
    df = pd.read_csv(RESULTS)
    s = df[df["model"] == model].copy()
    s["model"] = "ckpt:distill"
    for col in ("latency_ms_p50", "latency_ms_mean", "latency_ms_p90"):
        s[col] *= factor
    return s


def make_run(root: Path, *, results=True, metrics=False, student=False, scenarios=SCENARIOS,
             df: pd.DataFrame | None = None) -> Path:
    df = pd.read_csv(RESULTS) if df is None else df
    if results:
        (root / "bench").mkdir(parents=True)
        df.to_csv(root / "bench" / "results.csv", index=False)
    write_plan(roi.plan(df, scenarios), root / "plan")
    if metrics:
        (root / "distill").mkdir()
        shutil.copy(METRICS, root / "distill" / "metrics.json")
    if student:
        (root / "bench-student").mkdir()
        student_bench().to_csv(root / "bench-student" / "results.csv", index=False)
    return root


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("run") / "run", metrics=True, student=True)
    return run, reports.build(run)


@pytest.fixture(scope="module")
def full_run(full_report):
    run, report = full_report
    return run, reports.write(report, run / "report")


@pytest.fixture(scope="module")
def bare_run(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("run") / "run")
    return run, reports.render_run_dir(run)


def assert_png_has_content(path: Path) -> None:
    img = mpimg.imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert float(np.std(img[..., :3])) > 0.02, f"{path.name} looks blank"


# ------------------------------------------------------------------------------ run directories


def test_full_run_dir_writes_report_with_every_section_and_figure(full_run):
    run, written = full_run
    assert written.html == run / "report" / "report.html"
    assert written.markdown == run / "report" / "report.md"
    names = sorted(p.stem for p in written.figures)
    assert names == sorted(["cost_per_scenario", "throughput_per_dollar", "latency_vs_batch",
                            "retention_pareto", "payback_curve", "tornado",
                            "predicted_vs_achieved"])
    md = written.markdown.read_text()
    page = written.html.read_text()
    for p in written.figures:
        assert_png_has_content(p)
        assert f"figures/{p.name}" in md
        assert f'id="fig-{p.stem}"' in page
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page
    # predicted vs achieved from the real metrics.json: the 10x student kept 77% of accuracy
    assert "77.0%" in md and "below the band" in md and "Pending" not in md.split(
        "## Predicted vs achieved")[1].split("## Environment")[0].split("Latency")[0]
    assert "1.10×" in md  # achieved / predicted latency from the re-bench
    assert not list(run.glob("report/**/.*.tmp"))


def test_bare_run_dir_says_what_is_pending(bare_run):
    _run, written = bare_run
    md = written.markdown.read_text()
    achieved = md.split("## Predicted vs achieved")[1].split("## Environment")[0]
    assert "Pending" in achieved and "roi distill" in achieved
    assert "predicted_vs_achieved" not in {p.stem for p in written.figures}
    assert "absent (pending)" in md


@pytest.mark.parametrize("which", ["full_run", "bare_run"])
def test_no_nan_none_or_empty_figure_anywhere(which, request):
    run, written = request.getfixturevalue(which)
    for text in (written.markdown.read_text(), visible_html(written.html.read_text())):
        found = NO_MISSING.findall(text)
        assert not found, found[:5]
    linked = re.findall(r"\]\((figures/[^)]+)\)", written.markdown.read_text())
    assert linked and all((run / "report" / p).stat().st_size > 5000 for p in linked)


def fixture_table() -> pd.DataFrame:
    return pd.read_csv(RESULTS)


def hand_written_table() -> pd.DataFrame:
    """Only the required columns (no p90, env, status...): what a user may write by hand."""
    from tests.unit.plan_helpers import synthetic_results

    return synthetic_results(runtimes=(("ort", "fp32"), ("ort", "int8")))


@pytest.mark.parametrize("table, scenarios, kwargs", [
    (fixture_table, ["embedded-iot"], {}),
    (fixture_table, ["multi-model"], {}),
    (fixture_table, ["real-time-api"], {"retention_threshold": 0.999}),  # no student qualifies
    (hand_written_table, ["cloud-batch", "real-time-api"], {"require_benefit": False}),  # go
])
def test_no_nan_or_none_for_other_plans(table, scenarios, kwargs):
    df = table()
    plan = roi.plan(df, scenarios, **kwargs)
    report = reports.build(df, plan)
    md = markdown.render(report)
    assert not NO_MISSING.findall(md)
    assert not NO_MISSING.findall(visible_html(html.render(report)))
    figure_blocks = [b for s in report.sections for b in s.blocks if isinstance(b, Figure)]
    assert {b.name for b in figure_blocks} == set(report.figures)
    assert ("**GO:" in md) == plan.go and ("**NO-GO:" in md) == (not plan.go)
    if plan.recommended is None:
        assert "none qualifies" in md


def test_results_table_absent_still_renders(tmp_path):
    run = make_run(tmp_path / "run", results=False)
    written = reports.render_run_dir(run)
    md = written.markdown.read_text()
    assert "No results table was given" in md
    assert "latency_vs_batch" not in md
    assert not NO_MISSING.findall(md)


def test_missing_plan_or_run_dir_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        reports.render_run_dir(tmp_path / "nope")
    (tmp_path / "bench").mkdir()
    with pytest.raises(InputError, match="no plan"):
        reports.render_run_dir(tmp_path)


def test_malformed_metrics_names_the_file(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "distill").mkdir()
    (run / "distill" / "metrics.json").write_text("{not json")
    with pytest.raises(InputError, match="metrics.json"):
        reports.build(run)


# ------------------------------------------------------------------------------ escaping


def test_user_strings_are_escaped_in_html_and_markdown():
    df = pd.read_csv(RESULTS)
    df.loc[df["model"] == "builtin:student-10x", "model"] = EVIL
    report = reports.build(df, roi.plan(df, ["real-time-api"]))
    page, md = html.render(report), markdown.render(report)
    assert EVIL not in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in md and "&lt;script>alert(1)&lt;/script>" in md
    assert "script-src" not in page and "default-src 'none'" in page  # CSP: no script at all


def test_markdown_escape_keeps_comparisons_readable():
    assert markdown.escape("p99 <= 100 ms | a\nb") == "p99 <= 100 ms \\| a b"
    assert markdown.escape("<b>x</b> &amp;") == "&lt;b>x&lt;/b> &amp;amp;"


# ------------------------------------------------------------------------------ write / select


def test_write_replaces_files_and_drops_stale_figures(tmp_path, full_report):
    report = reports.select(full_report[1], "summary", "roi")
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "old_figure.png").write_bytes(b"stale")
    (out / "figures" / "notes.txt").write_text("user file")
    written = reports.write(report, out)
    assert not (out / "figures" / "old_figure.png").exists()
    assert (out / "figures" / "notes.txt").exists()
    assert sorted(p.name for p in written.figures) == ["payback_curve.png", "tornado.png"]
    assert sorted(p.name for p in out.iterdir()) == ["figures", "report.html", "report.md"]


def test_write_refuses_a_figure_name_that_leaves_the_directory(tmp_path):
    bad = reports.Report("t", "s", (), {"../../escape": b"x"})
    with pytest.raises(InputError, match="figure name"):
        reports.write(bad, tmp_path / "out")
    assert not (tmp_path / "escape.png").exists()


def test_select_keeps_sections_and_their_figures_only(full_report):
    report = full_report[1]
    sizing = reports.select(report, "summary", "sizing")
    assert [s.id for s in sizing.sections] == ["summary", "sizing"]
    assert set(sizing.figures) == {"throughput_per_dollar"}
    assert "Hardware sizing" in html.render(sizing)
    with pytest.raises(KeyError, match="unknown section"):
        reports.select(report, "nope")


def test_plan_may_be_a_plan_object_a_dict_or_a_file(tmp_path):
    from reports.report import _typed_plan

    plan = roi.plan(pd.read_csv(RESULTS), ["real-time-api"])
    write_plan(plan, tmp_path)
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc == plan.document
    for given in (plan, doc, tmp_path / "plan.yaml", plan.typed()):
        typed = _typed_plan(given)
        assert typed.recommended.model == doc["recommended"]["model"] and typed.document() == doc
    with pytest.raises(InputError, match="plan"):
        reports.build(None, 42)
    with pytest.raises(InputError, match="run directory"):
        reports.build(pd.DataFrame())


# ------------------------------------------------------------------------------ pieces


def test_fmt_never_says_nan_or_none():
    for f in (fmt.num, fmt.sig, fmt.usd, fmt.pct, fmt.params, fmt.text):
        for bad in (None, float("nan"), float("inf"), "nan", np.float64("nan")):
            out = f(bad)
            assert out == fmt.DASH, (f.__name__, bad, out)
    assert fmt.months(None) == "never (no savings)"
    assert fmt.usd(1106.972) == "$1,107" and fmt.usd(0.42) == "$0.42" and fmt.usd(-8000) == \
        "-$8,000"
    assert fmt.usd_band(1107, 553, 1107) == "$1,107 ($553–$1,107)"
    assert fmt.usd_band(1107, 1107, 1107) == "$1,107"
    assert fmt.sig(5.0501) == "5.05" and fmt.sig(1406.4) == "1,406" and fmt.sig(1e7) == \
        "10,000,000"
    assert fmt.pct_band([0.978868, 0.994717]) == "97.9%–99.5%"
    assert fmt.params(2767872) == "2.77 M" and fmt.params(273024) == "273 k"
    assert fmt.text(True) == "yes" and fmt.text([None, "a"]) == "a"


def test_pareto_front_keeps_points_nothing_beats_on_both():
    pts = pd.DataFrame({"model": ["t", "a", "b", "c", "d"],
                        "usd_per_month": [100.0, 50.0, 60.0, 20.0, 20.0],
                        "retention_lo": [1.0, 0.95, 0.90, 0.90, 0.80],
                        "retention_hi": [1.0, 0.99, 0.94, 0.94, 0.84],
                        "kind": ["teacher", "recommended", "fails", "fails", "fails"]})
    front = reports.figures.pareto_front(pts)
    # b is dominated by a (cheaper? no) -- by c (cheaper, same retention); d by c
    assert list(front["model"]) == ["c", "a", "t"]


def test_figures_return_none_without_data_and_png_with_it():
    from reports import figures

    empty = pd.DataFrame(columns=["scenario", "hardware", "model", "requests_per_usd",
                                  "meets_sla"])
    assert figures.throughput_per_dollar(empty, {}) is None
    assert figures.tornado([], 0.0, 12) is None
    assert figures.payback_curve(None, (None, None, None), 12, None) is None
    assert figures.predicted_vs_achieved(None, {}, pd.DataFrame()) is None
    png = figures.payback_curve(8000.0, (500.0, 1000.0, 1500.0), 12, 8.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(io.BytesIO(png))
    assert img.shape[1] == 750  # 7.5 in at 100 dpi


def test_model_name_with_dollars_is_drawn_verbatim():
    """No mathtext: a `$` in a model name must not raise or vanish."""
    from reports import measure_figures

    df = pd.DataFrame({"model": ["$a$", "b"], "backend": "ort", "dtype": "fp32",
                       "batch_size": [1, 1], "latency": [1.0, 2.0], "latency_hi": [1.5, 2.5],
                       "params": [10, 5]})
    assert measure_figures.latency_vs_batch(df, "$a$", "b")[:4] == b"\x89PNG"


def test_a_plan_whose_only_doubt_is_retention_leads_with_no_go_for_now():
    df = fixture_table()
    plan = roi.plan(df, ["real-time-api"]).to_dict()
    plan["decision"]["go"] = False
    plan["decision"]["retention_unconfirmed"] = {
        "model": "builtin:student-10x", "steps_p50": 1400, "reason": "retention not confirmed: "
        "builtin:student-10x's forecast P50 reaches the threshold at 1,400 steps"}
    md = markdown.render(reports.build(df, plan))
    assert "**NO-GO for now: retention not confirmed: builtin:student-10x's forecast P50" in md


def test_llm_plan_markdown_escapes_names_from_config_files():
    from reports.llm import llm_plan_markdown

    hostile = "config:<img src=x onerror=alert(1)>.json"
    doc = json.loads(old_plan_bytes("v1-llm-config"))
    doc["decision"].update(go=False, reasons=[f"{hostile} | breaks"])
    doc.update(teacher=hostile, recommended={"model": None, "per_scenario": {}}, scenarios=[])
    md = llm_plan_markdown(parse_plan(doc))
    assert "<img" not in md and "&lt;img" in md.splitlines()[0]
    assert "\\| breaks" in md


def test_summary_leads_with_the_seed_matrix_one_row_per_scenario(full_run):
    """The executive summary's first table: per scenario, the seed's ranges beside our cost
    reduction and latency improvement (from the plan's own per-scenario figures), the
    best-fit student and the decision."""
    run, written = full_run
    plan = json.loads((run / "plan" / "plan.json").read_text())
    summary = written.markdown.read_text().split("## Executive summary")[1].split("\n## ")[0]
    lines = [ln for ln in summary.splitlines() if ln.startswith("|")]
    assert "cost reduction (seed)" in lines[0] and "best-fit student" in lines[0]
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[1:-1]]
            for ln in lines[2:]}
    assert set(rows) >= set(SCENARIOS)
    for name in SCENARIOS:
        r = plan["roi"]["per_scenario"][name]
        seed = next(d["seed"] for d in plan["scenario_details"] if d["name"] == name)
        cells = rows[name]
        assert cells[1] == seed["inference_cost_reduction"] and cells[3] == seed[
            "latency_improvement"]
        assert cells[2] == fmt.pct(r["cost_reduction"]) and cells[4] == fmt.pct(
            r["latency_improvement"])
        assert cells[6] == r["decision"]
        if r["latency_improvement"] is not None:  # by hand from the two costed configurations
            t, st = r["teacher_config"]["service_ms_p50"], r["student_config"]["service_ms_p50"]
            assert r["latency_improvement"] == pytest.approx(1 - st / t)


def test_a_results_table_without_optional_columns_renders_its_measurements():
    """A hand-written table may leave out source, p90, peak RSS and error: the rows read them
    as absent (source measured), a failed row is listed with its status."""
    plan = json.loads(old_plan_bytes("v1-measured"))
    df = pd.read_csv(RESULTS).drop(columns=["source", "latency_ms_p90", "peak_rss_mb", "error"],
                                   errors="ignore")
    df.loc[df.index[0], "status"] = "oom"
    md = markdown.render(reports.select(reports.build(df, plan), "measurements"))
    measured = md.split("*Measured configurations (status ok)*")[1].split("*Configurations")[0]
    rows = [r for r in measured.splitlines() if r.startswith("| ") and "p50 ms" not in r]
    assert len(rows) == int((df["status"] == "ok").sum())
    assert all(r.rstrip(" |").endswith("measured") for r in rows)
    failed = md.split("*Configurations that did not run*")[1]
    assert f"| {df['model'].iloc[0]} | {df['backend'].iloc[0]} |" in failed and "| oom |" in failed
