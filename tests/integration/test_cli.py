"""`roi bench` on the command line: bad input is one line, exit 2, nothing written.

Bad input goes through `app.cli.main` in-process (the function the `roi` script calls: same
exit code and stderr, without a Python start-up per case); the real run is a subprocess."""

import json
import subprocess
import sys

import pytest

from app.cli import main

from ..conftest import TINY, TINY_B


def roi(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("args,needle", [
    (["--teacher", "nope"], "unknown model spec"),
    (["--students", "hf:/no/such/dir"], "does not exist"),
    (["--teacher", "onnx:{junk}"], "not an ONNX model"),
    (["--backends", "torch-eager,tensorrt"], "unknown backend tensorrt"),
    (["--batch-sizes", "0"], "positive integers"),
    (["--batch-sizes", "1,-8"], "positive integers"),
    (["--batch-sizes", "one"], "comma-separated integers"),
    (["--device", "tpu"], "cpu, cuda or auto"),
    (["--memory-budget-mb", "-1"], "memory-budget-mb"),
    (["--no-such-flag"], "No such option"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, needle):
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    out = tmp_path / "out"
    args = [a.format(junk=junk) for a in args]
    code = main(["bench", *args, "--out", str(out)])  # an exception escaping fails the test
    stdout, stderr = capsys.readouterr()
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("error:"), stderr
    assert "Traceback" not in stderr + stdout
    assert not out.exists()


def test_device_cuda_without_gpu_is_refused(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: --device cuda is valid here")
    code = main(["bench", "--device", "cuda", "--out", str(tmp_path / "o")])
    assert code == 2 and "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_bench_runs_and_prints_a_summary(tmp_path):
    out = tmp_path / "run"
    proc = roi("bench", "--teacher", TINY, "--students", TINY_B, "--backends", "ort-fp32",
               "--seq-lens", "16", "--threads", "1", "--quick", "--device", "cpu",
               "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "bench results" in proc.stdout and "speedup vs teacher" in proc.stdout
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    from matplotlib.image import imread

    for name in ("latency", "speedup"):  # p50/p99 per model and backend; speedup with its CI
        assert imread(out / "figures" / f"{name}.png").shape[2] in (3, 4)
    assert f"figures: {out / 'figures' / 'latency.png'}" in proc.stdout
    again = roi("bench", "--teacher", TINY, "--students", TINY_B, "--out", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr
