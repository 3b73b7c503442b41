"""reports/figure_kit.py: the helpers every report figure is drawn with, public and in one
place; no module of reports/ reaches into another module's private (underscore) names."""

import ast
from pathlib import Path

import pytest

from reports import figure_kit as kit

REPORTS = Path(__file__).resolve().parents[2] / "reports"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path) -> list[str]:
    """`from .x import _y` and `x._y` where x is a module of the package, in one file."""
    tree = ast.parse(path.read_text(), str(path))
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            found += [f"from {node.module} import {a.name}" for a in node.names
                      if _private(a.name)]
            if node.module is None:  # from . import figures as fig
                modules |= {a.asname or a.name for a in node.names}
    found += [f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
              if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
              and n.value.id in modules and _private(n.attr)]
    return found


@pytest.mark.parametrize("path", sorted(REPORTS.glob("*.py")), ids=lambda p: p.name)
def test_no_module_uses_another_modules_private_names(path):
    assert private_uses(path) == []


def test_the_check_sees_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from .figures import _grid\nfrom . import figures as fig\nfig._new(1, 2)\n")
    assert private_uses(bad) == ["from figures import _grid", "fig._new"]


def test_the_kit_colours_labels_and_renders():
    colors = kit.model_colors(["t", "a", "r", "b"], teacher="t", recommended="r")
    assert colors == {"t": kit.TEACHER_COLOR, "a": kit.PALETTE[0], "r": kit.RECOMMENDED_COLOR,
                      "b": kit.PALETTE[1]}
    assert kit.short("abcdef", 4) == "abc…" and kit.short("abc", 4) == "abc"
    assert kit.render(lambda: None) is None  # nothing to draw: no PNG
