"""The corpus: real text that ships with Python, byte-level, split deterministically; what the
trainer (distill/) learns from and the quality gate (bench/gate.py) evaluates on.

The default corpus is the Python standard library's own `.py` sources (tests, idlelib and
lib2to3 left out): ≈ 11 MB of real code on every machine with Python, so a byte-level
code-completion task needs no download. Users may pass their own .txt files or data files of
rows (models.records: .jsonl, .csv, .parquet, or a directory written by `datasets`'
save_to_disk; each row's text in `text_field`, default "text"). A single data file is
streamed, tokenized in batches and kept as memory-mapped arrays in the cache
(the token cache below), so a file larger than memory trains too.

Splits are by document, decided by a hash of the document's name and the split seed, so adding
a file never moves another file between train, validation and test.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from contracts.caches import cache_root, use, write_lock
from contracts.errors import InputError
from contracts.io import atomic_path, write_json_atomic

from .records import is_record_file, texts

DOC_SEPARATOR = 0  # NUL never occurs in source text; it marks document boundaries
SPLITS = ("train", "val", "test")
_EXCLUDED_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "__pycache__"}


@dataclass(frozen=True)
class DataConfig:
    source: str = "stdlib"  # "stdlib", "pysrc:DIR" (a tree of .py files), or .txt/data paths
    val_fraction: float = 0.05  # share of documents held out for validation
    test_fraction: float = 0.05  # share held out for the final test
    split_seed: int = 0  # changes which documents land in which split
    tokenizer: str | None = None  # a Hugging Face tokenizer directory; None: bytes are tokens
    text_field: str = "text"  # the field (column) of each data row that holds its text

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
        if is_record_file(path):
            yield from ((name, text.encode("utf-8")) for name, text in texts(path, text_field))
        elif not path.is_file():
            raise InputError(f"data file {str(path)!r} does not exist")
        else:
            try:
                yield str(path), path.read_text(encoding="utf-8").encode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"data file {str(path)!r} is not UTF-8 text") from None


def documents(cfg: DataConfig) -> Iterator[tuple[str, bytes]]:
    if cfg.source == "stdlib":
        return stdlib_documents()
    if cfg.source.startswith("pysrc:"):
        return stdlib_documents(Path(cfg.source.removeprefix("pysrc:")))
    return file_documents(source_files(cfg), cfg.text_field)


def source_files(cfg: DataConfig) -> list[Path]:
    """The files of a comma-separated source of .txt and data-file paths."""
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
    by default, or a Hugging Face tokenizer's ids (int32, its end-of-text id). A single data
    file (JSONL, CSV, parquet, datasets) gives the same arrays, memory-mapped from the token
    cache (record_splits)."""
    files = [] if cfg.source == "stdlib" or cfg.source.startswith("pysrc:") else \
        source_files(cfg)
    if len(files) == 1 and is_record_file(files[0]):
        return record_splits(files[0], cfg)
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


def eval_windows(data: np.ndarray, block_size: int, max_windows: int) -> np.ndarray:
    """Non-overlapping windows over a held-out split, evenly spread, deterministic."""
    n = (data.size - 1) // block_size
    picks = np.linspace(0, n - 1, num=min(n, max_windows)).astype(np.int64)
    idx = picks[:, None] * block_size + np.arange(block_size + 1)[None, :]
    return data[idx].astype(np.int64)  # (N, T+1)


# ------------------------------------------------------------------------------ the token cache
#
# Training data from one data file as memory-mapped token arrays, built once and cached.
#
# The file is read row by row (models.records.texts: one document per row, its text in the
# configured field; parquet and Arrow files a batch of rows at a time), each document goes to
# the split split_of gives its name, as the corpus's documents do, and the documents of a split
# are tokenized in batches (BATCH_DOCS at a time, a Hugging Face tokenizer's batch call) and
# appended to that split's file, joined by the separator. So the arrays are exactly those build_splits makes in memory for the same file, and
# the data fingerprint (fingerprint, a hash of their content) changes with the file.
#
# An entry `tokens/<key>/` under the cache root (contracts.caches: listed and pruned by `roi cache`) holds
# train.bin, val.bin, test.bin (raw uint8 bytes or int32 ids) and meta.json, written last, so an
# entry with meta.json is whole. Its key covers the file's content (SHA-256), the path as given
# (document names, hence splits, contain it), the text field, the split settings and the
# tokenizer's files. Built under the entry's write lock: two runs on one file tokenize it once.

