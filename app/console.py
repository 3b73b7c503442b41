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
    for col in ("model", "backend", "dtype", "batch", "status", "gate", "p50", "p99", "cv",
                "samples/s", "peak RSS MB", "params"):
        table.add_column(col, justify="left" if col in ("model", "backend", "status", "gate")
                         else "right")
    for _, r in df.iterrows():
        table.add_row(
            r["model"], r["backend"], r["dtype"], str(r["batch_size"]), r["status"],
            _fmt(r.get("gate")),
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
    _print_deploy_as(out_console, out / "deploy_as.csv")
    out_console.print(f"results: {out / 'results.csv'}")


def _print_deploy_as(out_console, path: Path) -> None:
    """One line per model and setting: the fastest variant that passed the quality gate."""
    if not path.is_file():
        return
    import pandas as pd

    for _, r in pd.read_csv(path).iterrows():
        speedup = r["speedup_vs_eager_fp32"]
        versus = "" if pd.isna(speedup) else f" ({speedup:.2f}× torch eager fp32)"
        out_console.print(f"deploy as: {r['model']} b{r['batch_size']} s{r['seq_len']} -> "
                          f"{r['deploy_as']} {r['latency_ms_p50']:.2f} ms p50{versus}, "
                          f"gate {r['gate']}")
    out_console.print(f"deploy as: {path}")


def _int(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{int(value):,}"


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.4g}" if value < 1e5 else f"{value:,.0f}"
    return text + unit


def _fig(hw, key: str) -> str:
    """A figure with a '*' when it was not checked against its primary source."""
    fig = getattr(hw, key)
    return "-" if fig is None else _num(fig.value) + ("" if fig.verified else "*")


def print_hardware(catalog) -> None:
    """The hardware catalog, one row per entry; sources are numbered and listed below it."""
    table = Table(title="hardware catalog (figures per accelerator; * = not verified against "
                  "the primary source)")
    for col in ("name", "kind", "price", "fp32 TFLOP/s", "bf16 TFLOP/s", "int8 TOP/s",
                "BW GB/s", "mem GiB", "power W", "sources"):
        table.add_column(col, justify="left" if col in ("name", "kind", "price",
                                                        "sources") else "right")
    refs: dict[str, int] = {}
    for hw in catalog:
        cited = [refs.setdefault(f"{f.source} ({f.source_date})", len(refs) + 1)
                 for _, f in hw.figures()]
        table.add_row(hw.name, hw.kind, _price(hw), _fig(hw, "peak_fp32_tflops"),
                      _fig(hw, "peak_bf16_tflops"), _fig(hw, "peak_int8_tops"),
                      _fig(hw, "memory_bandwidth_gb_s"), _fig(hw, "memory_gib"),
                      _fig(hw, "power_w"), ",".join(map(str, dict.fromkeys(cited))))
    out = _stdout()
    out.print(table)
    for text, number in refs.items():
        out.print(f"[{number}] {text}", highlight=False, markup=False)
    out.print(_runtimes_table(catalog))


def _runtimes_table(catalog) -> Table:
    """Which results backend/dtype each row is costed for (rows with the same list together)."""
    table = Table(title="runtimes each row is costed for (results backend/dtype, * = any; \"as "
                  "X\": the measured proxy of runtime X deployed there; others are never "
                  "costed there)")
    table.add_column("hardware")
    table.add_column("runtimes")
    groups: dict[str, list[str]] = {}
    for hw in catalog:
        groups.setdefault(hw.runtimes_text(), []).append(hw.name)
    for text, names in groups.items():
        table.add_row(", ".join(names), text)
    return table


def _usd(value: float) -> str:
    return "$" + f"{value:,.4f}".rstrip("0").rstrip(".")


def _price(hw) -> str:
    if hw.kind == "cloud":
        star = "" if hw.instance_usd_per_hour.verified else "*"
        text = f"{_usd(hw.usd_per_hour)}/h{star}"
        if hw.accelerators_per_instance > 1:
            text += (f" ({hw.instance} {_usd(hw.instance_usd_per_hour.value)}/h "
                     f"÷ {hw.accelerators_per_instance})")
        elif hw.instance:
            text += f" ({hw.instance})"
        return text
    if hw.unit_usd is None:
        return "-"
    return f"{_usd(hw.unit_usd.value)} per unit" + (" (users' own)" if hw.user_owned else "")


def print_scenarios(scenarios) -> None:
    """Scenario presets: workload, SLA and constraints, then the seed's expected ranges."""
    table = Table(title="scenarios")
    for col in ("name", "deployment", "arrival", "design QPS", "requests/day", "tokens in/out",
                "models", "SLA", "constraints", "candidate hardware"):
        table.add_column(col, justify="right" if col in ("design QPS", "requests/day",
                                                         "models") else "left")
    for s in scenarios:
        w = s.workload
        table.add_row(s.name, s.deployment, w.arrival, _num(w.design_qps), _num(w.daily_requests),
                      f"{w.tokens_in_per_request}/{w.tokens_out_per_request}", str(w.models),
                      f"p{s.sla.percentile:g} ≤ {s.sla.latency_ms:g} ms", _constraints(s),
                      ", ".join(s.candidate_hardware))
    seed = Table(title="the seed's expected ranges (ROI matrix, verbatim)")
    for col in ("name", "seed row", "cost reduction", "latency improvement", "data transfer",
                "best-fit size"):
        seed.add_column(col)
    for s in scenarios:
        r = s.seed
        seed.add_row(s.name, *(("-",) * 5 if r is None else (
            r.scenario, r.inference_cost_reduction, r.latency_improvement, r.data_transfer,
            r.best_fit_model_size)))
    out = _stdout()
    out.print(table)
    out.print(seed)


def _constraints(s) -> str:
    c = s.constraints
    parts = [f"memory ≤ {c.memory_limit_gib:g} GiB"] if c.memory_limit_gib else []
    parts += [name for name, on in (("offline", c.offline), ("data locality",
                                                             c.data_locality)) if on]
    return ", ".join(parts) or "-"


@contextlib.contextmanager
def training_progress() -> Iterator:
    """A callback (step, total, loss) drawing one bar per training run (student, baseline)."""
    bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(),
                   console=console)
    state: dict = {"task": None, "runs": 0}

    def update(step: int, total: int, loss: float) -> None:
        if state["task"] is None or step < state["last"]:
            state["runs"] += 1
            name = "student (KD)" if state["runs"] == 1 else "baseline (no KD)"
            state["task"] = bar.add_task(name, total=total, loss=float("nan"))
        state["last"] = step
        bar.update(state["task"], completed=step, loss=loss)

    with bar:
        yield update


