"""roi: the planner (cost, sizing, projection, decision). The `roi` command line that calls it
lives in app/ (app.cli), the layer above.

Pure Python + numpy/pandas: this package never imports torch or onnxruntime, so the planner runs
anywhere, on results measured elsewhere.
"""

__version__ = "0.1.0"
__all__ = ["plan", "Plan"]


def __getattr__(name: str):
    """`roi.plan(results, scenario) -> Plan`, imported on first use so that `import roi` (and
    every CLI command) stays light."""
    if name in ("plan", "Plan"):
        from . import planner

        return getattr(planner, name)
    raise AttributeError(f"module 'roi' has no attribute {name!r}")
