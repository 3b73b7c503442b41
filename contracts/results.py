"""The results table (bench -> roi): one row per configuration, kept as results.jsonl and
results.csv; its columns, statuses and raw-sample layout, its one writer and its one reader.

results.jsonl is the source of truth; results.csv is rewritten beside it. Every append rewrites
both atomically (temp file + os.replace), so an interrupted sweep leaves complete files that
`--resume` continues from. Raw per-call samples go to raw/<row_id>.npz (numpy, no pickle).
A user may write the same table by hand; the planner reads either with `read_table`.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .io import atomic_path, write_text_atomic

KEY_COLUMNS = ("model", "role", "backend", "device", "dtype", "batch_size", "seq_len", "threads")
MEASURED_COLUMNS = (
    "status", "error", "source",
    "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99",
    "latency_ms_mean", "latency_ms_std", "latency_ms_min", "latency_ms_max", "latency_ms_cv",
    "n_calls", "throughput_samples_s", "throughput_tokens_s", "ttft_ms", "tpot_ms",
    "decode_mode",
    "peak_rss_mb", "rss_start_mb", "peak_gpu_mb", "params", "n_layers", "flops_per_sample",
    "weight_bytes",
    "after_idle_ms_p50", "after_idle_ms_mean", "after_idle_n", "after_idle_gap_ms",
    "load_s", "cold_ms", "rounds", "model_family", "export_method", "export_rel_err", "memory_method",
    "row_id",
)
# interrupted: a load test cut short by Ctrl-C (bench/interrupt.py), kept as a partial row
STATUSES = ("ok", "oom", "error", "timeout", "skipped", "interrupted")
# A load test (source = loadgen, bench/loadgen.py) of one configuration may run several times,
# at different scenarios and rates: those columns join the key, so its rows never replace the
# configuration's single-call measurement or one another.
LOADGEN_KEY_COLUMNS = ("loadgen_scenario", "loadgen_mode", "loadgen_target_qps",
                       "loadgen_latency_bound_ms")
JSONL, CSV, RAW_DIR = "results.jsonl", "results.csv", "raw"
IMPORTED = "imported"  # source of rows `roi import` wrote from another tool's results


def row_id(key: tuple) -> str:
    return hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()[:16]


def is_loadgen(row: dict) -> bool:
    return row.get("source") == "loadgen"


def row_key(row: dict) -> tuple:
    """A row's identity: the key columns, plus the load-test settings for loadgen rows and the
    catalog hardware for rows `roi import` took from another tool (source imported), so the
    same configuration imported from two machines keeps both."""
    key = tuple(row[c] for c in KEY_COLUMNS)
    if is_loadgen(row):
        key += ("loadgen", *(row.get(c) for c in LOADGEN_KEY_COLUMNS))
    elif row.get("source") == IMPORTED:
        key += ("imported", row.get("hardware"))
    return key


def _clean(value):
    """JSON has no NaN: store missing figures as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def read_rows(path: Path) -> list[dict]:
    """The rows of a results.jsonl; a damaged file (binary, a torn or foreign line) is one
    InputError naming it and the line, never a traceback and never silently half-read."""
    from .config import jsonl_lines, read_text

    rows = []
    for i, line in enumerate(jsonl_lines(read_text(path, "results")), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{i}: damaged results row (not a JSON object); move the "
                             "file away to start the sweep over, or choose another --out")
        rows.append(row)
    return rows


