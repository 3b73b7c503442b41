"""MLPerf user.conf overrides for `roi loadtest --user-conf FILE`, checked before any model loads.

A user.conf holds lines `MODEL.SCENARIO.KEY = VALUE` (`#` starts a comment; MODEL and SCENARIO
may be `*`), the file LoadGen's TestSettings.FromConfig reads. LoadGen skips a key it does not
know and a line it cannot parse only logs an error, so a typo would run the default silently:
here an unknown key, scenario or a value that is not a number is one line naming the file and
line. The run then passes the file to FromConfig (LoadGen applies every key), and the keys this
harness also keeps in its own settings (rates, latency bound, percentile, durations, query
counts) are applied to them too, so the row and the planner's prediction describe the run that
LoadGen made. MODEL is the --model spec as typed (e.g. builtin:teacher), or `*`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from contracts.errors import InputError

CONF_SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
# LoadGen's FromConfig keys (loadgen/test_settings_internal.cc), `mode` aside: --mode sets it
KEYS = frozenset({
    "min_duration", "max_duration", "min_query_count", "max_query_count", "qsl_rng_seed",
    "sample_index_rng_seed", "schedule_rng_seed", "accuracy_log_rng_seed",
    "accuracy_log_probability", "accuracy_log_sampling_target", "print_timestamps",
    "performance_issue_unique", "performance_issue_same", "performance_issue_same_index",
    "performance_sample_count_override", "sample_concatenate_permutation", "test05",
    "test05_qsl_rng_seed", "test05_sample_index_rng_seed", "test05_schedule_rng_seed",
    "target_latency_percentile", "target_latency", "target_qps", "samples_per_query",
    "max_async_queries", "coalesce_queries", "use_token_latencies", "ttft_latency",
    "tpot_latency", "infer_token_latencies", "token_latency_scaling_factor",
})
# key -> (the LoadtestSettings field it sets, its type, the scenarios it applies to); the units
# agree (ms, percent)
MIRRORED = {
    "target_qps": ("qps", float, ("server", "offline")),
    "target_latency": ("latency_ms", float, ("server",)),
    "target_latency_percentile": ("percentile", float, ("singlestream", "multistream", "server")),
    "samples_per_query": ("samples_per_query", int, ("multistream",)),
    "min_duration": ("min_duration_ms", int, None),
    "max_duration": ("max_duration_ms", int, None),
    "min_query_count": ("min_query_count", int, None),
}


def read_user_conf(path: str | Path) -> dict[str, float]:
    """{"MODEL.SCENARIO.KEY": value} of a user.conf; anything LoadGen would skip is refused."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"--user-conf {path}: cannot read it ({e.__class__.__name__}: "
                         f"{getattr(e, 'strerror', None) or e})") from None
    entries = {}
    for n, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if body:
            key, value = _entry(body, f"--user-conf {path} line {n}")
            entries[key] = value
    return entries


def _entry(body: str, where: str) -> tuple[str, float]:
    tokens = body.split()  # LoadGen reads whitespace-separated KEY = VALUE; KEY=VALUE is skipped
    if len(tokens) != 3 or tokens[1] != "=":
        raise InputError(f"{where}: expected MODEL.SCENARIO.KEY = VALUE (spaces around =); "
                         f"got {body!r}")
    key, _, value = tokens
    parts = key.rsplit(".", 2)
    if len(parts) != 3 or not parts[0]:
        raise InputError(f"{where}: expected MODEL.SCENARIO.KEY (MODEL and SCENARIO may be "
                         f"*); got {key!r}")
    _, scenario, name = parts
    if scenario != "*" and scenario not in CONF_SCENARIOS:
        raise InputError(f"{where}: unknown scenario {scenario!r}; allowed: *, "
                         f"{', '.join(CONF_SCENARIOS)}")
    if name not in KEYS:
        hint = " (--mode sets it)" if name == "mode" else ""
        raise InputError(f"{where}: unknown key {name!r}{hint}; allowed: "
                         f"{', '.join(sorted(KEYS))}")
    number = _number(value)
    if number is None:
        raise InputError(f"{where}: {name}: the value must be a number; got {value!r}")
    return key, number


def _number(text: str) -> float | None:
    """A value as LoadGen parses it: an integer (decimal, 0x hex, 0 octal) or a float."""
    for parse in (float, lambda v: float(int(v, 0))):
        try:
            return parse(text)
        except ValueError:
            pass
    return None


def lookup(entries: dict[str, float], model: str, scenario: str, name: str) -> float | None:
    """The value LoadGen takes for `name`: MODEL.SCENARIO, then *.SCENARIO, MODEL.*, *.*."""
    for m, sc in ((model, scenario), ("*", scenario), (model, "*"), ("*", "*")):
        if f"{m}.{sc}.{name}" in entries:
            return entries[f"{m}.{sc}.{name}"]
    return None


def apply_user_conf(s, entries: dict[str, float], conf_scenario: str):
    """LoadtestSettings with the mirrored keys of `entries` that apply to this model and
    scenario (the file wins over the command line, as in MLPerf)."""
    changes = {}
    for name, (field, kind, scenarios) in MIRRORED.items():
        value = lookup(entries, s.model, conf_scenario, name)
        if value is not None and (scenarios is None or s.scenario in scenarios):
            changes[field] = kind(value)
    return replace(s, **changes)
