"""checks/llm_timing.py on the CPU: a `config:` architecture built as a Hugging Face model, timed
(TTFT, TPOT, tokens/s, memory) and set beside roi's projection; the rehearsal of issue 8's GPU
check (scripts/gpu_llm.sh) at toy size."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from checks import llm_check as lc  # noqa: E402
from checks import llm_timing as lt  # noqa: E402
from contracts.errors import InputError  # noqa: E402
from contracts.llm_arch import load_config, shipped_names  # noqa: E402

MEASURED = ("ttft_ms", "ttft_ms_min", "ttft_ms_max", "tpot_ms", "tpot_ms_p10", "tpot_ms_p90",
            "output_tokens_s", "peak_memory_mib")
PREDICTED = [f"predicted_{n}{c}" for n in ("ttft_ms", "tpot_ms", "output_tokens_s")
             for c in ("", "_pessimistic", "_optimistic")]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine spinning threads distort every time."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    """Llama-3.2-1B's family (grouped-query attention, tied head) at toy size."""
    return lt.shrunk(load_config("llama-3.2-1b"), num_layers=2, hidden_size=128, vocab_size=512)


@pytest.fixture(scope="module")
def tiny_model(tiny):
    return lt.build_model(tiny, "cpu", "fp32")


def test_hf_models_built_from_shipped_configs_have_their_parameter_counts():
    """The LLMSpec → Hugging Face config mapping is exact: every Llama-like shipped architecture,
    built on the meta device (no memory), has LLMSpec.params parameters, which equal the released
    checkpoints' counts."""
    names = [n for n in shipped_names() if not n.startswith("gpt-")]
    assert len(names) >= 10
    for name in names:
        spec = load_config(name)
        cfg = lt.hf_config(spec)
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg)
        assert lt.param_count(model) == spec.params, name
    assert type(lt.hf_config(load_config("qwen2.5-0.5b"))).__name__ == "Qwen2Config"
    with pytest.raises(InputError, match="Llama-like"):
        lt.hf_config(load_config("gpt-3-175b"))


def test_shrunk_keeps_the_family(tiny):
    big = load_config("llama-3.2-1b").arch
    a = tiny.arch
    assert (a.num_layers, a.hidden_size, a.vocab_size) == (2, 128, 512)
    assert a.num_heads % a.kv_heads == 0 and a.tie_embeddings == big.tie_embeddings
    assert lt.shrunk(load_config("qwen2.5-0.5b")).arch.qkv_bias


def test_static_cache_decode_matches_the_dynamic_cache(tiny):
    """The graph mode's StaticCache step computes what Hugging Face's own loop computes (weights
    scaled up from the 0.02 init so that attention is far from uniform: a mask that let the
    unfilled cache slots in would show)."""
    model = lt.build_model(tiny, "cpu", "fp32", seed=1)
    with torch.no_grad():
        for w in model.parameters():
            if w.dim() > 1:
                w.normal_(0, 0.3)
    ids = lt._prompt(model, 2, 12, "cpu", seed=5)
    with torch.inference_mode():
        dyn = lt._dynamic_cache(model)
        tok_d = lt._prefill(model, ids, dyn)
        static = lt._static_cache(model, 2, 32, "cpu", torch.float32)
        tok_s = lt._prefill(model, ids, static).clone()
        assert torch.equal(tok_d, tok_s)
        for _ in range(4):
            ld = model(input_ids=tok_d, use_cache=True, **lt._cache_kw(model, dyn)).logits
            ls = model(input_ids=tok_s, use_cache=True, **lt._cache_kw(model, static)).logits
            torch.testing.assert_close(ls, ld, atol=1e-4, rtol=1e-4)
            tok_d = ld[:, -1:].argmax(-1)
            tok_s.copy_(ls[:, -1:].argmax(-1))


def test_ttft_grows_with_the_tokens_prefilled(tiny_model):
    small, _, _ = lt.measure_ttft(tiny_model, 1, 8, "cpu", reps=3)
    large, cache, tok = lt.measure_ttft(tiny_model, 8, 256, "cpu", reps=3)
    assert min(large) > np.median(small)  # 256x the tokens
    assert tok.shape == (8, 1) and cache.get_seq_length() == 256


