"""Results tables as the planner reads them: bench's own, or one a user wrote by hand in the same
schema (measured on a machine we never saw).

Only rows with status ok are used. Columns a hand-written table may leave out are filled with
stated estimates (FLOPs from 2·params·tokens, weight bytes from params × dtype size, a default
latency CV) and the row says which (`*_source` columns). Several tables merge; the environment
fingerprint (env_cpu, env_gpu, ...) names the machine each row was measured on, and a row maps to
a catalog hardware entry through an explicit `hardware` column or its GPU's name.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from contracts.errors import InputError
from contracts.results import IMPORTED, KEY_COLUMNS, STATUSES, load_samples, read_table

from .hardware import Catalog

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("model", "role", "backend", "dtype", "batch_size", "seq_len", "status",
                    "params")
LATENCY_COLUMNS = ("latency_ms_mean", "latency_ms_p50")  # at least one of them
FINGERPRINT_COLUMNS = ("env_cpu", "env_cores", "env_logical_cpus", "env_gpu")
ROLES = ("teacher", "student")
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int4": 0.5}
# torch's dtype names (and the spellings people write by habit) -> the table's
DTYPE_ALIASES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16",
                 "bfloat16": "bf16", "qint8": "int8", "quint4x2": "int4"}
# How a row's artifact generates tokens (models/decode_export.py writes the same two names)
KV_CACHE, RECOMPUTE = "kv-cache", "recompute"
DECODE_MODES = (KV_CACHE, RECOMPUTE)
# Latency spread when a hand-written table gives neither CV nor std: measured CPU latencies
# on this project's machines range 0.05-0.5 (noisy neighbours); 0.25 is a middle, stated guess.
DEFAULT_CV = 0.25


def normalise_dtype(value: object, where: str = "dtype") -> str:
    """A dtype as the table spells it: fp32, fp16, bf16, int8 or int4, from those or torch's
    names (float32, torch.bfloat16, half, ...), case-insensitive; InputError otherwise."""
    text = str(value).strip()
    name = _dtype_alias(text)
    if name not in DTYPE_BYTES:
        raise InputError(f"{where}: allowed {', '.join(DTYPE_BYTES)} (or torch's float32, "
                         f"float16, bfloat16, ...); got {text!r}")
    return name


def _dtype_alias(text: str) -> str:
    low = text.strip().lower().removeprefix("torch.")
    return DTYPE_ALIASES.get(low, low)


def prepare(df: pd.DataFrame, catalog: Catalog, where: str = "results") -> pd.DataFrame:
    """The ok rows of one table, checked and completed (see the module docstring)."""
    _check_columns(df, where)
    df = df.reset_index(drop=True)  # row numbers in messages: positions in the table
    status = df["status"].fillna("").astype(str).str.strip().str.lower()
    ok = df[status == "ok"].copy()
    if ok.empty:
        found = ", ".join(sorted(set(status))) or "no rows at all"
        raise InputError(f"{where}: status: no row is ok, so nothing was measured; allowed "
                         f"statuses {', '.join(STATUSES)}; got {found}")
    ok = _gate_passed(_measured_only(ok, where), where)
    for check in (_check_text, _check_numbers):
        check(ok, where)
    ok = _fill(ok)
    ok["machine"] = _machine(ok)
    ok["hardware"] = _hardware(ok, catalog, where)
    return ok.reset_index(drop=True)


def merge(tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Several prepared tables as one; a configuration measured twice on the same machine keeps
    the later table's row."""
    df = pd.concat(list(tables), ignore_index=True)
    key = [*KEY_COLUMNS, "machine"]
    dupes = df.duplicated(key, keep="last")
    if dupes.any():
        log.info("%d configuration(s) measured twice on one machine: the later table wins",
                 int(dupes.sum()))
    return df[~dupes].reset_index(drop=True)


def load_results(paths: Iterable[str | Path], catalog: Catalog) -> pd.DataFrame:
    """Read, check and merge results files."""
    paths = list(paths)
    if not paths:
        raise InputError("results: give at least one results file (--results FILE)")
    return merge(prepare(read_table(p), catalog, str(p)) for p in paths)


