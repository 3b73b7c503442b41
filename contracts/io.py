"""Atomic file writes (temp file in the same directory + os.replace), shared by every package."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_permissions(directory: str | Path) -> None:
    """Give every file under `directory` the mode a plain open() would (0666 less the umask):
    writers that go through mkstemp (transformers' save_pretrained) leave 0600."""
    mode = 0o666 & ~_umask()
    for path in Path(directory).rglob("*"):
        if path.is_file():
            os.chmod(path, mode)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; when the block succeeds it replaces `path`.

    Readers see the old file or the whole new one, never a half; a failure leaves no temp file.
    The file gets the usual permissions (mkstemp's 0600 would hide results from other users)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_json_atomic(path: str | Path, data: object) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def check_out_dir(path: str | Path, option: str = "--out") -> Path:
    """`path` if it is a directory or can be made one; InputError (before anything is written)
    when it or a folder above it is a file, or the place it would be made in is not writable."""
    from .errors import InputError

    path = Path(path)
    for place in (path, *path.parents):
        if not place.exists():
            continue
        if place == path and not place.is_dir():
            raise InputError(f"{option}: must be a directory; got the file {path}")
        if not place.is_dir():
            raise InputError(f"{option} {path}: {place} is a file, so no directory can be made "
                             "under it; choose another --out")
        if place != path and not os.access(place, os.W_OK | os.X_OK):
            raise InputError(f"{option} {path}: cannot create it, {place} is not writable")
        try:  # the kernel's word, not the mode bits' (root, /proc, read-only mounts)
            os.rmdir(tempfile.mkdtemp(dir=place, prefix=".roi-probe-"))
        except OSError as e:
            raise InputError(f"{option} {path}: cannot write in {place}: "
                             f"{e.strerror or e}") from None
        break
    return path


LOCK_FILE = ".roi.lock"  # inside an output directory: who writes it now (its PID)
_HELD: set[Path] = set()  # directories this process holds a dir_lock on


@contextlib.contextmanager
def dir_lock(path: str | Path, what: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on output directory `path` (made if missing) for the block; a
    second writer is refused at once, in one line naming the holder's PID. The lock is the
    kernel's (flock): it dies with its process, so a killed run leaves nothing to clean up.
    Reentrant within a process (a load-test search holds it over each of its runs)."""
    import fcntl

    from .errors import InputError

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    held = path.resolve()
    if held in _HELD:
        yield path
        return
    f = open(path / LOCK_FILE, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise InputError(_in_use(path, f.read(), what)) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        _HELD.add(held)
        yield path
    finally:
        _HELD.discard(held)
        f.close()  # releases the lock


def _in_use(path: Path, holder: str, what: str) -> str:
    return (f"{what} {path} is in use by another process (PID {holder.strip() or 'unknown'}): "
            "wait for it to finish, or choose another --out")


def check_unlocked(path: str | Path, what: str = "--out") -> None:
    """Refuse `path`, in dir_lock's one line naming the holder's PID, while another process
    holds its lock; writes nothing (a command checks this before refusing a directory for its
    content, so that a second writer learns who holds it rather than that it is not empty)."""
    import fcntl

    from .errors import InputError

    try:
        f = open(Path(path) / LOCK_FILE, encoding="utf-8")
    except OSError:  # no lock file (or no directory): nobody holds it
        return
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(_in_use(Path(path), f.read(), what)) from None


def has_content(path: str | Path) -> bool:
    """Whether directory `path` holds anything besides its lock file."""
    path = Path(path)
    return path.is_dir() and any(p.name != LOCK_FILE for p in path.iterdir())


# options whose values name files or directories (model specs after their kind: prefix)
PATH_OPTIONS = ("--out", "--plan", "--config", "--scenario", "--hardware", "--results", "--pilot",
                "--metrics", "--datagen-prices", "--prompts", "--teacher", "--students", "--model",
                "--data")
NAME_MAX = 255  # bytes in one path component (Linux and macOS file systems)


def check_path_args(args: list[str]) -> None:
    """Command-line arguments `args`: refuse, up front, a path no file system can hold: a NUL
    byte in it, or a component longer than NAME_MAX (the OS would raise ValueError or
    ENAMETOOLONG from deep inside whichever command first touched it)."""
    from .errors import InputError

    values = [(a, args[i + 1]) for i, a in enumerate(args[:-1]) if a in PATH_OPTIONS]
    values += [tuple(a.split("=", 1)) for a in args if "=" in a and a.split("=", 1)[0]
               in PATH_OPTIONS]
    if args[:1] == ["report"]:
        values += [("DIR", a) for a in args[1:2]]
    for option, value in values:
        if "\x00" in value:
            raise InputError(f"{option}: {value!r} holds a NUL byte, which no path can hold")
        for piece in value.replace("=", ",").split(","):
            kind, sep, rest = piece.partition(":")
            path = rest if sep and kind.isalpha() else piece
            long = [c for c in path.split("/") if len(c.encode()) > NAME_MAX]
            if long:
                raise InputError(f"{option}: a path component of {len(long[0].encode())} bytes "
                                 f"({long[0][:24]}...) is longer than file systems allow "
                                 f"({NAME_MAX}); choose a shorter name")
