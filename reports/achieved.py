"""The report's closing sections: the plan's predictions beside what the distilled student
achieved, and the environment and method behind every figure.
"""

from __future__ import annotations


import pandas as pd

from contracts.distill_result import DistillMetrics
from contracts.plan import Student
from roi.readout import band_verdict, latency_pairs
from roi.sanity import distill_warnings

from . import figures as fig
from . import fmt
from .document import Bullets, Facts, Figure, Heading, Section, Text
from .inputs import Figures, Inputs, figure, table


def _metric_rows(m: DistillMetrics) -> list[dict]:
    names = {"teacher": "teacher", "student": "student (KD, torch)", "student_onnx":
             "student (ONNX fp32)", "student_int8": "student (ONNX int8)",
             "baseline": "baseline (no KD)"}
    teacher_acc = fmt.number(m.teacher.accuracy if m.teacher else None)
    rows = []
    for key, label in names.items():
        e = getattr(m, key)
        if e is None:
            continue
        acc = fmt.number(e.accuracy)
        rows.append({"model": label, "next-byte accuracy": fmt.pct(acc),
                     "retention": fmt.pct(acc / teacher_acc if acc is not None and teacher_acc
                                          else None),
                     "bits / byte": fmt.num(e.bits_per_byte, 3),
                     "perplexity": fmt.num(e.perplexity, 2),
                     "test tokens": fmt.num(e.tokens, 0)})
    return rows


def _encoder_metric_rows(metrics: DistillMetrics) -> list[dict]:
    """An embedding model's held-out figures (metrics.json's eval, ONNX files' agreement)."""
    rows = [{"model": name, **{k: fmt.num(v, 3) for k, v in m.items()}}
            for name, m in metrics.eval.items() if m]
    onnx = metrics.onnx
    for kind, m in (("fp32", onnx and onnx.fp32), ("int8", onnx and onnx.int8)):
        if m is not None:
            rows.append({"model": f"student (ONNX {kind})",
                         **{k: fmt.num(v, 3) for k, v in m.items()}})
    return rows


def _retention(m: DistillMetrics) -> tuple[str, float | None, float | None, float | None]:
    """(what retention measures, the student's, its int8 file's, the no-KD baseline's):
    next-byte accuracy over the teacher's, or the task's own metric where metrics.json names
    one (an embedding model: similarity Spearman against the teacher)."""
    if m.retention_metric:
        return (m.retention_metric, fmt.number(m.retention), fmt.number(m.int8_retention),
                fmt.number(m.baseline_retention))
    return ("accuracy retention", fmt.number(m.retention_accuracy),
            fmt.number(m.int8_retention_accuracy), fmt.number(m.baseline_retention_accuracy))


def _at_steps(inp: Inputs, mode: str) -> list | None:
    """The plan's forecast (P10, P90) for the budget the distillation ran, if it recorded one."""
    steps = inp.distilled.steps if inp.distilled else None
    curve = inp.plan.forecast.curve(inp.trained, mode)
    band = curve.at_steps.get(str(steps)) if curve else None
    return [band[0], band[2]] if band else None


def _predicted_band(inp: Inputs, student: Student | None) -> tuple[list | None, str]:
    """The band to hold the run against: the forecast for the steps it ran where the plan has
    one, else the student's band (and at which budget it was made)."""
    steps = inp.distilled.steps if inp.distilled else None
    band = _at_steps(inp, "kd")
    if band is not None:
        return band, f"forecast for the {fmt.num(steps, 0)} steps that ran"
    if student is None:
        return None, "prior"
    planned = student.retention_steps
    if planned and steps and int(planned) != int(steps):
        return student.retention_band, (f"band for {fmt.num(planned, 0)} steps; "
                                        f"{fmt.num(steps, 0)} ran")
    return student.retention_band, student.retention_source or "prior"


