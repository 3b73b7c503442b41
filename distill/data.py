"""Training batches: random windows over the corpus (models/corpus.py) and over teacher
samples written by `roi generate`, positions from (seed, step, micro, rank) so a resumed run sees
the same batches."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contracts.config import jsonl_lines, read_text
from contracts.errors import InputError
from models.corpus import DOC_SEPARATOR, hf_tokens


class BatchSampler:
    """Random training windows whose positions depend only on (seed, step).

    Resuming at step k therefore sees exactly the batches an uninterrupted run would have seen,
    with no sampler state to save."""

    def __init__(self, data: np.ndarray, block_size: int, batch_size: int, seed: int):
        if data.size <= block_size + 1:
            raise InputError(f"training split has {data.size} bytes; need > {block_size + 1}")
        self.data, self.block, self.batch, self.seed = data, block_size, batch_size, seed

    def batch_at(self, step: int, micro: int = 0, rank: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, step, micro, rank])
        starts = rng.integers(0, self.data.size - self.block - 1, size=self.batch)
        idx = starts[:, None] + np.arange(self.block + 1)[None, :]
        windows = self.data[idx].astype(np.int64)  # (B, T+1)
        return windows[:, :-1], windows[:, 1:]


# --------------------------------------------------------------------------- generated data


@dataclass(frozen=True)
class GeneratedTokens:
    """Teacher samples (distill.generate) as one token array, samples joined by the separator,
    with a mask that is 1 where the teacher wrote the token (completions, and the separator
    after a completion that ended on its own) and 0 on the prompts the teacher was given."""

    tokens: np.ndarray  # (N,) uint8 bytes or int32 tokenizer ids
    teacher_wrote: np.ndarray  # (N,) bool
    samples: int
    source: str

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.tokens.tobytes())
        h.update(self.teacher_wrote.tobytes())
        return h.hexdigest()[:16]


def generated_samples_path(path: str | Path) -> Path:
    """A generation run directory (its samples.jsonl) or a samples .jsonl file."""
    path = Path(path)
    if path.is_dir():
        path = path / "samples.jsonl"
    if not path.is_file():
        raise InputError(f"generated_data: {str(path)!r} does not exist (expected a directory "
                         "written by roi generate, or its samples.jsonl)")
    return path


def load_generated(path: str | Path, tokenizer: str | None = None) -> GeneratedTokens:
    """Token array and teacher mask of every sample in a samples.jsonl (prompt + completion)."""
    path = generated_samples_path(path)
    tok = hf_tokens(tokenizer) if tokenizer else None
    sep = tok.separator if tok else DOC_SEPARATOR
    ids: list[int] = []
    mask: list[bool] = []
    n = 0
    for i, line in enumerate(jsonl_lines(read_text(path, "generated samples")), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            prompt, completion = rec["prompt"], rec["completion"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{path}:{i}: each line must be a sample with \"prompt\" and "
                             "\"completion\" strings (as roi generate writes)") from None
        p, c = ((tok.encode(t.encode("utf-8")) if tok else list(t.encode("utf-8")))
                for t in (prompt, completion))
        ids += p + c + [sep]
        mask += [False] * len(p) + [True] * len(c) + [rec.get("finish_reason") == "stop"]
        n += 1
    dtype = np.int32 if tok else np.uint8
    out = GeneratedTokens(np.asarray(ids, dtype=dtype), np.asarray(mask, dtype=bool), n, str(path))
    if not out.teacher_wrote.any():
        raise InputError(f"generated_data: {path} holds no teacher-written tokens "
                         f"({n} samples)")
    return out


class GeneratedSampler:
    """Random windows over teacher samples, positions from (seed, step, micro, rank) as in
    BatchSampler; labels the teacher did not write (prompt tokens) are IGNORE_INDEX, so the
    cross-entropy is on the teacher's own tokens: sequence-level distillation."""

    def __init__(self, data: GeneratedTokens, block_size: int, batch_size: int, seed: int):
        from .losses import IGNORE_INDEX

        if data.tokens.size <= block_size + 1:
            raise InputError(f"generated_data: {data.source} has {data.tokens.size} tokens; "
                             f"need > block_size + 1 = {block_size + 1} (generate more samples)")
        self.data, self.block, self.batch, self.seed = data, block_size, batch_size, seed
        self.ignore = IGNORE_INDEX

    def batch_at(self, step: int, micro: int = 0, rank: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, step, micro, rank, 1])
        starts = rng.integers(0, self.data.tokens.size - self.block - 1, size=self.batch)
        idx = starts[:, None] + np.arange(self.block + 1)[None, :]
        windows = self.data.tokens[idx].astype(np.int64)  # (B, T+1)
        y = np.where(self.data.teacher_wrote[idx[:, 1:]], windows[:, 1:], self.ignore)
        return windows[:, :-1], y


class MixedSampler:
    """A batch of `n_generated` rows of teacher samples and the rest from the corpus."""

    def __init__(self, corpus: BatchSampler, generated: GeneratedSampler):
        self.corpus, self.generated = corpus, generated

    def batch_at(self, step: int, micro: int = 0, rank: int = 0) -> tuple[np.ndarray, np.ndarray]:
        parts = [s.batch_at(step, micro, rank) for s in (self.generated, self.corpus)
                 if s.batch > 0]
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
