"""build / write / render_run_dir: from a run directory (or a results table, a plan and optional
distillation metrics) to report.md, report.html and figures/*.png.

A run directory, as `roi run` lays it out (contracts.run_layout.RunLayout): the plan is
required; the results, the distillation's metrics, the student's re-bench and the re-plan are
read where present; the report is written to RUN/report/.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from contracts.errors import InputError
from contracts.io import atomic_path, write_text_atomic
from contracts.plan import LLMPlan, MeasuredPlan, parse_plan
from contracts.run_layout import RunLayout

from . import html, markdown
from .achieved import method_section
from .deployment import scenarios_section, sizing_section
from .document import Figure, Report
from .inputs import Inputs
from .sections import SECTIONS

log = logging.getLogger(__name__)

TITLE = "Distillation ROI report"
# Sections of the separate renderings: reports.select(report, *PARTS["sizing"]).
PARTS = {"decision": ("summary", "decision", "scenarios", "edge", "roi", "method"),
         "sizing": ("summary", "sizing", "measurements", "method"),
         "distill-plan": ("summary", "students", "forecast", "distill-plan", "achieved",
                          "method")}
_SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Written:
    """The files `write` wrote."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]


def _typed_plan(plan: Any) -> MeasuredPlan:
    """A roi Plan, a plan dict, a typed plan, or a path to plan.json / plan.yaml, as the typed
    plan (contracts.plan). A measured plan only: an LLM-config plan's report is written by roi
    plan beside it."""
    where = str(plan) if isinstance(plan, (str, Path)) else "plan"
    if isinstance(plan, (str, Path)):
        from roi.planner import read_plan

        plan = read_plan(plan)
    elif isinstance(plan, dict):
        plan = parse_plan(plan, where)
    elif hasattr(plan, "typed"):  # roi.planner.Plan
        plan = plan.typed()
    if isinstance(plan, LLMPlan):
        raise InputError(f"{where}: a plan of kind {plan.kind} (a teacher known by its "
                         f"config): roi plan writes its report beside it")
    if not isinstance(plan, MeasuredPlan):
        raise InputError(f"plan: expected a Plan, a plan dict or a plan file; got "
                         f"{type(plan).__name__}")
    return plan


def build(source: str | Path | pd.DataFrame | None = None, plan: Any = None,
          metrics: dict | None = None, *, student_results: pd.DataFrame | None = None,
          title: str = TITLE) -> Report:
    """The report of a run directory (`build(run_dir)`), or of a results table and a plan
    (`build(results_df, plan, metrics)`; results may be None). Pure: reads, writes nothing."""
    if isinstance(source, (str, Path)) and plan is None:
        return _assemble_read(read_run_dir(Path(source)), str(source), title)
    if plan is None:
        raise InputError("build: give a run directory, or a results table and a plan")
    return assemble(Inputs(_typed_plan(plan), source, metrics, student_results), title)


def build_files(plan: str | Path, results: str | Path | None = None,
                metrics: str | Path | None = None, *, title: str = TITLE) -> Report:
    """The report of a plan file (plan.json / plan.yaml) with, optionally, the results table it
    was planned from (a .csv, .jsonl or a directory holding one) and a distillation's
    metrics.json: what `build(run_dir)` renders, from files that live anywhere."""
    return _assemble_read(read_files(plan, results, metrics), str(plan), title)


def _assemble_read(inp: Inputs, where: str, title: str) -> Report:
    """assemble() of inputs read from files; files that parse but cannot be rendered are
    one InputError naming them."""
    try:
        return assemble(inp, title)
    except InputError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError, IndexError) as e:
        # files that parse but are not what roi wrote (edited, damaged, or of another
        # version): named here, at the boundary where they were read
        read = ", ".join(v for v in inp.origin.values() if not v.startswith("absent"))
        raise InputError(f"{where}: its files ({read}) cannot be rendered: they are "
                         f"damaged or not as roi wrote them ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:120]}); write them again (roi plan, "
                         "roi run)") from None


def assemble(inp: Inputs, title: str = TITLE) -> Report:
    figures: dict[str, bytes] = {}
    sections = [make(inp, figures) for make in SECTIONS]
    shown = [b for s in sections for b in s.blocks if isinstance(b, Figure)]
    sections.append(method_section(inp, figures, shown))
    return Report(title, _subtitle(inp), tuple(sections), figures)


def _subtitle(inp: Inputs) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    scenarios = ", ".join(inp.plan.scenarios) or "no scenario"
    return f"Teacher {inp.teacher}; scenarios: {scenarios}. Generated {when}."


# ------------------------------------------------------------------------------ reading


