"""The CUDA path (CUDA-event timing, peak GPU memory, bf16). Skips cleanly without a GPU."""

import pytest
import torch

import bench

from ..conftest import TINY, TINY_B

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")]


def test_gpu_sweep_fp32_and_bf16(tmp_path):
    df = bench.run(teacher=TINY, students=TINY_B, backends="torch-eager,torch-eager-bf16",
                   batch_sizes="1,32", seq_lens="16", device="cuda", quick=True, out=tmp_path)
    assert set(df["status"]) == {"ok"}, df[["model", "error"]]
    assert (df["device"] == "cuda").all() and df["env_gpu"].str.len().gt(0).all()
    assert (df["peak_gpu_mb"] > 0).all()
    assert set(df["dtype"]) == {"fp32", "bf16"}
