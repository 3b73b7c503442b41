"""PNG figures with matplotlib (the Agg canvas, no pyplot and no display).

Each function takes plain data (DataFrames, the plan's records) and returns the PNG as bytes, or
None when there is nothing to draw: the report then says why, instead of showing an empty plot.
Labels never go through mathtext, so a model named `$x$` or `<script>` is drawn as typed.
matplotlib is imported on the first figure, not with this module: it is the `figures` extra,
and without it every function returns None and `figure_kit.missing()` says how to install it.
The style, colours and drawing helpers are reports/figure_kit.py's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from contracts.plan import ForecastCurve, TornadoRow

from . import figure_kit as kit
from .figure_kit import PALETTE, RECOMMENDED_COLOR, TEACHER_COLOR
from .fmt import number, usd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# ------------------------------------------------------------------------------ cost and sizing


def throughput_per_dollar(rows: pd.DataFrame, colors: dict[str, str]) -> bytes | None:
    """Requests served per dollar per hardware (one replica at its P50 capacity), one panel per
    scenario; hatched bars miss the SLA. rows: scenario, hardware, model, requests_per_usd,
    meets_sla."""
    return kit.render(_throughput_per_dollar, rows, colors)


def _throughput_per_dollar(rows: pd.DataFrame, colors: dict[str, str]) -> Figure | None:
    if rows.empty:
        return None
    scenarios = list(dict.fromkeys(rows["scenario"]))
    models = [m for m in colors if m in set(rows["model"])]
    n_hw = rows.groupby("scenario")["hardware"].nunique().max()
    fig, axes = kit.grid(len(scenarios), 2, row_height=max(2.8, 0.32 * n_hw * len(models) + 1))
    for ax, scenario in zip(axes, scenarios):
        sub = rows[rows["scenario"] == scenario]
        hardware = sorted(set(sub["hardware"]))
        h = 0.8 / max(len(models), 1)
        for j, model in enumerate(models):
            g = sub[sub["model"] == model].set_index("hardware")
            for i, hw in enumerate(hardware):
                if hw not in g.index:
                    continue
                r = g.loc[hw]
                ax.barh(i + j * h - 0.4 + h / 2, r["requests_per_usd"], height=h,
                        color=colors[model], hatch=None if r["meets_sla"] else "///",
                        edgecolor="white", label=model if i == 0 or hw == hardware[0] else None)
        ax.set_yticks(range(len(hardware)), hardware)
        ax.set_xscale("log")
        kit.plain_log(ax.xaxis)
        ax.set_xlabel("requests per dollar (one replica at P50 capacity)")
        ax.set_title(scenario)
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    axes[0].legend(uniq.values(), uniq.keys(), loc="lower right")
    return fig


def cost_per_scenario(rows: pd.DataFrame, colors: dict[str, str]) -> bytes | None:
    """Monthly cost at P50 with the P10-P90 band, teacher and students, one panel per scenario.
    rows: scenario, model, usd_per_month, usd_per_month_p10, usd_per_month_p90 (NaN: no
    configuration meets the scenario)."""
    return kit.render(_cost_per_scenario, rows, colors)


def _cost_per_scenario(rows: pd.DataFrame, colors: dict[str, str]) -> Figure | None:
    if rows.empty:
        return None
    scenarios = list(dict.fromkeys(rows["scenario"]))
    fig, axes = kit.grid(len(scenarios), 3, row_height=3.4)
    for ax, scenario in zip(axes, scenarios):
        sub = rows[rows["scenario"] == scenario]
        models = [m for m in colors if m in set(sub["model"])]
        sub = sub.set_index("model").loc[models]
        y = sub["usd_per_month"].to_numpy(float)
        ok = np.isfinite(y)
        lo = np.where(ok, y - sub["usd_per_month_p10"].fillna(sub["usd_per_month"]), 0)
        hi = np.where(ok, sub["usd_per_month_p90"].fillna(sub["usd_per_month"]) - y, 0)
        x = np.arange(len(models))
        ax.bar(x[ok], y[ok], color=[colors[m] for m, k in zip(models, ok) if k],
               yerr=[np.maximum(lo[ok], 0), np.maximum(hi[ok], 0)], capsize=3)
        top = np.nanmax(np.where(ok, y + hi, np.nan)) if ok.any() else 0.0
        top = top if top > 0 else 1.0
        for i in np.flatnonzero(ok):
            ax.text(i, y[i] + hi[i] + 0.02 * top, usd(y[i]), ha="center", va="bottom",
                    fontsize=7)
        for i in np.flatnonzero(~ok):
            ax.text(i, 0.02 * top, "meets no\nconfiguration", ha="center", va="bottom",
                    fontsize=7, color="#a00")
        if ok.any() and not np.any(y[ok] > 0):
            ax.text(0.5, 0.5, "no running cost: the hardware is\nbought per unit or already "
                    "owned", transform=ax.transAxes, ha="center", color="#555")
        ax.set_ylim(0, top * 1.2)
        kit.usd_axis(ax.yaxis)
        ax.set_xticks(x, [kit.short(m) for m in models], rotation=30, ha="right")
        ax.set_ylabel("USD per month (P50, P10–P90 bar)")
        ax.set_title(scenario)
    return fig


# ------------------------------------------------------------------------------ retention


def pareto(points: pd.DataFrame, threshold: float | None,
           achieved: float | None = None, achieved_model: str = "") -> bytes | None:
    """Retention band against monthly cost; the front of points no other beats on both; the
    recommended student starred. points: model, usd_per_month, retention_lo, retention_hi,
    kind (teacher / recommended / qualifies / fails)."""
    return kit.render(_pareto, points, threshold, achieved, achieved_model)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Points for which no other point is at most as costly with at least as much retention
    (strictly better in one), by mid-band retention; sorted by cost."""
    pts = points[np.isfinite(points["usd_per_month"].astype(float))].copy()
    pts["mid"] = (pts["retention_lo"] + pts["retention_hi"]) / 2
    keep = []
    for i, r in pts.iterrows():
        dominated = ((pts["usd_per_month"] <= r["usd_per_month"]) & (pts["mid"] >= r["mid"])
                     & ((pts["usd_per_month"] < r["usd_per_month"]) | (pts["mid"] > r["mid"])))
        if not dominated.any():
            keep.append(i)
    return pts.loc[keep].sort_values(["usd_per_month", "mid"])