def _read_results(path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None
    from contracts.results import read_table

    return read_table(path)


def _read_metrics(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: cannot read distillation metrics "
                         f"({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: distillation metrics must be a JSON object")
    return data


def read_run_dir(run: Path) -> Inputs:
    """A run directory's inputs; only the plan is required."""
    if not run.is_dir():
        raise InputError(f"run directory {run} does not exist")
    layout = RunLayout(run)
    plan_path = layout.first(layout.PLAN)
    if plan_path is None:
        raise InputError(f"{run}: no plan ({' or '.join(layout.PLAN)}); run `roi plan` first")
    results_path = layout.first(layout.RESULTS)
    student_path = layout.first(layout.STUDENT_RESULTS)
    origin = {"plan": str(plan_path),
              "results": str(results_path) if results_path else "absent",
              "distillation metrics": str(layout.metrics) if layout.metrics.is_file()
              else "absent (pending)",
              "student re-bench": str(student_path) if student_path else "absent (pending)"}
    replan = _typed_plan(layout.replan) if layout.replan.is_file() else None
    return Inputs(_typed_plan(plan_path), _read_results(results_path),
                  _read_metrics(layout.metrics), _read_results(student_path), origin, replan)


def read_files(plan: str | Path, results: str | Path | None = None,
               metrics: str | Path | None = None) -> Inputs:
    """Inputs from a plan file, a results table and distillation metrics (only the plan is
    required; a file named but missing is an InputError)."""
    plan = Path(plan)
    for option, path in (("--plan", plan), ("--results", results), ("--metrics", metrics)):
        if path is None or Path(path).is_file() or (option == "--results" and
                                                    Path(path).is_dir()):
            continue  # a results directory: read_table finds the table in it
        what = "is a directory" if Path(path).is_dir() else "does not exist"
        raise InputError(f"{option} {path}: {what}; expected a file")
    origin = {"plan": str(plan), "results": str(results) if results else "absent",
              "distillation metrics": str(metrics) if metrics else "absent"}
    return Inputs(_typed_plan(plan), _read_results(Path(results) if results else None),
                  _read_metrics(Path(metrics)) if metrics else None, None, origin)


# ------------------------------------------------------------------------------ writing


def _inside(root: Path, path: Path) -> Path:
    """`path`, refused unless it resolves inside `root` (a figure name never escapes)."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise InputError(f"refusing to write {path}: outside the output directory {root}")
    return path


def write(report: Report, out_dir: str | Path) -> Written:
    """out_dir/report.md, out_dir/report.html and out_dir/figures/NAME.png, each atomically;
    the HTML last, so that its presence means the report is whole. Figures an earlier
    write left there and this report no longer shows are removed."""
    out = Path(out_dir)
    written = write_figures(report.figures, out)
    md = write_text_atomic(_inside(out, out / "report.md"), markdown.render(report))
    page = write_text_atomic(_inside(out, out / "report.html"), html.render(report))
    log.info("report: %s (+ report.md, %d figures)", page, len(written))
    return Written(md, page, tuple(written))


def write_figures(figures: Mapping[str, bytes], out_dir: str | Path) -> tuple[Path, ...]:
    """out_dir/figures/NAME.png for each figure, atomically; figures an earlier write left
    there and these no longer include are removed."""
    out = Path(out_dir)
    fig_dir = out / markdown.FIGURES_DIR
    written = []
    for name, png in figures.items():
        if not _SAFE_NAME.match(name):
            raise InputError(f"figure name {name!r}: allowed lower-case letters, digits, - and _")
        path = _inside(out, fig_dir / f"{name}.png")
        with atomic_path(path) as tmp:
            tmp.write_bytes(png)
        written.append(path)
    if fig_dir.is_dir():
        for stale in fig_dir.glob("*.png"):
            if stale not in written and _SAFE_NAME.match(stale.stem):
                stale.unlink()
    return tuple(written)


def plan_figures(plan: Any) -> dict[str, bytes]:
    """The cost per scenario and throughput per dollar figures of a plan (a Plan, a plan dict
    or file), as its report draws them: what `roi plan` writes beside plan.json."""
    figures: dict[str, bytes] = {}
    inp = Inputs(_typed_plan(plan))
    scenarios_section(inp, figures)
    sizing_section(inp, figures)
    return figures


def write_with_parts(report: Report, out_dir: str | Path) -> Written:
    """`write` the whole report to out_dir and each of PARTS to out_dir/<part>/."""
    from .document import select

    for part, sections in PARTS.items():
        write(select(report, *sections), Path(out_dir) / part)
    return write(report, out_dir)


def render_run_dir(run_dir: str | Path, out_dir: str | Path | None = None) -> Written:
    """Read RUN/{bench,plan,distill,bench-student}, write RUN/report (or out_dir)."""
    run = Path(run_dir)
    return write(build(run), out_dir if out_dir is not None else run / RunLayout.REPORT_DIR)
