"""The models a load test runs (bench/loadgen.py): any bench model and variant behind one call,
run(ids (B, T) int64) -> (B,) int64, each sample's prediction (its argmax at the last position).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from contracts.errors import InputError

from .measure import VARIANTS


@dataclass
class Backend:
    """A model ready to run batches of token ids: run(ids (B, T) int64) -> (B,) int64 outputs
    (each sample's argmax over the last output position: its prediction)."""

    run: Callable[[np.ndarray], np.ndarray]
    vocab_size: int
    max_seq_len: int | None
    byte_level: bool
    thread_settings: dict = field(default_factory=dict)
    params: int | None = None


def load_backend(model: str, variant: str, threads: int, device: str = "cpu",
                 seq_len: int = 128) -> Backend:
    """Load a model spec on a backend (a key of bench.measure.VARIANTS)."""
    from models.zoo import parse_spec

    spec = parse_spec(model)
    backend, dtype = VARIANTS[variant]
    try:
        if backend == "torch-eager":
            return _torch_backend(spec, dtype, threads, device)
        return _ort_backend(spec, variant, threads, device, seq_len)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 (a spec that validates yet does not load)
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise InputError(f"{model}: bench cannot load it on {variant}: "
                         f"{type(e).__name__}: {first}") from None


def _torch_backend(spec, dtype: str, threads: int, device: str) -> Backend:
    import torch

    from .measure import _torch_dtype
    from models.zoo import load_torch

    torch.set_num_threads(threads)
    tm = load_torch(spec)
    module = tm.module.to(device=device, dtype=_torch_dtype(dtype))
    names, fixed = tm.input_names, tm.forward_kwargs

    def run(ids: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(ids).to(device)
        feeds = {"idx": x} if names == ("idx",) else _hf_feeds(names, x, torch)
        with torch.inference_mode():
            out = module(**feeds, **fixed)
        out = out if isinstance(out, torch.Tensor) else out[0]
        return _predictions(out.float().cpu().numpy())

    settings = {"torch_intra_op_threads": torch.get_num_threads(),
                "torch_inter_op_threads": torch.get_num_interop_threads()}
    return Backend(run, tm.vocab_size, tm.max_seq_len, tm.vocab_size == 256, settings,
                   int(sum(p.numel() for p in module.parameters())))


def _hf_feeds(names: Sequence[str], x, torch) -> dict:
    extra = {"attention_mask": torch.ones_like(x), "token_type_ids": torch.zeros_like(x)}
    return {n: x if n == "input_ids" else extra[n] for n in names}


def _ort_backend(spec, variant: str, threads: int, device: str, seq_len: int) -> Backend:
    from .export import prepare
    from models.runtime import ort_session
    from .measure import is_ort, ort_path

    info = prepare(spec, [seq_len], variants=[variant] if is_ort(variant) else [])
    sess = ort_session(ort_path(variant, info), threads, device)
    inputs = sess.get_inputs()
    vocab = info.get("vocab_size") or 100

    def run(ids: np.ndarray) -> np.ndarray:
        return _predictions(sess.run(None, _ort_feeds(inputs, ids))[0])

    opts = sess.get_session_options()
    settings = {"ort_intra_op_threads": opts.intra_op_num_threads,
                "ort_inter_op_threads": opts.inter_op_num_threads,
                "ort_execution_mode": str(opts.execution_mode).split(".")[-1],
                "ort_providers": ",".join(sess.get_providers())}
    return Backend(run, int(vocab), info.get("max_seq_len"), vocab == 256, settings,
                   info.get("params"))


def _ort_feeds(inputs, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Token ids for the graph's id input; masks all ones, type/position ids zero."""
    feeds = {}
    for inp in inputs:
        name = inp.name.lower()
        dtype = np.int32 if "int32" in inp.type else np.int64
        if "mask" in name:
            feeds[inp.name] = np.ones(ids.shape, dtype)
        elif "type" in name or "position" in name:
            feeds[inp.name] = np.zeros(ids.shape, dtype)
        else:
            feeds[inp.name] = ids.astype(dtype, copy=False)
    return feeds


def _predictions(out: np.ndarray) -> np.ndarray:
    """One int64 per sample: the argmax over the last axis at the last position."""
    out = np.asarray(out)
    if out.ndim == 1:
        return out.astype(np.int64)
    flat = out.reshape(out.shape[0], -1, out.shape[-1])
    return flat[:, -1].argmax(-1).astype(np.int64)
