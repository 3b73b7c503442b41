import subprocess
import sys


def test_roi_and_cli_import_without_torch_or_onnxruntime():
    code = (
        "import sys, roi, roi.cli, roi.errors, roi.io, roi.console, roi.config, roi.hardware, "
        "roi.scenarios, roi.cost, roi.sizing, roi.simulation, roi.measurements, "
        "roi.projection, roi.service, roi.memory, roi.fleet, roi.retention, roi.decision, "
        "roi.recommend, roi.payback, roi.planner; roi.plan; "
        "bad = [m for m in ('torch', 'onnxruntime') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
