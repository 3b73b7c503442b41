"""init: teacher-pruned cuts the student out of the teacher: the identity cut reproduces the
teacher exactly, a depth-only cut is DistilBERT's layer copy, narrower cuts keep the most active
slices, and shapes that cannot be cut fall back to random, saying why."""

import numpy as np
import pytest
import torch

from models.gpt import GPT, GPTConfig
from distill.config import make_config
from distill.prune import cut, fits, importance
from distill.students import build_student, init_from_teacher_layers

TEACHER = GPTConfig(n_layer=4, n_embd=64, n_head=4, block_size=32)


def _teacher() -> GPT:
    torch.manual_seed(0)
    t = GPT(TEACHER).eval()
    with torch.no_grad():  # biases and norms away from their init, so slicing errors show
        for p in t.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return t


def _windows() -> torch.Tensor:
    return torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(1))


def test_the_identity_cut_is_the_teacher():
    t, x = _teacher(), _windows()
    s = GPT(TEACHER).eval()
    cut(s, t, x)
    with torch.no_grad():
        assert torch.allclose(s(x), t(x), atol=1e-5)


def test_a_depth_only_cut_copies_evenly_spaced_layers():
    t, x = _teacher(), _windows()
    cfg = GPTConfig(n_layer=2, n_embd=64, n_head=4, block_size=32)
    a, b = GPT(cfg).eval(), GPT(cfg).eval()
    note = cut(a, t, x)
    init_from_teacher_layers(b, t)
    assert "layers [0, 3]" in note
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-5)


def test_a_narrow_cut_keeps_the_most_active_slices():
    t, x = _teacher(), _windows()
    cfg = GPTConfig(n_layer=2, n_embd=32, n_head=2, block_size=32)  # head size 16 of 16
    s = GPT(cfg).eval()
    cut(s, t, x)
    channels, heads, neurons = importance(t, x)
    keep = torch.sort(torch.topk(channels, 32).indices).values
    assert torch.equal(s.wte.weight, t.wte.weight[:, keep])
    assert torch.equal(s.blocks[1].ln_2.weight, t.blocks[3].ln_2.weight[keep])
    hidden = torch.sort(torch.topk(neurons[3], 128).indices).values
    assert torch.equal(s.blocks[1].mlp.c_fc.bias, t.blocks[3].mlp.c_fc.bias[hidden])
    with torch.no_grad():
        assert torch.isfinite(s(x)).all()


def test_narrower_heads_keep_attention_logits_in_scale():
    t, x = _teacher(), _windows()
    cfg = GPTConfig(n_layer=4, n_embd=64, n_head=8, block_size=32)  # more heads than 4
    assert "n_head" in fits(cfg, TEACHER)
    cfg = GPTConfig(n_layer=4, n_embd=32, n_head=4, block_size=32)  # 4 heads of 8 (teacher 16)
    assert fits(cfg, TEACHER) == ""
    s = GPT(cfg).eval()
    cut(s, t, x)
    q_t = t.blocks[0].attn.c_attn.weight[:64].norm()
    q_s = s.blocks[0].attn.c_attn.weight[:32].norm()
    assert q_s > 0 and torch.isfinite(q_s) and q_t > 0


@pytest.mark.parametrize("student, why", [
    ("builtin:n_layer=5,n_embd=32,n_head=2,block_size=32", "n_layer"),
    ("builtin:n_layer=2,n_embd=128,n_head=4,block_size=32", "n_embd"),
])
def test_shapes_that_cannot_be_cut_fall_back_to_random(student, why):
    cfg = make_config({"student": student, "init": "teacher-pruned", "block_size": 32})
    split = np.random.default_rng(0).integers(0, 256, 5000).astype(np.uint8)
    _, note = build_student(cfg, _teacher(), split)
    assert note.startswith("random") and why in note


def test_build_student_cuts_with_real_windows():
    cfg = make_config({"student": "builtin:n_layer=2,n_embd=32,n_head=2,block_size=32",
                       "init": "teacher-pruned", "block_size": 32, "batch_size": 4})
    split = np.random.default_rng(0).integers(0, 256, 5000).astype(np.uint8)
    student, note = build_student(cfg, _teacher(), split)
    assert note.startswith("teacher-pruned: layers [0, 3]")
    assert build_student(cfg, _teacher(), split)[0].state_dict()["wte.weight"].equal(
        student.state_dict()["wte.weight"])  # deterministic
