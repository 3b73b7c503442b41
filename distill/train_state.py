"""What lets a run stop and go on: the checkpointed train state (weights, optimizer, RNGs,
history) checked against the run's settings, Ctrl-C as a flag the loop obeys at a step's end,
and where this process stands in a torchrun job."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import torch

from contracts.errors import InputError
from contracts.io import atomic_path

from .config import TrainConfig

log = logging.getLogger(__name__)
STATE_FILE = "train_state.pt"


def save_state(out: Path, student, opt, step: int, cfg: TrainConfig, data_fp: str,
               history: list[dict]) -> None:
    """Everything a resumed run needs, written atomically (temp file + os.replace)."""
    state = {
        "step": step,
        "history": history,
        "model": student.state_dict(),
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "config": cfg.model_dump(),
        "data_fingerprint": data_fp,
    }
    with atomic_path(out / STATE_FILE) as tmp:
        torch.save(state, tmp)


# where a run executes, not what it computes: these may change on resume
_RUN_ONLY = ("device", "threads", "teacher_cache_dir", "compile", "log_every", "logger")


def _same_run(saved: dict, cfg: TrainConfig) -> bool:
    now = cfg.model_dump()
    saved = {**TrainConfig.model_construct().model_dump(), **saved}  # fields added since: default
    return {k: v for k, v in saved.items() if k not in _RUN_ONLY} == {
        k: v for k, v in now.items() if k not in _RUN_ONLY}


def read_state(path: Path, device) -> dict:
    """train_state.pt (tensors and plain data only: weights_only); a truncated or corrupt file
    is one InputError naming it and how to start over, never the reader's traceback."""
    import pickle

    try:
        state = torch.load(path, weights_only=True, map_location=device)
        if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
            raise ValueError("not a training state")
        missing = [k for k in ("data_fingerprint", "step", "model", "optimizer", "torch_rng")
                   if k not in state]
        if missing:
            raise ValueError(f"no {', '.join(missing)} in it")
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError,
            pickle.UnpicklingError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise InputError(f"{path}: this checkpoint is damaged and cannot be resumed ({why}); "
                         f"delete it to train this run over from step 0 with --resume, or "
                         f"start over in another --out") from None
    return state


def load_state(out: Path, student, opt, cfg: TrainConfig, data_fp: str) -> tuple[int, list]:
    device = next(student.parameters()).device
    state = read_state(out / STATE_FILE, device)
    if not _same_run(state["config"], cfg) or state["data_fingerprint"] != data_fp:
        raise InputError(f"{out}: the saved run used other settings or data; --resume needs the "
                         "same ones (or choose a new --out)")
    student.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"].cpu())
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([r.cpu() for r in state["cuda_rng"]])
    return int(state["step"]), list(state.get("history", []))


class StopFlag:
    """SIGINT sets a flag; the loop saves a checkpoint at the end of the step and stops."""

    def __init__(self):
        self.stop = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
            self._old = None
        return self

    def _handle(self, signum, frame):
        self.stop = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


# --------------------------------------------------------------------------- DDP


@dataclass
class Dist:
    """Where this process stands in a torchrun job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    owned: bool = False  # this trainer initialized the process group, so it tears it down

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.owned and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def setup_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the torchrun job named by WORLD_SIZE/RANK/LOCAL_RANK (gloo on CPU, nccl on GPU)."""
    dist = torch.distributed
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return Dist(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), owned), device
