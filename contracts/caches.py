"""The caches the project keeps on disk, under one root: where it is, what each holds, which
entries are in use, and pruning the least recently used (`roi cache list|prune`).

The root is `$ROI_CACHE_DIR`, else `$XDG_CACHE_HOME/roi`, else `~/.cache/roi` (`cache_root`, the
one place that decides it). Below it, one directory per cache (`CACHES`), one directory per entry:

- `onnx/<key>/`: a model's ONNX export, int8 file, variants and gate windows (bench/export.py);
- `teacher-logits/<key>/`: one recipe's top-k teacher logits, by rank (distill/teacher_cache.py);
- `tokens/<key>/`: a JSONL file's token arrays, memory-mapped by the trainer (models/corpus.py);
- `encoders/<key>/`: a sentence-embedding teacher built offline (distill/build_encoder.py).

A process using an entry holds a shared lock on its `USE_LOCK` file for as long as it runs (the
kernel's flock: it dies with its process), and touches its `LAST_USED` file; writers hold an
exclusive lock on a `WRITE_LOCK` file in the directory they write. Pruning takes every one of an
entry's locks without waiting before it deletes the entry, and keeps an entry whose lock another
process holds. Standard library only: the planner-only install lists and prunes too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

CACHES = {"onnx": "ONNX exports and int8/variant files, one entry per model: roi bench",
          "teacher-logits": "top-k teacher logits, one entry per distillation recipe: "
                            "roi distill, roi pilot",
          "tokens": "JSONL training data tokenized into memory-mapped arrays, one entry per "
                    "file and tokenizer: roi distill --data",
          "encoders": "sentence-embedding teachers built offline, one entry per recipe: "
                      "python -m distill.build_encoder"}
USE_LOCK = ".in-use.lock"  # shared while a process uses the entry
WRITE_LOCK = ".write.lock"  # exclusive while a process writes files of the entry
LAST_USED = ".last-used"  # its mtime: the entry's last use
_HELD: dict[Path, IO] = {}  # entries this process uses: their USE_LOCK handles, kept open


def cache_root() -> Path:
    """$ROI_CACHE_DIR, else $XDG_CACHE_HOME/roi, else ~/.cache/roi (the XDG base directory
    specification: a relative XDG_CACHE_HOME is invalid and ignored)."""
    if os.environ.get("ROI_CACHE_DIR"):
        return Path(os.environ["ROI_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "roi"


def _lock_file(path: Path, mode: int) -> IO:
    """`path` opened and flock'ed with `mode`; retried when the file was deleted (an entry
    pruned) between opening and locking, so the lock held is the one a pruner would see."""
    import fcntl

    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")
        try:
            fcntl.flock(f, mode)
            if os.path.exists(path) and os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                return f
        except BaseException:
            f.close()
            raise
        f.close()


def use(entry: str | Path) -> Path:
    """Mark `entry` as used by this process until it exits (a shared lock pruning respects)
    and record the use (its LAST_USED time). Idempotent within a process."""
    import fcntl

    entry = Path(entry)
    if entry not in _HELD:
        _HELD[entry] = _lock_file(entry / USE_LOCK, fcntl.LOCK_SH)
    (entry / LAST_USED).touch()
    return entry


@contextlib.contextmanager
def write_lock(directory: str | Path) -> Iterator[Path]:
    """Exclusive lock on `directory`'s WRITE_LOCK for the block: another writer waits."""
    import fcntl

    f = _lock_file(Path(directory) / WRITE_LOCK, fcntl.LOCK_EX)
    try:
        yield Path(directory)
    finally:
        f.close()


@dataclass(frozen=True)
class Entry:
    cache: str
    path: Path
    size_bytes: int
    last_used: float  # epoch seconds


def _entry(cache: str, path: Path) -> Entry:
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    marker = path / LAST_USED
    times = [marker.stat().st_mtime] if marker.is_file() else \
        [p.stat().st_mtime for p in files] or [path.stat().st_mtime]
    return Entry(cache, path, size, max(times))


def entries(root: str | Path | None = None) -> list[Entry]:
    """Every entry of every cache under `root` (default: cache_root()), least recently used
    first."""
    root = cache_root() if root is None else Path(root)
    found = []
    for cache in CACHES:
        base = root / cache
        if base.is_dir():
            found += [_entry(cache, p) for p in sorted(base.iterdir()) if p.is_dir()]
    return sorted(found, key=lambda e: e.last_used)


