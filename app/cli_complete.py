"""Shell completion of the options with a fixed set of values (`roi --install-completion`).

Each function completes what the shell has typed so far from the one list the value is checked
against, imported only when the shell asks (never by `roi --help`): the bench variants
(contracts.defaults.VARIANTS, `deploy` for all of them), the scenario presets
(contracts.defaults) and scenario YAML files, LoadGen's scenarios as MLPerf spells them and
its test modes (bench.loadtest_settings).
"""

from __future__ import annotations

from pathlib import Path


def _matching(choices, incomplete: str) -> list[str]:
    """The choices that start with what was typed (case-insensitive, as the options accept)."""
    return [c for c in choices if c.lower().startswith(incomplete.lower())]


def backends(incomplete: str) -> list[str]:
    """--backends, a comma-separated list: completes its last item, keeping the ones before."""
    from contracts.defaults import VARIANTS

    done, _, last = incomplete.rpartition(",")
    head = done + "," if done else ""
    taken = set(done.split(","))
    return [head + v for v in _matching([*VARIANTS, "deploy"], last) if v not in taken]


def variant(incomplete: str) -> list[str]:
    """roi loadtest --backend: one variant."""
    from contracts.defaults import VARIANTS

    return _matching(VARIANTS, incomplete)


def scenario(incomplete: str) -> list[str]:
    """--scenario of roi plan and roi scenarios: a preset, or a scenario YAML file."""
    from contracts.defaults import SCENARIO_PRESETS

    return _matching(SCENARIO_PRESETS, incomplete) + _yaml_files(incomplete)


def _yaml_files(incomplete: str) -> list[str]:
    """YAML files and directories whose path starts with what was typed."""
    folder, prefix = (incomplete.rsplit("/", 1) if "/" in incomplete else ("", incomplete))
    base = Path(folder + "/" if folder else ".")
    if not base.is_dir():
        return []
    found = []
    for p in sorted(base.iterdir()):
        if p.name.startswith(prefix) and not p.name.startswith(".") and (
                p.is_dir() or p.suffix in (".yaml", ".yml")):
            found.append((f"{folder}/" if folder else "") + p.name + ("/" if p.is_dir() else ""))
    return found


def loadgen_scenario(incomplete: str) -> list[str]:
    """roi loadtest --scenario: LoadGen's scenarios as MLPerf spells them."""
    from bench.loadtest_settings import SCENARIOS

    return _matching(SCENARIOS.values(), incomplete)


def mode(incomplete: str) -> list[str]:
    """roi loadtest --mode: performance or accuracy."""
    from bench.loadtest_settings import TEST_MODES

    return _matching(TEST_MODES, incomplete)
