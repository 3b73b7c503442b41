"""bench: measures teacher and student models (latency percentiles, throughput, memory, cold
start) with PyTorch and ONNX Runtime, and writes one tidy results table.

Python API: `bench.run(teacher=..., students=..., backends=..., ...) -> pandas.DataFrame`.
"""

from __future__ import annotations


def run(progress=None, **kwargs):
    """Measure a sweep; see bench.sweep.plan_sweep for the arguments."""
    from .sweep import run as _run

    return _run(progress=progress, **kwargs)
