"""The ONNX decoding artifact with a KV cache (models/decode_export.py): one graph that takes a
prompt on an empty cache and then one token at a time, equal to torch's full forward; ORT rows
measure TTFT/TPOT with it; what the planner costs follows what was shipped."""

import json

import numpy as np
import pytest

from models import decode_export
from bench.export import prepare
from bench.measure import BenchConfig, MeasureSettings, measure
from models.zoo import load_torch, parse_spec

from ..conftest import TINY


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    return prepare(parse_spec(TINY), [16], root=tmp_path_factory.mktemp("cache"))


def test_the_decoding_graph_is_built_verified_and_quantized(info):
    rec = info["decode"]
    assert rec["mode"] == "kv-cache" and rec["rel_err"] < decode_export.DECODE_RTOL
    assert rec["layout"] == {"n_layer": 2, "n_head": 2, "head_dim": 16}
    assert 0 < rec["weight_bytes_int8"] < rec["weight_bytes"] / 2  # int8 weights
    import onnx

    graph = onnx.load(rec["file_path"]).graph
    assert [i.name for i in graph.input] == ["idx", *decode_export.past_names(2)]
    assert [o.name for o in graph.output] == ["logits", *decode_export.present_names(2)]


def test_any_split_of_a_sequence_gives_the_full_forward(info):
    """Prompts of several lengths on an empty cache, continuations of several lengths, single
    tokens: the same logits as torch's one forward over the whole sequence."""
    import onnxruntime as ort
    import torch

    tm = load_torch(parse_spec(TINY))
    ids = np.random.default_rng(5).integers(0, tm.vocab_size, size=(3, 20)).astype(np.int64)
    with torch.no_grad():
        ref = tm.module(torch.from_numpy(ids)).numpy()
    sess = ort.InferenceSession(info["decode"]["file_path"], providers=["CPUExecutionProvider"])
    run = decode_export.session_runner(sess, info["decode"]["layout"])
    for cuts in ((0, 1, 2, 20), (0, 7, 8, 9, 15, 20), (0, 19, 20)):
        past, got = None, []
        for lo, hi in zip(cuts, cuts[1:]):
            logits, past = run(ids[:, lo:hi], past)
            got.append(logits)
        assert past[0].shape == (3, 2, 20, 16)
        np.testing.assert_allclose(np.concatenate(got, axis=1), ref, rtol=0, atol=2e-5)


def test_an_existing_cache_entry_gets_the_decoding_graph_added(tmp_path):
    root = tmp_path / "cache"
    first = prepare(parse_spec(TINY), [16], root=root)
    info_file = next((root / "onnx").iterdir()) / "info.json"
    stored = json.loads(info_file.read_text())
    del stored["decode"]  # as written before the decoding graph existed
    info_file.write_text(json.dumps(stored))
    again = prepare(parse_spec(TINY), [16], root=root)
    assert again["decode"]["mode"] == "kv-cache"
    assert again["decode"]["layout"] == first["decode"]["layout"]


@pytest.mark.parametrize("variant, mode", [("ort-fp32", "kv-cache"), ("ort-int8", "kv-cache"),
                                           ("torch-eager", "kv-cache")])
def test_rows_measure_ttft_and_tpot_of_what_ships(info, variant, mode):
    cfg = BenchConfig(TINY, "student", variant, "cpu", 2, 16, 1)
    m = measure(cfg, MeasureSettings.quick(), info)
    assert m.row["decode_mode"] == mode
    assert m.row["ttft_ms"] > 0 and m.row["tpot_ms"] > 0
    runs, tokens = MeasureSettings.quick().decode_runs, MeasureSettings.quick().decode_tokens
    assert m.extra_samples["tpot_ns"].size == runs * tokens
    assert m.extra_samples["ttft_ns"].size == runs


def test_without_a_decoding_graph_an_ort_row_recomputes_and_says_so(info):
    """A variant that has no cache graph (or an entry whose export failed) is measured as
    a whole forward per new token."""
    no_graph = {**info, "decode": {"mode": "recompute", "reason": "export failed"}}
    cfg = BenchConfig(TINY, "student", "ort-fp32", "cpu", 1, 16, 1)
    m = measure(cfg, MeasureSettings.quick(), no_graph)
    assert m.row["decode_mode"] == "recompute" and m.row["tpot_ms"] > 0


def test_a_model_of_another_family_is_recorded_as_recompute_not_exported(tmp_path):
    class Fake:
        family, is_causal_lm = "hf-gpt2", True

    rec = decode_export.build(Fake(), tmp_path)
    assert rec["mode"] == "recompute" and "hf-gpt2" in rec["reason"]
    assert not list(tmp_path.iterdir())
    Fake.is_causal_lm = False
    assert decode_export.build(Fake(), tmp_path)["mode"] == ""


def test_an_export_entry_in_use_is_kept_by_prune(tmp_path):
    """prepare() marks its entry used and in use: a bench measuring it keeps it from roi cache
    prune, in this process and in another."""
    import subprocess
    import sys

    from contracts.caches import LAST_USED, prune

    root = tmp_path / "cache"
    prepare(parse_spec(TINY), [16], root=root)
    entry = next((root / "onnx").iterdir())
    assert (entry / LAST_USED).is_file()
    assert [e.path for e in prune(max_bytes=0, root=root).kept_in_use] == [entry]
    code = ("from contracts.caches import prune; "
            f"print(len(prune(max_bytes=0, root={str(root)!r}).kept_in_use))")
    kept = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert kept.stdout.strip() == "1" and (entry / "model.onnx").is_file()
