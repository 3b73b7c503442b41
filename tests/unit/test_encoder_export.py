"""ONNX export of an encoder's head (issue 19): a classifier's logits and a cross-encoder's
score per pair (fed the tokenizer's token_type_ids) come out of the fp32 file as torch computes
them on real text, the int8 file keeps them in the task's own terms, and a head the exporter
does not carry is refused in one line before anything runs."""

import json

import numpy as np
import pytest

from contracts.errors import InputError
from distill.encoder_export import INT8_FILE, ONNX_FILE, export_and_check, onnx_outputs
from models.encoder import (RANKING_QUERIES, load_encoder, module_queries,
                            stdlib_docstring_splits, top_labels)
from models.similarity import head_figures
from models.zoo import parse_spec

from .encoder_helpers import tiny_encoder_of, tiny_head_dir


@pytest.fixture(scope="module")
def tiny():
    return tiny_encoder_of()


@pytest.fixture(scope="module")
def held_out():
    return stdlib_docstring_splits()["test"]


@pytest.fixture(scope="module")
def classifier_dir(tiny, tmp_path_factory):
    return tiny_head_dir(tiny, "classification", tmp_path_factory.mktemp("x") / "clf")


@pytest.fixture(scope="module")
def ranker_dir(tiny, tmp_path_factory):
    return tiny_head_dir(tiny, "cross-encoder", tmp_path_factory.mktemp("x") / "ranker")


def test_the_figures_are_the_tasks_own():
    ref = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5], [0.1, 0.0, 3.0]])
    assert head_figures("classification", ref, ref) == {"top1_agreement": 1.0,
                                                        "max_abs_logit_diff": 0.0}
    flipped = ref[:, ::-1]
    assert head_figures("classification", ref, flipped)["top1_agreement"] == pytest.approx(1 / 3)
    scores = np.array([[0.5], [2.0], [-1.0], [1.0]])
    assert head_figures("cross-encoder", scores, scores * 2 + 1)["score_spearman"] == \
        pytest.approx(1.0)
    assert head_figures("cross-encoder", scores, -scores) == {
        "score_spearman": pytest.approx(-1.0), "max_abs_score_diff": 4.0}


def test_a_classifier_exports_its_logits(classifier_dir, held_out):
    enc = load_encoder(classifier_dir)
    texts = [t for _, _, t in held_out[:64]]
    info = export_and_check(classifier_dir, enc, enc, texts)
    torch_logits = enc.embed(texts).numpy()
    fp32 = onnx_outputs(classifier_dir / ONNX_FILE, enc, texts)
    assert fp32.shape == (64, 3)
    np.testing.assert_allclose(fp32, torch_logits, atol=1e-4 * np.abs(torch_logits).max())
    assert len(set(torch_logits.argmax(1))) > 1  # a head that tells texts apart
    int8 = onnx_outputs(classifier_dir / INT8_FILE, enc, texts)
    assert not np.array_equal(int8, fp32)  # int8 changes something...
    assert info["int8"] == head_figures("classification", fp32, int8)
    assert info["int8"]["top1_agreement"] >= 0.95  # ...not the classes
    assert info["fp32"]["top1_agreement"] == 1.0
    assert info["fp32"]["max_abs_logit_diff"] < 1e-3


def test_a_cross_encoder_exports_one_score_per_pair_with_token_types(ranker_dir, held_out):
    import onnxruntime as ort

    enc = load_encoder(ranker_dir)
    queries, candidates, _ = module_queries(held_out, top_labels(held_out, RANKING_QUERIES), 3)
    pairs = list(zip(queries, candidates))[:64]
    info = export_and_check(ranker_dir, enc, enc, pairs)
    sess = ort.InferenceSession(str(ranker_dir / ONNX_FILE), providers=["CPUExecutionProvider"])
    assert "token_type_ids" in [i.name for i in sess.get_inputs()]
    scores = onnx_outputs(ranker_dir / ONNX_FILE, enc, pairs)
    torch_scores = enc.embed(pairs).numpy()
    assert scores.shape == (64, 1)
    np.testing.assert_allclose(scores, torch_scores, atol=1e-4 * np.abs(torch_scores).max())
    # the segment ids are fed, not zeros: without them the pair scores otherwise
    feeds = {k: v.numpy() for k, v in enc.batch(pairs).items()}
    assert feeds["token_type_ids"].any()
    zeros = sess.run(None, {**feeds, "token_type_ids": np.zeros_like(feeds["token_type_ids"])})
    assert np.abs(zeros[0] - scores).max() > 1e-3
    assert info["fp32"]["max_abs_score_diff"] < 1e-3
    assert info["int8"]["score_spearman"] >= 0.98


@pytest.fixture
def token_classifier_dir(classifier_dir, tmp_path):
    import shutil

    shutil.copytree(classifier_dir, tmp_path / "tok")
    conf = json.loads((tmp_path / "tok" / "config.json").read_text())
    conf["architectures"] = ["BertForTokenClassification"]
    (tmp_path / "tok" / "config.json").write_text(json.dumps(conf))
    return tmp_path / "tok"


@pytest.mark.parametrize("arch", ["BertForTokenClassification", "BertForQuestionAnswering",
                                  "BertForMultipleChoice"])
def test_a_head_the_exporter_does_not_carry_is_refused(token_classifier_dir, arch):
    conf = json.loads((token_classifier_dir / "config.json").read_text())
    (token_classifier_dir / "config.json").write_text(json.dumps({**conf,
                                                                  "architectures": [arch]}))
    with pytest.raises(InputError, match=rf"a {arch} head is not supported \(ONNX export"):
        parse_spec(f"hf:{token_classifier_dir}")
    for kept in ("BertForSequenceClassification", "LlamaForCausalLM", "BertModel"):
        (token_classifier_dir / "config.json").write_text(json.dumps({**conf,
                                                                      "architectures": [kept]}))
        parse_spec(f"hf:{token_classifier_dir}")


def test_roi_bench_refuses_it_in_one_line(token_classifier_dir, tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "app.cli", "bench", "--students",
                          f"hf:{token_classifier_dir}", "--backends", "ort-fp32",
                          "--batch-sizes", "1", "--quick", "--threads", "1", "--out",
                          str(tmp_path / "b")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "a BertForTokenClassification head is not supported" in lines[0]
    assert "Traceback" not in run.stderr and not (tmp_path / "b").exists()
