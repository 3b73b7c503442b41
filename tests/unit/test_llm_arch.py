"""Architecture math of `config:` models: counted parameters against published counts, KV cache,
FLOPs and weight bytes against hand-computed values, config.json reading and its errors."""

from __future__ import annotations

import json

import pytest

from contracts.errors import InputError
from contracts.llm_arch import (
    INT4_GROUP,
    from_hf_config,
    load_config,
    shipped,
    shipped_names,
)

# Published non-embedding counts (Qwen2.5 model cards), to check what we leave out as embedding.
QWEN_NON_EMBEDDING = {"qwen2.5-0.5b": 0.36e9, "qwen2.5-1.5b": 1.31e9, "qwen2.5-3b": 2.77e9,
                      "qwen2.5-7b": 6.53e9, "qwen2.5-72b": 70.0e9}


def test_the_shipped_set_covers_the_issue():
    names = set(shipped_names())
    assert {"llama-3-8b", "llama-3-70b", "llama-3.2-1b", "llama-3.2-3b"} <= names
    assert {f"qwen2.5-{s}" for s in ("0.5b", "1.5b", "3b", "7b", "14b", "32b", "72b")} <= names


@pytest.mark.parametrize("name", shipped_names())
def test_counted_params_match_the_published_count(name):
    spec = shipped(name)
    assert spec.published_params is not None and spec.published_params.source
    assert spec.params == pytest.approx(spec.published_params.value, rel=0.005)  # issue 8's bar
    if "released checkpoint" in (spec.published_params.note or ""):
        assert spec.params == spec.published_params.value  # counted to the parameter


@pytest.mark.parametrize("name,published", sorted(QWEN_NON_EMBEDDING.items()))
def test_non_embedding_params_match_the_model_cards(name, published):
    assert shipped(name).non_embedding_params == pytest.approx(published, rel=0.02)


def test_llama_3_8b_exactly():
    # 8,030,261,248 is the safetensors total of meta-llama/Meta-Llama-3-8B
    assert shipped("llama-3-8b").params == 8_030_261_248


def test_kv_cache_counts_grouped_query_heads():
    # 2 (k, v) x 80 layers x 8 kv heads x 128 x 2 bytes = 320 KiB per token
    assert shipped("llama-3-70b").kv_bytes_per_token("bf16") == 327_680
    # Llama-2-7B has no GQA: 2 x 32 x 32 x 128 x 2 = 512 KiB
    assert shipped("llama-2-7b").kv_bytes_per_token("bf16") == 524_288
    assert shipped("llama-3-70b").kv_bytes_per_token("fp8") == 163_840


def test_kv_heads_replicate_past_tp_equal_heads():
    s = shipped("qwen2.5-7b")  # 4 kv heads
    per_token = s.kv_bytes_per_token("bf16")
    assert s.kv_bytes_per_token_per_gpu(2, "bf16") == per_token / 2
    assert s.kv_bytes_per_token_per_gpu(4, "bf16") == per_token / 4
    assert s.kv_bytes_per_token_per_gpu(8, "bf16") == per_token / 4  # one head each, replicated


def test_weight_bytes_per_dtype():
    s = shipped("llama-3-70b")
    assert s.weight_bytes("bf16") == 2 * s.params
    assert s.weight_bytes("int8") == s.params
    assert s.weight_bytes("int4") == pytest.approx(s.params * (0.5 + 4 / INT4_GROUP))
    with pytest.raises(InputError, match="allowed"):
        s.weight_bytes("int3")


def _tiny(**over):
    cfg = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
           "vocab_size": 100, "tie_word_embeddings": False}
    return {**cfg, **over}


def test_tiny_llama_by_hand():
    s = from_hf_config(_tiny(), "tiny")
    # per layer: q 64*64 + k,v 2*64*32 + o 64*64 + mlp 3*64*128 + 2 norms of 64
    layer = 4096 + 4096 + 4096 + 24576 + 128
    assert s.layer_params == layer
    assert s.params == 100 * 64 + 2 * layer + 64 + 100 * 64
    # decode: 2 x (2 layers + LM head) + 4 L H h per context token
    matmul = 2 * layer + 6400
    assert s.decode_flops_per_token(10) == 2 * matmul + 4 * 2 * 4 * 16 * 10
    # causal prefill of 3 tokens: contexts 1, 2, 3
    assert s.prefill_flops(3) == 2 * matmul * 3 + 4 * 2 * 4 * 16 * (1 + 2 + 3)
    # serving's prefill runs the LM head (100 x 64) for the last position only
    assert s.prefill_flops(3, 1) == 2 * (2 * layer) * 3 + 2 * 6400 + 4 * 2 * 4 * 16 * 6


def test_hf_config_json_and_its_directory(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(_tiny()))
    assert load_config(tmp_path).params == load_config(tmp_path / "config.json").params


def test_hf_config_matches_our_yaml():
    cfg = {"model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28,
           "num_attention_heads": 28, "num_key_value_heads": 4, "intermediate_size": 18944,
           "vocab_size": 152064, "tie_word_embeddings": False}
    assert from_hf_config(cfg, "q").params == shipped("qwen2.5-7b").params


def test_gpt2_small_is_124m():
    cfg = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
           "vocab_size": 50257}
    assert from_hf_config(cfg, "gpt2").params == 124_439_808


@pytest.mark.parametrize("cfg,match", [
    (_tiny(num_local_experts=8), "mixture-of-experts"),
    (_tiny(model_type="t5"), "model_type 't5' is not supported"),
    ({k: v for k, v in _tiny().items() if k != "hidden_size"}, "hidden_size is missing"),
    (_tiny(num_attention_heads=5), "num_heads"),
])
def test_bad_configs_get_one_clear_message(cfg, match):
    with pytest.raises(InputError, match=match):
        from_hf_config(cfg, "bad")


def test_bad_yaml_names_the_field(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\narchitecture: {hidden_size: 64, num_layers: 2, num_heads: 4,\n"
                    "  intermediate_size: 128, vocab_size: 10, widht: 3}\n")
    with pytest.raises(InputError, match=r"architecture\.widht: unknown field"):
        load_config(path)


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(InputError, match="llama-3-70b"):
        load_config("llama-9-900b")


def test_config_spec_in_the_zoo_is_projected_not_run():
    from bench.measure import BenchConfig
    from bench.sweep import projected_row
    from models.zoo import load_torch, parse_spec, split_specs

    spec = parse_spec("config:llama-3-8b")
    assert spec.kind == "config" and not spec.runnable and not spec.torch_capable
    assert split_specs("config:llama-3-8b,config:qwen2.5-7b") == ["config:llama-3-8b",
                                                                  "config:qwen2.5-7b"]
    row = projected_row(spec, BenchConfig("config:llama-3-8b", "teacher", "ort-int8", "cpu", 1,
                                          128, 2))
    assert row["source"] == "projected" and row["status"] == "skipped"
    assert row["weight_bytes"] == 8_030_261_248
    with pytest.raises(InputError, match="cannot run"):
        load_torch(spec)


def test_llm_modules_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, contracts.llm_arch, roi.llm_serving, roi.llm_plan; "
            "sys.exit(1 if {'torch', 'onnxruntime'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
