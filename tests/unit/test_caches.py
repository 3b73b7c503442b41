"""roi cache list|prune: one cache root (ROI_CACHE_DIR, XDG_CACHE_HOME, ~/.cache), entries
listed with size and last use, pruned least recently used first, never one another process
holds. Standard library only (a planner test)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from contracts import caches
from app.cli import main

DAY = 86400.0


def _entry(root: Path, cache: str, name: str, size: int, age_days: float) -> Path:
    path = root / cache / name
    (path / "rank0").mkdir(parents=True)
    (path / "rank0" / "data.bin").write_bytes(b"x" * size)
    stamp = time.time() - age_days * DAY
    (path / caches.LAST_USED).touch()
    os.utime(path / caches.LAST_USED, (stamp, stamp))
    return path


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("ROI_CACHE_DIR", str(tmp_path / "roi"))
    return tmp_path / "roi"


def test_the_root_honours_roi_cache_dir_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("ROI_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert caches.cache_root() == tmp_path / "mine"
    monkeypatch.delenv("ROI_CACHE_DIR")
    assert caches.cache_root() == tmp_path / "xdg" / "roi"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # invalid by the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert caches.cache_root() == tmp_path / "home" / ".cache" / "roi"


def test_entries_have_their_size_and_come_least_recently_used_first(root):
    _entry(root, "onnx", "new", 100, 1)
    _entry(root, "teacher-logits", "old", 300, 10)
    found = caches.entries()
    assert [(e.cache, e.path.name, e.size_bytes) for e in found] == [
        ("teacher-logits", "old", 300), ("onnx", "new", 100)]
    assert time.time() - found[0].last_used == pytest.approx(10 * DAY, abs=60)


def test_choose_takes_old_entries_then_lru_until_the_rest_fits():
    now = 1e9
    e = [caches.Entry("onnx", Path(n), size, now - age * DAY)
         for n, size, age in (("a", 500, 40), ("b", 300, 20), ("c", 200, 5), ("d", 100, 1))]
    assert caches.choose(e, None, 30 * DAY, now) == e[:1]
    assert caches.choose(e, 350, None, now) == e[:2]  # 1100 -> 600 -> 300
    assert caches.choose(e, 350, 10 * DAY, now) == e[:2]
    assert caches.choose(e, 0, None, now) == e
    assert caches.choose(e, 5000, None, now) == []


def test_prune_dry_run_deletes_nothing_and_prune_deletes(root):
    old = _entry(root, "onnx", "old", 1000, 40)
    new = _entry(root, "onnx", "new", 1000, 1)
    dry = caches.prune(older_than_s=30 * DAY, dry_run=True)
    assert [e.path for e in dry.removed] == [old] and old.is_dir()
    done = caches.prune(older_than_s=30 * DAY)
    assert [e.path for e in done.removed] == [old] and not old.exists() and new.is_dir()
    assert done.remaining_bytes == 1000


HOLDER = textwrap.dedent("""
    import sys, time
    from contracts import caches
    if sys.argv[2] == "use":
        caches.use(sys.argv[1])
        print("held", flush=True)
        time.sleep(60)
    with caches.write_lock(sys.argv[1] + "/rank0"):
        print("held", flush=True)
        time.sleep(60)
""")


@pytest.mark.parametrize("how", ["use", "write"])
def test_prune_keeps_an_entry_another_process_holds(root, how):
    busy = _entry(root, "teacher-logits", "busy", 1000, 50)
    idle = _entry(root, "teacher-logits", "idle", 1000, 40)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(busy), how],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = caches.prune(max_bytes=0)
    finally:
        holder.kill()
        holder.wait()
    assert [e.path for e in result.kept_in_use] == [busy] and busy.is_dir()
    assert [e.path for e in result.removed] == [idle] and not idle.exists()
    assert caches.prune(max_bytes=0).removed[0].path == busy  # its holder is gone
    assert not busy.exists()


def test_use_after_a_prune_holds_a_fresh_lock(root):
    path = _entry(root, "onnx", "x", 10, 1)
    caches.prune(max_bytes=0)
    assert not path.exists()
    assert caches.use(path) == path and (path / caches.LAST_USED).is_file()
    (path / "model.onnx").write_bytes(b"x")
    # the lock held is on the new lock file, the one the next pruner takes
    assert [e.path for e in caches.prune(max_bytes=0).kept_in_use] == [path]


def test_cache_list_shows_each_cache(root, capsys):
    _entry(root, "onnx", "abc", 2_500_000, 1)
    assert main(["cache", "list", "--entries"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"cache root: {root}"
    assert out[1].startswith(f"onnx: {root / 'onnx'}: 1 entry, 2.5 MB, last used ")
    assert out[2].startswith("  abc  2.5 MB  last used ")
    assert out[3].startswith(f"teacher-logits: {root / 'teacher-logits'}: 0 entries, 0 B (")


def test_cache_prune_prints_what_went(root, capsys):
    _entry(root, "onnx", "abc", 2_000_000, 1)
    assert main(["cache", "prune", "--max-gb", "0.001", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("would remove onnx/abc (2.0 MB, last used ")
    assert out[-1] == "would remove 1 entry (2.0 MB); 0 B left"
    assert (root / "onnx" / "abc").is_dir()


@pytest.mark.parametrize("args, message", [
    (["--max-gb", "-1"], "--max-gb: must be a finite number >= 0; got -1.0"),
    (["--older-than-days", "nan"], "--older-than-days: must be a finite number >= 0; got nan"),
    (["--max-gb", "inf"], "--max-gb: must be a finite number >= 0; got inf"),
    ([], "roi cache prune: give --max-gb N and/or --older-than-days D"),
])
def test_cache_prune_refuses_bad_limits_in_one_line(root, capsys, args, message):
    _entry(root, "onnx", "abc", 10, 100)
    assert main(["cache", "prune", *args]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message}\n"
    assert (root / "onnx" / "abc").is_dir()
