import re
import subprocess
import sys

import pytest

from app.cli import main
from contracts.errors import InputError
from roi.hardware import FIGURES, load_catalog, shipped_catalog

ISSUE_DEVICES = {
    "h100", "h200", "a100-40gb", "a100-80gb", "a10g", "l4", "l40s", "inf2", "m7g.large",
    "c7i.xlarge", "a17-pro", "m4", "snapdragon-8-gen-3", "jetson-orin-nano", "jetson-agx-orin",
    "raspberry-pi-5", "iot-1gb", "iphone-se-2022", "raspberry-pi-4b-1gb",
}


def test_shipped_catalog_has_every_device_of_the_issue_and_every_figure_is_sourced():
    catalog = shipped_catalog()
    assert set(catalog.names()) == ISSUE_DEVICES
    for hw in catalog:
        figures = list(hw.figures())
        assert figures, hw.name
        for key, fig in figures:
            assert fig.source.strip() and re.match(r"^\d{4}-\d{2}(-\d{2})?$", fig.source_date)
            assert fig.value > 0, (hw.name, key)


def test_cloud_rows_price_one_accelerator_from_the_instance_price():
    catalog = shipped_catalog()
    h100 = catalog.get("h100")
    assert h100.instance == "p5.48xlarge" and h100.accelerators_per_instance == 8
    assert h100.instance_usd_per_hour.value == 55.04
    assert h100.usd_per_hour == pytest.approx(6.88)
    assert catalog.get("a10g").usd_per_hour == 1.006
    assert all(hw.usd_per_hour for hw in catalog if hw.kind == "cloud")
    assert all(hw.usd_per_hour is None for hw in catalog if hw.kind == "device")


def test_figures_beyond_the_reference_set_are_marked_unverified():
    catalog = shipped_catalog()
    for name in ("h100", "h200", "a100-40gb", "a100-80gb", "a10g", "l4", "l40s"):
        assert catalog.get(name).peak_fp32_tflops.verified is False, name
    assert catalog.get("h100").peak_bf16_tflops.verified is True
    assert catalog.get("c7i.xlarge").instance_usd_per_hour.verified is False
    assert catalog.get("jetson-agx-orin").memory_bandwidth_gb_s.verified is False


def test_frame_gives_base_units():
    df = shipped_catalog().frame().set_index("name")
    assert df.loc["h100", "peak_bf16_flop_s"] == pytest.approx(989e12)
    assert df.loc["l4", "memory_bandwidth_bytes_s"] == pytest.approx(300e9)
    assert df.loc["iot-1gb", "memory_bytes"] == 2**30
    assert df.loc["m7g.large", "usd_per_hour"] == pytest.approx(0.0816)


USER_FILE = """
hardware:
  - name: h100
    kind: cloud
    instance: p5.48xlarge
    accelerators_per_instance: 8
    source: my negotiated price sheet
    source_date: 2026-10-01
    instance_usd_per_hour: 40.0
    memory_gib: 80
  - name: my-box
    kind: device
    unit_usd: {value: 999, source: invoice 17, source_date: 2026-09}
    memory_gib: {value: 16, source: vendor spec, source_date: 2026-09, verified: false}
"""


def test_user_file_replaces_rows_by_name_and_adds_new_ones(tmp_path):
    path = tmp_path / "hw.yaml"
    path.write_text(USER_FILE)
    catalog = load_catalog(path)
    assert len(catalog) == len(ISSUE_DEVICES) + 1
    assert catalog.names()[0] == "h100" and catalog.names()[-1] == "my-box"
    h100 = catalog.get("h100")
    assert h100.usd_per_hour == 5.0 and h100.peak_bf16_tflops is None  # replaced whole
    assert h100.instance_usd_per_hour.source == "my negotiated price sheet"
    assert h100.instance_usd_per_hour.source_date == "2026-10-01"  # YAML date kept as text
    assert catalog.get("my-box").memory_gib.verified is False
    assert shipped_catalog().get("h100").usd_per_hour == pytest.approx(6.88)  # untouched


ROW = "hardware:\n  - {{name: x1, kind: cloud, {fields}}}\n"
PRICE = "instance_usd_per_hour: {value: 1, source: s, source_date: 2026-01}"


