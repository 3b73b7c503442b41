"""Teacher-logit cache: the teacher's top-k logits and the probability mass left outside them,
per position, written once to disk and reused by every later run that sees the same batches.

Why top-k: a dense (B, T, V) fp32 target is V × 4 bytes per position; k raw logits in fp16, their
class ids and one fp32 residual are k × 3 + 4 bytes (k = 32, V = 256: 100 B instead of 1 KiB),
and the KD losses take the top-k form exactly over k + 1 buckets (`distill.losses.TopKTeacher`).

What a cache entry is keyed by (`cache_key`): the teacher's content hash, the data fingerprint, k,
the temperature (the residual mass is computed at it), the teacher's precision, and the batch
stream (block size, batch size, seed). One file per (rank, step, micro-batch) under
`<root>/<key>/rank<r>/`: steps are the unit, so a longer run extends the cache of a shorter one,
a killed run keeps what it wrote, and under DDP each rank writes and reads only its own shard.

A missing entry is computed live, stored, and then read back in its stored precision, so a run
gives the same losses whether its entries were hits or misses (a resumed run matches an
uninterrupted one bit for bit).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import Tensor

from roi.io import atomic_path

from .losses import TopKTeacher, topk_teacher

CACHE_VERSION = 1
LOGITS_DTYPE = torch.float16  # top-k raw logits: |z| ≲ 1e2, fp16 keeps ~3 significant digits


def default_root() -> Path:
    base = os.environ.get("ROI_CACHE_DIR") or Path.home() / ".cache" / "roi"
    return Path(base) / "teacher-logits"


def cache_key(*, teacher_hash: str, data_fingerprint: str, k: int, temperature: float,
              dtype: str, block_size: int, batch_size: int, seed: int) -> str:
    fields = {"version": CACHE_VERSION, "teacher": teacher_hash, "data": data_fingerprint, "k": k,
              "temperature": float(temperature), "dtype": dtype, "block_size": block_size,
              "batch_size": batch_size, "seed": seed}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]
    return f"k{k}-T{float(temperature):g}-{digest}"


def _index_dtype(vocab: int) -> torch.dtype:
    return torch.uint8 if vocab <= 256 else torch.int16 if vocab <= 32767 else torch.int32


class TeacherCache:
    """Reads and writes the top-k entries of one (key, rank); counts hits and misses."""

    def __init__(self, root: str | Path, key: str, k: int, temperature: float, vocab_size: int,
                 rank: int = 0):
        self.dir = Path(root) / key / f"rank{rank}"
        self.k, self.temperature = k, float(temperature)
        self.index_dtype = _index_dtype(vocab_size)
        self.hits = self.misses = 0

    def path(self, step: int, micro: int) -> Path:
        return self.dir / f"{step:07d}-{micro}.safetensors"

    def get(self, step: int, micro: int, device: torch.device) -> TopKTeacher | None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.path(step, micro)
        if not path.is_file():
            return None
        try:
            t = load_file(str(path))
        except (SafetensorError, OSError):  # a torn file cannot exist (atomic writes); be safe
            return None
        self.hits += 1
        return self._decode(t, device)

    def put(self, step: int, micro: int, teacher: TopKTeacher) -> TopKTeacher:
        """Store an entry; return it as stored (so hits and misses compute the same loss)."""
        from safetensors.torch import save_file

        stored = {
            "logits": teacher.logits.detach().to("cpu", LOGITS_DTYPE).contiguous(),
            "indices": teacher.indices.detach().to("cpu", self.index_dtype).contiguous(),
            "residual": teacher.residual_mass.detach().to("cpu", torch.float32).contiguous(),
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path(step, micro)) as tmp:
            save_file(stored, str(tmp), metadata={"temperature": repr(self.temperature)})
        self.misses += 1
        return self._decode(stored, teacher.logits.device)

    def _decode(self, t: dict[str, Tensor], device: torch.device) -> TopKTeacher:
        return TopKTeacher(t["logits"].to(device, torch.float32),
                           t["indices"].to(device, torch.int64),
                           t["residual"].to(device, torch.float32), self.temperature)

    def stats(self) -> dict:
        return {"dir": str(self.dir), "k": self.k, "hits": self.hits, "misses": self.misses}


class CachedTeacher:
    """The teacher's target for a micro-batch: from the cache, or computed live and cached."""

    def __init__(self, teacher: torch.nn.Module, cache: TeacherCache, autocast):
        self.teacher, self.cache, self.autocast = teacher, cache, autocast

    def __call__(self, x: Tensor, step: int, micro: int) -> TopKTeacher:
        hit = self.cache.get(step, micro, x.device)
        if hit is not None:
            return hit
        with torch.no_grad(), self.autocast(x.device.type):
            logits = self.teacher(x)
        top = topk_teacher(logits.float(), self.cache.k, temperature=self.cache.temperature)
        return self.cache.put(step, micro, top)


class LiveTeacher:
    """Dense teacher logits computed on every step (the `teacher_cache: false` path)."""

    def __init__(self, teacher: torch.nn.Module, autocast):
        self.teacher, self.autocast = teacher, autocast

    def __call__(self, x: Tensor, step: int, micro: int) -> Tensor:
        with torch.no_grad(), self.autocast(x.device.type):
            return self.teacher(x)
