"""contracts/config.py's shared readers: duplicate YAML keys refused, binary files and wrong
kinds of path named in one line (issue 18)."""

import pytest

from contracts.config import read_json_object, read_text, read_yaml, safe_load
from contracts.errors import InputError


@pytest.mark.parametrize("text,key,line", [
    ("a: 1\nb: 2\na: 3\n", "'a'", 3),
    ("outer:\n  inner: 1\n  inner: 2\n", "'inner'", 3),
    ("rows:\n  - {name: x, qps: 1, qps: 2}\n", "'qps'", 2),
    ("1: one\n1: uno\n", "1", 2),
])
def test_a_duplicate_key_is_refused_naming_it_and_its_line(tmp_path, text, key, line):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        read_yaml(path, "settings")
    msg = str(e.value)
    assert "\n" not in msg and f"duplicate key {key}" in msg and f"(line {line}," in msg
    assert msg.startswith(f"{path}: not valid YAML")


def test_distinct_keys_anchors_and_merge_keys_still_load():
    doc = safe_load("base: &b {x: 1, y: 2}\nd: {<<: *b, x: 3}\ne: *b\nf: [1, 1]\n")
    assert doc == {"base": {"x": 1, "y": 2}, "d": {"x": 3, "y": 2}, "e": {"x": 1, "y": 2},
                   "f": [1, 1]}


def test_the_loader_stays_safe():
    import yaml

    with pytest.raises(yaml.YAMLError):
        safe_load("x: !!python/object/apply:os.system [echo pwned]\n")


@pytest.mark.parametrize("reader", [read_yaml, read_json_object, read_text])
def test_binary_directories_and_missing_files_are_named(tmp_path, reader):
    binary = tmp_path / "bin"
    binary.write_bytes(bytes(range(256)))
    cases = [(binary, "is not UTF-8 text"), (tmp_path, "is a directory; expected a file"),
             (tmp_path / "none", "does not exist")]
    for path, needle in cases:
        with pytest.raises(InputError, match=needle) as e:
            reader(path, "settings")
        assert str(e.value).startswith(f"settings file {path}") and "\n" not in str(e.value)


def test_every_yaml_reader_goes_through_read_yaml():
    """No package module parses YAML with yaml.safe_load / yaml.load of its own."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    own = []
    for package in ("contracts", "models", "roi", "bench", "distill", "reports", "checks"):
        for path in (root / package).rglob("*.py"):
            if path.name == "config.py" and path.parent.name == "contracts":
                continue
            if re.search(r"yaml\.(safe_)?load\(", path.read_text()):
                own.append(str(path.relative_to(root)))
    assert own == []
