"""report.html in a real browser: headless Chromium loads it offline, logs no console message
(the page's Content-Security-Policy turns any script or external load into one), shows every
section and figure, and its screenshot is not blank. Skips only where no Chromium is installed
(scripts/setup.sh installs Debian's `chromium` where apt is allowed)."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

import reports
import roi
from reports.html import CSP
from roi.planner import write_plan

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EVIL = "<script>alert(1)</script>"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
SECTIONS = ["summary", "decision", "scenarios", "sizing", "measurements", "students", "roi",
            "distill-plan", "achieved", "method"]
# A probe, appended to a copy of the page only, that reports what the browser decoded.
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = 'images=' + imgs.length + ' decoded=' +
    imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.appendChild(pre);
});
</script>"""

pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium installed "
                                "(scripts/setup.sh installs it with apt)")


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", "--enable-logging=stderr", "--v=0",
           f"--user-data-dir={cwd / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """A full run directory (metrics and re-bench included), a model named like a script."""
    run = tmp_path_factory.mktemp("render") / "run"
    df = pd.read_csv(FIXTURES / "bench_results.csv")
    df.loc[df["model"] == "builtin:student-20x", "model"] = EVIL
    (run / "bench").mkdir(parents=True)
    df.to_csv(run / "bench" / "results.csv", index=False)
    write_plan(roi.plan(df, ["real-time-api", "mobile-on-device"]), run / "plan")
    (run / "distill").mkdir()
    shutil.copy(FIXTURES / "distill_metrics.json", run / "distill" / "metrics.json")
    return reports.render_run_dir(run).html


def test_page_renders_offline_without_console_messages(page):
    done = chromium("--dump-dom", page.as_uri(), cwd=page.parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_messages(done.stderr) == []
    dom = done.stdout
    for sid in SECTIONS:
        assert re.search(rf'<section id="{sid}">', dom), sid
    assert dom.count('<img src="data:image/png;base64,') >= 7
    assert "NO-GO" in dom or "GO:" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and EVIL not in dom


def test_every_figure_decodes_in_the_browser(page):
    probe = page.with_name("probe.html")
    text = page.read_text().replace(CSP, CSP.replace("default-src 'none'",
                                                     "default-src 'none'; script-src "
                                                     "'unsafe-inline'"))
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    done = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri(),
                    cwd=page.parent.parent)
    found = re.search(r"images=(\d+) decoded=(\d+)", done.stdout)
    assert found, done.stderr[-2000:]
    assert int(found.group(1)) >= 7 and found.group(1) == found.group(2)


def test_screenshot_is_not_blank(page):
    shot = page.parent.parent / "report-screenshot.png"  # kept under pytest's tmp dir
    done = chromium("--hide-scrollbars", "--window-size=1280,3000", f"--screenshot={shot}",
                    page.as_uri(), cwd=page.parent.parent)
    assert shot.is_file(), done.stderr[-2000:]
    img = mpimg.imread(shot)
    assert img.shape[:2] == (3000, 1280)
    assert float(np.std(img[..., :3])) > 0.05