PEAK_COLUMNS = ("loadgen_peak_qps", "loadgen_percentile", "loadgen_latency_bound_ms")


def loadgen_peaks(df: pd.DataFrame, catalog: Catalog, where: str = "results") -> pd.DataFrame:
    """The measured peaks of a results table: ok rows of `roi loadtest --find-peak` (source
    loadgen, loadgen_mode find-peak), with the machine and catalog hardware they ran on.
    Empty where the table has none."""
    needed = ("source", "loadgen_mode", *PEAK_COLUMNS, *REQUIRED_COLUMNS)
    if any(c not in df.columns for c in needed):
        return pd.DataFrame()
    text = lambda c: df[c].fillna("").astype(str).str.strip().str.lower()  # noqa: E731
    keep = (text("source") == "loadgen") & (text("loadgen_mode") == "find-peak") & (
        text("status") == "ok")
    peaks = df[keep].copy()
    for col in (*PEAK_COLUMNS, "batch_size", "seq_len"):
        peaks[col] = pd.to_numeric(peaks[col], errors="coerce")
    peaks = peaks[np.isfinite(peaks["loadgen_peak_qps"]) & (peaks["loadgen_peak_qps"] > 0)]
    if peaks.empty:
        return pd.DataFrame()
    if "device" not in peaks.columns:
        peaks["device"] = "cpu"
    peaks = peaks.reset_index(drop=True)
    peaks["machine"] = _machine(peaks)
    peaks["hardware"] = _hardware(peaks, catalog, where)
    if "results_dir" not in peaks.columns:
        peaks["results_dir"] = None
    return peaks


def _measured_only(ok: pd.DataFrame, where: str) -> pd.DataFrame:
    """Rows bench projected (source = projected) or measured under load (loadgen) are no
    service-time measurements: the planner calibrates on measured rows only, and on rows
    `roi import` took from another tool's measurement (source = imported)."""
    if "source" not in ok.columns:
        return ok
    # fillna first: pandas 3 keeps a missing value missing through astype(str)
    source = ok["source"].fillna("").astype(str).str.strip().str.lower()
    keep = source.isin(["measured", IMPORTED, "nan", "none", ""])
    if not keep.any():
        raise InputError(f"{where}: source: no ok row is measured; allowed: measured or "
                         f"imported (roi import; rows "
                         f"marked {', '.join(sorted(set(source)))} are not measurements)")
    if not keep.all():
        log.info("%s: %d row(s) not measured (projected/loadgen) left out", where,
                 int((~keep).sum()))
    return ok[keep]


def _gate_passed(ok: pd.DataFrame, where: str) -> pd.DataFrame:
    """Rows whose variant failed bench's quality gate (`gate` = fail: quantized or rewritten
    past its stated tolerance against fp32) are no deployment: the planner never costs them.
    What is costed is what would be deployed: a passing variant or an fp32 reference."""
    if "gate" not in ok.columns:
        return ok
    failed = ok["gate"].fillna("").astype(str).str.strip().str.lower() == "fail"
    if failed.all():
        raise InputError(f"{where}: gate: every ok row failed the quality gate; nothing "
                         f"deployable to cost")
    if failed.any():
        log.info("%s: %d row(s) failed the quality gate and are not costed: %s", where,
                 int(failed.sum()), ", ".join(sorted(set(ok.loc[failed, "backend"] + "/"
                                                         + ok.loc[failed, "dtype"]))))
    return ok[~failed]


