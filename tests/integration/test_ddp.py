"""`torchrun --nproc_per_node 2` on the CPU (gloo): the same weights as one process that
accumulates the two ranks' micro-batches, the teacher cache sharded by rank, one writer."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from distill.trainer import train

from .test_trainer import _cfg, corpus  # noqa: F401  (corpus is a fixture)

pytestmark = pytest.mark.slow

SCRIPT = """
import json, sys
from distill.config import make_config
from distill.trainer import train
cfg = make_config(json.loads(sys.argv[1]))
train(cfg, sys.argv[2])
"""


def test_two_gloo_ranks_match_one_process_with_accumulation(tmp_path, corpus):  # noqa: F811
    teacher_dir = tmp_path / "teacher"
    train(_cfg(corpus, steps=10, lr=3e-3), teacher_dir)
    kd = dict(teacher=f"ckpt:{teacher_dir}", mode="kd", alpha=0.8, teacher_topk=8,
              student="builtin:n_layer=1,n_embd=32,n_head=2,block_size=32", steps=6)
    single = _cfg(corpus, **kd, grad_accum=2, teacher_cache_dir=str(tmp_path / "c1"))
    train(single, tmp_path / "one")
    ranks = single.model_copy(update={"grad_accum": 1, "teacher_cache_dir": str(tmp_path / "c2"),
                                      "logger": "jsonl", "log_every": 2})
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), json.dumps(ranks.model_dump()), str(tmp_path / "two")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("one", "two"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["speed"]["world_size"] == 2
    logged = [json.loads(x) for x in (tmp_path / "two" / "scalars.jsonl").read_text().split("\n")
              if x]  # rank 0 alone writes the scalars: each step once
    assert [r["step"] for r in logged if "train/loss" in r] == [2, 4, 6]
    shards = sorted(p.name for p in (tmp_path / "c2").glob("*/rank*"))
    assert shards == ["rank0", "rank1"]
    for r in (0, 1):  # each rank cached its own micro-batch index r for each of the 6 steps
        names = sorted(p.name for p in (tmp_path / "c2").glob(f"*/rank{r}/*.safetensors"))
        assert names == [f"{s:07d}-{r}.safetensors" for s in range(6)]
