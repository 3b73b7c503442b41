"""The `roi` subcommands that plan and render: plan (measured and LLM plans), run (the whole
pipeline, app/run.py) and report. Registered on the command in app/cli.py. plan's options that
are `roi run` settings too are derived from their fields (app/runconfig.py, app/cli_options.py),
its --datagen-* options from roi.datagen_inputs.DataGenInputs'.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from contracts.defaults import SCENARIO_PRESETS
from contracts.errors import InputError
from roi.datagen_inputs import DataGenInputs

from . import cli_complete as complete
from .cli_common import HARDWARE_HELP, default_out, write_figures
from .cli_options import from_settings, setting, settings_values
from .runconfig import RunConfig


@from_settings(RunConfig)
def plan(
    results: Optional[list[str]] = typer.Option(None, "--results", metavar="FILE", help="Results "
                                                "table: a bench run directory, results.csv or "
                                                "results.jsonl (or one written by hand in the "
                                                "same schema). Repeatable: tables from several "
                                                "machines merge."),
    scenario: list[str] = typer.Option(..., "--scenario", metavar="NAME|FILE",
                                       autocompletion=complete.scenario, help="A preset "
                                       f"({', '.join(SCENARIO_PRESETS)}) or a scenario YAML "
                                       "file. Repeatable."),
    hardware_files: Optional[list[str]] = typer.Option(None, "--hardware", metavar="FILE",
                                                       help=HARDWARE_HELP),
    retention_threshold=setting(),
    out: Optional[str] = typer.Option(None, help="Output directory for plan.yaml, plan.json "
                                      "and sizing.csv [default: runs/plan-<time>]."),
    local_peak_gflops=setting(),
    metrics: Optional[list[str]] = typer.Option(None, "--metrics", metavar="SPEC=FILE",
                                                help="A distilled student's metrics.json: its "
                                                "measured retention replaces the prior. "
                                                "Repeatable (ckpt:DIR students are found "
                                                "without it)."),
    engineering_weeks=setting("economics.engineering_weeks"),
    engineering_usd_per_week=setting("economics.engineering_usd_per_week"),
    training_hardware=setting("economics.training_hardware"),
    training_hours=setting("economics.training_hours"),
    pilot: Optional[list[str]] = typer.Option(None, "--pilot", metavar="FILE", help="Pilot "
                                              "curves (roi pilot's pilot.csv or its directory, "
                                              "or a distillation's metrics.json): retention is "
                                              "forecast per training budget from them and the "
                                              "budget becomes part of the decision. "
                                              "Repeatable."),
    max_steps: Optional[int] = typer.Option(None, help="The largest training budget (steps) "
                                            "the plan considers [default: 64x the longest "
                                            "pilot]."),
    require_benefit=setting(note="(--no-require-benefit: the seed's criteria alone)"),
    portfolio=setting(param_decls=("--portfolio",)),
    teacher: Optional[str] = typer.Option(None, help="A teacher known only by its architecture, "
                                          "config:NAME|FILE (e.g. config:llama-3-70b): planned "
                                          "from projections alone, without --results."),
    students: Optional[str] = typer.Option(None, help="With a config: teacher: comma-separated "
                                           "config: students [default: the seed's sizes]."),
    llm_sla: Optional[str] = typer.Option(None, help="With a config: teacher: mlperf (TTFT 2 s, "
                                          "TPOT 100 ms) or mlperf-interactive (500 / 30 ms) "
                                          "[default: the scenario's latency bound]."),
    datagen=setting("teacher", model=DataGenInputs, metavar="none|local|api:MODEL"),
    datagen_samples=setting("samples", model=DataGenInputs),
    datagen_prompt_tokens=setting("prompt_tokens", model=DataGenInputs),
    datagen_completion_tokens=setting("completion_tokens", model=DataGenInputs),
    datagen_tokens_per_s=setting("tokens_per_s", model=DataGenInputs),
    datagen_price_in=setting("usd_per_1m_input_tokens", model=DataGenInputs),
    datagen_price_out=setting("usd_per_1m_output_tokens", model=DataGenInputs),
    datagen_prices=setting("prices_file", model=DataGenInputs, metavar="FILE"),
    figures: bool = typer.Option(True, help="Draw the cost per scenario and throughput per "
                                 "dollar figures into OUT/figures/ (--no-figures: the plan "
                                 "alone, about 0.4 s CPU less per scenario)."),
) -> None:
    """Plan the distillation: cost and sizing per scenario and hardware, projection, decision,
    recommended student and ROI; writes plan.yaml (read by roi distill) and plan.json.

    \b
    Examples: roi plan --results runs/bench-1 --scenario real-time-api
                       --pilot runs/pilot-1/pilot.csv --out runs/plan-1
              roi plan --teacher config:llama-3-70b --scenario real-time-api
                       --out runs/plan-llm
    """
    if teacher is not None or not results:
        if results or teacher is None or not teacher.startswith("config:"):
            raise InputError("roi plan: give --results FILE (measured models), or --teacher "
                             "config:NAME|FILE alone (a model described by its config)")
        return _plan_llm(teacher, students, scenario, retention_threshold, llm_sla, out)
    from roi.payback import RoiInputs
    from roi.planner import plan as make_plan
    from roi.planner import write_plan
    from roi.retention import parse_metrics_args

    gen = DataGenInputs(**settings_values(plan, locals(), DataGenInputs))
    inputs = RoiInputs(engineering_weeks=engineering_weeks,
                       engineering_usd_per_week=engineering_usd_per_week,
                       training_hardware=training_hardware, training_hours=training_hours,
                       datagen=gen)
    out_dir = _plan_out_dir(out)  # checked before the work
    result = make_plan(results, scenario, hardware=hardware_files or [],
                       retention_threshold=retention_threshold,
                       measured_retention=parse_metrics_args(metrics or []),
                       local_peak_gflops=local_peak_gflops, roi_inputs=inputs,
                       require_benefit=require_benefit, pilot=pilot or None,
                       max_steps=max_steps, portfolio=portfolio)
    typed = result.typed()  # checked against the contract once: written and drawn from
    write_plan(typed, out_dir, result.grid)
    from reports import plan_figures

    from .console import print_plan_summary

    print_plan_summary(result.to_dict(), out_dir)
    if figures:
        print(write_figures(plan_figures(typed), out_dir))


def run_command(
    config: Optional[str] = typer.Option(None, metavar="FILE", help="YAML run config: teacher, "
                                         "students, scenarios, hardware, retention_threshold, "
                                         "bench and trainer settings (README, `roi run`)."),
    quick: bool = typer.Option(False, help="The smaller budget (<= 3 minutes on 2 CPU cores): "
                               "batch 1, fewer calls, a short distillation."),
    out: Optional[str] = typer.Option(None, help="Run directory [default: runs/<time>]; an "
                                      "existing one resumes where it stopped."),
    no_pilot: bool = typer.Option(False, "--no-pilot", help="No pilot distillations (the "
                                  "config's pilot: {enabled: false}): the plan's retention is "
                                  "the prior, labelled so."),
) -> None:
    """From the question to the answer: bench, pilot, plan the scenarios, report, and (on go)
    distill the recommended student, bench it and report predicted beside achieved.

    \b
    Example: roi run --config run.yaml --quick --out runs/run-1
    """
    from .run import default_out, execute, open_run, summary_line

    run_dir = out or str(default_out())
    cfg = run_config(config, no_pilot)
    try:
        run = open_run(cfg, run_dir, "quick" if quick else "default", _ConsoleHooks())
    except InputError as e:  # a setting of the config file: say which file
        if config and not str(e).startswith(f"{config}:"):
            raise InputError(f"{config}: {e}") from None
        raise
    try:
        result = execute(run)
    except KeyboardInterrupt:
        again = " ".join(["roi run", *(["--config", config] if config else []),
                          *(["--quick"] if quick else []),
                          *(["--no-pilot"] if no_pilot else []), "--out", run_dir])
        print(f"interrupted: `{again}` resumes where it stopped", file=sys.stderr)
        sys.exit(130)
    print(summary_line(result.summary))


def run_config(config: Optional[str], no_pilot: bool = False):
    """The run's config file (None: every default), with --no-pilot applied."""
    from .runconfig import load_run_config

    cfg = load_run_config(config)
    if no_pilot:
        cfg = cfg.model_copy(update={"pilot": cfg.pilot.model_copy(update={"enabled": False})})
    return cfg


