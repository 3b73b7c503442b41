"""What a report section is made of and the blocks every section builds: the Inputs (plan,
results, metrics, the student's re-bench), a Table of display strings, a Figure or the note
saying why there is none, and the two lookups more than one section reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from . import figures as fig
from . import fmt
from .document import Figure, Table, Text

Figures = dict[str, bytes]


@dataclass(frozen=True)
class Inputs:
    """What a report is made of. plan: the plan document (plan.json / Plan.to_dict())."""

    plan: dict
    results: pd.DataFrame | None = None
    metrics: dict | None = None
    student_results: pd.DataFrame | None = None
    origin: dict[str, str] = field(default_factory=dict)  # input -> where it was read from
    replan: dict | None = None  # the plan again with the run's own result (roi run)

    @property
    def teacher(self) -> str:
        return str((self.plan.get("teacher") or {}).get("model") or "teacher")

    @property
    def recommended(self) -> dict | None:
        return self.plan.get("recommended")

    @property
    def planned(self) -> str:
        """The student the trainer section names (recommended, or the closest candidate)."""
        return str((self.plan.get("trainer") or {}).get("student") or "")

    @property
    def trained(self) -> str:
        """The student actually distilled (metrics.json's settings) when it is one of the
        plan's candidates, else the planned one."""
        done = ((self.metrics or {}).get("settings") or {}).get("student")
        known = {c.get("model") for c in self.candidates}
        return str(done) if done in known else self.planned

    @property
    def candidates(self) -> list[dict]:
        rec = [{**self.recommended, "qualifies": True, "recommended": True}] \
            if self.recommended else []
        return rec + list(self.plan.get("alternatives") or [])

    @property
    def models(self) -> list[str]:
        """Teacher first, then students from the largest down."""
        students = sorted(self.candidates, key=lambda c: -(fmt.number(c.get("params")) or 0))
        return [self.teacher] + [str(c["model"]) for c in students]

    @property
    def colors(self) -> dict[str, str]:
        rec = self.recommended["model"] if self.recommended else self.trained
        return fig.model_colors(self.models, self.teacher, rec)


def table(rows: list[dict], caption: str = "") -> Table:
    """A Table of display strings; values that are not text yet go through fmt.text."""
    df = pd.DataFrame(rows)
    return Table(df.map(lambda v: v if isinstance(v, str) and v else fmt.text(v)), caption)


def figure(figures: Figures, name: str, png: bytes | None, caption: str, method: str,
            missing: str) -> Figure | Text:
    """The Figure block when there is a PNG, else a note saying why there is none."""
    if png is None:
        why = fig.missing() or missing
        return Text(f"No {caption[0].lower() + caption[1:]} figure: {why}", "note")
    figures[name] = png
    return Figure(name, caption, method)


def answers_for(roi: dict) -> str:
    """What the plan's headline ROI figures are: one scenario's, or a declared portfolio's."""
    if roi.get("scope") == "portfolio":
        return ("portfolio: " + ", ".join(roi.get("portfolio") or []) + " (declared deployed "
                "together: totals across them)")
    name = roi.get("scenario")
    if not name:
        return "no scenario (no savings figure)" if roi.get("per_scenario") else fmt.DASH
    others = len(roi.get("per_scenario") or {}) - 1
    return name + (f" alone, where the student saves most; the other {others} scenario"
                   f"{'s' if others > 1 else ''} are separate answers (Decision framework)"
                   if others > 0 else "")


def forecast_curve(plan: dict, model: str, mode: str = "kd") -> dict:
    return next((c for c in (plan.get("forecast") or {}).get("curves") or []
                 if c.get("model") == model and c.get("mode") == mode), {})
