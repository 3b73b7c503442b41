"""Running a model outside torch: ONNX export (verified against torch), int8 quantization, and
ONNX Runtime sessions with this project's settings; what bench (measuring) and distill
(exporting its student) share.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contracts.errors import InputError
from contracts.io import atomic_path
from models.zoo import plain_forward_kwargs

log = logging.getLogger(__name__)

# Relative tolerance of the ONNX fp32 output against torch (max abs error / max abs output).
EXPORT_RTOL = 1e-3


def first_output_module(module, names: list[str], fixed: dict | None = None):
    """Wrap a model so export sees positional tensors in and one tensor (logits) out.

    `fixed` are keyword arguments passed on every call (default: plain_forward_kwargs)."""
    import torch

    fixed = plain_forward_kwargs(module) if fixed is None else fixed

    class FirstOutput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, *args):
            out = self.inner(**dict(zip(names, args)), **fixed)
            return out if isinstance(out, torch.Tensor) else out[0]  # logits / hidden states

    return FirstOutput().eval()


def export_onnx(tm, inputs: dict, path: Path) -> tuple[str, float]:
    """Export with dynamic batch and sequence axes and verify; (method, relative error).

    The dynamo exporter goes first, the TorchScript one next: each is kept only if it both
    exports and matches torch, since a model dynamo traces can still come out wrong."""
    failures = []
    # a temporary name of this process's own beside the target, renamed into place (atomic):
    # two processes exporting one model into a fresh cache never share a half-written file
    with atomic_path(path) as tmp:
        for method, export in (("dynamo", _export_dynamo), ("torchscript", _export_torchscript)):
            try:
                export(tm, inputs, tmp)
                err = verify_onnx(tm, tmp)
            except Exception as e:  # exporters raise anything, UserError to SymbolicValueError
                reason = (str(e).strip().splitlines() or [""])[0][:200]
                log.info("%s export failed: %s: %s", method, type(e).__name__, reason)
                failures.append(f"{method}: {type(e).__name__}: {reason}")
                continue
            return method, err  # leaving the block renames tmp to path
        raise RuntimeError("no exporter produced a matching ONNX model ("
                           + "; ".join(failures) + ")")


def _export_dynamo(tm, inputs: dict, path: Path) -> None:
    import torch
    from torch.export import Dim

    names = list(inputs)
    batch, seq = Dim("batch", min=1, max=4096), Dim("seq", min=2, max=tm.max_seq_len or 65536)
    # forward(*args) has one (var-positional) parameter: its shapes go in a 1-tuple
    shapes = (tuple({0: batch, 1: seq} for _ in names),)
    with torch.no_grad(), warnings.catch_warnings():
        # every input shares the two Dims on purpose; torch warns that the names are merged
        warnings.filterwarnings("ignore", message=r".*axis name: \w+ will not be used")
        torch.onnx.export(
            first_output_module(tm.module, names, tm.forward_kwargs), tuple(inputs.values()),
            str(path), input_names=names, output_names=["output"], dynamic_shapes=shapes,
            dynamo=True, external_data=False, verbose=False,
        )


def _export_torchscript(tm, inputs: dict, path: Path) -> None:
    import torch

    names = list(inputs)
    axes = {n: {0: "batch", 1: "seq"} for n in names} | {"output": {0: "batch", 1: "seq"}}
    with torch.no_grad():
        torch.onnx.export(
            first_output_module(tm.module, names, tm.forward_kwargs), tuple(inputs.values()),
            str(path), input_names=names, output_names=["output"], dynamic_axes=axes,
            opset_version=17, dynamo=False,
        )


def verify_onnx(tm, path: Path) -> float:
    """Relative max error of ONNX Runtime fp32 against torch on a fresh shape; raise if off."""
    import onnxruntime as ort
    import torch

    seq = min(24, tm.max_seq_len or 24)
    inputs = tm.make_inputs(3, seq, "cpu")
    wrapper = first_output_module(tm.module, list(inputs), tm.forward_kwargs)
    with torch.no_grad():
        ref = wrapper(*inputs.values()).float().numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # feed what the graph declares: an exporter may drop an input the outputs do not depend on
    got = sess.run(None, {i.name: inputs[i.name].numpy() for i in sess.get_inputs()})[0]
    if got.shape != ref.shape:
        raise RuntimeError(f"ONNX output shape {got.shape} differs from torch's {ref.shape}")
    scale = float(np.abs(ref).max()) or 1.0
    rel = float(np.abs(got - ref).max()) / scale
    if not np.isfinite(rel) or rel > EXPORT_RTOL:
        raise RuntimeError(f"ONNX export differs from torch: relative max error {rel:.2e}")
    return rel


def quantize_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(dst) as tmp:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)


@dataclass(frozen=True)
class SessionSettings:
    """ONNX Runtime session options that bench/ort_tuning.py sweeps; the defaults are what
    that sweep measured on this project's shared 2-core VM (BENCHMARKS.md, issue 7): with 2
    threads and a neighbour on one core, spinning threads took 8.5 ms where sleeping ones took
    4.5 (student-10x, batch 1); with 1 thread spinning, arena and level "extended" vs "all"
    were within the round-to-round spread. QDQ models need level >= extended (basic: 2.6x
    slower), which fuses their Q/DQ pairs into integer kernels."""

    spinning: bool = False  # intra-op threads busy-wait between ops instead of sleeping
    arena: bool = True  # CPU memory arena (reuses allocations across calls)
    level: str = "all"  # graph optimization: basic / extended / all

    LEVELS = ("disable", "basic", "extended", "all")


def ort_session(path: str, threads: int, device: str,
                settings: SessionSettings = SessionSettings()):
    import onnxruntime as ort

    levels = dict(zip(SessionSettings.LEVELS, (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[settings.level]
    opts.enable_cpu_mem_arena = settings.arena
    opts.add_session_config_entry("session.intra_op.allow_spinning",
                                  "1" if settings.spinning else "0")
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InputError("onnxruntime has no CUDA provider here (install onnxruntime-gpu)")
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(path, opts, providers=providers)


def default_threads() -> int:
    """Physical cores: hyper-threads rarely help dense inference and add noise."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1
