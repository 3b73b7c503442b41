"""The quality gate's verdicts, deploy-as never choosing a gate failure, and the planner never
costing one (issue 7)."""

import numpy as np
import pandas as pd
import pytest

from bench.deploy import deploy_as_table, to_markdown
from bench.gate import (EMBEDDING_TOLERANCES, INT4, INT8, TOLERANCES, embedding_texts,
                        is_embedding_model, judge, judge_embeddings)
from bench.measure import DEPLOY_VARIANTS, VARIANTS
from contracts.errors import InputError
from roi.hardware import load_catalog
from roi.measurements import prepare
from roi.planner import plan

from .plan_helpers import synthetic_results
from .test_planner import SLOW_CPU, _scenario


def _logits(seed=0, shape=(4, 16, 32)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 3.0


def test_every_lossy_variant_states_a_tolerance():
    for v in VARIANTS:
        if v not in ("torch-eager", "ort-fp32"):
            assert v in TOLERANCES, v
    assert TOLERANCES["ort-fused-fp32"].max_logit_err <= 1e-3  # a rewrite, not a quantization
    assert INT8.max_retention_pp == INT4.max_retention_pp == 0.5
    assert "ort-int8-static-all" not in DEPLOY_VARIANTS


def test_identical_and_slightly_perturbed_logits_pass():
    ref = _logits()
    assert judge("ort-fused-fp32", ref, ref.copy(), None, "x")["gate"] == "pass"
    noisy = ref + np.random.default_rng(1).normal(0, 0.01, ref.shape).astype(np.float32)
    row = judge("ort-int8", ref, noisy, None, "x")
    assert row["gate"] == "pass" and row["gate_top1_agreement"] > 0.95
    assert "retention not judged" in row["gate_reason"]


def test_corrupted_logits_fail_with_each_reason_and_figures():
    ref = _logits()
    shuffled = _logits(seed=7)  # another model entirely
    row = judge("ort-int8-static", ref, shuffled, None, "x")
    assert row["gate"] == "fail"
    assert "top-1 agreement" in row["gate_reason"] and "max logit error" in row["gate_reason"]
    assert row["gate_top1_agreement"] < 0.2 and row["gate_max_logit_err"] > 0.5
    # an fp32 rewrite off by 1% of the logit range fails its exact tolerance, int8 would pass
    off = ref + 0.01 * np.abs(ref).max()
    assert judge("ort-fused-fp32", ref, off, None, "x")["gate"] == "fail"
    assert judge("ort-int8", ref, off, None, "x")["gate"] == "pass"
    nan = ref.copy()
    nan[0, 0, 0] = np.nan
    assert judge("ort-int8", ref, nan, None, "x")["gate"] == "fail"


def test_retention_is_judged_on_targets():
    ref = _logits(shape=(16, 64, 16))  # 1024 positions
    targets = ref.argmax(-1).copy()
    targets[:, ::2] = (targets[:, ::2] + 1) % 16  # the reference is right on 512 positions
    got = ref.copy()
    row = judge("ort-int8", ref, got, targets, "real")
    assert row["gate"] == "pass" and row["gate_accuracy_ref"] == 0.5
    # the variant gets 8 of the reference's 512 right answers wrong: -1.5625 pp of retention
    for b, t in np.argwhere(ref.argmax(-1) == targets)[:8]:
        got[b, t, (targets[b, t] + 3) % 16] = ref[b, t].max() + 0.05
    row = judge("ort-int8", ref, got, targets, "real")
    assert row["gate_top1_agreement"] == pytest.approx(1 - 8 / 1024)
    assert row["gate_retention_delta_pp"] == pytest.approx(-100 * 8 / 512)
    assert row["gate"] == "fail" and "retention change -1.56 pp" in row["gate_reason"]


def _embeddings(seed=0, shape=(64, 32)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_every_tolerance_has_an_embedding_tolerance():
    for variant, tol in TOLERANCES.items():
        assert tol in EMBEDDING_TOLERANCES, variant
    assert EMBEDDING_TOLERANCES[TOLERANCES["ort-fused-fp32"]].min_cosine >= 0.9999


def test_embeddings_close_to_the_reference_pass_with_their_figures():
    ref = _embeddings()
    row = judge_embeddings("ort-fused-fp32", ref, ref.copy(), "texts")
    assert row["gate"] == "pass" and row["gate_similarity_spearman"] == pytest.approx(1.0)
    assert row["gate_embedding_cosine_min"] == pytest.approx(1.0) and row["gate_texts"] == 64
    noisy = ref + np.random.default_rng(1).normal(0, 0.02, ref.shape).astype(np.float32)
    row = judge_embeddings("ort-int8", ref, 3.0 * noisy, "texts")  # scale is no error
    assert row["gate"] == "pass", row["gate_reason"]
    assert 0.99 < row["gate_similarity_spearman"] < 1.0
    assert "embedding tolerance" in row["gate_reason"]


def test_embeddings_of_another_model_fail_with_each_reason():
    ref = _embeddings()
    row = judge_embeddings("ort-int8", ref, _embeddings(seed=7), "texts")
    assert row["gate"] == "fail"
    assert "min cosine" in row["gate_reason"] and "similarity Spearman" in row["gate_reason"]
    assert row["gate_similarity_spearman"] < 0.2
    # noise an int8 file passes is too much for an fp32 rewrite
    noisy = ref + np.random.default_rng(1).normal(0, 0.02, ref.shape).astype(np.float32)
    assert judge_embeddings("ort-fused-fp32", ref, noisy, "texts")["gate"] == "fail"
    nan = ref.copy()
    nan[3, 0] = np.nan
    assert judge_embeddings("ort-int8", ref, nan, "texts")["gate"] == "fail"


def test_every_tolerance_has_a_head_tolerance():
    from bench.head_gate import HEAD_TOLERANCES

    for variant, tol in TOLERANCES.items():
        assert tol in HEAD_TOLERANCES, variant


def _head_logits(seed=0, shape=(64, 3), scale=4.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


def test_a_classifier_is_judged_on_top1_and_the_largest_logit_difference():
    from bench.head_gate import judge_head

    ref = _head_logits()
    noisy = ref + np.random.default_rng(1).normal(0, 0.01, ref.shape)
    row = judge_head("ort-int8", "classification", ref, noisy, "texts")
    assert row["gate"] == "pass", row["gate_reason"]
    assert 0.95 <= row["gate_top1_agreement"] <= 1.0 and row["gate_texts"] == 64
    assert row["gate_max_abs_logit_diff"] == pytest.approx(np.abs(noisy - ref).max())
    # logits shifted by 1: the same classes, but no logit an int8 file should move that far
    row = judge_head("ort-int8", "classification", ref, ref + 1.0, "texts")
    assert row["gate"] == "fail" and "max abs logit difference 1 > 0.25" in row["gate_reason"]
    row = judge_head("ort-int8", "classification", ref, _head_logits(seed=5), "texts")
    assert row["gate"] == "fail" and "top-1 agreement" in row["gate_reason"]
    assert judge_head("ort-fused-fp32", "classification", ref, noisy, "texts")["gate"] == "fail"


def test_a_cross_encoder_is_judged_on_the_order_of_its_scores():
    from bench.head_gate import judge_head

    ref = _head_logits(shape=(64, 1))
    row = judge_head("ort-int8", "cross-encoder", ref, ref + 0.01, "pairs")
    assert row["gate"] == "pass" and row["gate_score_spearman"] == pytest.approx(1.0)
    assert "gate_top1_agreement" not in row  # one score per pair: no classes to agree on
    row = judge_head("ort-int8", "cross-encoder", ref, -ref, "pairs")
    assert row["gate"] == "fail" and "score Spearman -1.0000 < 0.95" in row["gate_reason"]
    nan = ref.copy()
    nan[3] = np.nan
    assert judge_head("ort-int8", "cross-encoder", ref, nan, "pairs")["gate"] == "fail"


class _Session:
    def __init__(self, shape):
        self.shape = shape

    def get_outputs(self):
        return [type("Out", (), {"shape": self.shape})()]


def test_only_hf_encoders_with_hidden_states_are_judged_on_embeddings(tmp_path):
    info = {"is_causal_lm": False, "input_names": ["input_ids", "attention_mask"]}
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "model.safetensors").write_text("")
    hidden, logits = _Session(["batch", "seq", 32]), _Session(["batch", 3])
    assert is_embedding_model(f"hf:{tmp_path}", info, hidden)
    assert not is_embedding_model(f"hf:{tmp_path}", info, logits)  # a classification head
    assert not is_embedding_model(f"hf:{tmp_path}", {**info, "is_causal_lm": True}, hidden)
    assert not is_embedding_model("builtin:teacher", {"input_names": ["idx"]}, hidden)
    # no tokenizer files: no real text to judge on (transformers would make an empty tokenizer)
    assert embedding_texts(f"hf:{tmp_path}", 16) is None


def _rows(fast_gate="fail"):
    base = dict(role="student", device="cpu", batch_size=1, seq_len=128, threads=2, status="ok")
    return pd.DataFrame([
        {**base, "model": "m", "backend": "torch-eager", "dtype": "fp32", "latency_ms_p50": 10.0,
         "gate": "reference"},
        {**base, "model": "m", "backend": "ort", "dtype": "fp32", "latency_ms_p50": 6.0,
         "gate": "reference"},
        {**base, "model": "m", "backend": "ort-static", "dtype": "int8", "latency_ms_p50": 4.0,
         "gate": "pass", "variant": "ort-int8-static"},
        {**base, "model": "m", "backend": "ort-static-all", "dtype": "int8",
         "latency_ms_p50": 2.0, "gate": fast_gate, "gate_reason": "top-1 agreement 0.3 < 0.95",
         "variant": "ort-int8-static-all"},
        {**base, "model": "m", "backend": "ort-wo", "dtype": "int4", "latency_ms_p50": 1.0,
         "status": "error", "gate": None},
    ])


def test_deploy_as_is_the_fastest_passing_variant_never_a_failure():
    table = deploy_as_table(_rows())
    assert len(table) == 1
    best = table.iloc[0]
    assert best["deploy_as"] == "ort-int8-static" and best["gate"] == "pass"
    assert best["speedup_vs_eager_fp32"] == pytest.approx(2.5)
    assert "ort-int8-static-all (2.00 ms: top-1 agreement" in best["faster_but_failed"]
    assert "ort-int8-static" in to_markdown(table)
    # the same row passing would be chosen: the choice follows the gate, not the name
    assert deploy_as_table(_rows("pass")).iloc[0]["deploy_as"] == "ort-int8-static-all"


def test_deploy_as_trusts_ungated_rows_only_when_they_are_references():
    rows = _rows().drop(columns=["gate"])
    assert deploy_as_table(rows).iloc[0]["deploy_as"] == "ort-fp32"


CPU = "c7i.xlarge"


def _results(gate_fast: str) -> pd.DataFrame:
    """fp32 rows, plus an int8 variant 4x faster whose gate verdict is `gate_fast`."""
    df = synthetic_results(runtimes=(("ort", "fp32"), ("ort-static", "int8")), hardware=CPU,
                           **SLOW_CPU)
    fast = df["backend"] == "ort-static"
    df.loc[fast, "latency_ms_mean"] /= 4
    df.loc[fast, "latency_ms_p50"] /= 4
    df["gate"] = np.where(fast, gate_fast, "reference")
    return df


def test_the_planner_never_costs_a_gate_failure():
    catalog = load_catalog()
    assert set(prepare(_results("fail"), catalog)["backend"]) == {"ort"}
    assert set(prepare(_results("pass"), catalog)["backend"]) == {"ort", "ort-static"}
    with pytest.raises(InputError, match="every ok row failed the quality gate"):
        prepare(_results("fail").assign(gate="fail"), catalog, "t.csv")


@pytest.mark.parametrize("gate,backend", [("pass", "ort-static"), ("fail", "ort")])
def test_the_plan_costs_the_student_as_deployed_and_says_so(gate, backend):
    rec = plan(_results(gate), _scenario(hardware=(CPU,))).recommended
    assert rec is not None and rec["deploy_backend"] == backend
    assert "quality gate" in rec["deploy_note"]
