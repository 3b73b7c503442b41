#!/usr/bin/env bash
# Create .venv and install the project with the exact versions CI uses (constraints.txt).
# torch==2.13.0 installs as a CPU build here; GPU users may pre-install their own torch build
# in .venv first (the package itself only asks for torch>=2.4). The [all] extra is every command;
# `pip install distill-roi` alone is the planner (README, "Installing").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,dev]"

# Headless Chromium renders report.html in tests/integration/test_report_render.py (that test
# skips without it). Debian's `chromium` from apt, where this user may install (root, or
# password-less sudo); ROI_SKIP_CHROMIUM=1 skips this step.
if [ "${ROI_SKIP_CHROMIUM:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1 \
    && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
    if { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            $SUDO apt-get install -y -qq --no-install-recommends chromium; } >/dev/null 2>&1; then
        echo "setup: installed $(chromium --version 2>/dev/null | head -1)"
    else
        echo "setup: could not install chromium with apt; the report render test will skip" >&2
    fi
fi
