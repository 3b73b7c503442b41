"""The `roi` command line. Each subcommand maps to a plain function; heavy imports (torch,
onnxruntime) happen inside the subcommand that needs them.

Bad input prints one line, `error: ...`, and exits with code 2, with no traceback.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import Optional

import typer

from .errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Should we distill this model, to what size, on what hardware, and what will it save?",
)


@app.callback()
def _root() -> None:
    """Should we distill this model, to what size, on what hardware, and what will it save?"""


def _default_out(prefix: str) -> str:
    return f"runs/{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


@app.command()
def bench(
    teacher: str = typer.Option("builtin:teacher", help="Teacher model spec: builtin:NAME, "
                                "hf:DIR, onnx:FILE or ckpt:DIR."),
    students: str = typer.Option("auto", help="Comma-separated student specs, or 'auto' for "
                                 "builtin:student-5x,-10x,-20x,-50x."),
    backends: str = typer.Option("torch-eager,ort-fp32,ort-int8", help="Comma-separated: "
                                 "torch-eager, torch-eager-bf16, ort-fp32, ort-int8."),
    batch_sizes: Optional[str] = typer.Option(None, help="Comma-separated batch sizes "
                                              "[default: 1,8; 1 with --quick]."),
    seq_lens: str = typer.Option("128", help="Comma-separated sequence lengths (tokens)."),
    threads: Optional[str] = typer.Option(None, help="Comma-separated intra-op thread counts "
                                          "to sweep [default: physical cores]."),
    device: str = typer.Option("auto", help="cpu, cuda or auto (cuda when a GPU is visible)."),
    out: Optional[str] = typer.Option(None, help="Output directory [default: "
                                      "runs/bench-<time>]."),
    resume: bool = typer.Option(False, help="Continue a sweep in --out, skipping "
                                "configurations already measured."),
    quick: bool = typer.Option(False, help="Fewer calls per configuration (≥10 calls, ≥0.5 s)."),
    memory_budget_mb: Optional[float] = typer.Option(None, help="Skip configurations estimated "
                                                     "above this and stop any that exceed it."),
    timeout_s: Optional[float] = typer.Option(None, help="Per-configuration time limit "
                                              "[default: 600 s; 300 s with --quick]."),
    isolate: bool = typer.Option(True, help="Run each configuration in a fresh subprocess "
                                 "(--no-isolate: faster, memory peaks mix)."),
    rounds: Optional[int] = typer.Option(None, help="Repeat the sweep and pool each row's "
                                         "samples across rounds, so machine drift averages out "
                                         "[default: 2; 1 with --quick]."),
) -> None:
    """Measure the teacher and candidate students: latency percentiles, throughput, memory."""
    from bench.sweep import plan_sweep, run_plan

    plan = plan_sweep(
        teacher=teacher, students=students, backends=backends, batch_sizes=batch_sizes,
        seq_lens=seq_lens, threads=threads, device=device, out=out or _default_out("bench"),
        resume=resume, quick=quick, isolate=isolate, memory_budget_mb=memory_budget_mb,
        timeout_s=timeout_s, rounds=rounds,
    )
    from .console import progress_bar, print_bench_summary

    with progress_bar() as progress:
        df = run_plan(plan, progress)
    print_bench_summary(df, plan.out)


HARDWARE_HELP = ("YAML file of extra or replacement hardware rows (same schema as the shipped "
                 "catalog; a row with an existing name replaces it). Repeatable.")


@app.command()
def hardware(
    hardware_files: Optional[list[str]] = typer.Option(None, "--hardware", metavar="FILE",
                                                       help=HARDWARE_HELP),
) -> None:
    """Print the hardware catalog: price, peak compute, bandwidth, memory, power, sources."""
    from .console import print_hardware
    from .hardware import load_catalog

    print_hardware(load_catalog(hardware_files or []))


@app.command()
def scenarios(
    scenario: Optional[list[str]] = typer.Option(None, "--scenario", metavar="NAME|FILE",
                                                 help="A preset name or a scenario YAML "
                                                 "file to show instead of all presets. "
                                                 "Repeatable."),
    hardware_files: Optional[list[str]] = typer.Option(None, "--hardware", metavar="FILE",
                                                       help=HARDWARE_HELP),
) -> None:
    """List the scenario presets (or given scenarios): workload, SLA, constraints, candidate
    hardware and the seed's expected ranges."""
    from .console import print_scenarios
    from .hardware import load_catalog
    from .scenarios import load_scenarios, presets

    catalog = load_catalog(hardware_files or [])
    if scenario:
        found = [s for spec in scenario for s in load_scenarios(spec, catalog)]
    else:
        found = list(presets().values())
    print_scenarios(found)


