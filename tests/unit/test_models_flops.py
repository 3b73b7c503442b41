import pytest
import torch

from bench.flops import count_flops
from models.gpt import GPT, GPTConfig, closed_form_flops, closed_form_params
from models.zoo import PRESETS

CONFIGS = [GPTConfig(), GPTConfig(n_layer=2, n_embd=64, n_head=2), GPTConfig(n_layer=1, n_embd=96,
                                                                            n_head=3, bias=False)]


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("batch,seq", [(1, 16), (3, 50)])
def test_flop_counter_matches_closed_form(cfg, batch, seq):
    model = GPT(cfg).eval()
    x = torch.randint(0, cfg.vocab_size, (batch, seq))
    assert count_flops(lambda: model(x)) == closed_form_flops(cfg, batch, seq)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_param_count_matches_closed_form(cfg):
    assert GPT(cfg).num_params() == closed_form_params(cfg)


@pytest.mark.parametrize("name,target", [("student-5x", 5), ("student-10x", 10),
                                         ("student-20x", 20), ("student-50x", 50)])
def test_presets_hit_the_seed_compression_ratios(name, target):
    teacher = closed_form_params(GPTConfig(**PRESETS["teacher"]))
    ratio = teacher / closed_form_params(GPTConfig(**PRESETS[name]))
    assert abs(ratio - target) / target < 0.10, ratio


def test_teacher_is_a_real_transformer_of_10_to_50m_params():
    assert 10e6 <= closed_form_params(GPTConfig(**PRESETS["teacher"])) <= 50e6


def test_kv_cache_decode_matches_full_forward():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_embd=32, n_head=2, block_size=32)).eval()
    ids = torch.randint(0, 256, (2, 10))
    with torch.no_grad():
        full = model(ids)
        logits, cache = model.forward_with_cache(ids[:, :6], None)
        steps = [logits]
        for t in range(6, 10):
            step, cache = model.forward_with_cache(ids[:, t : t + 1], cache)
            steps.append(step)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="positive"):
        GPTConfig(n_layer=0)


def test_sequence_longer_than_context_is_refused():
    model = GPT(GPTConfig(n_layer=1, n_embd=16, n_head=2, block_size=8))
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_cpu_attention_is_counted_forward_and_backward():
    """bench.flops registers the CPU flash-attention kernels (torch counts only the CUDA ones):
    every (query, key) pair, 2 products forward and 5 backward, as torch's formula for CUDA."""
    from torch.utils.flop_counter import FlopCounterMode

    b, h, t, d = 2, 3, 64, 16
    q = torch.randn(b, h, t, d, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    forward = 2 * (2 * b * h * t * t * d)
    assert counts["aten._scaled_dot_product_flash_attention_for_cpu"] == forward
    assert counts["aten._scaled_dot_product_flash_attention_for_cpu_backward"] == 5 * forward // 2
