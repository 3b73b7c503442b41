#!/usr/bin/env bash
# Create .venv and install the project with the exact versions CI uses (constraints.txt).
# torch==2.13.0 installs as a CPU build here; GPU users may pre-install their own torch build
# in .venv first (the package itself only asks for torch>=2.4).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
