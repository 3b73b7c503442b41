"""Training data from one JSONL file as memory-mapped token arrays, built once and cached.

The file is read line by line (distill.data.jsonl_documents: one document per line, its text in
the configured field), each document goes to the split distill.data.split_of gives its name, as
the corpus's documents do, and the documents of a split are tokenized in batches (BATCH_DOCS at a
time, a Hugging Face tokenizer's batch call) and appended to that split's file, joined by the
separator. So the arrays are exactly those build_splits makes in memory for the same file, and
the data fingerprint (distill.data.fingerprint, a hash of their content) changes with the file.

An entry `tokens/<key>/` under the cache root (roi.caches: listed and pruned by `roi cache`) holds
train.bin, val.bin, test.bin (raw uint8 bytes or int32 ids) and meta.json, written last, so an
entry with meta.json is whole. Its key covers the file's content (SHA-256), the path as given
(document names, hence splits, contain it), the text field, the split settings and the
tokenizer's files. Built under the entry's write lock: two runs on one file tokenize it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np

from roi.caches import cache_root, use, write_lock
from roi.io import atomic_path, write_json_atomic

from .data import DOC_SEPARATOR, SPLITS, DataConfig, check_sizes, hf_tokens, jsonl_documents, \
    split_of

TOKENS_CACHE = "tokens"
TOKENS_VERSION = 1
BATCH_DOCS = 512  # documents per tokenizer call
META = "meta.json"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                    "tokenizer.model", "special_tokens_map.json")


def jsonl_splits(path: Path, cfg: DataConfig) -> dict[str, np.ndarray]:
    """The token arrays of each split of JSONL file `path`, memory-mapped (read-only)."""
    entry = use(cache_root() / TOKENS_CACHE / entry_key(path, cfg))
    arrays = _load(entry)
    if arrays is None:
        with write_lock(entry):
            arrays = _load(entry) or _build(path, cfg, entry)
    return arrays


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
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
        for name, text in jsonl_documents(path, cfg.text_field):
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
