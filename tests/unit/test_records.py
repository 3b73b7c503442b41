"""models/records.py: rows of JSONL, CSV, parquet and `datasets` directories read the same way,
and the corpus's token cache built from each; bad files refused in one line."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contracts.errors import InputError
from models.corpus import DataConfig, build_splits
from models.records import rows, texts

ROWS = [{"text": f"def f{i}(x):\n    return x * {i}  # é\n" * (1 + i % 7), "label": i % 3,
         "pair": f"query {i}"} for i in range(300)]


def _jsonl(path, records=ROWS):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _csv(path, records=ROWS):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    return path


def _parquet(path, records=ROWS):
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=64)
    return path


def _dataset_dir(path, records=ROWS, shards=2):
    """A directory as `datasets`' Dataset.save_to_disk writes it: Arrow *stream* shards named
    data-XXXXX-of-YYYYY.arrow, listed in order in state.json's _data_files, beside
    dataset_info.json (read from the datasets source: arrow_dataset.py save_to_disk)."""
    path.mkdir()
    table = pa.Table.from_pylist(records)
    step = -(-len(records) // shards)
    files = []
    for i in range(shards):
        name = f"data-{i:05d}-of-{shards:05d}.arrow"
        with pa.OSFile(str(path / name), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.slice(i * step, step), max_chunksize=50)
        files.append({"filename": name})
    (path / "state.json").write_text(json.dumps({"_data_files": files, "_fingerprint": "x",
                                                 "_format_type": None, "_split": None}))
    (path / "dataset_info.json").write_text(json.dumps({"features": {}}))
    return path


WRITERS = {"jsonl": lambda d: _jsonl(d / "d.jsonl"), "csv": lambda d: _csv(d / "d.csv"),
           "parquet": lambda d: _parquet(d / "d.parquet"),
           "datasets": lambda d: _dataset_dir(d / "saved")}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_every_format_gives_the_same_rows_in_order(tmp_path, kind):
    path = WRITERS[kind](tmp_path)
    got = list(rows(path, {"text": "text"}, {"pair": "pair", "label": "label"}))
    assert [name for name, _ in got][:2] == [f"{path}:1", f"{path}:2"]
    assert [r["text"] for _, r in got] == [r["text"] for r in ROWS]
    assert [r["pair"] for _, r in got] == [r["pair"] for r in ROWS]
    labels = [r["label"] for _, r in got]  # CSV has no types: its labels are strings
    assert labels == [str(r["label"]) if kind == "csv" else r["label"] for r in ROWS]


@pytest.mark.parametrize("kind", list(WRITERS))
def test_the_token_cache_holds_the_same_text_whatever_the_format(tmp_path, kind, monkeypatch):
    monkeypatch.setenv("ROI_CACHE_DIR", str(tmp_path / "cache"))
    path = WRITERS[kind](tmp_path)
    cfg = DataConfig(source=str(path), val_fraction=0.1, test_fraction=0.1)
    splits = build_splits(cfg)
    assert all(isinstance(a, np.memmap) for a in splits.values())  # the cached, mapped arrays
    total = sum(a.size for a in splits.values())
    separators = len(ROWS) - 3  # one between each two documents of a split
    assert total == sum(len(r["text"].encode()) for r in ROWS) + separators
    again = build_splits(cfg)
    assert all(np.array_equal(splits[s], again[s]) for s in splits)


def test_a_missing_column_is_one_line_naming_what_there_is(tmp_path):
    cases = {_jsonl(tmp_path / "a.jsonl"): f"{tmp_path / 'a.jsonl'}:1: no \"body\" field "
             "(its fields: label, pair, text); name the text field with --text-field",
             _csv(tmp_path / "a.csv"): f"{tmp_path / 'a.csv'}:1: no \"body\" field (its fields: "
             "label, pair, text); name the text field with --text-field",
             _parquet(tmp_path / "a.parquet"): f"data '{tmp_path / 'a.parquet'}': no \"body\" "
             "column (its columns: text, label, pair); name the text field with --text-field",
             _dataset_dir(tmp_path / "ds"): f"data '{tmp_path / 'ds'}': no \"body\" column (its "
             "columns: text, label, pair); name the text field with --text-field"}
    for path, message in cases.items():
        with pytest.raises(InputError) as e:
            list(texts(path, "body"))
        assert str(e.value) == message


def test_a_label_column_is_named_by_its_role(tmp_path):
    with pytest.raises(InputError, match="no \"y\" field .* name the label field with "
                                         "--label-field"):
        list(rows(_jsonl(tmp_path / "a.jsonl"), {"text": "text", "label": "y"}))
    got = next(rows(_jsonl(tmp_path / "b.jsonl"), {"text": "text"}, {"label": "y"}))[1]
    assert got == {"text": ROWS[0]["text"]}  # an optional role the row lacks is left out


def test_bad_files_are_refused_in_one_line(tmp_path):
    (tmp_path / "x.tsv").write_text("a\tb\n")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "plain").mkdir()
    dd = tmp_path / "dd"
    dd.mkdir()
    (dd / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    cases = [(tmp_path / "x.tsv", "unknown format .tsv; allowed: .jsonl, .csv, .parquet"),
             (tmp_path / "bad.parquet", "not a parquet file"),
             (tmp_path / "empty.csv", "no header row"),
             (tmp_path / "plain", "a directory without state.json"),
             (dd, "is a DatasetDict (splits: train, test); name one split's directory, e.g. "
                  f"{dd / 'train'}"),
             (tmp_path / "missing.csv", "does not exist")]
    for path, needle in cases:
        with pytest.raises(InputError) as e:
            list(texts(path))
        assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_state_file_cannot_point_outside_its_directory(tmp_path):
    ds = _dataset_dir(tmp_path / "ds")
    (tmp_path / "elsewhere.arrow").write_bytes(b"")
    (ds / "state.json").write_text(json.dumps({"_data_files": [{"filename":
                                                               "../elsewhere.arrow"}]}))
    with pytest.raises(InputError, match="not a file of the directory"):
        list(texts(ds))


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    path = _parquet(tmp_path / "a.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InputError) as e:
        list(texts(path))
    assert str(e.value) == (f"reading '{path}' (parquet) needs pyarrow, the data extra: "
                            "pip install 'distill-roi[data]'")


def test_roi_pilot_names_a_missing_column_of_a_datasets_directory(tmp_path, monkeypatch,
                                                                   capsys):
    from app.cli import main

    monkeypatch.setenv("ROI_CACHE_DIR", str(tmp_path / "cache"))
    data = _dataset_dir(tmp_path / "saved")
    assert main(["pilot", "--data", str(data), "--text-field", "body", "--steps", "4",
                 "--out", str(tmp_path / "p")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: data '{data}': no \"body\" column (its columns: text, label, pair); name the "
        "text field with --text-field"]
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())
    assert not list((tmp_path / "cache").rglob("*.bin"))  # nothing half-written in the cache


def test_the_encoder_reads_its_labeled_data_from_parquet(tmp_path):
    from distill.encoder_data import Fields, file_data

    data = file_data(str(_parquet(tmp_path / "d.parquet")), Fields("text", None, "label"),
                     "embedding", [])
    assert sum(len(t) for t in data.texts.values()) == len(ROWS)
    assert sorted(data.classes) == ["0", "1", "2"]  # the label column's values: proxy classes
    assert all(y in (0, 1, 2) for ys in data.labels.values() for y in ys)
    with pytest.raises(InputError, match="a .txt file; expected .jsonl, .csv, .parquet"):
        file_data(str(tmp_path / "x.txt") if (tmp_path / "x.txt").write_text("x") else "",
                  Fields(), "embedding", [])
