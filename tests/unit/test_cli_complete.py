"""Shell completion (`roi --install-completion`): each option with a fixed set of values
completes from the list the option is checked against, and `roi --help` imports none of
those lists."""

import subprocess
import sys

import pytest

from app import cli_complete as complete
from app.cli import main
from bench.loadgen import SCENARIOS, TEST_MODES
from bench.measure import VARIANTS
from contracts.defaults import SCENARIO_PRESETS


def test_backends_complete_the_last_item_of_the_list():
    assert set(complete.backends("")) == {*VARIANTS, "deploy"}
    assert complete.backends("ort-int8-s") == ["ort-int8-static", "ort-int8-static-all"]
    got = complete.backends("torch-eager,ort-fp32,ort-")
    assert got and all(g.startswith("torch-eager,ort-fp32,ort-") for g in got)
    assert "torch-eager,ort-fp32,ort-fp32" not in got  # no variant twice
    assert complete.backends("tensorrt") == []
    assert complete.variant("torch") == ["torch-eager", "torch-eager-bf16"]


def test_scenario_completes_presets_and_yaml_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("name: mine\n")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "other.yml").write_text("name: other\n")
    (tmp_path / "more" / "notes.txt").write_text("not a scenario\n")
    assert complete.scenario("") == [*SCENARIO_PRESETS, "mine.yaml", "more/"]
    assert complete.scenario("real") == ["real-time-api"]
    assert complete.scenario("m") == ["mobile-on-device", "multi-model", "mine.yaml", "more/"]
    assert complete.scenario("more/") == ["more/other.yml"]
    assert complete.scenario("nowhere/x") == []


def test_loadtest_scenario_as_mlperf_spells_it_and_mode():
    assert complete.loadgen_scenario("") == list(SCENARIOS.values())
    assert complete.loadgen_scenario("s") == ["SingleStream", "Server"]  # any case typed
    assert complete.mode("") == list(TEST_MODES) and complete.mode("acc") == ["accuracy"]


@pytest.mark.parametrize("line, expected", [
    ("roi bench --backends torch-eager,ort-int8-s", ["torch-eager,ort-int8-static",
                                                    "torch-eager,ort-int8-static-all"]),
    ("roi plan --scenario cloud", ["cloud-batch"]),
    ("roi loadtest --mode p", ["performance"]),
])
def test_the_shell_protocol_reaches_the_functions(monkeypatch, capsys, line, expected):
    """What bash's completion script asks the `roi` command (typer's protocol)."""
    words = line.split(" ")
    monkeypatch.setenv("_ROI_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", line)
    monkeypatch.setenv("COMP_CWORD", str(len(words) - 1))
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 0
    assert capsys.readouterr().out.split() == expected


def test_help_imports_no_list_of_values():
    code = ("import sys\nfrom app.cli import main\nassert main(['--help']) == 0\n"
            "print(sorted(m for m in ('bench.measure', 'bench.loadgen', 'pandas') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--install-completion" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_completing_backends_imports_no_measurement_code():
    """Completion runs on every Tab: --backends completes from contracts.defaults, without
    importing bench.measure (numpy, ONNX Runtime's loaders) or pandas."""
    code = ("import os, sys\nfrom app.cli import main\n"
            "os.environ.update(_ROI_COMPLETE='complete_bash', COMP_WORDS='roi bench --backends "
            "ort-int8-s', COMP_CWORD='3')\n"
            "try:\n    main([])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('bench.measure', 'numpy', 'pandas') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["ort-int8-static", "ort-int8-static-all"]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