@contextlib.contextmanager
def pilot_progress() -> Iterator:
    """A callback (curve, done, total) drawing one bar per pilot curve (student and mode)."""
    bar = Progress(TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console)
    tasks: dict[str, int] = {}

    def update(label: str, done: int, total: int) -> None:
        if label not in tasks:
            tasks[label] = bar.add_task(f"pilot {label}", total=total)
        bar.update(tasks[label], completed=done, total=total)

    with bar:
        yield update


def print_pilot_summary(df, out) -> None:
    """Each curve's final points: accuracy and retention by budget."""
    table = Table(title="pilot curves: what a whole run of each budget ends at (held-out test)")
    for col in ("student", "mode", "steps", "tokens", "bits/byte", "accuracy", "retention"):
        table.add_column(col, justify="left" if col in ("student", "mode") else "right")
    final = df[df["phase"] == "final"].sort_values(["model", "mode", "step"])
    for _, r in final.iterrows():
        table.add_row(str(r["model"]), str(r["mode"]), f"{int(r['step'])}",
                      f"{r['tokens'] / 1e6:.2f} M", f"{r['bits_per_byte']:.3f}",
                      f"{r['accuracy']:.4f}", f"{r['accuracy'] / r['teacher_accuracy']:.1%}")
    out_console = _stdout()
    out_console.print(table)
    out_console.print(f"pilot curves: {Path(out) / 'pilot.csv'} (roi plan --pilot reads it)")


