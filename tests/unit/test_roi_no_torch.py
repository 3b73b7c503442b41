import subprocess
import sys


def test_roi_and_cli_import_without_torch_onnxruntime_or_loadgen():
    code = (
        "import sys, roi, app.cli, contracts.errors, contracts.io, app.console, contracts.config, "
        "contracts.curves, contracts.results, roi.hardware, roi.scenarios, roi.cost, roi.sizing, roi.simulation, roi.measurements, "
        "roi.projection, roi.service, roi.memory, roi.fleet, roi.retention, roi.decision, "
        "roi.recommend, roi.payback, roi.planner, roi.loadcheck; roi.plan; "
        "bad = [m for m in ('torch', 'onnxruntime', 'mlperf_loadgen') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
