import json

import pytest
import torch

from models.zoo import (AUTO_STUDENTS, builtin_config, content_hash, load_torch, parse_spec,
                       parse_students)
from models.checkpoint import load_checkpoint, save_checkpoint
from contracts.errors import InputError


def test_builtin_presets_and_overrides():
    assert parse_spec("builtin:teacher").kind == "builtin"
    cfg = builtin_config("n_layer=2,n_embd=64,n_head=2,bias=false")
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.bias) == (2, 64, 2, False)
    assert cfg.vocab_size == 256  # untouched fields come from the teacher


@pytest.mark.parametrize("spec,match", [
    ("nope", "unknown model spec"),
    ("builtin:giant", "unknown built-in model"),
    ("builtin:n_layers=2", "unknown built-in field"),
    ("builtin:n_layer=x", "must be an integer"),
    ("builtin:n_embd=30,n_head=4", "divisible"),
    ("hf:/does/not/exist", "does not exist"),
    ("ckpt:/does/not/exist", "does not exist"),
    ("onnx:/does/not/exist.onnx", "does not exist"),
    ("weird:thing", "unknown model spec"),
    ("n_embd=32", r"splits builtin:k=v,k=v at its commas: quote the whole spec"),
])
def test_bad_specs_get_one_clear_error(spec, match):
    with pytest.raises(InputError, match=match):
        parse_spec(spec)


def test_files_that_are_not_models_are_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not protobuf \x00\xff" * 10)
    with pytest.raises(InputError, match="not an ONNX model"):
        parse_spec(f"onnx:{junk}")
    (tmp_path / "hf").mkdir()
    with pytest.raises(InputError, match="config.json missing"):
        parse_spec(f"hf:{tmp_path / 'hf'}")
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="model_type"):
        parse_spec(f"hf:{tmp_path / 'hf'}")
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "hf" / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(InputError, match="safetensors"):
        parse_spec(f"hf:{tmp_path / 'hf'}")
    with pytest.raises(InputError, match="directory"):
        parse_spec(f"ckpt:{junk}")


def test_auto_students_are_the_four_presets():
    assert [s.spec for s in parse_students("auto")] == list(AUTO_STUDENTS)
    assert [s.spec for s in parse_students("builtin:teacher, builtin:student-5x")] == [
        "builtin:teacher", "builtin:student-5x"]


def test_builtin_weights_are_deterministic_and_hash_is_stable():
    spec = parse_spec("builtin:n_layer=1,n_embd=16,n_head=2")
    a, b = load_torch(spec).module, load_torch(spec).module
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert content_hash(spec) == content_hash(parse_spec("builtin:n_layer=1,n_embd=16,n_head=2"))
    assert content_hash(spec) != content_hash(parse_spec("builtin:n_layer=2,n_embd=16,n_head=2"))


def test_checkpoint_round_trip_through_ckpt_spec(tmp_path):
    model = load_torch(parse_spec("builtin:n_layer=1,n_embd=16,n_head=2")).module
    save_checkpoint(model, tmp_path / "ck")
    tm = load_torch(parse_spec(f"ckpt:{tmp_path / 'ck'}"))
    x = torch.randint(0, 256, (2, 8))
    with torch.no_grad():
        torch.testing.assert_close(tm.module(x), model(x))
    assert tm.module.lm_head.weight is tm.module.wte.weight  # tying survives the round trip
    assert load_checkpoint(tmp_path / "ck").num_params() == model.num_params()


def test_spec_lists_keep_builtin_override_commas():
    from models.zoo import split_specs

    assert split_specs("builtin:n_layer=2,n_embd=32,hf:/a/b, builtin:teacher") == [
        "builtin:n_layer=2,n_embd=32", "hf:/a/b", "builtin:teacher"]