def _pareto(points: pd.DataFrame, threshold: float | None, achieved: float | None,
            achieved_model: str) -> Figure | None:
    pts = points[np.isfinite(points["usd_per_month"].astype(float))]
    if pts.empty:
        return None
    fig = kit.new(7.5, 4.2)
    ax = fig.subplots()
    style = {"teacher": (TEACHER_COLOR, "s", 60), "recommended": (RECOMMENDED_COLOR, "*", 220),
             "qualifies": (PALETTE[0], "o", 50), "fails": ("#999999", "o", 40)}
    for kind, (color, marker, size) in style.items():
        g = pts[pts["kind"] == kind]
        if g.empty:
            continue
        mid = (g["retention_lo"] + g["retention_hi"]) / 2
        ax.errorbar(g["usd_per_month"], mid, yerr=[mid - g["retention_lo"],
                    g["retention_hi"] - mid], fmt="none", ecolor=color, capsize=3, alpha=0.7)
        ax.scatter(g["usd_per_month"], mid, color=color, marker=marker, s=size, zorder=3,
                   label=kind)
        for _, r in g.iterrows():
            ax.annotate(kit.short(r["model"], 28), (r["usd_per_month"], (r["retention_lo"]
                        + r["retention_hi"]) / 2), xytext=(6, 4), textcoords="offset points",
                        fontsize=7)
    front = pareto_front(pts)
    ax.plot(front["usd_per_month"], front["mid"], "--", color="#444", lw=1, label="Pareto front",
            drawstyle="steps-post")
    if threshold is not None:
        ax.axhline(threshold, color="#a00", lw=1, ls=":", label=f"threshold {threshold:.0%}")
    if achieved is not None and achieved_model in set(pts["model"]):
        x = float(pts.loc[pts["model"] == achieved_model, "usd_per_month"].iloc[0])
        ax.scatter([x], [achieved], marker="D", color="black", s=50, zorder=4,
                   label="achieved (distilled)")
    kit.percent_axis(ax.yaxis)
    kit.usd_axis(ax.xaxis)
    ax.set_xlabel("USD per month (cheapest configuration meeting every scenario, P50)")
    ax.set_ylabel("accuracy retention (band)")
    ax.legend(loc="lower right")
    return fig


