"""An `onnx:` model file that is no model (0 bytes, text, bytes protobuf reads as an empty
model, a directory) is refused up front by every command that takes one (issue 18): one line,
exit 2, nothing written, instead of an `error` row or a failure deep inside a run."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from contracts.errors import InputError
from models.zoo import parse_spec

from .fuzz_helpers import expect_error, no_work

pytestmark = pytest.mark.usefixtures("no_work")
assert no_work  # the module fixture, used through pytestmark

TINY = "builtin:n_layer=1,n_embd=16,n_head=2,block_size=64"

# file content -> words of the error
NOT_MODELS = {
    "empty": (b"", "is empty (0 bytes)"),
    "text": (b"hello, I am not a model\n", "is not an ONNX model"),
    "protobuf-without-graph": (b"\x08\x01", "is not an ONNX model (it holds no graph"),
    "directory": (None, "is a directory; onnx: takes a .onnx file"),
}


def _bad(tmp: Path, name: str) -> Path:
    content, _ = NOT_MODELS[name]
    path = tmp / f"{name}.onnx"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


def _commands(tmp: Path, spec: str) -> dict[str, list[str]]:
    run_cfg = tmp / "run.yaml"
    run_cfg.write_text(f"teacher: '{spec}'\ndistill: false\nstudents: ['{TINY}']\n")
    out = str(tmp / "out")
    return {
        "bench-teacher": ["bench", "--teacher", spec, "--students", TINY, "--out", out],
        "bench-student": ["bench", "--teacher", TINY, "--students", spec, "--out", out],
        "loadtest": ["loadtest", "--model", spec, "--scenario", "offline", "--out", out],
        "run": ["run", "--config", str(run_cfg), "--out", out],
    }


@pytest.mark.parametrize("name", list(NOT_MODELS))
@pytest.mark.parametrize("command", ["bench-teacher", "bench-student", "loadtest", "run"])
def test_a_file_that_is_no_onnx_model_is_refused_up_front(tmp_path, capsys, name, command):
    spec = f"onnx:{_bad(tmp_path, name)}"
    argv = _commands(tmp_path, spec)[command]
    err = expect_error(capsys, argv, NOT_MODELS[name][1], tmp_path / "out")
    assert spec in err and len(err.strip().splitlines()) == 1, err


def test_a_real_onnx_model_passes_the_same_check(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert parse_spec(f"onnx:{path}").kind == "onnx"
    path.write_bytes(path.read_bytes()[:0])  # the same file emptied is refused
    with pytest.raises(InputError, match="0 bytes"):
        parse_spec(f"onnx:{path}")
