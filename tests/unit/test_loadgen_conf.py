"""bench/loadgen_conf.py: an MLPerf user.conf checked before anything runs (what LoadGen would
skip silently is one line naming the file and line), LoadGen's lookup order, and the keys the
harness mirrors into its own settings."""

import pytest

from bench.loadgen import LoadtestSettings
from bench.loadgen_conf import apply_user_conf, lookup, read_user_conf
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
    ("*.*.mode = 1\n", "unknown key 'mode' (--mode sets it)"),
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
