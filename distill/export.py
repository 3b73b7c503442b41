"""Export a trained student to ONNX (verified against torch) and int8, and measure what the
quantized model keeps: the same held-out windows, the same metrics, through ONNX Runtime."""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from models.corpus import build_splits, eval_windows

from .config import TrainConfig
from .trainer import data_config, lm_metrics, token_bytes_of

ONNX_FILE, INT8_FILE = "student.onnx", "student.int8.onnx"
# what ships for generation: the decoding graph with a KV cache (models/decode_export.py)
DECODE_FILE, DECODE_INT8_FILE = "student.decode.onnx", "student.decode.int8.onnx"
# What torch.onnx and onnxruntime.quantization print on every export of this project's models
# and that says nothing about them: optional torchvision ops, a pytree deprecation inside torch,
# and the pre-processing hint of dynamic quantization (a GPT has no shapes for it to infer).
_NOISE = ("Please consider to run pre-processing before quantization",)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_NOISE)


@contextmanager
def quiet_exporters():
    """Silence the exporters' known noise (see _NOISE) for the duration; anything else they
    log or warn still shows."""
    onnx_log = logging.getLogger("torch.onnx")
    level, drop = onnx_log.level, _DropNoise()
    onnx_log.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping ..."
    logging.getLogger().addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        onnx_log.setLevel(level)
        logging.getLogger().removeFilter(drop)


def export_and_evaluate(ckpt_dir: Path, cfg: TrainConfig) -> dict:
    from models import decode_export
    from models.runtime import export_onnx, quantize_int8
    from models.zoo import load_torch, parse_spec

    tm = load_torch(parse_spec(f"ckpt:{ckpt_dir}"))
    inputs = tm.make_inputs(2, min(16, cfg.block_size), "cpu")
    with quiet_exporters():
        method, rel_err = export_onnx(tm, inputs, ckpt_dir / ONNX_FILE)
        quantize_int8(ckpt_dir / ONNX_FILE, ckpt_dir / INT8_FILE)
        decode = decode_export.build(tm, ckpt_dir, DECODE_FILE)
        quantize_int8(ckpt_dir / DECODE_FILE, ckpt_dir / DECODE_INT8_FILE)
        decode["int8_file"] = DECODE_INT8_FILE
    dcfg = data_config(cfg)
    test = eval_windows(build_splits(dcfg)["test"], cfg.block_size, 4 * cfg.eval_windows)
    token_bytes = token_bytes_of(dcfg)
    return {
        "fp32": evaluate_onnx(ckpt_dir / ONNX_FILE, test, cfg.threads, token_bytes=token_bytes),
        "int8": evaluate_onnx(ckpt_dir / INT8_FILE, test, cfg.threads, token_bytes=token_bytes),
        "export": {"method": method, "rel_err": rel_err, "decode": decode},
    }


def evaluate_onnx(path: Path, windows: np.ndarray, threads: int | None = None,
                  batch_size: int = 16, token_bytes: np.ndarray | None = None) -> dict:
    """Next-token loss, bits per byte, perplexity and accuracy of an ONNX LM (input `idx`)."""
    from models.runtime import default_threads
    from models.runtime import ort_session

    sess = ort_session(str(path), threads or default_threads(), "cpu")
    name = sess.get_inputs()[0].name
    total, correct, count = 0.0, 0, 0
    for i in range(0, len(windows), batch_size):
        w = windows[i : i + batch_size]
        x, y = w[:, :-1], w[:, 1:]
        logits = sess.run(None, {name: x})[0].astype(np.float64)  # (B, T, V)
        logz = _logsumexp(logits)
        picked = np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
        total += float((logz - picked).sum())
        correct += int((logits.argmax(-1) == y).sum())
        count += y.size
    n_bytes = int(token_bytes[windows[:, 1:]].sum()) if token_bytes is not None else None
    return lm_metrics(total, correct, count, n_bytes)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1)
    return m + np.log(np.exp(x - m[..., None]).sum(axis=-1))