def achieved_section(inp: Inputs, figures: Figures) -> Section:
    title = "Predicted vs achieved"
    m = inp.distilled
    if not m:
        return Section("achieved", title, (Text(
            "Pending: no distillation has run yet (no distill/metrics.json). Run `roi distill "
            "--plan plan/plan.yaml --out distill`, then benchmark the student again with "
            "`roi bench --students ckpt:distill --out bench-student`; this section then shows "
            "the plan's predictions beside what the student achieved.", "pending"),))
    student = inp.student(inp.trained)
    band, basis = _predicted_band(inp, student)
    base_band = _at_steps(inp, "ce")
    what, ret, ret8, ret_b = _retention(m)
    gain = fmt.number(m.kd_gain_accuracy)
    rows = [
        {"quantity": f"{what} (torch; {basis})", "predicted": fmt.pct_band(band),
         "achieved": fmt.pct(ret), "verdict": band_verdict(ret, band) or fmt.DASH},
        {"quantity": f"{what} (ONNX int8)", "predicted": fmt.pct_band(band),
         "achieved": fmt.pct(ret8), "verdict": band_verdict(ret8, band) or fmt.DASH},
        {"quantity": "no-KD baseline retention", "predicted": fmt.pct_band(base_band),
         "achieved": fmt.pct(ret_b), "verdict": band_verdict(ret_b, base_band) or fmt.DASH
         if base_band else fmt.DASH},
        {"quantity": "KD gain over the no-KD baseline", "predicted": "> 0 points",
         "achieved": fmt.num(100 * gain, 2, fmt.DASH) + " points" if gain is not None
         else fmt.DASH, "verdict": fmt.DASH if gain is None else
         ("KD helped" if gain > 0 else "KD did not help")},
        {"quantity": "student parameters", "predicted": fmt.params(student.params if student else None),
         "achieved": fmt.params(m.student_params), "verdict": fmt.DASH}]
    settings = m.settings
    blocks: list = [table(rows, f"The plan's predictions for {inp.trained or fmt.DASH} "
                                 f"beside the distilled student")]
    warnings = distill_warnings(inp.metrics)  # an untrained teacher: retention says little
    if warnings:
        blocks += [Heading("Warnings"), Bullets(tuple(warnings))]
    done = m.trained
    if done and done != inp.planned:
        blocks.append(Text(f"The plan's trainer section names {inp.planned or fmt.DASH}; the "
                           f"distillation trained {done}"
                           + (", so its own predictions are shown." if done == inp.trained else
                              ", which the plan does not cover: compare with care."), "note"))
    latency = latency_pairs(inp.results, inp.student_results, inp.teacher, inp.trained)
    achieved = {k: v for k, v in (("KD torch", ret), ("KD int8", ret8), ("baseline", ret_b))
                if v is not None}
    blocks.append(figure(
        figures, "predicted_vs_achieved", fig.predicted_vs_achieved(band, achieved, latency),
        "Predicted vs achieved",
        "Retention: " + (what if m.retention_metric else "next-byte accuracy of the "
                         "distilled student over the teacher's on the held-out test split")
        + " (metrics.json) against the plan's band. Latency: the same "
        "architecture measured before training against the distilled student benchmarked "
        "again.", "metrics.json holds no retention figure."))
    if latency.empty:
        blocks.append(Text("Latency re-bench pending: no benchmark of the distilled student "
                           "(bench-student/results.csv) sharing a configuration with the plan's"
                           " measurements.", "pending"))
    else:
        blocks.append(table([{"config": r.config, "predicted ms": fmt.sig(r.predicted_ms),
                               "achieved ms": fmt.sig(r.achieved_ms),
                               "achieved / predicted": fmt.num(r.achieved_ms / r.predicted_ms,
                                                               2) + "×"}
                              for r in latency.itertuples()], "Latency per call (p50)"))
    blocks.append(table(_encoder_metric_rows(m) if m.retention_metric else
                        _metric_rows(m), "Held-out test metrics (metrics.json)"))
    blocks.append(Text(f"Training: {fmt.text(settings.steps)} steps, {fmt.text(settings.kd_loss)}"
                       f" KD at T={fmt.text(settings.temperature)}, "
                       f"α={fmt.text(settings.alpha)}; student init "
                       f"{fmt.text(m.init)}; wall time "
                       f"{fmt.num((fmt.number(m.wall_s) or 0) / 60, 1)} min; export "
                       f"{fmt.text(m.export.method if m.export else None)} (max relative error "
                       f"{fmt.sig(m.export.rel_err if m.export else None)})."))
    return Section("achieved", title, tuple(blocks))


ENV_COLUMNS = {"env_cpu": "CPU", "env_cores": "cores", "env_logical_cpus": "logical CPUs",
               "env_gpu": "GPU", "env_python": "Python", "env_torch": "torch",
               "env_onnxruntime": "onnxruntime", "env_os": "OS", "env_git_commit": "git commit",
               "env_time": "measured at"}


def _environment(df: pd.DataFrame | None) -> tuple[tuple[str, str], ...]:
    if df is None:
        return ()
    out = []
    for col, label in ENV_COLUMNS.items():
        if col not in df:
            continue
        values = [fmt.text(v, "") for v in df[col].dropna().unique()]
        values = sorted(v for v in values if v)
        if col == "env_time" and len(values) > 1:
            values = [f"{values[0]} to {values[-1]}"]
        if values:
            out.append((label, ", ".join(values[:4]) + (" …" if len(values) > 4 else "")))
    return tuple(out)


def method_section(inp: Inputs, figures: Figures, shown: list[Figure]) -> Section:
    proj = inp.plan.projection
    env = _environment(inp.results)
    blocks: list = [Heading("Environment")]
    blocks.append(Facts(env) if env else Text("The results table carries no environment "
                                              "fingerprint.", "note"))
    blocks += [Heading("How each figure was measured or projected"),
               Bullets(tuple(f"{f.caption}: {f.method}" for f in shown))
               if shown else Text("No figures.", "note"),
               Heading("Projection")]
    if proj.method:
        blocks.append(Text("Roofline projection: " + proj.method + "."))
    peak = proj.local_peak
    if peak.source:
        blocks.append(Text(f"Local peak: {fmt.sig(peak.gflop_s, 3, 'not given')} GFLOP/s"
                           f" ({peak.source})."))
    loo = [{"machine": r.machine, "backend": r.backend,
            "median error": fmt.pct(r.median_ape), "max error": fmt.pct(r.max_ape),
            "predictions": fmt.num(r.n_predictions, 0),
            "goal": "≤ " + fmt.pct(r.goal_median_ape, 0),
            "meets goal": fmt.text(r.meets_goal)} for r in proj.leave_one_out]
    if loo:
        blocks.append(table(loo, "Leave-one-model-out check of the projection"))
    hw = [{"hardware": r.hardware, "service times": r.source,
           "measured rows": fmt.num(r.measured_rows, 0),
           "projected rows": fmt.num(r.projected_rows, 0),
           "measured on": fmt.text(r.measured_on)}
          for r in inp.plan.sources.hardware]
    if hw:
        blocks.append(table(hw, "Where each hardware's service times come from"))
    assumptions = inp.plan.assumptions.document() if inp.plan.assumptions else {}
    if assumptions:
        blocks += [Heading("Assumptions"),
                   Facts(tuple((k.replace("_", " "), fmt.text(v)) for k, v in
                               assumptions.items()))]
    if inp.origin:
        blocks += [Heading("Inputs"), Facts(tuple(inp.origin.items()))]
    return Section("method", "Environment and method", tuple(blocks))
