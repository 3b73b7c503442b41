"""The quality gate on an embedding model (issue 19): an hf: sentence encoder's int8 ONNX file
is judged on the pooled embeddings of real held-out text against its fp32 file, not on
next-token agreement."""

import pytest

from bench.export import prepare
from bench.measure import BenchConfig, MeasureSettings, measure
from models.encoder import save_encoder
from models.zoo import parse_spec

from ..unit.encoder_helpers import tiny_encoder_of


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return save_encoder(tiny_encoder_of(), tmp_path_factory.mktemp("enc") / "tiny")


def _row(model: str, variant: str, root):
    info = prepare(parse_spec(model), [16], root=root)
    cfg = BenchConfig(model, "student", variant, "cpu", 1, 16, 1)
    return measure(cfg, MeasureSettings.quick(), info).row


def test_int8_embeddings_are_judged_against_fp32_on_real_text(encoder_dir, tmp_path):
    row = _row(f"hf:{encoder_dir}", "ort-int8", tmp_path)
    assert row["gate"] == "pass", row["gate_reason"]
    assert row["gate_inputs"].endswith("(real text)") and row["gate_texts"] == 64
    assert 0.98 <= row["gate_similarity_spearman"] < 1.0  # int8 changes something, not much
    assert 0.98 <= row["gate_embedding_cosine_min"] <= 1.0 + 1e-6
    assert "gate_top1_agreement" not in row  # no next-token figure for an embedding model
    assert _row(f"hf:{encoder_dir}", "ort-fp32", tmp_path)["gate"] == "reference"


@pytest.fixture(scope="module")
def head_dirs(tmp_path_factory):
    from ..unit.encoder_helpers import tiny_head_dir

    tiny, root = tiny_encoder_of(), tmp_path_factory.mktemp("heads")
    return {"classification": tiny_head_dir(tiny, "classification", root / "clf"),
            "cross-encoder": tiny_head_dir(tiny, "cross-encoder", root / "ranker")}


@pytest.mark.parametrize("task, figure", [("classification", "gate_top1_agreement"),
                                          ("cross-encoder", "gate_score_spearman")])
def test_int8_heads_are_judged_against_fp32_in_their_tasks_terms(head_dirs, tmp_path, task,
                                                                  figure):
    row = _row(f"hf:{head_dirs[task]}", "ort-int8", tmp_path)
    assert row["gate"] == "pass", row["gate_reason"]
    assert row["gate_inputs"].endswith("(real text)") and row["gate_texts"] == 64
    assert (task == "cross-encoder") == row["gate_inputs"].startswith("(module name, docstring)")
    assert 0.95 <= row[figure] <= 1.0 and 0 < row["gate_max_abs_logit_diff"] <= 0.25
    assert "gate_similarity_spearman" not in row and "gate_max_logit_err" not in row
    assert _row(f"hf:{head_dirs[task]}", "ort-fp32", tmp_path)["gate"] == "reference"
