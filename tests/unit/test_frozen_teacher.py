"""compile: true runs the live teacher through distill.students.FrozenCompiled: torch.compile with
inductor's freezing on CPU (weights folded in as constants, MKL-prepacked GEMMs)."""

import pytest
import torch

from models.gpt import GPT, GPTConfig
from distill.students import FrozenCompiled, vocab_of


def _teacher(seed: int) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(n_layer=1, n_embd=32, n_head=2, block_size=16)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.mark.skipif(not torch._C.has_mkl, reason="freezing prepacks fp32 GEMMs for MKL")
def test_frozen_teacher_matches_eager_uses_packed_gemms_and_never_reuses_other_weights():
    x = torch.randint(0, 256, (2, 16))
    for seed in (0, 1):  # the second teacher has other weights: frozen constants must not leak
        teacher = _teacher(seed)
        frozen = FrozenCompiled(teacher)
        assert vocab_of(frozen) == 256 and frozen.config == teacher.config
        with torch.no_grad(), torch.profiler.profile() as prof:
            got = frozen(x)
        torch.testing.assert_close(got, teacher(x), rtol=1e-4, atol=1e-4)
        assert any(e.name == "mkl::_mkl_linear" for e in prof.events()), "weights not frozen in"
