"""roi: the planner (cost, sizing, projection, decision) and the `roi` command line.

Pure Python + numpy/pandas: this package never imports torch or onnxruntime, so the planner runs
anywhere, on results measured elsewhere.
"""

__version__ = "0.1.0"