# ------------------------------------------------------------------------------ ROI


def payback_curve(one_time_usd: float, savings: tuple[float | None, float, float | None],
                  horizon_months: int, payback_months: float | None) -> bytes | None:
    """Cumulative net against months: -one-time + savings x month, at the Monte Carlo P10/P90
    savings (band) and P50 (line)."""
    return kit.render(_payback_curve, one_time_usd, savings, horizon_months, payback_months)


def _payback_curve(one_time: float, savings, horizon: int,
                   payback: float | None) -> Figure | None:
    if number(one_time) is None or number(savings[1]) is None:
        return None
    end = max(horizon, min(60, math.ceil(1.3 * payback))) if payback else horizon
    m = np.linspace(0, end, 200)
    fig = kit.new(7.5, 3.6)
    ax = fig.subplots()
    lo, mid, hi = (number(s) if number(s) is not None else savings[1] for s in savings)
    ax.fill_between(m, -one_time + lo * m, -one_time + hi * m, color=PALETTE[0], alpha=0.2,
                    label="savings P10–P90 (Monte Carlo)")
    ax.plot(m, -one_time + mid * m, color=PALETTE[0], lw=2, label="P50")
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(horizon, color="#888", ls=":", lw=1, label=f"horizon ({horizon} months)")
    if payback is not None and payback <= end:
        ax.scatter([payback], [0], color=RECOMMENDED_COLOR, zorder=3,
                   label=f"payback {payback:.1f} months")
    else:
        ax.text(0.02, 0.92, "never pays back at these savings", transform=ax.transAxes,
                color="#a00")
    kit.usd_axis(ax.yaxis)
    ax.set_xlabel("months after the one-time cost")
    ax.set_ylabel("cumulative net, USD")
    ax.legend(loc="lower right")
    return fig


def tornado(rows: Sequence[TornadoRow], base_net_usd: float,
            horizon_months: int) -> bytes | None:
    """Net over the horizon as each input moves to its low and high value, others at base;
    widest swing on top."""
    return kit.render(_tornado, rows, base_net_usd, horizon_months)


def _tornado(rows: Sequence[TornadoRow], base: float, horizon: int) -> Figure | None:
    rows = [r for r in rows if number(r.net_at_low_usd) is not None
            and number(r.net_at_high_usd) is not None]
    if not rows or number(base) is None:
        return None
    rows = sorted(rows, key=lambda r: abs(r.net_at_high_usd - r.net_at_low_usd))
    fig = kit.new(7.5, 0.5 * len(rows) + 1.4)
    ax = fig.subplots()
    for i, r in enumerate(rows):
        for value, color, label in ((r.net_at_low_usd, PALETTE[0], "input at low"),
                                    (r.net_at_high_usd, PALETTE[3], "input at high")):
            ax.barh(i, value - base, left=base, color=color, height=0.6,
                    label=label if i == 0 else None)
    ax.axvline(base, color="black", lw=1)
    ax.set_yticks(range(len(rows)), [r.input for r in rows])
    kit.usd_axis(ax.xaxis)
    ax.set_xlabel(f"net over {horizon} months, USD (base {base:,.0f})")
    ax.legend(loc="lower right")
    return fig


# ------------------------------------------------------------------------------ achieved


def predicted_vs_achieved(band: Sequence[float] | None, achieved: dict[str, float],
                          latency: pd.DataFrame) -> bytes | None:
    """Left: the plan's retention band against the retention the distilled student reached
    (per runtime, and the no-KD baseline). Right, when the student was benchmarked again:
    latency predicted (the same architecture, measured before training) against achieved.
    latency: config, predicted_ms, achieved_ms."""
    return kit.render(_predicted_vs_achieved, band, achieved, latency)