class ResultsStore:
    """Rows of one output directory, appended one at a time with atomic rewrites."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.rows: list[dict] = []
        path = self.out_dir / JSONL
        if path.is_file():
            self.rows = read_rows(path)

    def done_keys(self) -> set[tuple]:
        """Keys already measured for good: ok rows, and rows whose outcome would not change."""
        return {
            tuple(r[c] for c in KEY_COLUMNS)
            for r in self.rows
            if r.get("status") in ("ok", "skipped", "oom") and not is_loadgen(r)
        }

    def get(self, key: tuple) -> dict | None:
        """The single-call measurement (not a load test) of a configuration key."""
        for r in self.rows:
            if not is_loadgen(r) and tuple(r[c] for c in KEY_COLUMNS) == key:
                return r
        return None

    def rounds_done(self, key: tuple) -> int:
        """Measurement rounds already pooled in a row; failures count 0 (they are retried) and
        skipped / oom rows count as complete (another round would end the same way)."""
        row = self.get(key)
        if row is None or row.get("status") in ("error", "timeout"):
            return 0
        if row.get("status") != "ok":
            return 1 << 30
        return int(row.get("rounds") or 1)

    def append(self, row: dict, samples: dict[str, np.ndarray] | None = None) -> None:
        key = row_key(row)
        row = {k: _clean(v) for k, v in row.items()}
        row["row_id"] = row_id(key)
        if samples:
            raw = self.out_dir / RAW_DIR
            raw.mkdir(parents=True, exist_ok=True)
            with atomic_path(raw / f"{row['row_id']}.npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, **samples)  # a file object: np.savez would append .npz to a path
        # A retried configuration replaces its earlier (failed) row.
        self.rows = [r for r in self.rows if row_key(r) != key] + [row]
        self._write()

    def _write(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(r, default=str) + "\n" for r in self.rows)
        write_text_atomic(self.out_dir / JSONL, lines)
        write_text_atomic(self.out_dir / CSV, self.frame().to_csv(index=False))

    def frame(self) -> pd.DataFrame:
        return to_frame(self.rows)


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a DataFrame with the key and measured columns first, in a fixed order."""
    df = pd.DataFrame(rows)
    first = [c for c in (*KEY_COLUMNS, *MEASURED_COLUMNS) if c in df.columns]
    rest = [c for c in df.columns if c not in first]
    return df[first + rest]


def with_columns(df: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """The table with each column in `names` (those it lacks: None in every row), so a reader
    of columns a hand-written table may leave out reads attributes of its rows (itertuples)."""
    missing = [c for c in names if c not in df.columns]
    return df.assign(**{c: None for c in missing}) if missing else df


def load_samples(out_dir: str | Path, rid: str) -> dict[str, np.ndarray]:
    path = Path(out_dir) / RAW_DIR / f"{rid}.npz"
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_table(path: str | Path) -> pd.DataFrame:
    """A results table from a run directory, results.jsonl or results.csv (any .csv/.jsonl)."""
    from .config import jsonl_lines

    path = Path(path)
    if path.is_dir():
        found = [path / n for n in (JSONL, CSV) if (path / n).is_file()]
        if not found:
            raise InputError(f"results directory {path} holds no {JSONL} or {CSV}")
        path = found[0]
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise InputError(f"results file {path} {what}")
    try:
        if path.suffix == ".csv":
            _check_complete(path)
        if path.suffix == ".jsonl":
            lines = jsonl_lines(path.read_text(encoding="utf-8"))
            df = pd.DataFrame([json.loads(x) for x in lines if x.strip()])
        elif path.suffix == ".csv":
            df = pd.read_csv(path)
        else:
            raise InputError(f"results file {path}: allowed formats .csv, .jsonl or a run "
                             f"directory; got {path.suffix or 'no suffix'}")
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"results file {path} cannot be read: {str(e).splitlines()[0]}") from None
    df["results_dir"] = str(path.parent)
    df.attrs["where"] = str(path)
    return df


def _check_complete(path: Path) -> None:
    """Refuse a CSV cut short: its last line holds fewer fields than the header and ends
    without a newline (a copy or write that stopped part-way; its last cells would pass as
    values, such as a p50 of 8 ms cut from 87.5)."""
    import csv

    text = path.read_text(encoding="utf-8")
    if not text or text.endswith("\n"):
        return
    rows = list(csv.reader(text.splitlines()))
    if len(rows) > 1 and len(rows[-1]) < len(rows[0]):
        raise InputError(f"results file {path} looks truncated: its last line (row "
                         f"{len(rows) - 1}) has {len(rows[-1])} of {len(rows[0])} columns and no "
                         "line end; copy it again or rerun the bench")
