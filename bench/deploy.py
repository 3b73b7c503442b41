"""Deploy as: per model, device, batch and sequence length, the fastest measured variant that
passes the quality gate (bench/gate.py), beside torch eager fp32 of the same model.

A variant that failed the gate is never chosen; when one was faster than the choice, the table
names it with its reason, so the price of the gate is visible.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from contracts.io import write_text_atomic

from .gate import REFERENCES, passes

DEPLOY_CSV, DEPLOY_MD = "deploy_as.csv", "deploy_as.md"
SETTING = ("model", "role", "device", "batch_size", "seq_len")
COLUMNS = ("model", "role", "device", "batch_size", "seq_len", "deploy_as", "backend", "dtype",
           "threads", "latency_ms_p50", "eager_fp32_ms_p50", "speedup_vs_eager_fp32", "gate",
           "gate_top1_agreement", "gate_max_logit_err", "gate_retention_delta_pp",
           "faster_but_failed")


def _variant(row: pd.Series) -> str:
    from .measure import variant_of

    v = row.get("variant")
    return v if isinstance(v, str) and v else variant_of(row["backend"], row["dtype"])


def deploy_as_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per setting that has at least one measured variant passing the gate."""
    if df.empty or "status" not in df.columns or "latency_ms_p50" not in df.columns:
        return pd.DataFrame(columns=COLUMNS)  # nothing measured (all skipped, timed out, ...)
    ok = df[(df["status"] == "ok") & df["latency_ms_p50"].notna()].copy()
    if "gate" not in ok.columns:
        ok["gate"] = None
    rows = []
    for keys, group in ok.groupby(list(SETTING), sort=True):
        group = group.sort_values("latency_ms_p50")
        good = group[group.apply(_recommendable, axis=1)]
        if good.empty:
            continue
        best = good.iloc[0]
        eager = group[(group["backend"] == "torch-eager") & (group["dtype"] == "fp32")]
        eager_ms = float(eager["latency_ms_p50"].min()) if len(eager) else float("nan")
        failed = group[(group["gate"] == "fail")
                       & (group["latency_ms_p50"] < best["latency_ms_p50"])]
        rows.append({
            **dict(zip(SETTING, keys)), "deploy_as": _variant(best), "backend": best["backend"],
            "dtype": best["dtype"], "threads": best["threads"],
            "latency_ms_p50": float(best["latency_ms_p50"]), "eager_fp32_ms_p50": eager_ms,
            "speedup_vs_eager_fp32": eager_ms / float(best["latency_ms_p50"]),
            "gate": best["gate"],
            **{c: best.get(c) for c in ("gate_top1_agreement", "gate_max_logit_err",
                                        "gate_retention_delta_pp")},
            "faster_but_failed": "; ".join(f"{_variant(r)} ({r['latency_ms_p50']:.2f} ms: "
                                           f"{r.get('gate_reason')})"
                                           for _, r in failed.iterrows()),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def _recommendable(row: pd.Series) -> bool:
    """A pass or a reference; a row without a gate value (measured before the gate existed)
    counts only if it is an fp32 reference."""
    gate = row.get("gate")
    if isinstance(gate, str) and gate:
        return passes(gate)
    return _variant(row) in REFERENCES


def to_markdown(table: pd.DataFrame) -> str:
    head = ("| model | batch | seq | deploy as | p50 ms | torch eager fp32 p50 ms | speedup | "
            "gate | top-1 | max logit err | retention Δ pp |\n|---|---|---|---|---|---|---|---|"
            "---|---|---|\n")
    lines = []
    for _, r in table.iterrows():
        lines.append(f"| {r['model']} | {r['batch_size']} | {r['seq_len']} | {r['deploy_as']} | "
                     f"{r['latency_ms_p50']:.2f} | {_f(r['eager_fp32_ms_p50'])} | "
                     f"{_f(r['speedup_vs_eager_fp32'])}× | {r['gate']} | "
                     f"{_f(r['gate_top1_agreement'], 4)} | {_f(r['gate_max_logit_err'], 4)} | "
                     f"{_f(r['gate_retention_delta_pp'])} |")
    return "# Deploy as (fastest variant passing the quality gate)\n\n" + head + "\n".join(
        lines) + "\n"


def _f(x, digits: int = 2) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if x != x else f"{x:.{digits}f}"


def write_deploy_as(out_dir: Path, df: pd.DataFrame) -> pd.DataFrame:
    table = deploy_as_table(df)
    if not table.empty:
        write_text_atomic(Path(out_dir) / DEPLOY_CSV, table.to_csv(index=False))
        write_text_atomic(Path(out_dir) / DEPLOY_MD, to_markdown(table))
    return table
