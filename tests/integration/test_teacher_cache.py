"""The teacher-logit cache: written once, reused across runs, exact under resume, per rank."""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from distill.losses import topk_teacher
from distill.teacher_cache import TeacherCache, cache_key
from distill.trainer import STATE_FILE, train

from .test_trainer import KILLER, _cfg, corpus  # noqa: F401  (corpus is a fixture)

STUDENT = "builtin:n_layer=1,n_embd=32,n_head=2,block_size=32"


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, corpus):  # noqa: F811
    out = tmp_path_factory.mktemp("teacher")
    train(_cfg(corpus, steps=20, lr=3e-3), out)
    return f"ckpt:{out}"


def _kd(corpus, teacher, cache_dir, **kw):  # noqa: F811
    settings = dict(teacher=teacher, mode="kd", student=STUDENT, steps=8, alpha=0.8,
                    teacher_topk=8, teacher_cache_dir=str(cache_dir))
    return _cfg(corpus, **{**settings, **kw})


def test_entries_round_trip_in_their_stored_precision(tmp_path):
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 256) * 4
    top = topk_teacher(logits, 8, temperature=2.0)
    cache = TeacherCache(tmp_path, "key", 8, 2.0, vocab_size=256, rank=1)
    stored = cache.put(3, 0, top)
    again = cache.get(3, 0, torch.device("cpu"))
    raw = load_file(str(tmp_path / "key" / "rank1" / "0000003-0.safetensors"))
    assert raw["logits"].dtype == torch.float16 and raw["indices"].dtype == torch.uint8
    assert torch.equal(stored.logits, again.logits) and torch.equal(stored.indices, top.indices)
    assert torch.equal(again.residual_mass, top.residual_mass)
    assert (stored.logits - top.logits).abs().max() < 1e-2 and again.temperature == 2.0
    assert cache.get(4, 0, torch.device("cpu")) is None
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1


def test_the_key_changes_with_what_the_entries_depend_on():
    base = dict(teacher_hash="t", data_fingerprint="d", k=32, temperature=1.0, dtype="fp32",
                block_size=256, batch_size=16, seed=0)
    keys = {cache_key(**{**base, **change}) for change in (
        {}, {"teacher_hash": "u"}, {"data_fingerprint": "e"}, {"k": 16}, {"temperature": 2.0},
        {"dtype": "bf16"}, {"block_size": 128}, {"batch_size": 8}, {"seed": 1})}
    assert len(keys) == 9


def test_second_run_reads_the_cache_and_ends_with_the_same_weights(tmp_path, corpus, teacher):  # noqa: F811
    first = train(_kd(corpus, teacher, tmp_path / "cache"), tmp_path / "a").metrics["speed"]
    second = train(_kd(corpus, teacher, tmp_path / "cache"), tmp_path / "b").metrics["speed"]
    assert first["teacher"] == "cache" and first["teacher_cache"]["misses"] == 8
    assert second["teacher_cache"] == {**first["teacher_cache"], "hits": 8, "misses": 0}
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(
        str(tmp_path / "b" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    live = train(_kd(corpus, teacher, tmp_path / "cache", teacher_cache=False), tmp_path / "live")
    speed = live.metrics["speed"]
    assert speed["teacher"] == "live" and speed["teacher_cache"] is None
    c = load_file(str(tmp_path / "live" / "model.safetensors"))
    assert any(not torch.equal(a[k], c[k]) for k in a)  # dense targets: close, not identical


def test_sigkill_with_a_half_written_cache_then_resume_is_exact(tmp_path, corpus, teacher):  # noqa: F811
    cfg = _kd(corpus, teacher, tmp_path / "cache-straight", steps=12)
    train(cfg, tmp_path / "straight")
    killed_cfg = cfg.model_copy(update={"teacher_cache_dir": str(tmp_path / "cache-killed")})
    script = KILLER.format(cfg=repr(killed_cfg.model_dump()))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "killed")],
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert torch.load(tmp_path / "killed" / STATE_FILE, weights_only=True)["step"] == 8
    resumed = train(killed_cfg, tmp_path / "killed", resume=True).metrics["speed"]
    assert resumed["teacher_cache"]["misses"] == 2  # steps 10, 11; steps 8, 9 were cached
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("straight", "killed"))
    assert all(torch.equal(a[k], b[k]) for k in a)
