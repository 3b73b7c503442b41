"""The `roi` subcommands that measure or describe hardware: bench, hardware, scenarios,
loadtest and import (another tool's measurements). Registered on the command in app/cli.py.
bench's options that are `roi run` bench settings too are derived from their fields
(app/runconfig.py BenchSettings, app/cli_options.py); loadtest's from LoadtestSettings
(bench/loadtest_settings.py) and import's from ImportOptions (roi/import_options.py).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from bench.loadtest_settings import LoadtestSettings
from contracts.defaults import BACKENDS
from contracts.errors import InputError
from roi.import_options import ImportOptions

from . import cli_complete as complete
from .cli_common import HARDWARE_HELP, default_out, interrupted, write_figures
from .cli_options import from_settings, setting, settings_values
from .runconfig import BenchSettings, RunConfig


@from_settings(BenchSettings)
def bench(
    teacher=setting(model=RunConfig),
    students=setting(model=RunConfig, comma=True),
    backends: str = typer.Option(",".join(BACKENDS), autocompletion=complete.backends,
                                 help="Comma-separated: "
                                 "torch-eager, torch-eager-bf16, ort-fp32, ort-int8, "
                                 "ort-int8-static, ort-int8-static-all, ort-fused-fp32, "
                                 "ort-fused-int8, ort-int8-wo, ort-int4-wo (bench/variants.py); "
                                 "'deploy' for every deployable variant."),
    batch_sizes=setting(comma=True, note="[default: 1,8; 1 with --quick]"),
    seq_lens: str = typer.Option("128", help="Comma-separated sequence lengths (tokens)."),
    threads=setting(comma=True),
    device=setting(as_text=True),  # bench.sweep names the allowed values
    out: Optional[str] = typer.Option(None, help="Output directory [default: "
                                      "runs/bench-<time>]."),
    resume: bool = typer.Option(False, help="Continue a sweep in --out, skipping "
                                "configurations already measured."),
    quick: bool = typer.Option(False, help="Fewer calls per configuration (≥10 calls, ≥0.5 s)."),
    memory_budget_mb=setting(),
    timeout_s=setting(note="[default: 600 s; 300 s with --quick]"),
    isolate=setting(note="(--no-isolate: faster, memory peaks mix)"),
    rounds=setting(note="[default: 2; 1 with --quick]"),
) -> None:
    """Measure the teacher and candidate students: latency percentiles, throughput, memory.

    \b
    Example: roi bench --students builtin:student-10x --backends torch-eager,ort-int8
             --quick --out runs/bench-1
    """
    from bench.sweep import plan_sweep, run_plan

    plan = plan_sweep(
        teacher=teacher, students=students, backends=backends, batch_sizes=batch_sizes,
        seq_lens=seq_lens, threads=threads, device=device, out=out or default_out("bench"),
        resume=resume, quick=quick, isolate=isolate, memory_budget_mb=memory_budget_mb,
        timeout_s=timeout_s, rounds=rounds,
    )
    from .console import progress_bar, print_bench_summary

    with progress_bar() as progress:
        df = run_plan(plan, progress)
    print_bench_summary(df, plan.out)
    print(_bench_figures(df, plan.out))


def _bench_figures(df, out) -> str:
    """OUT/figures/latency.png (p50, p99) and speedup.png (with its CI); the line naming them."""
    from pathlib import Path

    import pandas as pd

    from reports.measure_figures import bench_latency, bench_speedup

    speedups = Path(out) / "speedups.csv"
    sp = pd.read_csv(speedups) if speedups.is_file() else pd.DataFrame()
    return write_figures({"latency": bench_latency(df),
                          "speedup": bench_speedup(sp) if len(sp) else None}, out)


def hardware(
    hardware_files: Optional[list[str]] = typer.Option(None, "--hardware", metavar="FILE",
                                                       help=HARDWARE_HELP),
) -> None:
    """Print the hardware catalog: price, peak compute, bandwidth, memory, power, sources.

    \b
    Example: roi hardware --hardware my-hardware.yaml
    """
    from .console import print_hardware
    from roi.hardware import load_catalog

    print_hardware(load_catalog(hardware_files or []))


def scenarios(
    scenario: Optional[list[str]] = typer.Option(None, "--scenario", metavar="NAME|FILE",
                                                 autocompletion=complete.scenario,
                                                 help="A preset name or a scenario YAML "
                                                 "file to show instead of all presets. "
                                                 "Repeatable."),
    hardware_files: Optional[list[str]] = typer.Option(None, "--hardware", metavar="FILE",
                                                       help=HARDWARE_HELP),
) -> None:
    """List the scenario presets (or given scenarios): workload, SLA, constraints, candidate
    hardware and the seed's expected ranges.

    \b
    Example: roi scenarios --scenario real-time-api --scenario my-scenario.yaml
    """
    from .console import print_scenarios
    from roi.hardware import load_catalog
    from roi.scenarios import load_scenarios, presets

    catalog = load_catalog(hardware_files or [])
    if scenario:
        found = [s for spec in scenario for s in load_scenarios(spec, catalog)]
    else:
        found = list(presets().values())
    print_scenarios(found)


@from_settings(LoadtestSettings)
def loadtest(
    model=setting(),
    backend=setting("variant", as_text=True, metavar="VARIANT",
                    autocompletion=complete.variant),
    scenario=setting(as_text=True, autocompletion=complete.loadgen_scenario),
    qps=setting(note="With --find-peak: where the search starts."),
    latency_ms=setting(),
    percentile=setting(),
    find_peak: bool = typer.Option(False, help="server: search the highest QPS that stays "
                                   "VALID (bracket from --qps, then bisection over runs)."),
    out: Optional[str] = typer.Option(None, help="Run directory: results.jsonl/.csv (the "
                                      "table roi plan reads) and LoadGen's logs under "
                                      "loadgen/ [default: runs/loadtest-<time>]."),
    seq_len=setting(),
    threads=setting(unset=True, note="[default: physical cores]"),
    max_batch=setting(),
    batch_window_ms=setting(),
    workers=setting(),
    min_duration_ms=setting(),
    min_query_count=setting(),
    samples=setting(),
    role=setting(as_text=True),
    precision: float = typer.Option(0.05, help="--find-peak: stop when the VALID / INVALID "
                                    "bracket is this close (relative)."),
    max_runs: int = typer.Option(10, help="--find-peak: most LoadGen runs."),
    user_conf=setting(metavar="FILE"),
    mode=setting("test_mode", as_text=True, autocompletion=complete.mode,
                 param_decls=("--mode", "--test-mode")),
) -> None:
    """Load-test a model on MLPerf LoadGen; the summary becomes a row (source loadgen) of the
    results table roi plan reads, and --find-peak a measured peak the planner prefers.

    \b
    Examples: roi loadtest --model builtin:student-10x --backend ort-int8 --scenario server
              --latency-ms 50 --find-peak --out runs/loadtest-1
              roi loadtest --model ckpt:runs/student --backend ort-int8 --scenario Offline
              --mode accuracy
    """
    from bench.loadgen import check_settings

    if precision <= 0 or max_runs < 2:
        raise InputError(f"--precision must be > 0 and --max-runs >= 2; got {precision:g}, "
                         f"{max_runs}")
    if find_peak and scenario.strip().lower() != "server":  # MLPerf spells it Server
        raise InputError(f"--find-peak searches a server QPS; got --scenario {scenario}")
    if find_peak and mode != "performance":
        raise InputError(f"--find-peak times performance runs; got --mode {mode}")
    from models.runtime import default_threads

    values = settings_values(loadtest, locals())
    settings = check_settings(LoadtestSettings(**{**values, "threads": values.get(
        "threads", default_threads())}))
    out_dir = out or default_out("loadtest")
    from pathlib import Path

    from contracts.io import check_out_dir

    check_out_dir(out_dir)
    from .console import print_loadtest_run

    from bench.interrupt import LoadtestInterrupted
    from checks import loadgen as predictor  # the sizing model's figures beside each run

    try:
        if find_peak:
            from bench.loadgen import find_peak as search

            result = search(settings, out_dir, precision=precision, max_runs=max_runs,
                            progress=lambda r: print_loadtest_run(r.row), predictor=predictor,
                            probing=lambda n, q, b: print(_probe_line(n, max_runs, q, b),
                                                          flush=True))
            _print_peak(result, settings, out_dir)
            _peak_figure(result, settings, Path(out_dir))
        else:
            from bench.loadgen import run_one

            print_loadtest_run(run_one(settings, out_dir, predictor=predictor).row)
            print(f"results: {Path(out_dir) / 'results.jsonl'} (+ results.csv); LoadGen logs "
                  f"under {Path(out_dir) / 'loadgen'}")
    except LoadtestInterrupted:  # LoadGen's threads may run on: no interpreter shutdown
        import os

        print(interrupted(["loadtest", "--out", str(out_dir)]), file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


def _probe_line(n: int, max_runs: int, qps: float, bracket: tuple) -> str:
    lo, hi = (f"{q:g}" if q else "?" for q in bracket)
    return f"probe {n}/{max_runs}: {qps:g} QPS (VALID up to {lo}, INVALID from {hi}) ..."


def _peak_figure(result, settings, out_dir) -> None:
    """The probes' latency against QPS, beside the results table (reports.figures)."""
    from contracts.io import atomic_path
    from reports.measure_figures import peak_search

    png = peak_search([r.row for r in result.runs], settings.latency_ms,
                      settings.claimed_percentile, result.peak_qps)
    if png:
        with atomic_path(out_dir / "find-peak.png") as tmp:
            tmp.write_bytes(png)
        print(f"figure: {out_dir / 'find-peak.png'}")