def print_distill_summary(metrics: dict, out: Path) -> None:
    table = Table(title="held-out test split (next-byte prediction)")
    for col in ("model", "accuracy", "bits/byte", "retention"):
        table.add_column(col, justify="left" if col == "model" else "right")
    teacher_acc = metrics["teacher"]["accuracy"]
    for name, key in (("teacher", "teacher"), ("student (KD)", "student"),
                      ("baseline (no KD)", "baseline"), ("student ONNX fp32", "student_onnx"),
                      ("student ONNX int8", "student_int8")):
        m = metrics[key]
        table.add_row(name, f"{m['accuracy']:.4f}", f"{m['bits_per_byte']:.3f}",
                      f"{m['accuracy'] / teacher_acc:.1%}" if teacher_acc else "-")
    out_console = _stdout()
    out_console.print(table)
    out_console.print(f"KD gain over baseline: {metrics['kd_gain_accuracy'] * 100:+.2f} points; "
                      f"wall time {metrics['wall_s'] / 60:.1f} min; student: ckpt:{out}")
    from roi.sanity import distill_warnings

    for warning in distill_warnings(metrics):  # an untrained teacher: retention says little
        out_console.print(f"warning: {warning}", highlight=False, markup=False)


def print_plan_summary(plan: dict, out) -> None:
    """`roi plan`'s summary: decision and criteria, recommendation and alternatives, the best
    hardware per scenario and model, ROI, and the projection's leave-one-out error."""
    out_console = _stdout()
    d = plan["decision"]
    crit = Table(title=f"decision: {'GO' if d['go'] else 'NO-GO'} (the seed's five criteria, "
                  "then a student that qualifies and a measured benefit)")
    for col in ("scenario", "criterion", "value", "threshold", "verdict"):
        crit.add_column(col)
    for c in d["criteria"]:
        crit.add_row(c["scenario"], c["name"], _plain_value(c["value"]),
                     _plain_value(c["threshold"]),
                     c["verdict"] + (", not counted" if c.get("counted") is False else ""))
    out_console.print(crit)
    for reason in d["reasons"]:
        out_console.print(f"  - {reason}", highlight=False, markup=False)
    for warning in plan.get("warnings") or []:  # roi.sanity: a busy machine's measurements
        out_console.print(f"warning: {warning}", highlight=False, markup=False)
    out_console.print(_students_table(plan))
    forecast = plan.get("forecast") or {}
    if forecast.get("curves"):
        out_console.print(_forecast_table(forecast))
    elif forecast.get("source"):
        out_console.print(f"retention forecast: {forecast['source']}", highlight=False,
                          markup=False)
    if plan["recommended"] is None:
        out_console.print(plan.get("no_recommendation_reason", ""), highlight=False,
                          markup=False)
    out_console.print(_best_table(plan))
    _print_roi(out_console, plan["roi"])
    for name, e in ((plan.get("edge") or {}).get("scenarios") or {}).items():
        also = e["answer"].get("also")
        out_console.print(f"edge ({name}): {e['answer']['text']}" + (f"; {also}" if also else ""),
                          highlight=False, markup=False)
    for row in plan["projection"]["leave_one_out"]:
        out_console.print(f"projection, leave-one-model-out on {row['machine']}: "
                          f"{row['backend']} median error {row['median_ape']:.1%} "
                          f"(goal <= {row['goal_median_ape']:.0%}; {row['n_predictions']} "
                          f"predictions)", highlight=False, markup=False)
    out_console.print(f"plan: {Path(out) / 'plan.yaml'} (+ plan.json, sizing.csv)")


def _plain_value(v) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"
    return "-" if v is None else str(v)