class _ConsoleHooks:
    """roi run's terminal: a line per step, rich progress bars for bench and distill."""

    def step(self, index: int, total: int, name: str, status: str, detail: str = "") -> None:
        from .console import console
        from .run import step_line

        console.print(step_line(index, total, name, status, detail), highlight=False,
                      markup=False)

    def bench_progress(self):
        from .console import progress_bar

        return progress_bar()

    def train_progress(self):
        from .console import training_progress

        return training_progress()

    def pilot_progress(self):
        from .console import pilot_progress

        return pilot_progress()


def report(
    run_dir: Optional[str] = typer.Argument(None, metavar="[DIR]", help="A run directory (roi "
                                            "run --out)."),
    plan: Optional[str] = typer.Option(None, metavar="FILE", help="Instead of DIR: a plan "
                                       "(plan.json or plan.yaml, as roi plan writes)."),
    results: Optional[str] = typer.Option(None, metavar="FILE", help="With --plan: the "
                                          "results table it was planned from (.csv, .jsonl or "
                                          "a directory holding one)."),
    metrics: Optional[str] = typer.Option(None, metavar="FILE", help="With --plan: a "
                                          "distillation's metrics.json (roi distill --out)."),
    out: Optional[str] = typer.Option(None, help="Where to write [default: DIR/report, or "
                                      "report/ beside the plan file]."),
) -> None:
    """Render a run directory again, or a plan with its results table: report.html,
    report.md, figures/ and the decision, sizing and distill-plan parts.

    Examples: roi report runs/run-1;
    roi report --plan runs/plan-1/plan.json --results runs/bench-1/results.csv --out report
    """
    forms = "give a run directory DIR, or --plan FILE [--results FILE] [--metrics FILE]"
    if run_dir is not None and (plan or results or metrics):
        raise InputError(f"roi report: {forms}; not both")
    if run_dir is None and plan is None:
        extra = [o for o, v in (("--results", results), ("--metrics", metrics)) if v]
        raise InputError(f"roi report: {' and '.join(extra)} without --plan; {forms}"
                         if extra else f"roi report: {forms}")
    if run_dir is not None:
        from .run import render

        page = render(run_dir, out)
    else:
        page = _report_files(plan, results, metrics, out)
    print(f"report: {page} (+ report.md, figures/; decision/, sizing/, distill-plan/)")


