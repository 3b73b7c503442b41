"""Markdown tables from DataFrames (no tabulate dependency: a table is a few lines)."""

from __future__ import annotations

import math

import pandas as pd


def _cell(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value).replace("|", "\\|")


def table(df: pd.DataFrame, columns: dict[str, str] | None = None, digits: int = 2) -> str:
    """A GitHub-flavoured Markdown table; `columns` maps column -> header (and picks/orders)."""
    columns = columns or {c: c for c in df.columns}
    header = "| " + " | ".join(columns.values()) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = [
        "| " + " | ".join(_cell(row[c], digits) for c in columns) + " |"
        for _, row in df.iterrows()
    ]
    return "\n".join([header, rule, *body]) + "\n"
