#!/usr/bin/env bash
# Regenerate the README's example of `roi run`'s last line from a real default run:
# docs/example-run/summary.json (the run's summary, report path made relative) and the line
# itself (tests/unit/test_readme_example.py checks that they agree).
set -euo pipefail
cd "$(dirname "$0")/.."
out="runs/readme-example"
rm -rf "$out"
.venv/bin/roi run --out "$out"
mkdir -p docs/example-run
.venv/bin/python - "$out" <<'PY'
import json, re, sys
from pathlib import Path
from app.run import summary_line
run = Path(sys.argv[1])
s = json.loads((run / "summary.json").read_text())
s["report"] = "runs/readme-example/report/report.html"
Path("docs/example-run/summary.json").write_text(json.dumps(s, indent=1) + "\n")
readme = Path("README.md").read_text()
pattern = r"(On the default \(`roi run`[^\n]*\n\n```\n)(.*?)(\n```)"
line = summary_line(s)
Path("README.md").write_text(re.sub(pattern, lambda m: m.group(1) + line + m.group(3),
                                    readme, count=1, flags=re.S))
print(line)
PY