def _report_files(plan: str, results: Optional[str], metrics: Optional[str],
                  out: Optional[str]):
    """roi report --plan FILE [--results FILE] [--metrics FILE]: report.html's path."""
    from pathlib import Path

    from reports import build_files, write_with_parts

    from contracts.io import check_out_dir

    out_dir = check_out_dir(Path(out) if out else Path(plan).parent / "report")
    return write_with_parts(build_files(plan, results, metrics), out_dir).html


def _plan_out_dir(out: Optional[str]):
    """roi plan's output directory, refused when it names an existing file."""
    from pathlib import Path

    from contracts.io import check_out_dir

    return check_out_dir(Path(out or default_out("plan")))


def _plan_llm(teacher: str, students: Optional[str], scenarios: list[str],
              threshold: float, sla: Optional[str], out: Optional[str]) -> None:
    """roi plan for a config: teacher: projections only; plan.yaml, plan.json, plan.md and the
    decision report (report/report.html, report.md, figures/)."""
    from reports.llm import llm_plan_markdown, llm_report
    from reports.report import write as write_report

    from contracts.io import write_text_atomic
    from contracts.plan import parse_plan
    from roi.llm_plan import llm_plan
    from roi.plan_document import plain, write_plan

    studs = [s.strip() for s in students.split(",") if s.strip()] if students else None
    doc = llm_plan(teacher, studs, scenarios, retention_threshold=threshold, sla_preset=sla)
    out_dir = _plan_out_dir(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    typed = parse_plan(plain(doc), "plan")
    write_plan(typed, out_dir)  # plan.json, .yaml, .schema.json
    write_text_atomic(out_dir / "plan.md", llm_plan_markdown(typed))
    report = llm_report(typed)
    page = write_report(report, out_dir / "report").html
    drawn = {k: v for k, v in report.figures.items() if k in ("llm-cost", "llm-latency")}
    d = doc["decision"]
    print(f"{'GO' if d['go'] else 'NO-GO'}: distill {teacher} to "
          f"{doc['recommended']['model'] or 'no student'} (projected, not measured)")
    for r in d["reasons"]:
        print(f"  - {r}")
    print(f"plan: {out_dir / 'plan.yaml'}; report: {page} (+ report.md"
          f"{', figures/' if report.figures else ''}; plan.md)")
    print(write_figures(drawn, out_dir))
