"""The figure kit every report figure is drawn with (reports/figures.py, measure_figures.py,
llm.py): the report's style and colours, a figure or a grid of panels, rendering to PNG bytes
(None without matplotlib: `missing()` says how to install it), and axes in plain numbers,
dollars or percent. matplotlib is imported on the first figure, not with this module.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .fmt import sig, usd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TEACHER_COLOR = "#555555"
RECOMMENDED_COLOR = "#d62728"
PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#bcbd22"]
STYLE = {"text.parse_math": False, "font.size": 9, "axes.titlesize": 10,
         "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
         "grid.alpha": 0.3, "legend.fontsize": 8, "legend.frameon": False}
DPI = 100


def missing() -> str | None:
    """Why no figure can be drawn here (matplotlib absent, with the extra to install), or None."""
    from importlib.util import find_spec

    if find_spec("matplotlib") is not None:
        return None
    return "matplotlib is not installed: pip install 'distill-roi[figures]'"


def new(width: float, height: float) -> Figure:
    """An empty figure of the report's size and resolution (constrained layout)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, with no software stamp (the same figure, the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def render(draw, *args, **kwargs) -> bytes | None:
    """Run a draw function under the report style; it returns a Figure or None (None too
    without matplotlib)."""
    if missing():
        return None
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = draw(*args, **kwargs)
        return None if fig is None else png(fig)


def grid(n: int, per_row: int, width: float = 10.0, row_height: float = 3.2):
    """A figure of n panels, per_row to a row (spare cells hidden): (figure, the n axes)."""
    cols = min(n, per_row)
    rows = math.ceil(n / cols)
    fig = new(width, row_height * rows + 0.3)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def plain_log(axis) -> None:
    """Log-axis ticks as plain numbers (the default labels are mathtext, which is off here)."""
    from matplotlib import ticker

    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: sig(v, 2)))
    axis.set_minor_formatter(ticker.NullFormatter())


def usd_axis(axis, minor: bool = True) -> None:
    """Dollar tick labels (minor: keep the minor ticks' own labels)."""
    from matplotlib import ticker

    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: usd(v)))
    if not minor:
        axis.set_minor_formatter(ticker.NullFormatter())


def percent_axis(axis) -> None:
    """Tick labels as percentages of 1."""
    from matplotlib import ticker

    axis.set_major_formatter(ticker.PercentFormatter(1.0))


def model_colors(models: Sequence[str], teacher: str = "",
                 recommended: str = "") -> dict[str, str]:
    """Teacher grey, recommended red, other students from the palette, stable by order."""
    colors, i = {}, 0
    for m in models:
        if m == teacher:
            colors[m] = TEACHER_COLOR
        elif m == recommended:
            colors[m] = RECOMMENDED_COLOR
        else:
            colors[m] = PALETTE[i % len(PALETTE)]
            i += 1
    return colors


def short(name: str, width: int = 22) -> str:
    """A label cut to `width` characters (an ellipsis where cut)."""
    return name if len(name) <= width else name[: width - 1] + "…"
