"""MLPerf user.conf overrides for `roi loadtest --user-conf FILE`, checked before any model loads.

A user.conf holds lines `MODEL.SCENARIO.KEY = VALUE` (`#` starts a comment; MODEL and SCENARIO
may be `*`), the file LoadGen's TestSettings.FromConfig reads. LoadGen skips a key it does not
know, a key of another scenario and a line it cannot parse (logging an error at most), so a typo
would run the defaults silently: here an unknown key or scenario, a key that LoadGen does not take
from a user.conf, or a value that is not a number is one line naming the file and line.

The run passes the file to FromConfig (LoadGen parses and applies every key) and keeps every
other setting as this harness chose it: LoadGen's first FromConfig in a process also loads its
built-in mlperf.conf (10-minute runs, the submission's seeds and rates), which would replace
them in silence (`from_config`). The keys the harness also keeps in its own settings (rates,
latency bound, percentile, durations, query counts) are applied to them too, so the row and the
planner's prediction describe the run that LoadGen made. MODEL is the --model spec as typed (e.g.
builtin:teacher), or `*`.
"""

from __future__ import annotations

from pathlib import Path

from contracts.errors import InputError

CONF_SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")


def _every(attribute: str) -> dict[str, str]:
    return dict.fromkeys(CONF_SCENARIOS, attribute)


# user.conf key -> {scenario: the TestSettings attribute it sets} (mlperf-loadgen 6.0's
# FromConfig; tests/unit/test_loadgen_conf.py checks it against the installed LoadGen)
KEYS = {
    **{k: _every(f"{k}_ms") for k in ("min_duration", "max_duration")},
    **{k: _every(k) for k in (
        "min_query_count", "max_query_count", "accuracy_log_rng_seed",
        "accuracy_log_sampling_target", "print_timestamps", "performance_issue_unique",
        "performance_issue_same", "performance_issue_same_index",
        "performance_sample_count_override")},
    "target_latency": {"SingleStream": "single_stream_expected_latency_ns",
                       "MultiStream": "multi_stream_expected_latency_ns",
                       "Server": "server_target_latency_ns"},
    "target_latency_percentile": {"SingleStream": "single_stream_target_latency_percentile",
                                  "MultiStream": "multi_stream_target_latency_percentile",
                                  "Server": "server_target_latency_percentile"},
    "target_qps": {"Server": "server_target_qps", "Offline": "offline_expected_qps"},
    "samples_per_query": {"MultiStream": "multi_stream_samples_per_query"},
    "max_async_queries": {"Server": "server_max_async_queries"},
    "coalesce_queries": {"Server": "server_coalesce_queries"},
}
# keys LoadGen reads from its mlperf.conf but not from a user.conf (FromConfig skips them there)
NOT_FROM_USER_CONF = ("mode", "qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed",
                      "accuracy_log_probability", "sample_concatenate_permutation", "test05",
                      "test05_qsl_rng_seed", "test05_sample_index_rng_seed",
                      "test05_schedule_rng_seed", "use_token_latencies", "ttft_latency",
                      "tpot_latency", "infer_token_latencies", "token_latency_scaling_factor")
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
    if name in NOT_FROM_USER_CONF:
        hint = "--mode sets it" if name == "mode" else "LoadGen skips it in a user.conf"
        raise InputError(f"{where}: {name}: {hint}; allowed: {', '.join(sorted(KEYS))}")
    if name not in KEYS:
        raise InputError(f"{where}: unknown key {name!r}; allowed: {', '.join(sorted(KEYS))}")
    if scenario != "*" and scenario not in KEYS[name]:
        raise InputError(f"{where}: {name} does not apply to {scenario} (LoadGen reads it for "
                         f"{', '.join(KEYS[name])})")
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
    return s.model_copy(update=changes)


def from_config(ts, path: str | Path, model: str, conf_scenario: str) -> None:
    """LoadGen's ts.FromConfig(user.conf), then every TestSettings attribute the file does not
    set put back as it was (see the module's docstring: the built-in mlperf.conf)."""
    entries = read_user_conf(path)
    names = [a for a in dir(ts) if not a.startswith("_") and not callable(getattr(ts, a))]
    before = {a: getattr(ts, a) for a in names}
    if ts.FromConfig(str(path), model, conf_scenario) != 0:
        raise InputError(f"--user-conf {path}: LoadGen could not apply it")
    ours = {KEYS[k][conf_scenario] for k in KEYS if conf_scenario in KEYS[k]
            and lookup(entries, model, conf_scenario, k) is not None}
    for a in names:
        if a not in ours:
            setattr(ts, a, before[a])
