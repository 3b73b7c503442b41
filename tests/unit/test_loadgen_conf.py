"""bench/loadgen_conf.py: an MLPerf user.conf checked before anything runs (what LoadGen would
skip silently is one line naming the file and line), LoadGen's lookup order, and the keys the
harness mirrors into its own settings."""

import subprocess
import sys

import pytest

from bench.loadgen import LoadtestSettings
from bench.loadgen_conf import (KEYS, NOT_FROM_USER_CONF, apply_user_conf, lookup,
                                read_user_conf)
from contracts.errors import InputError


def _conf(tmp_path, text):
    path = tmp_path / "user.conf"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,needle", [
    ("*.Server.target_qsp = 10\n", "line 1: unknown key 'target_qsp'; allowed: "),
    ("# a\n*.Serve.target_qps = 10\n", "line 2: unknown scenario 'Serve'; allowed: *, "),
    ("*.Server.target_qps=10\n", "expected MODEL.SCENARIO.KEY = VALUE (spaces around =)"),
    ("*.Server.target_qps = fast\n", "target_qps: the value must be a number; got 'fast'"),
    ("Server.target_qps = 10\n", "expected MODEL.SCENARIO.KEY"),
    ("*.*.mode = 1\n", "mode: --mode sets it"),
    ("*.*.qsl_rng_seed = 5\n", "qsl_rng_seed: LoadGen skips it in a user.conf"),
    ("*.Offline.target_latency = 5\n", "target_latency does not apply to Offline (LoadGen "
                                        "reads it for SingleStream, MultiStream, Server)"),
])
def test_what_loadgen_would_skip_is_refused_in_one_line(tmp_path, text, needle):
    with pytest.raises(InputError, match="--user-conf .*user.conf") as e:
        read_user_conf(_conf(tmp_path, text))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="cannot read it"):
        read_user_conf(tmp_path / "missing.conf")


def test_lookup_follows_loadgen_order_model_scenario_first(tmp_path):
    entries = read_user_conf(_conf(tmp_path, (
        "*.*.min_duration = 1000  # every model, every scenario\n"
        "m.*.min_duration = 2000\n*.Server.min_duration = 3000\nm.Server.min_duration = 4000\n"
        "*.Offline.target_qps = 0x10\n")))
    assert lookup(entries, "m", "Server", "min_duration") == 4000
    assert lookup(entries, "other", "Server", "min_duration") == 3000
    assert lookup(entries, "m", "Offline", "min_duration") == 2000
    assert lookup(entries, "other", "Offline", "min_duration") == 1000
    assert lookup(entries, "m", "Offline", "target_qps") == 16  # LoadGen's base-0 integers
    assert lookup(entries, "m", "Server", "target_qps") is None


def test_mirrored_keys_apply_to_their_scenario_only(tmp_path):
    entries = read_user_conf(_conf(tmp_path, (
        "*.Server.target_qps = 120\n*.Server.target_latency = 15\n"
        "*.Server.target_latency_percentile = 95\n*.*.min_query_count = 900\n"
        "*.MultiStream.samples_per_query = 4\n")))
    s = LoadtestSettings(model="builtin:teacher", scenario="server", qps=10.0, latency_ms=5.0)
    got = apply_user_conf(s, entries, "Server")
    assert (got.qps, got.latency_ms, got.percentile, got.min_query_count) == (120, 15, 95, 900)
    assert got.samples_per_query == s.samples_per_query  # a MultiStream key
    offline = apply_user_conf(LoadtestSettings(model="m", scenario="offline"), entries,
                              "Offline")
    assert offline.qps is None and offline.min_query_count == 900


def _settings(lg):
    ts = lg.TestSettings()
    return ts, [a for a in dir(ts) if not a.startswith("_") and not callable(getattr(ts, a))]


def test_the_key_table_is_what_the_installed_loadgen_applies(tmp_path):
    """Each key sets exactly its attribute in its scenarios, and the refused ones nothing (after
    one FromConfig has loaded LoadGen's built-in mlperf.conf, which the first call does)."""
    import mlperf_loadgen as lg

    empty = _conf(tmp_path, "")
    lg.TestSettings().FromConfig(str(empty), "m", "Server")
    for name in (*KEYS, *NOT_FROM_USER_CONF):
        for scenario in ("SingleStream", "MultiStream", "Server", "Offline"):
            ts, names = _settings(lg)
            before = {a: getattr(ts, a) for a in names}
            path = _conf(tmp_path, f"*.{scenario}.{name} = 3\n")
            assert ts.FromConfig(str(path), "m", scenario) == 0
            changed = {a for a in names if getattr(ts, a) != before[a]}
            want = {KEYS[name][scenario]} if scenario in KEYS.get(name, {}) else set()
            assert changed == want, (name, scenario)


FIRST_CALL = """
import sys
import mlperf_loadgen as lg
from bench.loadgen_conf import from_config
ts = lg.TestSettings()
ts.min_duration_ms, ts.qsl_rng_seed, ts.server_target_qps = 300, 7, 50.0
from_config(ts, sys.argv[1], "builtin:teacher", "Server")
print(ts.min_duration_ms, ts.qsl_rng_seed, ts.server_target_qps, ts.server_max_async_queries)
"""


def test_the_first_from_config_of_a_process_changes_only_what_the_file_sets(tmp_path):
    """LoadGen's first FromConfig also loads its built-in mlperf.conf (10-minute runs, other
    seeds and rates); from_config keeps the harness's settings where the file says nothing."""
    path = _conf(tmp_path, "builtin:teacher.Server.max_async_queries = 7\n")
    proc = subprocess.run([sys.executable, "-c", FIRST_CALL, str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["300", "7", "50.0", "7"]
