"""The pilot-curves contract (distill → roi): one row per evaluation of a short distillation.

`roi pilot` (distill.pilot) writes it as `pilot.csv`; a finished distillation's metrics.json
gives rows of the same shape (`rows_from_metrics`); the forecast (roi.forecast) reads both.

A row with phase `final` is the held-out result a whole run of `step` optimizer steps ends at
(under the wsd schedule a pilot measures it exactly: a short decay branched off its stable
phase). Phase `stable` rows are evaluations inside the stable phase (no decay yet): they show the
curve's shape but are not results of any run. Every row names the teacher, the data and the
recipe it was measured with, so curves of another teacher or data are refused, not mixed in.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np
import pandas as pd

from .config import read_json_object
from .errors import InputError

PILOT_FILE = "pilot.csv"
MODES = ("kd", "ce")  # kd: distilled from the teacher; ce: the no-KD baseline (labels only)
PHASES = ("final", "stable")
# column -> meaning; the order is the file's
COLUMNS = {
    "model": "student spec (builtin:student-10x, ...)",
    "mode": "kd or ce (the no-KD baseline)",
    "phase": "final (what a run of `step` steps ends at) or stable (inside the stable phase)",
    "step": "optimizer steps of the run this row stands for",
    "tokens": "training tokens seen: step x batch_tokens",
    "batch_tokens": "tokens per optimizer step (batch_size x grad_accum x block_size)",
    "loss": "held-out cross-entropy, nats per token",
    "bits_per_byte": "held-out cross-entropy in bits per byte of text",
    "accuracy": "held-out next-token top-1 accuracy",
    "eval_tokens": "tokens in the held-out evaluation",
    "params": "student parameters",
    "train_flops": "training compute to reach this row from scratch: 6 x params x tokens "
                   "(+ 2 x teacher params x tokens for kd: the teacher's forward)",
    "pilot_flops": "compute this pilot curve spent up to this row (its stable run and the "
                   "decays branched off so far; same count as train_flops)",
    "wall_s": "wall time of this curve up to this row (pilot only; decays included)",
    "tokens_per_s": "measured training tokens per second of this curve's stable phase",
    "teacher": "teacher spec",
    "teacher_params": "teacher parameters",
    "teacher_hash": "content hash of the teacher's weights",
    "data_fingerprint": "fingerprint of the training, validation and test splits",
    "teacher_loss": "the teacher's held-out cross-entropy (nats per token), same windows",
    "teacher_bits_per_byte": "the teacher's held-out bits per byte, same windows",
    "teacher_accuracy": "the teacher's held-out accuracy, same windows",
    "schedule": "learning-rate schedule (wsd or cosine)",
    "lr": "peak learning rate",
    "min_lr": "final learning rate",
    "warmup_steps": "linear warm-up steps",
    "decay_fraction": "wsd: share of a run's steps spent decaying",
    "recipe": "the rest of the trainer settings that change results (a short digest)",
    "settings": "those settings as JSON (RECIPE_KEYS): the trainer section a plan carries",
    "source": "pilot (roi pilot) or run (a finished distillation's history)",
}
NUMERIC = ("step", "tokens", "batch_tokens", "loss", "bits_per_byte", "accuracy", "eval_tokens",
           "params", "train_flops", "pilot_flops", "wall_s", "tokens_per_s", "teacher_params",
           "teacher_loss", "teacher_bits_per_byte", "teacher_accuracy", "lr", "min_lr",
           "warmup_steps", "decay_fraction")
REQUIRED = ("model", "mode", "phase", "step", "tokens", "loss", "accuracy", "teacher_hash",
            "data_fingerprint", "teacher_accuracy")


# trainer settings that change what a run computes (distill.config.TrainConfig); the student,
# mode and steps are columns of their own, and where or how fast a run executes is left out
RECIPE_KEYS = ("teacher", "init", "kd_loss", "temperature", "alpha", "beta", "teacher_cache",
               "teacher_topk", "batch_size", "grad_accum", "block_size", "lr", "min_lr",
               "warmup_steps", "weight_decay", "grad_clip", "seed", "dtype", "data_source",
               "tokenizer", "val_fraction", "test_fraction", "data_mode", "generated_fraction",
               "generated_data", "schedule", "decay_fraction",
               "eval_windows")  # the held-out windows: points of one curve share them
# settings written before a field existed meant this (every run before wsd was cosine)
RECIPE_BEFORE = {"schedule": "cosine", "decay_fraction": None}


def recipe_settings(settings: dict) -> dict:
    """The settings that change results, as a run's full distillation must repeat them."""
    return {k: settings.get(k, RECIPE_BEFORE.get(k)) for k in RECIPE_KEYS}


