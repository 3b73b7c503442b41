"""Training data: real text that ships with Python, byte-level, split deterministically.

The default corpus is the Python standard library's own `.py` sources (tests, idlelib and
lib2to3 left out): ≈ 11 MB of real code on every machine with Python, so a byte-level
code-completion task needs no download. Users may pass their own .txt files or .jsonl files
(one JSON object per line, its text in `text_field`, default "text"). A single .jsonl file is
streamed, tokenized in batches and kept as memory-mapped arrays in the cache
(distill/token_cache.py), so a file larger than memory trains too.

Splits are by document, decided by a hash of the document's name and the split seed, so adding
a file never moves another file between train, validation and test.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from roi.config import read_text
from roi.errors import InputError

DOC_SEPARATOR = 0  # NUL never occurs in source text; it marks document boundaries
SPLITS = ("train", "val", "test")
_EXCLUDED_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "__pycache__"}


@dataclass(frozen=True)
class DataConfig:
    source: str = "stdlib"  # "stdlib", "pysrc:DIR" (a tree of .py files), or .txt/.jsonl paths
    val_fraction: float = 0.05  # share of documents held out for validation
    test_fraction: float = 0.05  # share held out for the final test
    split_seed: int = 0  # changes which documents land in which split
    tokenizer: str | None = None  # a Hugging Face tokenizer directory; None: bytes are tokens
    text_field: str = "text"  # the field of each .jsonl line that holds its document's text

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            if not 0.0 < v < 0.5:
                raise InputError(f"data.{name} must be in (0, 0.5), got {v!r}")


def stdlib_documents(root: Path | None = None) -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) for every stdlib .py file, in sorted order.

    `root` reads a copy of a standard library elsewhere (`pysrc:DIR`), so a machine with another
    Python version can train on exactly the same corpus, splits and fingerprint."""
    root = Path(sysconfig.get_paths()["stdlib"]) if root is None else root
    if not root.is_dir():
        raise InputError(f"data source pysrc:{root}: not a directory")
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if not _EXCLUDED_DIRS.intersection(rel.parts):
            yield str(rel), path.read_bytes()


def file_documents(paths: list[Path], text_field: str = "text") -> Iterator[tuple[str, bytes]]:
    for path in paths:
        if not path.is_file():
            raise InputError(f"data file {str(path)!r} does not exist")
        if path.suffix == ".jsonl":
            yield from ((name, text.encode("utf-8"))
                        for name, text in jsonl_documents(path, text_field))
        else:
            try:
                yield str(path), path.read_text(encoding="utf-8").encode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"data file {str(path)!r} is not UTF-8 text") from None


def jsonl_documents(path: Path, field: str = "text") -> Iterator[tuple[str, str]]:
    """(name, text) of each non-blank line of a JSONL file, read line by line (a file larger
    than memory is fine); a line that is not a JSON object with a string `field` is an
    InputError naming the line."""
    try:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if line.strip():
                    yield f"{path}:{i}", _text_of(line, field, f"{path}:{i}")
    except UnicodeDecodeError:
        raise InputError(f"data file {str(path)!r} is not UTF-8 text") from None


def _text_of(line: str, field: str, where: str) -> str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not JSON ({e.msg}, column {e.colno}); each line of a JSONL "
                         f"file must be an object with a \"{field}\" string") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: a JSON {type(obj).__name__}; each line must be an object "
                         f"with a \"{field}\" string")
    if field not in obj:
        keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
        raise InputError(f"{where}: no \"{field}\" field (its fields: {keys}); name the text "
                         "field with --text-field")
    if not isinstance(obj[field], str):
        raise InputError(f"{where}: \"{field}\" must be a string, got "
                         f"{type(obj[field]).__name__}")
    return obj[field]


def documents(cfg: DataConfig) -> Iterator[tuple[str, bytes]]:
    if cfg.source == "stdlib":
        return stdlib_documents()
    if cfg.source.startswith("pysrc:"):
        return stdlib_documents(Path(cfg.source.removeprefix("pysrc:")))
    return file_documents(source_files(cfg), cfg.text_field)


def source_files(cfg: DataConfig) -> list[Path]:
    """The files of a comma-separated source of .txt/.jsonl paths."""
    return [Path(p.strip()) for p in cfg.source.split(",") if p.strip()]