@pytest.mark.parametrize("text,needles", [
    (ROW.format(fields="kind: tpu, " + PRICE).replace("kind: cloud, ", ""),
     ["hardware[0] ('x1')", "kind", "'cloud' or 'device'", "got 'tpu'"]),
    (ROW.format(fields="instance_usd_per_hour: {value: -1, source: s, source_date: 2026-01}"),
     ["instance_usd_per_hour.value", "greater than 0", "got -1"]),
    (ROW.format(fields=PRICE + ", peak_fp64_tflops: 3"),
     ["peak_fp64_tflops: unknown field", "allowed fields:", "peak_fp32_tflops"]),
    (ROW.format(fields=PRICE.replace("value: 1,", "value: 1, colour: red,")),
     ["instance_usd_per_hour.colour: unknown field", "allowed fields: value, source"]),
    (ROW.format(fields="instance_usd_per_hour: {value: 1, source: s, source_date: 2026-13}"),
     ["source_date", "got '2026-13'"]),
    (ROW.format(fields="instance_usd_per_hour: {value: 1, source_date: 2026-01}"),
     ["instance_usd_per_hour.source: required field is missing"]),
    (ROW.format(fields="memory_gib: 8"), ["memory_gib is a bare number", "source"]),
    (ROW.format(fields="source: s, source_date: 2026-01, memory_gib: 8"),
     ["cloud row needs instance_usd_per_hour"]),
    ("hardware:\n  - {name: X1, kind: device}\n", ["name", "got 'X1'"]),
    ("hardware:\n  - {name: d, kind: device}\n  - {name: d, kind: device}\n",
     ["name 'd' appears twice"]),
    ("hardware: [\n", ["not valid YAML (line"]),
    ("", ["non-empty list of rows", "got nothing"]),
    ("gpus: []\n", ["unknown top-level key(s) gpus"]),
    ("hardware:\n  - just a string\n", ["hardware[0]", "valid dictionary"]),
    (ROW.format(fields=PRICE + ", runtimes: [torch-eager]"),
     ["runtimes.0: write a runtime as backend/dtype", "got 'torch-eager'"]),
    (ROW.format(fields=PRICE + ", runtimes: [{backend: ort, dtype: fp8}]"),
     ["runtimes.0.dtype: must be 'fp32', 'fp16', 'bf16', 'int8', 'int4' or '*'", "got 'fp8'"]),
    (ROW.format(fields=PRICE + ", runtimes: [ORT/fp32]"),
     ["runtimes.0.backend", "got 'ORT'"]),
    (ROW.format(fields=PRICE + ", runtimes: [{backend: ort, dtype: int8, via: trt}]"),
     ["runtimes.0.via: unknown field", "allowed fields: backend, dtype, proxy_for"]),
    (ROW.format(fields=PRICE + ", runtimes: [{backend: '*', dtype: int8, proxy_for: X}]"),
     ["runtimes.0: proxy_for needs one backend and one dtype"]),
    (ROW.format(fields=PRICE + ", runtimes: [{backend: ort, dtype: int8, proxy_for: ''}]"),
     ["runtimes.0.proxy_for", "at least 1 character"]),
    (ROW.format(fields=PRICE + ", runtimes: [ort/fp32, torch-eager/bf16, ort/fp32]"),
     ["runtimes: ort/fp32 listed more than once"]),
    (ROW.format(fields=PRICE + ", runtimes: []"), ["runtimes: ", "at least 1 item"]),
])
def test_bad_hardware_file_is_one_input_error_naming_file_field_and_value(tmp_path, text,
                                                                            needles):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        load_catalog(path)
    message = str(e.value)
    assert str(path) in message and "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_missing_file_and_unknown_name_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_catalog(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="unknown hardware 'tpu-v9'.*h100"):
        shipped_catalog().get("tpu-v9")


def test_every_figure_field_is_in_the_schema():
    fields = shipped_catalog().get("h100").model_fields
    assert all(key in fields for key in FIGURES)


def test_cli_hardware_prints_the_catalog_with_a_user_file(tmp_path, capsys):
    path = tmp_path / "hw.yaml"
    path.write_text(USER_FILE)
    assert main(["hardware", "--hardware", str(path)]) == 0
    out = capsys.readouterr().out
    for name in ("h100", "l40s", "raspberry-pi-5", "iot-1gb", "my-box"):
        assert name in out
    assert "$5/h (p5.48xlarge $40/h ÷ 8)" in out
    assert "my negotiated price sheet (2026-10-01)" in out
    # the runtimes each row is costed for, below the figures
    assert "runtimes each row is costed for" in out
    assert "AWS Neuron" in out and "Core ML" in out and "TensorRT" in out
    assert "all measured (default)" in out  # my-box and iot-1gb leave them out


def test_cli_bad_hardware_file_is_one_line_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(ROW.format(fields="instance_usd_per_hour: -3"))
    proc = subprocess.run([sys.executable, "-m", "app.cli", "hardware", "--hardware", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