@contextlib.contextmanager
def _all_locks(entry: Path) -> Iterator[bool]:
    """Every lock of `entry` taken without waiting: True inside when all were free (nobody
    uses or writes it), False when another process holds one."""
    import fcntl

    held = []
    try:
        for path in [entry / USE_LOCK, *sorted(entry.rglob(WRITE_LOCK))]:
            f = open(path, "a+")
            held.append(f)
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
        yield True
    finally:
        for f in held:
            f.close()


def _delete_unless_in_use(path: Path) -> bool:
    """Delete entry `path` unless another process holds one of its locks; whether it is gone."""
    try:
        with _all_locks(path) as free:
            if free:
                shutil.rmtree(path)
            return free
    except FileNotFoundError:  # another pruner was first
        return True


@dataclass(frozen=True)
class PruneResult:
    removed: list[Entry]
    kept_in_use: list[Entry]  # chosen, but another process holds one of its locks
    remaining_bytes: int


def choose(found: list[Entry], max_bytes: int | None, older_than_s: float | None,
           now: float) -> list[Entry]:
    """Entries to delete, least recently used first: every one unused for longer than
    `older_than_s`, then more until the rest fit in `max_bytes`."""
    chosen = [e for e in found if older_than_s is not None and now - e.last_used > older_than_s]
    left = sum(e.size_bytes for e in found) - sum(e.size_bytes for e in chosen)
    for e in found:
        if max_bytes is None or left <= max_bytes:
            break
        if e not in chosen:
            chosen.append(e)
            left -= e.size_bytes
    return chosen


def prune(max_bytes: int | None = None, older_than_s: float | None = None,
          dry_run: bool = False, root: str | Path | None = None) -> PruneResult:
    """Delete the entries `choose` picks, except those in use by another process; with
    `dry_run`, delete nothing and say what would go."""
    found = entries(root)
    removed, busy = [], []
    for e in choose(found, max_bytes, older_than_s, time.time()):
        free = dry_run or _delete_unless_in_use(e.path)
        (removed if free else busy).append(e)
    left = sum(e.size_bytes for e in found) - sum(e.size_bytes for e in removed)
    return PruneResult(removed, busy, left)


# ------------------------------------------------------------------------------ what the CLI shows


def limit(value: float | None, option: str) -> float | None:
    """A prune limit as given: None, or a finite number >= 0 (InputError otherwise)."""
    import math

    from .errors import InputError

    if value is not None and not (math.isfinite(value) and value >= 0):
        raise InputError(f"{option}: must be a finite number >= 0; got {value!r}")
    return value


def size_text(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def _entries_text(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def when_text(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch_s))


def listing(root: str | Path | None = None, each: bool = False) -> list[str]:
    """Lines of `roi cache list`: per cache its path, entries, size and last use (`each`: then
    every entry, least recently used first)."""
    root = cache_root() if root is None else Path(root)
    found = entries(root)
    lines = [f"cache root: {root}"]
    for cache, what in CACHES.items():
        mine = [e for e in found if e.cache == cache]
        used = f", last used {when_text(mine[-1].last_used)}" if mine else ""
        lines.append(f"{cache}: {root / cache}: {_entries_text(len(mine))}, "
                     f"{size_text(sum(e.size_bytes for e in mine))}{used} ({what})")
        lines += [f"  {e.path.name}  {size_text(e.size_bytes)}  last used "
                  f"{when_text(e.last_used)}" for e in mine if each]
    return lines


def prune_lines(result: PruneResult, dry_run: bool) -> list[str]:
    verb = "would remove" if dry_run else "removed"
    lines = [f"{verb} {e.cache}/{e.path.name} ({size_text(e.size_bytes)}, last used "
             f"{when_text(e.last_used)})" for e in result.removed]
    lines += [f"kept {e.cache}/{e.path.name}: in use by another process"
              for e in result.kept_in_use]
    freed = sum(e.size_bytes for e in result.removed)
    lines.append(f"{verb} {_entries_text(len(result.removed))} ({size_text(freed)}); "
                 f"{size_text(result.remaining_bytes)} left")
    return lines
