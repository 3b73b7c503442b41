"""Two runs sharing a teacher-logit cache (issue 18): entries are written under a file lock
through unique temporary names, and a reader verifies each entry; a truncated or otherwise
damaged one is named in the log, recomputed and rewritten, never used and never a traceback."""

from __future__ import annotations

import logging
import threading

import pytest
import torch

from distill.losses import topk_teacher
from distill.teacher_cache import LOCK_FILE, CachedTeacher, TeacherCache

CPU = torch.device("cpu")


def _top(seed: int = 0, shape=(2, 5)):
    torch.manual_seed(seed)
    return topk_teacher(torch.randn(*shape, 256) * 4, 8, temperature=2.0)


def _cache(root) -> TeacherCache:
    return TeacherCache(root, "key", 8, 2.0, vocab_size=256)


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "foreign"])
def test_a_damaged_entry_is_named_and_recomputed(tmp_path, caplog, damage):
    cache = _cache(tmp_path)
    cache.put(0, 0, _top())
    path = cache.path(0, 0)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    else:  # a valid safetensors file that is no cache entry
        from safetensors.torch import save_file

        save_file({"logits": torch.zeros(2, 5, 3, dtype=torch.float16)}, str(path))
    fresh = _cache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="distill.teacher_cache"):
        assert fresh.get(0, 0, CPU) is None
    assert fresh.stats()["damaged"] == 1 and fresh.stats()["hits"] == 0
    assert f"teacher-logit cache entry {path} is damaged" in caplog.text
    assert "recomputing it" in caplog.text
    # the caller recomputes and rewrites it; the next read is a whole entry again
    teacher = CachedTeacher(lambda x: torch.randn(*x.shape, 256) * 4, fresh,
                            lambda device: torch.autocast(device, enabled=False))
    out = teacher(torch.zeros(2, 5, dtype=torch.long), 0, 0)
    assert out.logits.shape == (2, 5, 8) and fresh.stats()["misses"] == 1
    assert _cache(tmp_path).get(0, 0, CPU) is not None


def test_an_entry_of_another_batch_shape_is_not_used(tmp_path, caplog):
    cache = _cache(tmp_path)
    cache.put(0, 0, _top(shape=(2, 5)))
    with caplog.at_level(logging.WARNING, logger="distill.teacher_cache"):
        assert cache.get(0, 0, CPU, shape=(4, 5)) is None
    assert "covers (2, 5); the batch is (4, 5)" in caplog.text


def test_two_writers_share_one_cache_without_leftovers_or_torn_entries(tmp_path):
    """Two caches on one directory write the same entries at once (two runs of one recipe):
    every entry is whole afterwards and no temporary file is left."""
    a, b = _cache(tmp_path), _cache(tmp_path)
    start = threading.Barrier(2)
    errors = []

    def write(cache, seed):
        try:
            start.wait(timeout=10)
            for step in range(20):
                cache.put(step, 0, _top(seed))
        except Exception as e:  # noqa: BLE001 (the failure is the assertion)
            errors.append(e)

    threads = [threading.Thread(target=write, args=(c, i)) for i, c in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    names = sorted(p.name for p in a.dir.iterdir())
    assert names == sorted([LOCK_FILE, *(a.path(s, 0).name for s in range(20))])
    reader = _cache(tmp_path)
    assert all(reader.get(s, 0, CPU) is not None for s in range(20))
    assert reader.stats()["damaged"] == 0


def test_writes_take_the_lock(tmp_path):
    """While another process holds the shard's lock, a put waits for it."""
    import fcntl

    cache = _cache(tmp_path)
    cache.dir.mkdir(parents=True)
    done = threading.Event()
    with open(cache.dir / LOCK_FILE, "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        t = threading.Thread(target=lambda: (cache.put(0, 0, _top()), done.set()))
        t.start()
        assert not done.wait(0.5)  # blocked behind the holder
    t.join(10)
    assert done.is_set() and cache.get(0, 0, CPU) is not None


def test_the_default_root_follows_xdg_cache_home(tmp_path, monkeypatch):
    from distill.teacher_cache import default_root

    monkeypatch.delenv("ROI_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "roi" / "teacher-logits"


def test_a_cache_in_use_is_kept_by_prune(tmp_path):
    """A running distillation's TeacherCache holds its key in use: roi cache prune keeps it."""
    from contracts.caches import prune

    cache = TeacherCache(tmp_path / "teacher-logits", "key", 8, 2.0, vocab_size=256)
    cache.put(0, 0, _top())
    result = prune(max_bytes=0, root=tmp_path)
    assert [e.path.name for e in result.kept_in_use] == ["key"] and cache.path(0, 0).is_file()
