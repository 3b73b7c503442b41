"""Terminal output of the CLI: progress bars and summary tables (rich). Only the CLI prints."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)


def _stdout() -> Console:
    """Tables are wide: keep them readable when stdout is a file or a pipe (rich picks 80)."""
    import sys

    return Console() if sys.stdout.isatty() else Console(width=160)


@contextlib.contextmanager
def progress_bar() -> Iterator:
    """A callback (label, done, total) drawing one bar per phase (export, measure)."""
    bar = Progress(
        TextColumn("{task.description:<48}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    )
    tasks: dict[str, int] = {}

    def update(label: str, done: int, total: int) -> None:
        phase = "export" if label.startswith("export") else "measure"
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        desc = label if label != "done" else f"{phase}: done"
        bar.update(tasks[phase], completed=done, total=total, description=desc[:48])

    with bar:
        yield update


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def print_bench_summary(df, out: Path) -> None:
    table = Table(title="bench results (latency in ms)")
    for col in ("model", "backend", "dtype", "batch", "status", "p50", "p99", "cv",
                "samples/s", "peak RSS MB", "params"):
        table.add_column(col, justify="left" if col in ("model", "backend", "status") else "right")
    for _, r in df.iterrows():
        table.add_row(
            r["model"], r["backend"], r["dtype"], str(r["batch_size"]), r["status"],
            _fmt(r.get("latency_ms_p50")), _fmt(r.get("latency_ms_p99")),
            _fmt(r.get("latency_ms_cv"), 3), _fmt(r.get("throughput_samples_s"), 1),
            _fmt(r.get("peak_rss_mb"), 0), _fmt(_int(r.get("params"))),
        )
    out_console = _stdout()
    out_console.print(table)
    bad = df[df["status"] != "ok"]
    for _, r in bad.iterrows():
        out_console.print(f"[{r['status']}] {r['model']} {r['backend']}/{r['dtype']} "
                          f"b{r['batch_size']}: {r.get('error', '')}")
    speedups = out / "speedups.csv"
    if speedups.is_file():
        import pandas as pd

        sp = pd.read_csv(speedups)
        st = Table(title="speedup vs teacher (ratio of medians, bootstrap 95% CI)")
        for col in ("student", "backend", "dtype", "batch", "speedup", "95% CI"):
            st.add_column(col)
        for _, r in sp.iterrows():
            st.add_row(r["student"], r["backend"], r["dtype"], str(r["batch_size"]),
                       f"{r['speedup_p50']:.2f}×",
                       f"{r['speedup_ci95_low']:.2f}–{r['speedup_ci95_high']:.2f}")
        out_console.print(st)
    out_console.print(f"results: {out / 'results.csv'}")


def _int(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{int(value):,}"
