"""Rows of a user's data file, read one at a time whatever its format: what the trainer's text
corpus (models/corpus.py) and the encoder trainer's labeled data read.

Formats, by the path:
- `.jsonl`: one JSON object per line (blank lines skipped), read line by line;
- `.csv`: a header row, then one row per record (the standard library's csv reader);
- `.parquet`: read a batch of rows at a time, only the named columns (needs pyarrow, the
  `data` extra);
- a directory written by Hugging Face `datasets` (`Dataset.save_to_disk`: state.json beside
  Arrow stream files), read with pyarrow without the `datasets` package; a DatasetDict's
  directory names its splits and asks for one.

Each row is named `PATH:N` (N its line number in a JSONL file, its 1-based row otherwise), so a
bad row is reported where it is, and the corpus splits documents by that name.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

from contracts.errors import InputError

FORMATS = ".jsonl, .csv, .parquet, or a directory written by datasets' save_to_disk"
BATCH_ROWS = 4096  # rows per Arrow batch read from parquet
DATA_EXTRA = "pip install 'distill-roi[data]'"


def is_record_file(path: Path) -> bool:
    """Whether `path` is one of the row formats (not a plain .txt document)."""
    return path.suffix in (".jsonl", ".csv", ".parquet") or path.is_dir()


def rows(path: Path, columns: dict[str, str], optional: dict[str, str] | None = None
         ) -> Iterator[tuple[str, dict]]:
    """(name, {role: value}) of each row of the data file at `path`. `columns` maps each role
    the caller needs (text, pair, label) to the column that holds it: a row without one is an
    InputError naming the row, the column, the fields it has and the option that names it
    (--ROLE-field); the roles of `optional` are left out of a row that lacks them."""
    optional = optional or {}
    wanted = [*columns.values(), *optional.values()]
    if path.is_dir():
        reader = _dataset_rows(path, columns, wanted)
    elif not path.is_file():
        raise InputError(f"data file {str(path)!r} does not exist")
    elif path.suffix == ".jsonl":
        reader = _jsonl_rows(path, next(iter(columns.values()), "text"))
    elif path.suffix == ".csv":
        reader = _csv_rows(path)
    elif path.suffix == ".parquet":
        reader = _parquet_rows(path, columns, wanted)
    else:
        raise InputError(f"data file {str(path)!r}: unknown format {path.suffix or '(none)'}; "
                         f"allowed: {FORMATS}")
    for name, row in reader:
        for role, col in columns.items():
            if col not in row:
                keys = ", ".join(sorted(map(str, row))[:8]) or "none"
                raise InputError(f"{name}: no \"{col}\" field (its fields: {keys}); name the "
                                 f"{role} field with --{role}-field")
        yield name, {role: row[col] for role, col in (*columns.items(), *optional.items())
                     if col in row}


def texts(path: Path, field: str = "text") -> Iterator[tuple[str, str]]:
    """(name, text) of each row: column `field` must hold a string."""
    for name, row in rows(path, {"text": field}):
        if not isinstance(row["text"], str):
            raise InputError(f"{name}: \"{field}\" must be a string, got "
                             f"{type(row['text']).__name__}")
        yield name, row["text"]


def _jsonl_rows(path: Path, first: str) -> Iterator[tuple[str, dict]]:
    try:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if line.strip():
                    yield f"{path}:{i}", _object(line, f"{path}:{i}", first)
    except UnicodeDecodeError:
        raise InputError(f"data file {str(path)!r} is not UTF-8 text") from None


def _object(line: str, where: str, first: str) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not JSON ({e.msg}, column {e.colno}); each line of a JSONL "
                         f"file must be an object with a \"{first}\" string") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: a JSON {type(obj).__name__}; each line must be an object "
                         f"with a \"{first}\" string")
    return obj


def _csv_rows(path: Path) -> Iterator[tuple[str, dict]]:
    csv.field_size_limit(1 << 30)  # documents longer than csv's 128 KB default field
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                raise InputError(f"data file {str(path)!r}: no header row; a CSV file's first "
                                 "row names its columns")
            for i, row in enumerate(reader, 1):
                yield f"{path}:{i}", {k: v for k, v in row.items() if k is not None}
    except UnicodeDecodeError:
        raise InputError(f"data file {str(path)!r} is not UTF-8 text") from None
    except csv.Error as e:
        raise InputError(f"data file {str(path)!r}: not CSV ({e})") from None


def _pyarrow(what: str):
    try:
        import pyarrow
    except ModuleNotFoundError:
        raise InputError(f"reading {what} needs pyarrow, the data extra: {DATA_EXTRA}") from None
    return pyarrow


def _parquet_rows(path: Path, columns: dict[str, str], wanted: list[str]) -> Iterator[
        tuple[str, dict]]:
    _pyarrow(f"{str(path)!r} (parquet)")
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid and OSError subclasses alike
        raise InputError(f"data file {str(path)!r}: not a parquet file ({e})") from None
    have = _columns(path, pf.schema_arrow.names, columns, wanted)
    yield from _batch_rows(path, pf.iter_batches(batch_size=BATCH_ROWS, columns=have))


def _columns(path: Path, names: list[str], columns: dict[str, str], wanted: list[str]
             ) -> list[str]:
    """The columns to read of a columnar file whose columns are `names`; a missing one is an
    InputError listing the columns it has."""
    for role, col in columns.items():
        if col not in names:
            raise InputError(f"data {str(path)!r}: no \"{col}\" column (its columns: "
                             f"{', '.join(names[:8]) or 'none'}); name the {role} field with "
                             f"--{role}-field")
    return [c for c in dict.fromkeys(wanted) if c in names]


def _batch_rows(path: Path, batches) -> Iterator[tuple[str, dict]]:
    i = 0
    for batch in batches:
        for row in batch.to_pylist():
            i += 1
            yield f"{path}:{i}", row


def _dataset_rows(path: Path, columns: dict[str, str], wanted: list[str]) -> Iterator[
        tuple[str, dict]]:
    """Rows of a `datasets` save_to_disk directory: its state.json lists the Arrow stream files
    in order."""
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
        raise InputError(f"data {str(path)!r} is a DatasetDict (splits: {', '.join(splits)}); "
                         f"name one split's directory, e.g. {str(path / (splits or ['train'])[0])}")
    state = path / "state.json"
    if not state.is_file():
        raise InputError(f"data {str(path)!r} is a directory without state.json; allowed: "
                         f"{FORMATS}")
    pa = _pyarrow(f"{str(path)!r} (a datasets directory)")
    try:
        files = [path / f["filename"] for f in json.loads(state.read_text())["_data_files"]]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"data {str(path)!r}: state.json has no readable _data_files "
                         f"({type(e).__name__}: {e})") from None
    for f in files:
        if f.parent != path or not f.is_file():
            raise InputError(f"data {str(path)!r}: state.json names {f.name!r}, not a file of "
                             "the directory")
    yield from _batch_rows(path, _stream_batches(pa, path, files, columns, wanted))


def _stream_batches(pa, path: Path, files: list[Path], columns, wanted):
    """The record batches of the Arrow stream files, only the columns named."""
    for f in files:
        with pa.memory_map(str(f)) as source:
            try:
                reader = pa.ipc.open_stream(source)
            except pa.ArrowInvalid as e:
                raise InputError(f"data file {str(f)!r}: not an Arrow stream ({e})") from None
            have = _columns(path, reader.schema.names, columns, wanted)
            for batch in reader:
                yield batch.select(have)
