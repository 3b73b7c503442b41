"""Shared parts of the fuzz suite (tests/unit/test_fuzz_*.py, issue 18).

Every case calls app.cli.main(argv) in-process and asserts the CLI's promise for bad input:
exit 2 (or 0 where the input happens to be valid), no traceback (no exception escapes main),
at most 3 lines of error output, and nothing written into --out on error. The work behind a
valid input (training, benchmarking, load-testing, a whole `roi run`) is replaced by `Accepted`:
the fuzzer checks the input layer, not the work.

The hypothesis profile is fixed (derandomize, no deadline, max_examples per test) so CI runs the
same cases every time; CASES counts the examples run, reported at the end of the session.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from app.cli import main

CASES = {"n": 0}  # examples run this session (printed by tests/unit/conftest.py)


def fuzz_settings(n: int) -> settings:
    """The fixed profile: same cases every run, `n` of them (times ROI_FUZZ_SCALE, for a
    deeper run by hand: ROI_FUZZ_SCALE=10), no per-example deadline."""
    n *= max(1, int(os.environ.get("ROI_FUZZ_SCALE", "1") or 1))
    return settings(max_examples=n, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow,
                                           HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


class Accepted(Exception):
    """Raised in place of the work a valid input starts: validation let it through."""


def _accept(*args, **kwargs):
    raise Accepted


WORK = ("bench.sweep.run_plan", "bench.loadgen.run_one", "bench.loadgen.find_peak",
        "distill.pipeline._distill", "distill.generate._generate", "distill.generate.LocalTeacher",
        "distill.pilot.pilot", "app.run.execute")


@pytest.fixture(scope="module")
def no_work():
    """Replace the work behind each subcommand by Accepted for the whole module."""
    import importlib

    with pytest.MonkeyPatch.context() as mp:
        for target in WORK:
            module, name = target.rsplit(".", 1)
            mp.setattr(importlib.import_module(module), name, _accept)
        yield


def snapshot(path: Path) -> object:
    """What is at `path` now (kind and bytes / names), to tell whether a run wrote there."""
    if str(path).startswith(("/proc/", "/dev/")):
        return "system"  # their content changes by itself; nothing of ours can land there
    try:
        if path.is_symlink() or not path.exists():
            return None
    except (OSError, ValueError):  # a name too long to exist, a NUL byte
        return None
    if path.is_dir():
        return sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    if path.is_file():
        try:
            return path.read_bytes()
        except OSError:
            return "unreadable"
    return "special"


def run_cli(capsys, argv: list[str], out: Path | str | None = None) -> tuple[int, str]:
    """main(argv); asserts the promise for bad input and returns (exit code, stderr).

    `out`: the --out of this call; on exit 2 it must be as it was before (nothing written)."""
    CASES["n"] += 1
    capsys.readouterr()
    before = snapshot(Path(out)) if out is not None else None
    try:
        code = main([str(a) for a in argv])
    except Accepted:
        capsys.readouterr()
        return 0, ""
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err + captured.out, (argv, err)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        lines = [x for x in err.strip().splitlines() if x.strip()]
        assert 1 <= len(lines) <= 3, (argv, err)
        assert lines[0].startswith("error: "), (argv, err)
        if out is not None:
            assert snapshot(Path(out)) == before, (argv, "wrote into --out on error", err)
    return code, err


def expect_error(capsys, argv: list[str], needle: str = "", out: Path | str | None = None
                 ) -> str:
    """run_cli that must end in exit 2 whose message holds `needle`."""
    code, err = run_cli(capsys, argv, out)
    assert code == 2, (argv, err)
    assert needle in err, (argv, needle, err)
    return err


# ----------------------------------------------------------------------------- strategies

HOSTILE_NUMBERS = ["nan", "NaN", "inf", "-inf", "+inf", "-1", "0", "-0", "0.0", "1e300",
                   "-1e300", "1e-300", "1e309", "99999999999999999999999", "abc", "", " ",
                   "1,5", "0x10", "1_000", "½", "١", "1e", "--", "3"]


def numbers() -> st.SearchStrategy[str]:
    """A number as a command line would carry it: hostile spellings, floats, integers."""
    return st.one_of(
        st.sampled_from(HOSTILE_NUMBERS),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-(10 ** 20), 10 ** 20).map(str),
        st.integers(-3, 300).map(str),
    )


BINARY = bytes(range(256)) * 4  # not UTF-8 from its 129th byte on
HOSTILE_TEXT = ["<img onerror=x>", "<script>alert(1)</script>", "{{7*7}}", "$(rm -rf /)",
                "a" * 300, "", " ", "\x00", "\u202e", "../../etc/passwd", "name: x",
                "- [", "*alias", "!!python/object:os.system", "%s%n", "é" * 50]
PATH_KINDS = ("missing", "directory", "file-under-file", "dev-null", "proc-missing",
              "proc-file", "binary", "empty", "long-name", "text", "hostile-name",
              "fifo-like-dir-dot", "nul-byte")


def make_path(tmp: Path, kind: str) -> Path:
    """A path of the given hostile kind, made under `tmp` where it needs making."""
    if kind == "missing":
        return tmp / "no" / "such-file.yaml"
    if kind == "directory":
        (tmp / "a-dir").mkdir(exist_ok=True)
        return tmp / "a-dir"
    if kind == "file-under-file":
        (tmp / "plain").write_text("x")
        return tmp / "plain" / "inside.yaml"
    if kind == "dev-null":
        return Path("/dev/null")
    if kind == "proc-missing":
        return Path("/proc/x")
    if kind == "proc-file":
        return Path("/proc/self/status")
    if kind == "binary":
        (tmp / "binary.yaml").write_bytes(BINARY)
        return tmp / "binary.yaml"
    if kind == "empty":
        (tmp / "empty.yaml").write_bytes(b"")
        return tmp / "empty.yaml"
    if kind == "long-name":
        return tmp / ("n" * 300 + ".yaml")
    if kind == "nul-byte":
        return tmp / "nul\x00byte.yaml"
    if kind == "text":
        (tmp / "prose.yaml").write_text("just some words\n")
        return tmp / "prose.yaml"
    if kind == "hostile-name":
        p = tmp / "<img onerror=x>.yaml"
        p.write_text("[1, 2]\n")
        return p
    return tmp / "."


def out_path(tmp: Path, kind: str) -> Path:
    """An --out of the given hostile kind (a fresh directory name for 'missing')."""
    if kind == "missing":
        return tmp / "out"
    if kind == "text":  # a file where a directory is expected
        (tmp / "out-file").write_text("keep me")
        return tmp / "out-file"
    return make_path(tmp, kind)


def hostile_value() -> st.SearchStrategy:
    """A YAML value of a wrong type, range or content."""
    return st.one_of(
        st.sampled_from([None, True, False, 0, -1, 1e300, -1e300, float("nan"), float("inf"),
                         [], {}, [1, 2], {"a": 1}, "2025-11-30", 10 ** 30])
        | st.sampled_from(HOSTILE_TEXT),
        st.integers(-(10 ** 6), 10 ** 6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(string.printable, max_size=20),
    )


def _paths(data, prefix=()) -> list[tuple]:
    """Every path (tuple of keys / indexes) into nested dicts and lists."""
    found = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += _paths(v, (*prefix, i))
    return found


@st.composite
def mutated_data(draw, data, n_max: int = 3):
    """`data` (nested dicts/lists) with 1..n_max random mutations: a value replaced by a hostile
    one, a key deleted, an unknown key added, a list emptied."""
    import copy

    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, n_max))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "wrap"]))
        key = path[-1]
        if op == "replace":
            parent[key] = draw(hostile_value())
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "<img onerror=x>", "note", "1"]))] = \
                draw(hostile_value())
        elif op == "wrap":
            parent[key] = [parent[key]]
    return data


@st.composite
def mutated_text(draw, text: str):
    """YAML/CSV text damaged as files get damaged: truncated, a line doubled (duplicate keys),
    a line dropped, bytes replaced, binary spliced in."""
    raw = text.encode()
    op = draw(st.sampled_from(["truncate", "double-line", "drop-line", "flip", "binary",
                               "hostile-line"]))
    lines = raw.splitlines(keepends=True)
    if op == "truncate":
        return raw[: draw(st.integers(0, len(raw)))]
    i = draw(st.integers(0, max(len(lines) - 1, 0)))
    if op == "double-line":
        return b"".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])
    if op == "drop-line":
        return b"".join(lines[:i] + lines[i + 1:])
    if op == "flip":
        j = draw(st.integers(0, max(len(raw) - 1, 0)))
        return raw[:j] + bytes([draw(st.sampled_from(b":-[]{}#&*!|>'\"%@`,\t\n"))]) + raw[j + 1:]
    if op == "binary":
        j = draw(st.integers(0, len(raw)))
        return raw[:j] + BINARY[128:160] + raw[j:]
    indent = len(lines[i]) - len(lines[i].lstrip()) if lines else 0
    extra = b" " * indent + draw(st.sampled_from(HOSTILE_TEXT)).encode() + b": 1\n"
    return b"".join(lines[: i + 1] + [extra] + lines[i + 1:])


def dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


REPO = Path(__file__).resolve().parents[2]
FIXTURE_RESULTS = REPO / "tests" / "fixtures" / "bench_results.csv"