def test_predict_is_roi_arithmetic():
    """Hand-computed middle case for Llama-3.2-1B on the H200, bf16, batch 8, 512 / 128: the
    decode step reads the weights and 8 sequences' KV cache at 65% of 4.8 TB/s (memory-bound),
    the prefill of 8 prompts runs at 55% of 989 TFLOP/s (compute-bound)."""
    spec = load_config("llama-3.2-1b")
    p = lc.predict(spec, 8, 512, 128, "h200", "bf16")
    kv = 2 * 16 * 8 * 64 * 2  # bytes per token: K and V, 16 layers, 8 kv heads of 64, bf16
    step_s = (spec.params * 2 + 8 * kv * (512 + 64)) / (4800e9 * 0.65)
    assert p["tpot_ms"][1] == pytest.approx(step_s * 1e3, rel=1e-9)
    assert p["output_tokens_s"][1] == pytest.approx(8 / step_s, rel=1e-9)
    assert p["ttft_ms"][1] == pytest.approx(8 * spec.prefill_flops(512, 1) / (989e12 * 0.55) * 1e3)
    # bands: the pessimistic end is the slow one
    assert p["tpot_ms"][0] > p["tpot_ms"][1] > p["tpot_ms"][2]
    assert "exceeds" in lc.predict(spec, 10**7, 512, 128)["reason"]


def test_measure_and_compare_end_to_end(tiny, tiny_model, tmp_path, monkeypatch):
    points = lt.measure(tiny, "cpu", batches=(1, 4), prompt_tokens=32, output_tokens=8,
                        ttft_reps=2, model=tiny_model, log=lambda _: None)
    assert [(p.batch, p.mode) for p in points] == [(1, "eager"), (1, "static"), (4, "eager"),
                                                   (4, "static")]
    for p in points:
        assert p.status == "ok", p.status
        assert p.tpot_ms > 0 and p.ttft_ms > 0 and p.peak_memory_mib > 0
        assert p.tpot_ms_p10 <= p.tpot_ms <= p.tpot_ms_p90 and p.decode_steps_timed == 8
        assert p.output_tokens_s == pytest.approx(p.batch / p.tpot_ms * 1e3)
        assert p.params == tiny.params and p.dtype == "fp32"

    table = lc.compare(points, {tiny.name: tiny}, "h200", "bf16")
    assert len(table) == 4 and set(PREDICTED) <= set(table.columns)
    assert not table[list(MEASURED) + PREDICTED + ["tokens_s_ratio", "ttft_ratio",
                                                   "implied_decode_bandwidth"]].isna().any().any()
    r = table.iloc[0]
    assert r["tokens_s_ratio"] == pytest.approx(r["output_tokens_s"]
                                                / r["predicted_output_tokens_s"])
    assert r["tokens_s_within_tolerance"] == (abs(r["tokens_s_ratio"] - 1) <= lc.TOLERANCE)
    assert (table["predicted_output_tokens_s_pessimistic"] < table["predicted_output_tokens_s"]
            ).all()

    env = lc.environment("cpu")
    paths = lc.write_outputs(tmp_path, points, table, env, "REHEARSAL")
    md = paths["md"].read_text()
    assert md.startswith("# REHEARSAL") and md.count(f"| {tiny.name} |") == 4
    back = pd.read_csv(paths["csv"])
    assert list(back.columns) == list(table.columns) and len(back) == 4
    raw = json.loads(paths["measured"].read_text())
    assert len(raw["points"]) == 4 and len(raw["points"][0]["ttft_runs_ms"]) == 2
    assert lc.summary(table).splitlines()[0].startswith("eager: decode tokens/s within 25%")
    assert "/2 points" in lc.summary(table)

    # a batch that fails (here: a faked out-of-memory) is recorded, and the sweep goes on
    real = lt.decode_eager

    def oom_at_4(model, cache, tok, steps, device):
        if tok.shape[0] == 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, cache, tok, steps, device)

    monkeypatch.setattr(lt, "decode_eager", oom_at_4)
    points = lt.measure(tiny, "cpu", batches=(4, 1), prompt_tokens=16, output_tokens=4,
                        modes=("eager",), ttft_reps=1, model=tiny_model, log=lambda _: None)
    assert [p.status for p in points] == ["oom", "ok"]
    assert math.isnan(points[0].tpot_ms) and points[1].tpot_ms > 0
    table = lc.compare(points, {tiny.name: tiny})
    assert "oom" in lc.markdown(table)


@pytest.mark.parametrize("entry", ["python -m checks.llm_check", "roi check llm-timing"])
def test_command_line_rehearsal_writes_the_files(tmp_path, capsys, entry):
    from app.cli import main as roi

    argv = ["--model", "config:qwen2.5-0.5b", "--device", "cpu", "--smoke", "--batch-sizes", "1",
            "--prompt-tokens", "8", "--output-tokens", "4", "--ttft-reps", "1",
            "--out", str(tmp_path)]
    rc = lc.main(argv) if entry.startswith("python") else roi(["check", "llm-timing", *argv])
    assert rc == 0
    assert {p.name for p in tmp_path.iterdir()} == {"measured.json", "comparison.csv",
                                                    "comparison.json", "comparison.md"}
    out = capsys.readouterr().out
    assert "REHEARSAL" in out and "qwen2.5-0.5b-shrunk" in out
    with pytest.raises(InputError):
        lt.measure(load_config("qwen2.5-0.5b"), "cpu", modes=("graph",))

