"""The house's layers (DESIGN.md "Layers"): a layer imports only the layers below it, two units
of one layer never import each other, the planner reads only the contracts, and no imports go
round in a circle. The graph is read from the source with `ast`, imports inside functions
included (they are how a circle hides), so a change cannot quietly break it.

ALLOWED lists today's violations, each with the move that removes it; it only shrinks: an entry
that no longer names a violation fails the test, so each fix deletes its line."""

import ast
import functools
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "models", "bench", "distill", "roi", "reports", "checks", "app")

# Bottom (0) to top. A unit may import its own modules and any unit of a lower rank.
# A module's unit is its top-level package; app/ is the application (the `roi` command, the
# `roi run` pipeline, the console).
RANK = {"contracts": 0, "models": 1, "bench": 2, "distill": 2, "roi": 3, "reports": 4,
        "checks": 5, "app": 6}
# The planner is pure (DESIGN.md): it reads the contracts, never the models, bench or distill.
PLANNER_MAY_IMPORT = {"roi", "contracts"}
# What `pip install distill-roi` (no extras) holds: these units never import the extras' packages.
LIGHT = {"contracts", "roi", "reports"}
HEAVY = {"torch", "onnx", "onnxscript", "onnxruntime", "mlperf_loadgen", "transformers",
         "safetensors", "psutil", "tensorboardX", "scipy"}

ALLOWED: dict[str, str] = {}  # "importer -> imported": why it is here and the move that ends it
ALLOWED_CYCLES: dict[str, str] = {}  # sorted members of a circle: why it is here


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported_names(name: str, path: Path):
    """Each dotted name the module imports (at module level or inside a function), with
    `from X import y` as X.y: the submodule y if there is one, else the module X."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package[:len(package) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            yield from (f"{base}.{alias.name}" for alias in node.names)


@functools.cache  # read once per session (every test below reads it)
def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """module -> the project's modules it imports, and module -> third-party tops it imports."""
    found = modules()
    edges, outside = {}, {}
    for name, path in found.items():
        edges[name], outside[name] = set(), set()
        for imported in imported_names(name, path):
            if imported.split(".")[0] not in PACKAGES:
                outside[name].add(imported.split(".")[0])
                continue
            while imported and imported not in found:  # a name inside a module: the module
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                edges[name].add(imported)
    return edges, outside


def unit(module: str) -> str:
    return module.split(".")[0]


def violations(edges: dict[str, set[str]], outside: dict[str, set[str]]) -> dict[str, str]:
    """"importer -> imported": what rule it breaks."""
    found = {}
    for importer, targets in edges.items():
        for imported in targets:
            a, b = unit(importer), unit(imported)
            if a == b:
                continue
            if RANK[b] > RANK[a]:
                found[f"{importer} -> {imported}"] = f"upward: {a} imports {b}"
            elif RANK[b] == RANK[a]:
                found[f"{importer} -> {imported}"] = f"sideways: {a} imports {b}"
            elif a == "roi" and b not in PLANNER_MAY_IMPORT:
                found[f"{importer} -> {imported}"] = f"the planner imports {b}"
        for top in outside[importer] & HEAVY:
            if unit(importer) in LIGHT:
                found[f"{importer} -> {top}"] = f"{unit(importer)} imports {top}"
    return found


def cycles(edges: dict[str, set[str]]) -> list[str]:
    """The circles (strongly connected components of more than one node), members sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):  # Tarjan; the graph is a few hundred nodes, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while not component or node not in component:
                component.add(stack.pop())
            on_stack.difference_update(component)
            if len(component) > 1:
                found.append(", ".join(sorted(component)))

    for node in list(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def unit_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    units = {}
    for importer, targets in edges.items():
        units.setdefault(unit(importer), set()).update(unit(t) for t in targets)
    return units


def test_the_graph_sees_imports_inside_functions_and_relative_ones():
    edges, outside = graph()
    assert "bench.sweep" in edges["app.run"]  # `from bench.sweep import ...` inside a function
    assert "app.console" in edges["app.cli_measure"]  # `from .console import` in a function
    assert "torch" in outside["models.gpt"]


def test_no_import_goes_up_or_sideways_beyond_the_allowed_list():
    found = violations(*graph())
    new = {edge: why for edge, why in found.items() if edge not in ALLOWED}
    assert not new, "imports against the layers (DESIGN.md):\n" + "\n".join(
        f"  {edge}  ({why})" for edge, why in sorted(new.items()))


def test_the_allowed_list_only_names_live_violations():
    stale = sorted(set(ALLOWED) - set(violations(*graph())))
    assert not stale, f"fixed, delete from ALLOWED: {stale}"


def test_no_package_imports_the_application_and_no_package_circle():
    units = unit_edges(graph()[0])
    assert set(units) == set(PACKAGES)  # every package is read
    assert not [u for u, targets in units.items() if u != "app" and "app" in targets]
    assert cycles(units) == []  # checks <-> roi and reports <-> roi ended when app/ moved out


def test_no_import_circle_beyond_the_allowed_list():
    edges, _ = graph()
    found = cycles(edges) + cycles(unit_edges(edges))
    new = [c for c in found if c not in ALLOWED_CYCLES]
    assert not new, f"import circles: {new}"
    stale = sorted(set(ALLOWED_CYCLES) - set(found))
    assert not stale, f"fixed, delete from ALLOWED_CYCLES: {stale}"


def test_the_rules_catch_what_they_should():
    # made-up module names (the rewrite script of a move must not touch them)
    edges = {"roi.aa": {"bench.bb"}, "bench.bb": {"distill.cc"}, "contracts.dd": {"roi.aa"},
             "roi.ee": {"roi.aa"}, "app.cli": {"bench.bb"}, "distill.cc": {"bench.bb"}}
    outside = {**{m: set() for m in edges}, "roi.ee": {"torch", "numpy"}}
    assert violations(edges, outside) == {
        "roi.aa -> bench.bb": "the planner imports bench",
        "bench.bb -> distill.cc": "sideways: bench imports distill",
        "distill.cc -> bench.bb": "sideways: distill imports bench",
        "contracts.dd -> roi.aa": "upward: contracts imports roi",
        "roi.ee -> torch": "roi imports torch",
    }
    assert cycles(edges) == ["bench.bb, distill.cc"]
    assert cycles(unit_edges(edges)) == ["bench, distill"]
