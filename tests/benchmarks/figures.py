"""Where the benchmark suite's figures go: printed, and appended to figures.jsonl beside this
file (gitignored; BENCHMARKS.md quotes them). Imports no torch, so planner benchmarks stay light."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

FIGURES = Path(__file__).with_name("figures.jsonl")


def record(name: str, **figures) -> None:
    from bench.env import cpu_model

    entry = {"benchmark": name, "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "cpu": cpu_model(), "cores": os.cpu_count(), **figures}
    print(json.dumps(entry))
    with open(FIGURES, "a") as f:
        f.write(json.dumps(entry) + "\n")
