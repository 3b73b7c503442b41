"""Markdown: tables from DataFrames (no tabulate dependency: a table is a few lines) and the whole
report (report.md, figures linked as figures/NAME.png beside it)."""

from __future__ import annotations

import math
import re

import pandas as pd

from .document import Bullets, Facts, Figure, Heading, Report, Section, Table, Text

FIGURES_DIR = "figures"


def escape(text: str) -> str:
    """Text safe inside Markdown: no raw HTML (a renderer would pass it through), no table
    breaks, one line."""
    text = re.sub(r"&(?=#|\w+;)", "&amp;", str(text))
    text = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _cell(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return escape(value)


def table(df: pd.DataFrame, columns: dict[str, str] | None = None, digits: int = 2) -> str:
    """A GitHub-flavoured Markdown table; `columns` maps column -> header (and picks/orders)."""
    columns = columns or {c: c for c in df.columns}
    header = "| " + " | ".join(escape(h) for h in columns.values()) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = [
        "| " + " | ".join(_cell(row[c], digits) for c in columns) + " |"
        for _, row in df.iterrows()
    ]
    return "\n".join([header, rule, *body]) + "\n"


PREFIX = {"lead": "**", "go": "**", "nogo": "**"}


def block(b) -> str:
    if isinstance(b, Text):
        mark = PREFIX.get(b.style, "")
        text = escape(b.text)
        if b.style in ("note", "pending"):
            return f"> {text}\n"
        return f"{mark}{text}{mark}\n"
    if isinstance(b, Heading):
        return f"### {escape(b.text)}\n"
    if isinstance(b, Bullets):
        return "".join(f"- {escape(i)}\n" for i in b.items)
    if isinstance(b, Facts):
        return table(pd.DataFrame(list(b.items), columns=["", "value"]))
    if isinstance(b, Table):
        caption = f"*{escape(b.caption)}*\n\n" if b.caption else ""
        return caption + table(b.df)
    if isinstance(b, Figure):
        return f"![{escape(b.caption)}]({FIGURES_DIR}/{b.name}.png)\n\n*{escape(b.caption)}.*\n"
    raise TypeError(f"unknown block {type(b).__name__}")


def section(s: Section) -> str:
    return f"## {escape(s.title)}\n\n" + "\n".join(block(b) for b in s.blocks)


def slug(title: str) -> str:
    """The anchor GitHub gives a heading."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def render(report: Report) -> str:
    """report.md: title, contents, then every section."""
    toc = "".join(f"- [{escape(s.title)}](#{slug(s.title)})\n" for s in report.sections)
    parts = [f"# {escape(report.title)}\n", f"{escape(report.subtitle)}\n", toc]
    parts += [section(s) for s in report.sections]
    return "\n".join(parts)
