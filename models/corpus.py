"""The corpus: real text that ships with Python, byte-level, split deterministically; what the
trainer (distill/) learns from and the quality gate (bench/gate.py) evaluates on.

The default corpus is the Python standard library's own `.py` sources (tests, idlelib and
lib2to3 left out): ≈ 11 MB of real code on every machine with Python, so a byte-level
code-completion task needs no download. Users may pass their own .txt files or .jsonl files
(one {"text": ...} object per line).

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

from contracts.config import read_text
from contracts.errors import InputError

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


def file_documents(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    for path in paths:
        if not path.is_file():
            raise InputError(f"data file {str(path)!r} does not exist")
        if path.suffix == ".jsonl":
            yield from _jsonl_documents(path)
        else:
            try:
                yield str(path), path.read_text(encoding="utf-8").encode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"data file {str(path)!r} is not UTF-8 text") from None


def _jsonl_documents(path: Path) -> Iterator[tuple[str, bytes]]:
    for i, line in enumerate(read_text(path, "data").splitlines(), 1):
        if not line.strip():
            continue
        try:
            text = json.loads(line)["text"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(
                f"{path}:{i}: each JSONL line must be an object with a \"text\" string"
            ) from None
        if not isinstance(text, str):
            raise InputError(f"{path}:{i}: \"text\" must be a string, got {type(text).__name__}")
        yield f"{path}:{i}", text.encode("utf-8")


def documents(cfg: DataConfig) -> Iterator[tuple[str, bytes]]:
    if cfg.source == "stdlib":
        return stdlib_documents()
    if cfg.source.startswith("pysrc:"):
        return stdlib_documents(Path(cfg.source.removeprefix("pysrc:")))
    return file_documents([Path(p.strip()) for p in cfg.source.split(",") if p.strip()])


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
    by default, or a Hugging Face tokenizer's ids (int32, its end-of-text id)."""
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
    too_small = [s for s, a in out.items() if a.size < 1024]
    if too_small:
        raise InputError(
            f"data source {cfg.source!r} is too small: split(s) {', '.join(too_small)} got "
            "under 1,024 tokens; give more text or larger val/test fractions"
        )
    return out


def fingerprint(splits: dict[str, np.ndarray]) -> str:
    """A short hash of the split contents, recorded with every metric computed on them."""
    h = hashlib.sha256()
    for s in SPLITS:
        h.update(s.encode())
        h.update(splits[s].tobytes())
    return h.hexdigest()[:16]


def eval_windows(data: np.ndarray, block_size: int, max_windows: int) -> np.ndarray:
    """Non-overlapping windows over a held-out split, evenly spread, deterministic."""
    n = (data.size - 1) // block_size
    picks = np.linspace(0, n - 1, num=min(n, max_windows)).astype(np.int64)
    idx = picks[:, None] * block_size + np.arange(block_size + 1)[None, :]
    return data[idx].astype(np.int64)  # (N, T+1)
