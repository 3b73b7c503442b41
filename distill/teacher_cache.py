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

Two runs may share a cache (issue 18): entries are written under an exclusive file lock on the
shard directory (`LOCK_FILE`, the kernel's flock, released if the writer dies) through a unique
temporary name and an atomic rename, so a reader sees a whole entry or none. Readers verify what
they read (the file parses, holds the three tensors in the shapes, dtypes and ranges an entry
has); a damaged entry is named in the log, recomputed and written again, never used. A run holds
its key's directory in use while it lives (contracts.caches.use), so `roi cache prune` never deletes
the entries of a running distillation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from torch import Tensor

from contracts.caches import WRITE_LOCK, cache_root, use, write_lock
from contracts.io import atomic_path

from .losses import TopKTeacher, topk_teacher

log = logging.getLogger(__name__)

CACHE_VERSION = 1
LOCK_FILE = WRITE_LOCK  # in each shard directory: held while an entry is written
LOGITS_DTYPE = torch.float16  # top-k raw logits: |z| ≲ 1e2, fp16 keeps ~3 significant digits


def default_root() -> Path:
    return cache_root() / "teacher-logits"


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
        self.dir = use(Path(root) / key) / f"rank{rank}"
        self.k, self.temperature = k, float(temperature)
        self.index_dtype = _index_dtype(vocab_size)
        self.hits = self.misses = self.damaged = 0

    def path(self, step: int, micro: int) -> Path:
        return self.dir / f"{step:07d}-{micro}.safetensors"

    def get(self, step: int, micro: int, device: torch.device,
            shape: tuple[int, int] | None = None) -> TopKTeacher | None:
        """The entry of (step, micro) if it is there and whole; None otherwise (a damaged one
        is named in the log and counted, then recomputed by the caller). `shape`: the (batch,
        positions) the entry must cover."""
        path = self.path(step, micro)
        if not path.is_file():
            return None
        t = self._read(path, shape)
        if t is None:
            return None
        self.hits += 1
        return self._decode(t, device)

    def _read(self, path: Path, shape: tuple[int, int] | None) -> dict[str, Tensor] | None:
        from safetensors.torch import load_file

        try:
            t = load_file(str(path))
            problem = self._check(t, shape)
        except Exception as e:  # noqa: BLE001 (any parse failure is a damaged file)
            problem = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        if problem is None:
            return t
        self.damaged += 1
        log.warning("teacher-logit cache entry %s is damaged (%s): recomputing it", path,
                    problem)
        return None

    def _check(self, t: dict[str, Tensor], shape: tuple[int, int] | None) -> str | None:
        """What is wrong with a parsed entry, or None."""
        if set(t) != {"logits", "indices", "residual"}:
            return f"tensors {sorted(t)}; expected indices, logits, residual"
        logits, indices, residual = t["logits"], t["indices"], t["residual"]
        if logits.dtype != LOGITS_DTYPE or indices.dtype != self.index_dtype or \
                residual.dtype != torch.float32:
            return "unexpected dtypes"
        if logits.dim() != 3 or logits.shape[-1] != self.k or indices.shape != logits.shape \
                or residual.shape != logits.shape[:2]:
            return f"shapes {tuple(logits.shape)}, {tuple(indices.shape)}, " \
                   f"{tuple(residual.shape)} for k={self.k}"
        if shape is not None and tuple(logits.shape[:2]) != tuple(shape):
            return f"covers {tuple(logits.shape[:2])}; the batch is {tuple(shape)}"
        if not bool(torch.isfinite(residual).all()) or bool((residual < -1e-3).any()) or \
                bool((residual > 1 + 1e-3).any()):
            return "residual mass outside [0, 1]"
        return None

    def put(self, step: int, micro: int, teacher: TopKTeacher) -> TopKTeacher:
        """Store an entry; return it as stored (so hits and misses compute the same loss)."""
        from safetensors.torch import save_file

        stored = {
            "logits": teacher.logits.detach().to("cpu", LOGITS_DTYPE).contiguous(),
            "indices": teacher.indices.detach().to("cpu", self.index_dtype).contiguous(),
            "residual": teacher.residual_mass.detach().to("cpu", torch.float32).contiguous(),
        }
        with write_lock(self.dir), atomic_path(self.path(step, micro)) as tmp:  # a unique temp name
            save_file(stored, str(tmp), metadata={"temperature": repr(self.temperature)})
        self.misses += 1
        return self._decode(stored, teacher.logits.device)

    def _decode(self, t: dict[str, Tensor], device: torch.device) -> TopKTeacher:
        return TopKTeacher(t["logits"].to(device, torch.float32),
                           t["indices"].to(device, torch.int64),
                           t["residual"].to(device, torch.float32), self.temperature)

    def stats(self) -> dict:
        return {"dir": str(self.dir), "k": self.k, "hits": self.hits, "misses": self.misses,
                "damaged": self.damaged}


class CachedTeacher:
    """The teacher's target for a micro-batch: from the cache, or computed live and cached."""

    def __init__(self, teacher: torch.nn.Module, cache: TeacherCache, autocast):
        self.teacher, self.cache, self.autocast = teacher, cache, autocast

    def __call__(self, x: Tensor, step: int, micro: int) -> TopKTeacher:
        hit = self.cache.get(step, micro, x.device, shape=tuple(x.shape[:2]))
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
