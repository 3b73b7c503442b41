"""The run directory (DESIGN.md "Contracts"): where `roi run` puts each step's files, named once.
app/run.py writes them; reports/report.py reads them.

    RUN/run.yaml, state.json, summary.json   the run's settings, progress and answer
    RUN/bench/results.csv (.jsonl)           the teacher and candidate students measured
    RUN/pilot/pilot.csv, skipped.json        pilot curves (or why the pilots were skipped)
    RUN/plan/plan.json, plan.yaml            the plan (plan.schema.json beside it)
    RUN/distill/metrics.json                 the distilled student's metrics
    RUN/bench-student/results.csv (.jsonl)   the distilled student measured again
    RUN/replan/plan.json                     the plan again, with the run's own result
    RUN/report/                              report.md, report.html, figures/*.png
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

from .curves import PILOT_FILE


@dataclass(frozen=True)
class RunLayout:
    """The files of the run directory `root`; the relative names (ClassVars) for messages and
    for the steps that own them."""

    root: Path

    RUN_FILE: ClassVar[str] = "run.yaml"
    STATE_FILE: ClassVar[str] = "state.json"
    SUMMARY_FILE: ClassVar[str] = "summary.json"
    RESULTS: ClassVar[tuple[str, ...]] = ("bench/results.csv", "bench/results.jsonl")
    PILOT_CURVES: ClassVar[str] = f"pilot/{PILOT_FILE}"
    PILOT_SKIPPED: ClassVar[str] = "pilot/skipped.json"
    PLAN: ClassVar[tuple[str, ...]] = ("plan/plan.json", "plan/plan.yaml")
    METRICS: ClassVar[str] = "distill/metrics.json"
    STUDENT_RESULTS: ClassVar[tuple[str, ...]] = ("bench-student/results.csv",
                                                  "bench-student/results.jsonl")
    REPLAN: ClassVar[str] = "replan/plan.json"
    REPORT_DIR: ClassVar[str] = "report"

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def first(self, names: tuple[str, ...]) -> Optional[Path]:
        """The first of `names` that is a file in the run directory, if any."""
        return next((self.root / n for n in names if (self.root / n).is_file()), None)

    @property
    def plan_json(self) -> Path:
        return self.root / self.PLAN[0]

    @property
    def plan_yaml(self) -> Path:
        return self.root / self.PLAN[1]

    @property
    def metrics(self) -> Path:
        return self.root / self.METRICS

    @property
    def replan(self) -> Path:
        return self.root / self.REPLAN

    @property
    def pilot_curves(self) -> Path:
        return self.root / self.PILOT_CURVES

    @property
    def pilot_skipped(self) -> Path:
        return self.root / self.PILOT_SKIPPED