@app.command()
def distill(
    plan: str = typer.Option(..., help="plan.yaml written by roi plan (decision + trainer)."),
    out: str = typer.Option(..., help="Output directory: the student checkpoint (ckpt:DIR), its "
                            "ONNX and int8 exports, metrics.json, and the no-KD baseline."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out."),
    force: bool = typer.Option(False, help="Train even when the plan says no-go."),
    config: Optional[str] = typer.Option(None, help="YAML file of trainer settings overriding "
                                         "the plan's trainer section."),
    set_: list[str] = typer.Option([], "--set", help="Override one trainer setting, "
                                   "key=value (repeatable), e.g. --set steps=500."),
) -> None:
    """Distill the plan's recommended student; measure retention against teacher and baseline."""
    from distill.pipeline import distill_from_plan, parse_overrides

    from .console import print_distill_summary, training_progress

    overrides = parse_overrides(set_)
    with training_progress() as progress:
        result = distill_from_plan(plan, out, resume=resume, force=force, config_file=config,
                                   overrides=overrides, progress=progress)
    print_distill_summary(result.metrics, result.out_dir)


@app.command()
def plan(
    results: list[str] = typer.Option(..., "--results", metavar="FILE", help="Results table: a "
                                      "bench run directory, results.csv or results.jsonl (or "
                                      "one written by hand in the same schema). Repeatable: "
                                      "tables from several machines merge."),
    scenario: list[str] = typer.Option(..., "--scenario", metavar="NAME|FILE", help="A preset "
                                       "(cloud-batch, real-time-api, mobile-on-device, "
                                       "embedded-iot, multi-model) or a scenario YAML file. "
                                       "Repeatable."),
    hardware_files: Optional[list[str]] = typer.Option(None, "--hardware", metavar="FILE",
                                                       help=HARDWARE_HELP),
    retention_threshold: float = typer.Option(0.95, help="Lowest acceptable accuracy "
                                              "retention (student / teacher), a fraction; the "
                                              "low end of a student's band must reach it."),
    out: Optional[str] = typer.Option(None, help="Output directory for plan.yaml, plan.json "
                                      "and sizing.csv [default: runs/plan-<time>]."),
    local_peak_gflops: Optional[float] = typer.Option(None, help="Measured fp32 peak of the "
                                                      "machine the results come from, GFLOP/s "
                                                      "[default: the best rate a row reached]."),
    metrics: Optional[list[str]] = typer.Option(None, "--metrics", metavar="SPEC=FILE",
                                                help="A distilled student's metrics.json: its "
                                                "measured retention replaces the prior. "
                                                "Repeatable (ckpt:DIR students are found "
                                                "without it)."),
    engineering_weeks: float = typer.Option(2.0, help="Engineering effort of the project."),
    engineering_usd_per_week: float = typer.Option(4000.0, help="Loaded cost of an engineer-"
                                                   "week, USD."),
    training_hardware: str = typer.Option("a10g", help="Catalog hardware that labels and "
                                          "trains (its hourly price is charged)."),
    training_hours: Optional[float] = typer.Option(None, help="Training time [default: "
                                                   "estimated from FLOPs]."),
    require_benefit: bool = typer.Option(True, help="Go only when the student saves money or "
                                         "meets a scenario the teacher cannot "
                                         "(--no-require-benefit: the seed's criteria alone)."),
) -> None:
    """Plan the distillation: cost and sizing per scenario and hardware, projection, decision,
    recommended student and ROI; writes plan.yaml (read by roi distill) and plan.json."""
    from .payback import RoiInputs
    from .planner import plan as make_plan
    from .planner import write_plan
    from .retention import parse_metrics_args

    inputs = RoiInputs(engineering_weeks=engineering_weeks,
                       engineering_usd_per_week=engineering_usd_per_week,
                       training_hardware=training_hardware, training_hours=training_hours)
    result = make_plan(results, scenario, hardware=hardware_files or [],
                       retention_threshold=retention_threshold,
                       measured_retention=parse_metrics_args(metrics or []),
                       local_peak_gflops=local_peak_gflops, roi_inputs=inputs,
                       require_benefit=require_benefit)
    out_dir = out or _default_out("plan")
    from pathlib import Path

    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise InputError(f"--out: must be a directory; got the file {out_dir}")
    write_plan(result, out_dir)
    from .console import print_plan_summary

    print_plan_summary(result.to_dict(), out_dir)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv, prog_name="roi", standalone_mode=False)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except typer.TyperException as e:  # click's usage errors (typer vendors click)
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.ctx.get_help() if getattr(e, "ctx", None) else "usage: roi COMMAND --help")
            return 0
        print(f"error: {e.format_message()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun with --resume to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