def split_of(name: str, cfg: DataConfig) -> str:
    """Which split a document belongs to: a stable hash of its name, not its position."""
    digest = hashlib.sha256(f"{cfg.split_seed}:{name}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < cfg.test_fraction:
        return "test"
    if u < cfg.test_fraction + cfg.val_fraction:
        return "val"
    return "train"


class HFTokens:
    """A Hugging Face tokenizer (local files only) as this module needs it: ids of a document,
    the separator between documents, and how many UTF-8 bytes each id stands for (so that bits
    per byte stay comparable with the byte-level default)."""

    def __init__(self, path: str):
        try:
            from transformers import AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise InputError(f"tokenizer {path!r}: cannot load it ({str(e).splitlines()[0]})"
                             ) from None
        self.vocab_size = len(self.tok)
        sep = self.tok.eos_token_id if self.tok.eos_token_id is not None else self.tok.sep_token_id
        self.separator = int(sep) if sep is not None else 0
        self.token_bytes = np.array([len(self.tok.decode([i]).encode("utf-8"))
                                     for i in range(self.vocab_size)], dtype=np.int64)

    def encode(self, data: bytes) -> list[int]:
        return self.tok(data.decode("utf-8", errors="replace"), add_special_tokens=False,
                        verbose=False)["input_ids"]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids of many documents in one call (a fast tokenizer encodes them in parallel)."""
        return self.tok(texts, add_special_tokens=False, verbose=False)["input_ids"]


@functools.lru_cache(maxsize=4)
def hf_tokens(path: str) -> HFTokens:
    """One HFTokens per tokenizer directory and process: splitting the corpus, the bits-per-byte
    table and the export's evaluation share it instead of loading it (and decoding every id)
    again."""
    return HFTokens(path)


def has_tokenizer(path: str | Path) -> bool:
    path = Path(path)
    return any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json",
                                              "vocab.json", "tokenizer.model"))


def build_splits(cfg: DataConfig) -> dict[str, np.ndarray]:
    """Token arrays per split, documents joined by a separator: bytes (uint8, DOC_SEPARATOR)
    by default, or a Hugging Face tokenizer's ids (int32, its end-of-text id). A single .jsonl
    file gives the same arrays, memory-mapped from the token cache (distill.token_cache)."""
    files = [] if cfg.source == "stdlib" or cfg.source.startswith("pysrc:") else \
        source_files(cfg)
    if len(files) == 1 and files[0].suffix == ".jsonl":
        from .token_cache import jsonl_splits

        return jsonl_splits(files[0], cfg)
    parts: dict[str, list[bytes]] = {s: [] for s in SPLITS}
    for name, data in documents(cfg):
        parts[split_of(name, cfg)].append(data)
    if cfg.tokenizer:
        tok = hf_tokens(cfg.tokenizer)
        out = {}
        for s, docs in parts.items():
            ids: list[int] = []
            for d in docs:
                ids += tok.encode(d) + [tok.separator]
            out[s] = np.asarray(ids[:-1], dtype=np.int32)
    else:
        sep = bytes([DOC_SEPARATOR])
        out = {s: np.frombuffer(sep.join(docs), dtype=np.uint8).copy()
               for s, docs in parts.items()}
    check_sizes({s: a.size for s, a in out.items()}, cfg.source)
    return out


def check_sizes(tokens: dict[str, int], source: str) -> None:
    """InputError when a split got under 1,024 tokens."""
    too_small = [s for s, n in tokens.items() if n < 1024]
    if too_small:
        raise InputError(
            f"data source {source!r} is too small: split(s) {', '.join(too_small)} got "
            "under 1,024 tokens; give more text or larger val/test fractions"
        )


def fingerprint(splits: dict[str, np.ndarray]) -> str:
    """A short hash of the split contents, recorded with every metric computed on them. Read
    in chunks: a memory-mapped split is hashed without being copied into memory whole."""
    h = hashlib.sha256()
    for s in SPLITS:
        h.update(s.encode())
        for i in range(0, splits[s].size, 1 << 24):
            h.update(np.ascontiguousarray(splits[s][i:i + (1 << 24)]).tobytes())
    return h.hexdigest()[:16]


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


def eval_windows(data: np.ndarray, block_size: int, max_windows: int) -> np.ndarray:
    """Non-overlapping windows over a held-out split, evenly spread, deterministic."""
    n = (data.size - 1) // block_size
    picks = np.linspace(0, n - 1, num=min(n, max_windows)).astype(np.int64)
    idx = picks[:, None] * block_size + np.arange(block_size + 1)[None, :]
    return data[idx].astype(np.int64)  # (N, T+1)


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
    for i, line in enumerate(read_text(path, "generated samples").splitlines(), 1):
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
