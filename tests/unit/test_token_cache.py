"""One JSONL file as training data: streamed, tokenized in batches into memory-mapped arrays
in the cache (models.corpus, its token cache), the same arrays the in-memory corpus path makes; its data
fingerprint changes with the file; a bad line is one line naming it; roi pilot --data refuses
it with exit 2 before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from contracts.errors import InputError
from models import corpus as token_cache
from models.corpus import (
    DOC_SEPARATOR,
    SPLITS,
    DataConfig,
    build_splits,
    documents,
    fingerprint,
    hf_tokens,
    split_of,
)
from app.cli import main


def _write(path: Path, n: int = 300, field: str = "text", extra: str = "") -> Path:
    lines = [json.dumps({field: f"def f{i}():\n    return {i}{extra}\n" * 12, "id": i})
             for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _in_memory(cfg: DataConfig) -> dict[str, np.ndarray]:
    """What the corpus's in-memory path makes for this source: each document encoded on its
    own (bytes, or the tokenizer one document at a time), joined by the separator."""
    tok = hf_tokens(cfg.tokenizer) if cfg.tokenizer else None
    sep = tok.separator if tok else DOC_SEPARATOR
    parts: dict[str, list[int]] = {s: [] for s in SPLITS}
    for name, data in documents(cfg):
        ids = parts[split_of(name, cfg)]
        ids += ([sep] if ids else []) + (tok.encode(data) if tok else list(data))
    return {s: np.asarray(ids, dtype=np.int32 if tok else np.uint8) for s, ids in parts.items()}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ROI_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / token_cache.TOKENS_CACHE


def test_jsonl_is_memory_mapped_and_equal_to_the_in_memory_split(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(token_cache, "BATCH_DOCS", 7)  # many batches, a partial one at the end
    cfg = DataConfig(source=str(_write(tmp_path / "d.jsonl")), val_fraction=0.1,
                     test_fraction=0.1)
    got = build_splits(cfg)
    assert all(isinstance(a, np.memmap) and a.dtype == np.uint8 for a in got.values())
    want = _in_memory(cfg)
    for s in SPLITS:
        np.testing.assert_array_equal(got[s], want[s])
    assert fingerprint(got) == fingerprint(want)
    entry = next(cache.iterdir())
    assert sorted(p.name for p in entry.iterdir() if not p.name.startswith(".")) == [
        "meta.json", "test.bin", "train.bin", "val.bin"]


def test_a_second_read_uses_the_cache_and_the_fingerprint_follows_the_file(tmp_path, cache,
                                                                          monkeypatch):
    path = _write(tmp_path / "d.jsonl")
    cfg = DataConfig(source=str(path), val_fraction=0.1, test_fraction=0.1)
    first = fingerprint(build_splits(cfg))

    def no_build(*args):
        raise AssertionError("tokenized again")

    with monkeypatch.context() as m:
        m.setattr(token_cache, "_build", no_build)
        assert fingerprint(build_splits(cfg)) == first
    _write(path, extra=" + 1")  # the file changes: a new entry, a new fingerprint
    assert fingerprint(build_splits(cfg)) != first
    assert len(list(cache.iterdir())) == 2


def test_the_text_field_is_chosen(tmp_path, cache):
    by_text = _write(tmp_path / "a.jsonl")
    by_body = _write(tmp_path / "b.jsonl", field="body")
    a = build_splits(DataConfig(source=str(by_text), val_fraction=0.1, test_fraction=0.1))
    b = build_splits(DataConfig(source=str(by_body), val_fraction=0.1, test_fraction=0.1,
                                text_field="body"))
    assert sum(x.size for x in a.values()) == sum(x.size for x in b.values())


@pytest.mark.parametrize("line, message", [
    ("not json", "{path}:3: not JSON (Expecting value, column 1); each line of a JSONL file "
                 "must be an object with a \"text\" string"),
    ('{"body": "x", "id": 1}', "{path}:3: no \"text\" field (its fields: body, id); name the "
                               "text field with --text-field"),
    ('[1, 2]', "{path}:3: a JSON list; each line must be an object with a \"text\" string"),
    ('{"text": 3}', "{path}:3: \"text\" must be a string, got int"),
])
def test_a_bad_line_is_named_and_nothing_is_cached(tmp_path, cache, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n' + line + "\n")
    with pytest.raises(InputError) as e:
        build_splits(DataConfig(source=str(path)))
    assert str(e.value) == message.format(path=path)
    assert [p for p in cache.rglob("*") if p.suffix in (".bin", ".json", ".tmp")] == []


def test_hugging_face_ids_are_encoded_in_batches_as_one_by_one(tmp_path, cache, monkeypatch):
    transformers = pytest.importorskip("transformers")
    from tokenizers import ByteLevelBPETokenizer

    path = _write(tmp_path / "d.jsonl")
    texts = [json.loads(x)["text"] for x in path.read_text().splitlines()]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=300, special_tokens=["<|endoftext|>"])
    transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>"
                                         ).save_pretrained(tmp_path / "tok")
    monkeypatch.setattr(token_cache, "BATCH_DOCS", 16)
    cfg = DataConfig(source=str(path), val_fraction=0.1, test_fraction=0.1,
                     tokenizer=str(tmp_path / "tok"))
    got = build_splits(cfg)
    assert got["train"].dtype == np.int32 and isinstance(got["train"], np.memmap)
    want = _in_memory(cfg)
    for s in SPLITS:
        np.testing.assert_array_equal(got[s], want[s])


def test_roi_pilot_refuses_a_bad_data_file_in_one_line(tmp_path, cache, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"body": "x"}\n')
    out = tmp_path / "pilot"
    code = main(["pilot", "--data", str(path), "--text-field", "text", "--steps", "4",
                 "--students", "builtin:student-50x", "--out", str(out)])
    assert code == 2
    # one line (after the blank one the pilot's progress display leaves on closing)
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {path}:1: no \"text\" field (its fields: body); name the text field with "
        "--text-field"]
    assert not out.exists() or not any(out.iterdir())


def test_an_empty_text_field_is_refused(capsys):
    assert main(["pilot", "--text-field", " ", "--steps", "4"]) == 2
    assert capsys.readouterr().err == "error: --text-field: must name a field; got an empty " \
                                      "string\n"