def _predicted_vs_achieved(band, achieved: dict[str, float],
                           latency: pd.DataFrame) -> Figure | None:
    if not achieved and latency.empty:
        return None
    panels = int(bool(achieved)) + int(not latency.empty)
    fig = kit.new(10 if panels == 2 else 6, 3.6)
    axes = list(fig.subplots(1, panels, squeeze=False).ravel())
    if achieved:
        ax = axes.pop(0)
        names = list(achieved)
        ax.bar(range(len(names)), [achieved[n] for n in names],
               color=[TEACHER_COLOR if "baseline" in n else PALETTE[0] for n in names])
        if band is not None and all(number(b) is not None for b in band):
            ax.axhspan(band[0], band[1], color=RECOMMENDED_COLOR, alpha=0.15,
                       label="predicted band")
            ax.legend(loc="lower right")
        ax.set_xticks(range(len(names)), names, rotation=15)
        kit.percent_axis(ax.yaxis)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("accuracy retention vs teacher")
        ax.set_title("retention: predicted band vs achieved")
    if not latency.empty:
        ax = axes.pop(0)
        x = np.arange(len(latency))
        ax.bar(x - 0.2, latency["predicted_ms"], width=0.4, color="#bbbbbb", label="predicted")
        ax.bar(x + 0.2, latency["achieved_ms"], width=0.4, color=PALETTE[0], label="achieved")
        ax.set_xticks(x, latency["config"], rotation=30, ha="right")
        ax.set_ylabel("latency per call, ms")
        ax.set_title("latency: predicted vs achieved")
        ax.legend(loc="upper left")
    return fig


# ------------------------------------------------------------------------------ forecast


def learning_curves(curves: Sequence[ForecastCurve], grids: dict[str, dict[str, list]], threshold: float,
                    highlight: str, planned_steps: float | None,
                    achieved: tuple[float, float] | None,
                    colors: dict[str, str]) -> bytes | None:
    """Retention against training steps (log): every student's pilot points and forecast P50,
    the highlighted student's P10-P90 band (KD, and its no-KD baseline dashed), the threshold,
    the planned budget and the achieved point. curves: the plan's forecast curves (model, mode,
    points); grids: model -> {"kd": rows, "ce": rows} with steps and retention P10/P50/P90."""
    return kit.render(_learning_curves, curves, grids, threshold, highlight, planned_steps,
                   achieved, colors)


def _learning_curves(curves, grids, threshold, highlight, planned_steps, achieved, colors):
    if not grids:
        return None
    fig = kit.new(7.5, 4.2)
    ax = fig.subplots()
    for model, modes in grids.items():
        color = colors.get(model, PALETTE[0])
        for mode, rows in modes.items():
            if not rows:
                continue
            g = pd.DataFrame(rows)
            style = "-" if mode == "kd" else "--"
            main = model == highlight
            label = f"{model} {'KD' if mode == 'kd' else 'no-KD baseline'} (P50)"
            ax.plot(g["steps"], g["retention_p50"], style, color=color,
                    lw=2 if main else 1, alpha=1 if main else 0.6, label=label)
            if main:
                ax.fill_between(g["steps"], g["retention_p10"], g["retention_p90"], color=color,
                                alpha=0.15 if mode == "kd" else 0.07, lw=0)
    for c in curves:
        pts = pd.DataFrame(c.points)
        if pts.empty:
            continue
        ax.plot(pts["steps"], pts["retention"], "o" if c.mode == "kd" else "s",
                color=colors.get(c.model, PALETTE[0]), ms=4,
                mfc="none" if c.mode == "ce" else None)
    ax.axhline(threshold, color="black", lw=0.8, ls=":", label=f"threshold {threshold:.0%}")
    if planned_steps:
        ax.axvline(planned_steps, color=RECOMMENDED_COLOR, lw=0.8, ls="-.",
                   label=f"planned budget {planned_steps:,.0f} steps")
    if achieved is not None:
        ax.plot([achieved[0]], [achieved[1]], "*", color="black", ms=12, label="achieved")
    ax.set_xscale("log")
    kit.plain_log(ax.xaxis)
    kit.percent_axis(ax.yaxis)
    ax.set_xlabel("training steps (log)")
    ax.set_ylabel("accuracy retention vs teacher")
    ax.set_title("retention forecast: pilot points, fitted curves, P10-P90 band")
    ax.legend(loc="lower right", fontsize=7)
    return fig