def _print_peak(result, settings, out_dir) -> None:
    if result.peak_qps is None:
        print(f"no VALID run: even {result.runs[-1].row['loadgen_target_qps']:g} QPS failed "
              f"the p{settings.claimed_percentile:g} <= {settings.latency_ms:g} ms bound")
        return
    hi = result.bracket[1]
    print(f"peak: {result.peak_qps:.1f} QPS VALID at p{settings.claimed_percentile:g} <= "
          f"{settings.latency_ms:g} ms" + (f" ({hi:.1f} QPS was INVALID)" if hi else
                                           " (no INVALID rate found within --max-runs)")
          + f"; {len(result.runs)} runs; row appended to {out_dir}/results.jsonl")


@from_settings(ImportOptions)
def import_command(
    tool: str = typer.Argument(..., metavar="TOOL", help="vllm (`vllm bench serve "
                               "--save-result` JSON), optimum-benchmark (benchmark.json or "
                               "benchmark_report.json) or mlperf (mlperf_log_detail.txt)."),
    file: str = typer.Argument(..., metavar="FILE", help="The tool's result file."),
    hardware=setting(metavar="NAME"),
    role=setting(as_text=True),
    out: str = typer.Option(..., help="Directory of the results table to write or add to "
                            "(results.jsonl + results.csv), the table roi plan --results "
                            "reads."),
    model=setting(),
    dtype=setting(),
    params=setting(),
    device=setting(as_text=True),
    batch_size=setting(),
    seq_len=setting(),
) -> None:
    """Import another tool's measurement as rows (source imported) of a results table, so roi
    plan costs that hardware from it instead of a projection.

    Example: roi import vllm result.json --hardware h100 --role teacher --dtype bf16
    --params 8030261248 --out runs/h100
    """
    from roi.hardware import load_catalog
    from roi.importers import import_file
    from contracts.io import check_out_dir, dir_lock

    opts = ImportOptions(**settings_values(import_command, locals()))
    rows = import_file(tool, file, opts, load_catalog([]))
    out_dir = check_out_dir(out)
    from contracts.results import JSONL, ResultsStore, row_key

    with dir_lock(out_dir):
        store = ResultsStore(out_dir)
        for row in rows:
            again = any(row_key(r) == row_key(row) for r in store.rows)
            store.append(row)
            print(f"imported {row['model']} ({row['role']}, {row['backend']}/{row['dtype']}, "
                  f"batch {row['batch_size']}, {row['seq_len']} tokens) on {row['hardware']}: "
                  f"latency {row['latency_ms_mean']:.4g} ms mean"
                  + (f", tpot {row['tpot_ms']:.4g} ms" if row.get("tpot_ms") else "")
                  + ("; replaces the row imported before for this configuration and hardware"
                     if again else ""))
    print(f"results: {out_dir / JSONL} (+ results.csv); roi plan --results {out_dir} ...")