def _students_table(plan: dict) -> Table:
    rec = plan["recommended"]
    t = Table(title="students (ranked; retention band low end must reach "
              f"{plan['retention_threshold'] * 100:g}%)")
    where = _cost_scope(plan.get("roi") or {})
    money = f"$/month ({where})" if where else "$/month"
    for col in ("student", "params", "ratio", "retention", "deploy", money, "verdict"):
        t.add_column(col, justify="right" if col in ("params", "ratio", money) else "left")
    rows = ([dict(rec, qualifies=True, reasons=["recommended"])] if rec else [])
    for i, r in enumerate(rows + plan["alternatives"]):
        lo, hi = r["retention_band"]
        cost = r.get("headline_usd_per_month")  # where the headline answers (roi.choices)
        at = f" at {r['retention_steps']:,} steps" if r.get("retention_steps") else ""
        t.add_row(r["model"], f"{r['params']:,}", f"{r['compression_ratio']:.1f}×",
                  f"{lo:.1%}–{hi:.1%} ({r.get('retention_source', 'prior')}{at})",
                  f"{r.get('deploy_backend')}/{r.get('deploy_dtype')}",
                  "-" if cost is None else f"{cost:,.0f}",
                  "recommended" if rec and i == 0 else
                  ("qualifies" if r.get("qualifies") else "; ".join(r.get("reasons", []))[:90]))
    return t


def _cost_scope(roi: dict) -> str:
    """Where the students' monthly costs are shown: the headline scenario, or the portfolio."""
    if roi.get("scope") == "portfolio":
        return "portfolio total"
    return str(roi.get("scenario") or "")


def _forecast_table(f: dict) -> Table:
    """Steps to the threshold per student and mode, from the pilot curves."""
    t = Table(title=f"retention forecast from pilots (<= {f['longest_pilot_steps']} steps; "
              f"budgets up to {f['max_steps']:,} steps considered)")
    for col in ("student", "mode", f"steps to {f['threshold']:.0%} (P10 / P50)",
                f"P50 at {f['max_steps']:,} steps"):
        t.add_column(col, justify="left" if col in ("student", "mode") else "right")
    for c in sorted(f["curves"], key=lambda c: (c["model"], c["mode"])):
        p10, p50 = c["steps_to_threshold_p10"], c["steps_to_threshold_p50"]
        t.add_row(c["model"], "KD" if c["mode"] == "kd" else "baseline (no KD)",
                  f"{_steps(p10)} / {_steps(p50)}", _pct(c.get("p50_at_max_steps")))
    for c in f.get("failed", []):
        t.add_row(c["model"], c["mode"], f"not forecast: {c['reason']}", "")
    return t


def _steps(n) -> str:
    return "not reached" if n is None else f"{n:,}"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def _best_table(plan: dict) -> Table:
    """The plan's cheapest configuration per scenario and model (roi.choices), as stored."""
    t = Table(title="cheapest configuration per scenario and model ($/month at P50, P10–P90 band)")
    for col in ("scenario", "model", "hardware", "config", "source", "service ms", "replicas",
                "$/month", "band", "verdict"):
        t.add_column(col, justify="right" if col in ("service ms", "replicas",
                                                     "$/month") else "left")
    for c in sorted(plan["cheapest"], key=lambda c: (c["scenario"], c["model"])):
        lo, hi = c.get("usd_per_month_p10"), c.get("usd_per_month_p90")
        t.add_row(c["scenario"], c["model"], c["hardware"],
                  f"{c['backend']}/{c['dtype']} b{c['batch_size']}", c["source"],
                  _fmt(c.get("service_ms_p50"), 1), _fmt(c.get("replicas_p50"), 0),
                  _fmt(c.get("usd_per_month"), 0),
                  "-" if lo is None or hi is None else f"{lo:,.0f}–{hi:,.0f}",
                  "ok" if c["feasible"] else c["reason"][:60])
    return t


