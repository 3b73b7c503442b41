"""The README's example of `roi run`'s last line is what the command prints: docs/example-run/
summary.json is the summary.json a default `roi run` wrote (scripts/readme_example.sh makes
both), and app.run.summary_line must turn it into the README's line, word for word."""

import json
import re
from pathlib import Path

from app.run import summary_line

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_example_line_is_the_summary_line_of_a_real_run():
    summary = json.loads((ROOT / "docs" / "example-run" / "summary.json").read_text())
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"On the default \(`roi run`[^\n]*\n\n```\n(.*?)\n```", readme, re.S)
    assert block, "README: the example block after 'On the default (`roi run`' is missing"
    assert block.group(1) == summary_line(summary)