def _check_columns(df: pd.DataFrame, where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if not any(c in df.columns for c in LATENCY_COLUMNS):
        missing.append(" or ".join(LATENCY_COLUMNS))
    if missing:
        got = ", ".join(map(str, df.columns[:12])) + (", ..." if len(df.columns) > 12 else "")
        raise InputError(f"{where}: missing required column(s) {', '.join(missing)}; required: "
                         f"{', '.join(REQUIRED_COLUMNS)} and one of "
                         f"{' / '.join(LATENCY_COLUMNS)}; got columns: {got or 'none'}")


def _check_text(ok: pd.DataFrame, where: str) -> None:
    dtype = ok["dtype"].fillna("").astype(str).str.strip()
    known = dtype.map(_dtype_alias)
    ok["dtype"] = dtype.where(~known.isin(list(DTYPE_BYTES)), known)  # float32 -> fp32, ...
    for col, allowed in (("role", ROLES), ("dtype", tuple(DTYPE_BYTES))):
        values = ok[col].fillna("").astype(str).str.strip()  # pandas 3: NaN stays NaN
        bad = values[~values.isin(allowed)]
        if len(bad):
            raise InputError(f"{where}: {col}: allowed {', '.join(allowed)}; got "
                             f"{bad.iloc[0]!r} (row {bad.index[0]})")
        ok[col] = values
    for col in ("model", "backend"):
        ok[col] = ok[col].fillna("").astype(str).str.strip()
        if (ok[col] == "").any() or ok[col].isin(["nan", "None"]).any():
            raise InputError(f"{where}: {col}: must be a non-empty name in every ok row")


def _check_numbers(ok: pd.DataFrame, where: str) -> None:
    for col in ("batch_size", "seq_len", "params"):
        values = pd.to_numeric(ok[col], errors="coerce")
        bad = ~(np.isfinite(values) & (values > 0)) | (values != np.floor(values))
        _refuse_first(ok, col, bad, "a positive integer", where)
        ok[col] = values.astype(np.int64)
    given = [c for c in LATENCY_COLUMNS if c in ok.columns]
    latency = pd.to_numeric(ok[given[0]], errors="coerce")
    for col in given[1:]:
        latency = latency.fillna(pd.to_numeric(ok[col], errors="coerce"))
    bad = ~(np.isfinite(latency) & (latency > 0))
    _refuse_first(ok, given[0], bad, "a positive number of milliseconds", where)


def _refuse_first(ok: pd.DataFrame, col: str, bad: pd.Series, kind: str, where: str) -> None:
    if bad.any():
        i = bad[bad].index[0]
        value = ok.loc[i, col]
        value = value.item() if isinstance(value, np.generic) else value  # no np.float64(..)
        raise InputError(f"{where}: {col} must be {kind} in every ok row; got "
                         f"{value!r} (row {i})")


def _fill(ok: pd.DataFrame) -> pd.DataFrame:
    """Complete optional columns with stated estimates; `*_source` says which were estimated."""
    num = lambda c: pd.to_numeric(ok[c], errors="coerce") if c in ok.columns else (  # noqa
        pd.Series(np.nan, index=ok.index))
    mean, p50 = num("latency_ms_mean"), num("latency_ms_p50")
    ok["latency_ms_mean"] = mean.fillna(p50)
    ok["latency_ms_p50"] = p50.fillna(mean)
    cv = num("latency_ms_cv").fillna(num("latency_ms_std") / ok["latency_ms_mean"])
    ok["cv_source"] = np.where(cv.notna(), "measured", f"assumed {DEFAULT_CV}")
    ok["latency_ms_cv"] = cv.fillna(DEFAULT_CV).clip(lower=0)
    flops, wbytes = num("flops_per_sample"), num("weight_bytes")
    ok["flops_source"] = np.where(flops > 0, "measured", "estimated 2·params·seq_len")
    ok["flops_per_sample"] = flops.where(flops > 0, 2.0 * ok["params"] * ok["seq_len"])
    dtype_bytes = ok["dtype"].map(DTYPE_BYTES).astype(float)
    ok["weight_bytes_source"] = np.where(wbytes > 0, "measured", "estimated params x dtype "
                                         "bytes")
    ok["weight_bytes"] = wbytes.where(wbytes > 0, ok["params"] * dtype_bytes)
    for col in ("tpot_ms", "peak_rss_mb", "rss_start_mb", "threads", "n_layers"):
        ok[col] = num(col)
    ok["decode_mode"] = _decode_mode(ok)
    ok["device"] = ok["device"].fillna("cpu").astype(str) if "device" in ok.columns else "cpu"
    if "results_dir" not in ok.columns:
        ok["results_dir"] = None
    return ok


def _decode_mode(ok: pd.DataFrame) -> pd.Series:
    """How each row's artifact generates: kv-cache (a step per new token) or recompute (a whole
    forward per new token). Tables written before bench recorded it: ORT rows without a
    measured tpot_ms recompute (the project's ONNX files had no cache then), other rows decode
    with a cache."""
    given = (ok["decode_mode"].astype(object).where(ok["decode_mode"].notna(), "")
             .astype(str).str.strip() if "decode_mode" in ok.columns
             else pd.Series("", index=ok.index))
    bad = ~given.isin(DECODE_MODES + ("",))
    if bad.any():
        i = bad[bad].index[0]
        raise InputError(f"decode_mode: allowed {', '.join(DECODE_MODES)} or empty; got "
                         f"{given[i]!r} (row {i})")
    tpot = (pd.to_numeric(ok["tpot_ms"], errors="coerce") if "tpot_ms" in ok.columns
            else pd.Series(np.nan, index=ok.index))
    no_cache = ok["backend"].astype(str).str.startswith("ort") & ~(tpot > 0)
    assumed = np.where(no_cache, RECOMPUTE, KV_CACHE)
    return given.where(given != "", pd.Series(assumed, index=ok.index))


def _machine(ok: pd.DataFrame) -> pd.Series:
    """A readable machine name from the environment fingerprint (GPU rows: the GPU)."""
    def label(row) -> str:
        gpu = _text(row.get("env_gpu"))
        if gpu and str(row.get("device")).startswith("cuda"):
            return gpu
        cpu = _text(row.get("env_cpu"))
        if not cpu:
            hw = _text(row.get("hardware"))
            imported = _text(row.get("source")).lower() == IMPORTED
            return (f"hardware {hw}" + (" (imported)" if imported else "") if hw
                    else f"unknown machine ({row.get('results_dir')})")
        cores = row.get("env_logical_cpus")
        return cpu + (f" ({int(cores)} logical CPUs)" if _finite(cores) else "")

    return ok.apply(label, axis=1).astype(str)


def _hardware(ok: pd.DataFrame, catalog: Catalog, where: str) -> pd.Series:
    """The catalog entry each row was measured on: the `hardware` column, else the GPU's name;
    None for machines the catalog does not hold (such as the CPU `roi bench` ran on)."""
    given = ok["hardware"] if "hardware" in ok.columns else pd.Series(None, index=ok.index)
    out = []
    for i, row in ok.iterrows():
        name = _text(given.loc[i])
        if name:
            if name not in catalog:
                raise InputError(f"{where}: hardware: unknown hardware {name!r} (row {i}); "
                                 f"known: {', '.join(catalog.names())} (add rows with "
                                 f"--hardware FILE)")
            out.append(name)
        elif str(row.get("device")).startswith("cuda"):
            out.append(match_gpu(_text(row.get("env_gpu")), catalog))
        else:
            out.append(None)
    return pd.Series(out, index=ok.index, dtype=object)


def match_gpu(gpu_name: str, catalog: Catalog) -> str | None:
    """The cloud catalog row a GPU name (as torch reports it) belongs to, e.g. 'NVIDIA
    A100-SXM4-80GB' -> a100-80gb; None when nothing matches."""
    words = set(re.findall(r"[a-z0-9]+", gpu_name.lower()))
    hits = [h for h in catalog if h.kind == "cloud" and h.name.split("-")[0] in words]
    if len(hits) > 1:  # same chip, different memory: the name says which
        sized = [h for h in hits if h.memory_gib and f"{h.memory_gib.value:g}gb" in words]
        hits = sized or hits
    return hits[0].name if hits else None


def raw_latency_ms(row: pd.Series) -> np.ndarray | None:
    """A row's raw per-call latencies (bench's raw/<row_id>.npz, key latency_ns), if stored."""
    rid, folder = _text(row.get("row_id")), _text(row.get("results_dir"))
    if not rid or not folder:
        return None
    latency_ns = load_samples(folder, rid).get("latency_ns")
    return None if latency_ns is None else latency_ns / 1e6


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