def recipe_digest(settings: dict) -> str:
    """A short digest of the settings that change results: two runs with the same digest differ
    only in student, mode and steps, so one's curve forecasts the other."""
    fields = {k: settings.get(k, RECIPE_BEFORE.get(k)) for k in RECIPE_KEYS}
    if fields["schedule"] != "wsd":
        fields["decay_fraction"] = None
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def rows_from_metrics(metrics: dict, where: str) -> list[dict]:
    """`final` rows of a finished distillation (roi distill's metrics.json): the student (kd)
    and its no-KD baseline at the run's steps, on the held-out test split."""
    try:
        s, teacher = metrics["settings"], metrics["teacher"]
        base = {"model": s["student"], "phase": "final", "step": int(s["steps"]),
                "batch_tokens": int(s["batch_size"]) * int(s.get("grad_accum", 1))
                * int(s["block_size"]),
                "params": metrics.get("student_params"), "teacher": s.get("teacher"),
                "teacher_hash": metrics.get("teacher_hash"),
                "data_fingerprint": metrics["data_fingerprint"],
                "teacher_loss": teacher["loss"], "teacher_accuracy": teacher["accuracy"],
                "teacher_bits_per_byte": teacher.get("bits_per_byte"),
                "schedule": s.get("schedule", "cosine"), "lr": s.get("lr"),
                "min_lr": s.get("min_lr"), "warmup_steps": s.get("warmup_steps"),
                "decay_fraction": s.get("decay_fraction"), "recipe": recipe_digest(s),
                "settings": json.dumps(recipe_settings(s), sort_keys=True), "source": "run"}
        rows = []
        for mode, key in (("kd", "student"), ("ce", "baseline")):
            if isinstance(metrics.get(key), dict):
                m = metrics[key]
                rows.append({**base, "mode": mode, "tokens": base["step"] * base["batch_tokens"],
                             "loss": m["loss"], "bits_per_byte": m.get("bits_per_byte"),
                             "accuracy": m["accuracy"], "eval_tokens": m.get("tokens")})
        return rows
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{where}: not a distillation's metrics.json (missing or bad {e})") \
            from None


def to_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows as the contract's table (missing columns empty, the contract's order first)."""
    df = pd.DataFrame(list(rows))
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    return df[list(COLUMNS) + [c for c in df.columns if c not in COLUMNS]]


def read_curves(path: str | Path) -> pd.DataFrame:
    """A pilot.csv (or a directory holding one), checked: required columns, known modes and
    phases, finite positive steps. Bad rows are refused in one line naming the first."""
    path = Path(path)
    if path.is_dir():
        path = path / PILOT_FILE
    if not path.is_file():
        raise InputError(f"pilot curves {str(path)!r}: no such file (roi pilot writes "
                         f"{PILOT_FILE})")
    try:
        df = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"pilot curves {path}: not a CSV table ({str(e).splitlines()[0]})") \
            from None
    return check(df, str(path))


def check(df: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)} (a pilot table has "
                         f"{', '.join(REQUIRED)}, ...)")
    df = df.copy()
    for c in NUMERIC:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    for col, allowed in (("mode", MODES), ("phase", PHASES)):
        bad = df[~df[col].isin(allowed)]
        if len(bad):
            raise InputError(f"{where}: {col}: allowed {', '.join(allowed)}; got "
                             f"{bad[col].iloc[0]!r} (row {int(bad.index[0]) + 2})")
    bad = df[~(df["step"] > 0) | ~np.isfinite(df["step"])]
    if len(bad):
        raise InputError(f"{where}: step must be a positive number; got {bad['step'].iloc[0]!r} "
                         f"(row {int(bad.index[0]) + 2})")
    return df


def fingerprints(df: pd.DataFrame) -> set[tuple[str, str]]:
    """The (teacher hash, data fingerprint) pairs a table was measured with."""
    return set(zip(df["teacher_hash"].astype(str), df["data_fingerprint"].astype(str)))


def same_origin(frames: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Curves from several sources as one table, refused when they come from another teacher or
    data (a forecast must not mix them)."""
    seen: dict[tuple[str, str], str] = {}
    for where, df in frames:
        for fp in fingerprints(df):
            seen.setdefault(fp, where)
    if len(seen) > 1:
        (a, wa), (b, wb) = list(seen.items())[:2]
        raise InputError(f"{wb}: measured with teacher {b[0]} on data {b[1]}, but {wa} with "
                         f"teacher {a[0]} on data {a[1]}: pilot curves must share the teacher "
                         "and the data")
    return pd.concat([df for _, df in frames], ignore_index=True) if frames else to_frame([])


CurvesArg = Union[pd.DataFrame, str, Path, Sequence[Union[pd.DataFrame, str, Path]]]


def load_curves(curves: CurvesArg) -> pd.DataFrame:
    """Pilot curves from pilot.csv files (or directories holding one), distillations'
    metrics.json files, or DataFrames of this contract, as one table of one teacher and data."""
    items = [curves] if isinstance(curves, (pd.DataFrame, str, Path)) else list(curves)
    frames = []
    for item in items:
        if isinstance(item, pd.DataFrame):
            frames.append(("curves", check(item, "curves")))
        elif Path(item).suffix == ".json":
            frames.append((str(item), check(to_frame(rows_from_metrics(
                read_json_object(item, "metrics"), str(item))), str(item))))
        else:
            frames.append((str(item), read_curves(item)))
    return same_origin(frames)


def finite(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
