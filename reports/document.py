"""A report as plain data: sections of blocks, figures as PNG bytes.

The blocks hold display text only (numbers already formatted by reports.fmt), so the Markdown
and HTML renderers (reports.markdown, reports.html) are two small functions of the same
document and cannot disagree about a figure. Nothing here renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Text:
    """A paragraph. style: p (plain), lead (the headline), note (a caveat), pending."""

    text: str
    style: str = "p"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    """Key figures as (label, value) pairs: a two-column table in Markdown, cards in HTML."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """A table of display strings (columns are the headers)."""

    df: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A reference to Report.figures[name]; `method` says how its numbers were obtained."""

    name: str
    caption: str
    method: str = ""


@dataclass(frozen=True)
class Heading:
    text: str


Block = Text | Bullets | Facts | Table | Figure | Heading


@dataclass(frozen=True)
class Section:
    id: str  # anchor and the name `reports.select` takes
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    sections: tuple[Section, ...]
    figures: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def section_ids(self) -> list[str]:
        return [s.id for s in self.sections]


def select(report: Report, *ids: str) -> Report:
    """The same report with only the named sections (and the figures they show), in the order
    given: e.g. the decision report is select(r, "summary", "decision", "scenarios")."""
    by_id = {s.id: s for s in report.sections}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise KeyError(f"unknown section(s) {', '.join(unknown)}; known: "
                       f"{', '.join(by_id)}")
    sections = tuple(by_id[i] for i in ids)
    shown = {b.name for s in sections for b in s.blocks if isinstance(b, Figure)}
    return Report(report.title, report.subtitle, sections,
                  {k: v for k, v in report.figures.items() if k in shown})
