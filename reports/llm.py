"""The decision report of a plan for a teacher known only by its config (roi.llm_plan)."""

from __future__ import annotations

import pandas as pd

from .markdown import table

LLM_PLAN_COLUMNS = {"model": "model", "role": "role", "params": "params", "hardware": "hardware",
                    "dtype": "dtype", "tp": "TP", "gpus": "GPUs", "ttft_ms": "TTFT ms",
                    "tpot_ms": "TPOT ms", "e2e_ms": "e2e ms", "usd_per_month": "USD/month",
                    "usd_per_1m_output_tokens": "USD/1M out tok",
                    "cost_reduction": "cost cut", "retention_low": "retention low",
                    "retention_high": "retention high", "meets_sla": "meets SLA"}


def llm_plan_markdown(doc: dict) -> str:
    """The plan as a short Markdown decision report (tables per scenario)."""
    d = doc["decision"]
    lines = [f"# Distill {doc['teacher']}? {'GO' if d['go'] else 'NO-GO'}", "",
             *[f"- {r}" for r in d["reasons"]], "",
             f"Recommended student: {doc['recommended']['model'] or 'none'} (retention "
             f"threshold {doc['retention_threshold']:.0%}). Every figure is projected.", ""]
    for sc in doc["scenarios"]:
        frame = pd.DataFrame(sc["models"])
        cols = {k: v for k, v in LLM_PLAN_COLUMNS.items() if k in frame.columns}
        lines += [f"## {sc['scenario']} ({sc['sla']})", "", table(frame, cols, digits=3),
                  *[f"- {n}" for n in sc["notes"]], ""]
    return "\n".join(lines)