TOKENS_CACHE = "tokens"
TOKENS_VERSION = 1
BATCH_DOCS = 512  # documents per tokenizer call
META = "meta.json"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                    "tokenizer.model", "special_tokens_map.json")


def record_splits(path: Path, cfg: DataConfig) -> dict[str, np.ndarray]:
    """The token arrays of each split of data file `path` (models.records: JSONL, CSV, parquet,
    a datasets directory), memory-mapped (read-only)."""
    entry = use(cache_root() / TOKENS_CACHE / entry_key(path, cfg))
    arrays = _load(entry)
    if arrays is None:
        with write_lock(entry):
            arrays = _load(entry) or _build(path, cfg, entry)
    return arrays


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes; of a directory (a datasets one), of its files' names and
    digests."""
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode() + _file_digest(f).encode())
        return h.hexdigest()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tokenizer_digest(tokenizer: str | None) -> str:
    if tokenizer is None:
        return "bytes"
    h = hashlib.sha256()
    for name in _TOKENIZER_FILES:
        if (Path(tokenizer) / name).is_file():
            h.update(name.encode() + _file_digest(Path(tokenizer) / name).encode())
    return h.hexdigest()


def entry_key(path: Path, cfg: DataConfig) -> str:
    fields = {"version": TOKENS_VERSION, "file": _file_digest(path), "path": str(path),
              "text_field": cfg.text_field, "val": cfg.val_fraction, "test": cfg.test_fraction,
              "split_seed": cfg.split_seed, "tokenizer": _tokenizer_digest(cfg.tokenizer)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


def _load(entry: Path) -> dict[str, np.ndarray] | None:
    """The entry's arrays if it is whole (its meta.json written), else None."""
    if not (entry / META).is_file():
        return None
    meta = json.loads((entry / META).read_text())
    return {s: np.memmap(entry / f"{s}.bin", dtype=meta["dtype"], mode="r",
                         shape=(meta["tokens"][s],)) for s in SPLITS}


class _SplitWriter:
    """Appends documents' tokens to one split's file, the separator between documents."""

    def __init__(self, path: Path, dtype, separator: int):
        self.f = open(path, "wb")
        self.dtype, self.sep = dtype, np.array([separator], dtype=dtype)
        self.docs = self.tokens = 0

    def write(self, docs: list) -> None:
        parts = []
        for ids in docs:
            if self.docs:
                parts.append(self.sep)
            parts.append(np.asarray(ids, dtype=self.dtype))
            self.docs += 1
        if parts:
            block = np.concatenate(parts)
            self.f.write(block.tobytes())
            self.tokens += block.size


def _encoder(cfg: DataConfig):
    """(dtype, separator, texts -> list of token sequences) of the configured tokenizer."""
    if cfg.tokenizer is None:
        return np.uint8, DOC_SEPARATOR, lambda texts: [
            np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts]
    tok = hf_tokens(cfg.tokenizer)
    return np.int32, tok.separator, tok.encode_batch


def _build(path: Path, cfg: DataConfig, entry: Path) -> dict[str, np.ndarray]:
    """Tokenize the file into the entry; the caller holds its write lock. A bad line or too
    small a split raises InputError before meta.json is written (no .bin is left either)."""
    dtype, separator, encode = _encoder(cfg)
    with contextlib.ExitStack() as stack:
        tmps = {s: stack.enter_context(atomic_path(entry / f"{s}.bin")) for s in SPLITS}
        writers = {s: _SplitWriter(tmps[s], dtype, separator) for s in SPLITS}
        for w in writers.values():  # closed (flushed) before the temp files are renamed
            stack.callback(w.f.close)
        pending: dict[str, list[str]] = {s: [] for s in SPLITS}
        for name, text in texts(path, cfg.text_field):
            split = split_of(name, cfg)
            pending[split].append(text)
            if len(pending[split]) >= BATCH_DOCS:
                writers[split].write(encode(pending[split]))
                pending[split] = []
        for s, w in writers.items():
            w.write(encode(pending[s]) if pending[s] else [])
        check_sizes({s: w.tokens for s, w in writers.items()}, str(path))
    write_json_atomic(entry / META, {"dtype": np.dtype(dtype).name, "source": str(path),
                                     "text_field": cfg.text_field,
                                     "tokens": {s: w.tokens for s, w in writers.items()}})
    return _load(entry)
