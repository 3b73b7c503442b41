"""Every `roi` subcommand's --help shows an example, and each example parses: its options and
arguments are ones the subcommand takes (parsed by click, nothing run)."""

import re
import shlex

import pytest
import typer.main

from app.cli import app

ROOT = typer.main.get_command(app)


def _leaves(group, prefix: tuple = ()):
    """(path, command) of every subcommand, a group's (`roi cache`) included through it."""
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group (typer vendors click: no isinstance)
            yield from _leaves(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def examples(help_text: str) -> list[str]:
    """The commands of a help text's Example/Examples paragraph ("; " or a new `roi` apart)."""
    m = re.search(r"Examples?: (.*?)(?:\n\s*\n|$)", help_text or "", re.S)
    if not m:
        return []
    text = " ".join(m.group(1).replace("\b", " ").split())
    return [c.strip() for c in re.split(r";\s*|\s+(?=roi [a-z])", text) if c.strip()]


def test_examples_are_read_from_both_layouts():
    assert examples("Do it.\n\n\b\nExamples: roi a --x 1\n   --y 2\n  roi b; roi c\n\nMore") == [
        "roi a --x 1 --y 2", "roi b", "roi c"]
    assert examples("No example here.") == []


@pytest.mark.parametrize("path,cmd", list(_leaves(ROOT)), ids=lambda x: " ".join(x)
                         if isinstance(x, tuple) else "")
def test_each_subcommand_shows_an_example_that_parses(path, cmd):
    found = examples(cmd.help)
    assert found, f"roi {' '.join(path)} --help has no example"
    for example in found:
        args = shlex.split(example)
        assert tuple(args[1:1 + len(path)]) == path, example
        cmd.make_context(" ".join(path), args[1 + len(path):])  # raises on an unknown option
