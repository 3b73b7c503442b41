"""Training scalars a person can watch while a run goes (train loss, lr, tokens/s every
log_every steps; the validation metrics at each evaluation).

Where they go (the trainer's `logger` setting):
    tensorboard   event files under OUT/tb/ (`tensorboard --logdir OUT/tb`), written by
                  tensorboardX: the optional extra `pip install 'distill-roi[tensorboard]'`
    jsonl         OUT/scalars.jsonl, one JSON object a line: {"step": N, "train/loss": ...}
    auto          tensorboard when tensorboardX is installed, else jsonl
    none          nothing
metrics.json stays the run's record either way; these are for watching.

A resumed run (--resume) restarts at its last checkpoint, so whatever was logged after it is
dropped before the run goes on (scalars.jsonl is rewritten without those lines; TensorBoard is
given purge_step), and no step appears twice.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Protocol

from contracts.config import jsonl_lines
from contracts.errors import InputError
from contracts.io import write_text_atomic

SCALARS_FILE, TB_DIR = "scalars.jsonl", "tb"
EVAL_KEYS = ("loss", "bits_per_byte", "perplexity", "accuracy")
INSTALL_HINT = "pip install 'distill-roi[tensorboard]'"


class Writer(Protocol):
    def write(self, step: int, values: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """OUT/scalars.jsonl: each record one os.write of one whole line to a file opened for
    appending, so records never interleave or split; a line cut short all the same (a full
    disk) is dropped when the run resumes (keep_until)."""

    def __init__(self, path: Path, start_step: int = 0):
        keep_until(path, start_step)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, step: int, values: dict[str, float]) -> None:
        os.write(self._fd, (json.dumps({"step": step, **values}) + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)


def keep_until(path: Path, step: int) -> None:
    """Drop the records of `path` after `step` (and a torn last line), atomically."""
    if not path.is_file():
        return
    kept = []
    for line in jsonl_lines(path.read_text(encoding="utf-8")):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short when the run was killed mid-write
        if isinstance(record, dict) and record.get("step", math.inf) <= step:
            kept.append(line + "\n")
    write_text_atomic(path, "".join(kept))


class TensorBoardWriter:
    """Event files under OUT/tb/ (tensorboardX's SummaryWriter, one scalar per tag)."""

    def __init__(self, logdir: Path, start_step: int = 0):
        from tensorboardX import SummaryWriter

        # purge_step: TensorBoard hides the events of steps >= it that an earlier file holds
        self._w = SummaryWriter(str(logdir), purge_step=start_step + 1)

    def write(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self._w.add_scalar(tag, value, step)
        self._w.flush()

    def close(self) -> None:
        self._w.close()


def has_tensorboard() -> bool:
    from importlib.util import find_spec

    return find_spec("tensorboardX") is not None


def check_logger(kind: str) -> str:
    """auto resolved (tensorboard when tensorboardX is installed, else jsonl); tensorboard
    without tensorboardX refused in one line that names the extra."""
    if kind == "auto":
        return "tensorboard" if has_tensorboard() else "jsonl"
    if kind == "tensorboard" and not has_tensorboard():
        raise InputError(f"logger tensorboard needs the tensorboardX package: {INSTALL_HINT} "
                         "(or set logger: jsonl)")
    return kind


def open_writer(kind: str, out: Path, start_step: int = 0) -> Writer | None:
    kind = check_logger(kind)
    if kind == "tensorboard":
        return TensorBoardWriter(out / TB_DIR, start_step)
    if kind == "jsonl":
        return JsonlWriter(out / SCALARS_FILE, start_step)
    return None


class Scalars:
    """What the trainer reports: every optimizer step (its loss, lr and seconds), every
    evaluation; written every `every` steps (tokens/s over the steps since the last write)."""

    def __init__(self, writer: Writer | None, every: int, tokens_per_step: int):
        self.writer, self.every, self.tokens_per_step = writer, every, tokens_per_step
        self._seconds, self._steps = 0.0, 0

    def step(self, step: int, loss: float, lr: float, seconds: float, last: bool = False) -> None:
        self._seconds += seconds
        self._steps += 1
        if self.writer is None or not (step % self.every == 0 or last):
            return
        speed = self._steps * self.tokens_per_step / max(self._seconds, 1e-9)
        self.writer.write(step, {"train/loss": loss, "train/lr": lr, "train/tokens_per_s": speed})
        self._seconds, self._steps = 0.0, 0

    def evaluation(self, step: int, metrics: dict) -> None:
        if self.writer is not None:
            self.writer.write(step, {f"eval/{k}": float(metrics[k]) for k in EVAL_KEYS
                                     if k in metrics})

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
