"""Subprocess entry point: measure one configuration and write the result as JSON + npz.

    python -m bench.worker JOB.json

The job file holds the configuration, the measurement settings, the export info (ORT backends)
and where to write. Exit code 0 with a result file means the row is good; anything else is the
parent's to classify (error / oom / timeout).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np

FAULT_ENV = "ROI_BENCH_FAULT"  # test hook: {"model": SPEC, "kind": raise|alloc|exit|hang}


def _inject_fault(model: str) -> None:
    """Deliberate failures for the isolation tests; inert unless the variable names this model."""
    raw = os.environ.get(FAULT_ENV)
    if not raw:
        return
    fault = json.loads(raw)
    if fault.get("model") != model:
        return
    kind = fault["kind"]
    if kind == "raise":
        raise RuntimeError("injected failure")
    if kind == "exit":
        os._exit(3)
    if kind == "hang":
        import time

        time.sleep(3600)
    if kind == "alloc":  # touch memory until something stops us
        hog = []
        while True:
            hog.append(np.ones(64 * 1024 * 1024 // 8))


def main(job_path: str) -> int:
    from contracts.errors import InputError

    from .measure import BenchConfig, MeasureSettings, measure
    from .timing import TimingSettings

    job = json.loads(Path(job_path).read_text())
    cfg = BenchConfig(**job["config"])
    s = job["settings"]
    settings = MeasureSettings(
        timing=TimingSettings(**s["timing"]),
        decode_tokens=s["decode_tokens"],
        decode_runs=s["decode_runs"],
    )
    out = Path(job["result_path"])
    try:
        _inject_fault(cfg.model)
        m = measure(cfg, settings, job.get("info"))
        samples = {"latency_ns": m.samples_ns, **m.extra_samples}
        np.savez(job["samples_path"], **samples)
        result = {"row": m.row}
    except InputError as e:
        result = {"row": {"status": "skipped", "error": str(e)}}
    except MemoryError:
        result = {"row": {"status": "oom", "error": "MemoryError while measuring"}}
    except Exception as e:
        tb = traceback.format_exc(limit=-3)
        sys.stderr.write(tb)
        msg = " ".join(f"{type(e).__name__}: {e}".split())
        result = {"row": {"status": "error", "error": msg[:500]}}
    out.write_text(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    from .children import die_with_parent

    die_with_parent()  # a killed or interrupted `roi bench` takes this worker with it
    sys.exit(main(sys.argv[1]))
