"""PNG figures of measurements (reports.figure_kit's conventions: bytes or None, labels never
through mathtext, matplotlib imported on the first figure): latency against batch size for the
report, bench's own latency and speedup figures, and loadtest's peak search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import figure_kit as kit
from .figure_kit import PALETTE, RECOMMENDED_COLOR, model_colors
from .fmt import number, sig

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def latency_vs_batch(results: pd.DataFrame, teacher: str = "",
                     recommended: str = "") -> bytes | None:
    """Measured median latency (whiskers to p90) against batch size, one panel per runtime."""
    return kit.render(_latency_vs_batch, results, teacher, recommended)


def _latency_vs_batch(df: pd.DataFrame, teacher: str, recommended: str) -> Figure | None:
    if df.empty:
        return None
    runtimes = sorted(df.groupby(["backend", "dtype"]).groups)
    models = list(dict.fromkeys(df.sort_values("params", ascending=False)["model"]))
    colors = model_colors(models, teacher, recommended)
    fig, axes = kit.grid(len(runtimes), 3)
    for ax, (backend, dtype) in zip(axes, runtimes):
        sub = df[(df["backend"] == backend) & (df["dtype"] == dtype)]
        for model in models:
            g = sub[sub["model"] == model].sort_values("batch_size")
            if g.empty:
                continue
            y = g["latency"].to_numpy(float)
            hi = np.maximum(g["latency_hi"].to_numpy(float) - y, 0)
            ax.errorbar(g["batch_size"], y, yerr=[np.zeros_like(hi), hi], marker="o", ms=4,
                        capsize=2, color=colors[model], label=model,
                        lw=2.2 if model == recommended else 1.3)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        kit.plain_log(ax.xaxis)
        kit.plain_log(ax.yaxis)
        ax.set_title(f"{backend} / {dtype}")
        ax.set_xlabel("batch size")
        ax.set_ylabel("latency per call, ms")
    axes[0].legend(loc="upper left")
    return fig


def peak_search(probes: Sequence[dict], bound_ms: float, percentile: float,
                peak_qps: float | None) -> bytes | None:
    """`roi loadtest --find-peak`: each probe's measured latency at the claimed percentile
    (p99 for Server by default) against its target QPS (filled VALID, crossed INVALID), the
    latency bound and the peak found."""
    return kit.render(_peak_search, probes, bound_ms, percentile, peak_qps)


def _peak_search(probes, bound_ms: float, percentile: float, peak: float | None):
    col = f"latency_ms_p{percentile:g}"
    col = col if any(col in r for r in probes) else "latency_ms_p99"
    points = sorted((r["loadgen_target_qps"], r[col], bool(r["loadgen_valid"]))
                    for r in probes if number(r.get(col)) is not None)
    if not points:
        return None
    qps, p99, valid = (np.array(v) for v in zip(*points))
    fig = kit.new(6.5, 3.6)
    ax = fig.subplots()
    ax.plot(qps, p99, color=PALETTE[0], lw=1, alpha=0.6)
    for keep, style in ((valid, dict(color=PALETTE[1], label="VALID")),
                        (~valid, dict(color=RECOMMENDED_COLOR, marker="x", label="INVALID"))):
        if keep.any():  # no legend entry for a verdict no probe had
            ax.scatter(qps[keep], p99[keep], zorder=3, **style)
    ax.axhline(bound_ms, color="#888", ls="--", lw=1,
               label=f"bound: p{percentile:g} <= {sig(bound_ms, 3)} ms")
    if peak is not None:
        ax.axvline(peak, color=PALETTE[1], ls=":", lw=1, label=f"peak {sig(peak, 4)} QPS")
    ax.set_xlabel("target QPS (Server, Poisson arrivals)")
    ax.set_ylabel(f"{col.removeprefix('latency_ms_')} latency, ms (LoadGen)")
    ax.set_title("LoadGen peak search: latency per probe")
    ax.legend(loc="upper left")
    return fig


def bench_latency(results: pd.DataFrame) -> bytes | None:
    """`roi bench`: median latency per call (bar) with a whisker to p99, per model (groups, the
    teacher labelled) and backend/dtype (bars), one panel per batch size, sequence length and
    threads; ok rows of the results table."""
    if "latency_ms_p50" not in results:
        return None
    ok = results[results["status"].fillna("ok") == "ok"] if "status" in results else results
    ok = ok[pd.to_numeric(ok["latency_ms_p50"], errors="coerce").notna()]
    teacher = ok.loc[ok["role"] == "teacher", "model"] if "role" in ok else ok["model"][:0]
    return kit.render(_bars_per_setting, ok, set(teacher), "latency_ms_p50", "latency_ms_p50",
                   "latency_ms_p99", "latency per call, ms (p50, whisker to p99)", None)


def bench_speedup(speedups: pd.DataFrame) -> bytes | None:
    """`roi bench`: each student's speedup over the teacher (ratio of medians, bar) with its
    bootstrap 95% CI (whisker), per backend/dtype, one panel per batch size, sequence length
    and threads. speedups: bench's speedups.csv (student, backend, dtype, batch_size, seq_len,
    threads, speedup_p50, speedup_ci95_low, speedup_ci95_high)."""
    df = speedups.rename(columns={"student": "model"})
    return kit.render(_bars_per_setting, df, set(), "speedup_p50", "speedup_ci95_low",
                   "speedup_ci95_high", "speedup vs teacher, × (95% CI)", 1.0)


def _bars_per_setting(df: pd.DataFrame, teachers: set, col: str, lo: str, hi: str, ylabel: str,
                      ref: float | None) -> Figure | None:
    if df.empty:
        return None
    keys = [k for k in ("batch_size", "seq_len", "threads") if k in df]
    settings = sorted(df.groupby(keys).groups)
    runtimes = sorted(df.groupby(["backend", "dtype"]).groups)
    colors = dict(zip(runtimes, PALETTE * 4))
    fig, axes = kit.grid(len(settings), 2)
    for ax, setting in zip(axes, settings):
        sub = df[(df[keys] == pd.Series(setting, index=keys)).all(axis=1)]
        models = list(dict.fromkeys(sub.sort_values("params", ascending=False)["model"])
                      if "params" in sub else dict.fromkeys(sub["model"]))
        _grouped_bars(ax, sub, models, runtimes, colors, (col, lo, hi))
        if ref is None:  # latencies span decades
            ax.set_yscale("log")
            kit.plain_log(ax.yaxis)
        else:
            ax.axhline(ref, color="black", lw=0.8, ls=":")
        ax.set_xticks(range(len(models)), [kit.short(m) + (" (teacher)" if m in teachers else "")
                                           for m in models], rotation=20, ha="right")
        ax.set_title(", ".join(f"{label} {v}" for label, v in zip(
            ("batch", "tokens", "threads"), setting)))
        ax.set_ylabel(ylabel)
    axes[0].legend(loc="upper right")
    return fig


def _grouped_bars(ax, sub: pd.DataFrame, models: list, runtimes: list, colors: dict,
                  cols: tuple[str, str, str]) -> None:
    """One bar per runtime within each model's group, whiskers from cols' low to high."""
    width = 0.8 / len(runtimes)
    for j, runtime in enumerate(runtimes):
        g = sub[(sub["backend"] == runtime[0]) & (sub["dtype"] == runtime[1])]
        g = g.drop_duplicates("model").set_index("model")
        x = [i for i, m in enumerate(models) if m in g.index]
        if not x:
            continue
        v, lo, hi = (g.loc[[models[i] for i in x], c].to_numpy(float) for c in cols)
        ax.bar(np.array(x) + (j - (len(runtimes) - 1) / 2) * width, v, width=width,
               color=colors[runtime], label=f"{runtime[0]} / {runtime[1]}",
               yerr=[np.maximum(v - lo, 0), np.maximum(hi - v, 0)], capsize=2)