def _print_roi(out_console, roi: dict) -> None:
    one = roi["one_time"]
    out_console.print(f"one-time cost ${one['total_usd']:,.0f} (labeling "
                      f"${one['labeling_usd']:,.2f}, training ${one['training_usd']:,.2f}, "
                      f"engineering ${one['engineering_usd']:,.0f})", highlight=False)
    if roi.get("per_scenario"):
        out_console.print(_per_scenario_table(roi))
    if "monthly_savings_usd" not in roi:
        out_console.print(f"ROI: {roi.get('note', 'not computed')}", highlight=False)
        return
    if roi.get("student_note"):
        out_console.print(f"ROI: {roi['student_note']}", highlight=False)
    pay = roi["payback_months"]
    mc = roi["monte_carlo"]
    horizon = roi["horizon_months"]
    out_console.print(
        f"ROI ({roi['student']}, {_answers_for(roi)}): saves "
        f"${roi['monthly_savings_usd']:,.0f}/month "
        f"(teacher ${roi['teacher_usd_per_month']:,.0f}, student "
        f"${roi['student_usd_per_month']:,.0f}); payback "
        f"{'never' if pay is None else f'{pay:.1f} months'}; {horizon}-month net "
        f"${roi[f'net_{horizon}_months_usd']:,.0f}; Monte Carlo savings P10/P50/P90 "
        + "/".join("-" if v is None else f"${v:,.0f}"
                   for v in mc["monthly_savings_usd"].values()), highlight=False)


def _answers_for(roi: dict) -> str:
    """Which deployment the headline figures are: one scenario, or a declared portfolio."""
    if roi.get("scope") == "portfolio":
        return f"portfolio total of {', '.join(roi.get('portfolio') or [])}"
    return str(roi.get("scenario") or "-")


def _per_scenario_table(roi: dict) -> Table:
    """Each scenario's own economics: no row sums deployments."""
    horizon = roi.get("horizon_months") or 12
    t = Table(title=f"ROI per scenario (student {roi.get('student')}; each scenario alone)")
    for col in ("scenario", "cost reduction", "savings $/month", "payback", f"{horizon}-month net",
                "decision"):
        t.add_column(col, justify="left" if col in ("scenario", "decision") else "right")
    for name, r in roi["per_scenario"].items():
        saving, pay = r.get("monthly_savings_usd"), r.get("payback_months")
        red = r.get("cost_reduction")
        t.add_row(name, "-" if red is None else f"{red:.1%}", _fmt(saving, 0),
                  "-" if saving is None else ("never" if pay is None else f"{pay:.1f} months"),
                  _fmt(r.get(f"net_{horizon}_months_usd"), 0), r.get("decision", "-"))
    return t


def print_loadtest_run(row: dict) -> None:
    """One line per LoadGen run: verdict, rates, latency percentiles, early stopping."""
    rate = row.get("loadgen_target_qps")
    lat = lambda k: row.get(f"latency_ms_{k}")  # noqa: E731
    parts = [f"{row['loadgen_scenario']}" + (f" {rate:g} QPS" if rate else ""),
             f"{row['loadgen_result']}" + (f" ({row['loadgen_invalid_reasons']})"
                                          if row.get("loadgen_invalid_reasons") else "")]
    if row.get("loadgen_scheduled_qps"):
        parts.append(f"scheduled {row['loadgen_scheduled_qps']:.1f} QPS")
    if row.get("loadgen_completed_qps"):
        parts.append(f"completed {row['loadgen_completed_qps']:.1f} samples/s")
    if lat("p50") is not None:
        parts.append(f"p50 {lat('p50'):.2f} / p90 {lat('p90'):.2f} / p99 {lat('p99'):.2f} ms")
    if row.get("predicted_latency_ms_at_target") is not None:
        parts.append(f"predicted p{row['loadgen_percentile']:g} "
                     f"{row['predicted_latency_ms_at_target']:.2f} ms")
    if row.get("accuracy_agreement") is not None:
        parts.append(f"{row['accuracy_agreement']:.1%} of {row['accuracy_samples']} samples "
                     f"agree with {row['accuracy_reference']} (quality gate: "
                     f"{row['accuracy_gate']}, needs {row['accuracy_min_agreement']:.1%})")
    else:
        parts.append(f"early stopping {row['loadgen_early_stopping']}")
    print("; ".join(parts))
