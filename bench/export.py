"""ONNX export and int8 quantization, cached by model content hash.

A cache entry is a directory `<cache>/<key>/` holding model.onnx (fp32, verified against torch),
model.int8.onnx (onnxruntime dynamic int8) and info.json (params, weight bytes, FLOPs per sample
at each sequence length asked for so far, export method, verification error). The key covers the
model's content, the torch and onnxruntime versions and this module's EXPORT_VERSION.

Deployment variants (bench/variants.py) are built into the same entry when a sweep asks for
them, with the quality gate's held-out windows per sequence length (bench/gate.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from contracts.caches import cache_root, use, write_lock
from contracts.io import write_json_atomic
from models.decode_export import DECODE_INT8_FILE, KV_CACHE, RECOMPUTE, build
from models.runtime import export_onnx, quantize_int8
from models.zoo import ModelSpec, content_hash, load_torch

from .gate import save_windows

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # 2: the dynamo exporter is really tried; each export is verified
FP32_FILE, INT8_FILE, INFO_FILE = "model.onnx", "model.int8.onnx", "info.json"


def cache_key(spec: ModelSpec) -> str:
    import hashlib

    import onnxruntime

    versions = f"torch={_torch_version()};ort={onnxruntime.__version__};v={EXPORT_VERSION}"
    return hashlib.sha256(f"{content_hash(spec)};{versions}".encode()).hexdigest()[:24]


def _torch_version() -> str:
    """torch's version from its package metadata: the sweep checks the cache in a fresh process
    per model, and importing torch there only to read its version costs more than a cache hit."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:  # torch run from a source tree
        import torch

        return torch.__version__


def prepare(spec: ModelSpec, seq_lens: list[int], root: Path | None = None,
            variants: list[str] | tuple[str, ...] = ()) -> dict:
    """Export (or reuse) the ONNX fp32 and int8 files of a model, and the files of any other
    ORT `variants` asked for; return its info dict.

    The entry is marked in use by this process (roi cache prune keeps it); what is missing is
    built under the entry's write lock, so a second process exporting the same model waits and
    then finds it built."""
    if spec.kind == "onnx":
        return _prepare_onnx_file(spec, root or cache_root(), variants)
    entry = use((root or cache_root()) / "onnx" / cache_key(spec))
    info = _complete_info(entry, seq_lens, variants)
    if info is None:
        with write_lock(entry):
            info = _complete_info(entry, seq_lens, variants) or _build(spec, entry, seq_lens,
                                                                       variants)
    return _with_paths(info, entry)


def _complete_info(entry: Path, seq_lens: list[int], variants) -> dict | None:
    """The entry's info when it already holds everything asked for, else None."""
    info_path = entry / INFO_FILE
    info = json.loads(info_path.read_text()) if info_path.is_file() else None
    if info is None or "decode" not in info or _variants_todo(info, variants) or \
            _windows_missing(info, seq_lens) or \
            any(str(s) not in info["flops_per_sample"] for s in seq_lens):
        return None
    return info


def _build(spec: ModelSpec, entry: Path, seq_lens: list[int], variants) -> dict:
    """Add to the entry what is missing (all of it in a fresh one); the caller holds its write
    lock."""
    info_path = entry / INFO_FILE
    info = json.loads(info_path.read_text()) if info_path.is_file() else None
    missing = [s for s in seq_lens if info is None or str(s) not in info["flops_per_sample"]]
    todo = _variants_todo(info, variants)
    tm = load_torch(spec)
    if info is None:
        info = _export_and_quantize(tm, entry)
    if "decode" not in info:  # entries written before the decoding graph existed get it here
        info["decode"] = _decode_record(tm, entry)
    info["flops_per_sample"].update(_flops_by_seq(tm, missing))
    for seq in _windows_missing(info, seq_lens):
        info.setdefault("gate_windows", {})[str(seq)] = save_windows(
            entry, seq, info["vocab_size"], tm.family)
    _build_variants(info, entry, todo, tm)
    write_json_atomic(info_path, info)
    return info


def _decode_record(tm, entry: Path) -> dict:
    """The decoding graph's record (models/decode_export.py); a failed export is recorded, the
    rows then decode by recomputing (and say why), nothing is raised."""
    try:
        rec = build(tm, entry)
        if rec["mode"] == KV_CACHE:
            quantize_int8(entry / rec["file"], entry / DECODE_INT8_FILE)
            rec.update(int8_file=DECODE_INT8_FILE,
                       weight_bytes=_initializer_bytes(entry / rec["file"]),
                       weight_bytes_int8=_initializer_bytes(entry / DECODE_INT8_FILE))
        return rec
    except Exception as e:  # exporters raise anything
        log.warning("exporting the KV-cache graph failed: %s: %s", type(e).__name__, e)
        return {"mode": RECOMPUTE, "reason": "KV-cache export failed: "
                f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}"}


def _windows_missing(info: dict, seq_lens: list[int]) -> list[int]:
    """Sequence lengths within the model's context that have no gate windows yet."""
    done = info.get("gate_windows", {})
    return [s for s in seq_lens if str(s) in info["flops_per_sample"] and str(s) not in done]


def _variants_todo(info: dict | None, variants) -> list[str]:
    from .variants import VARIANTS_VERSION, build_order

    built = (info or {}).get("variants", {}) if (info or {}).get(
        "variants_version") == VARIANTS_VERSION else {}
    return [v for v in build_order(variants) if v not in built]


def _build_variants(info: dict, entry: Path, todo: list[str], tm) -> None:
    """Build each variant file; a failure is recorded (the row will say why), not raised."""
    from .variants import VARIANTS_VERSION, build

    if not todo:
        return
    if info.get("variants_version") != VARIANTS_VERSION:
        info["variants"], info["variants_version"] = {}, VARIANTS_VERSION
    calib = _calibration_inputs(info, entry)
    for variant in todo:
        try:
            rec = build(variant, entry, entry / FP32_FILE, calib, tm)
            rec["weight_bytes"] = _initializer_bytes(entry / rec["file"])
        except Exception as e:  # quantizers and exporters raise anything
            log.warning("building %s failed: %s: %s", variant, type(e).__name__, e)
            rec = {"error": f"building {variant} failed: {type(e).__name__}: "
                            f"{(str(e).strip().splitlines() or [''])[0][:200]}"}
        info["variants"][variant] = rec


def _calibration_inputs(info: dict, entry: Path) -> np.ndarray:
    """Validation windows of the longest prepared sequence length (static int8 calibration)."""
    from .gate import load_windows

    files = info.get("gate_windows", {})
    if not files:
        raise ValueError("no held-out windows prepared (no sequence length fits the model)")
    longest = max(files, key=int)
    return load_windows(entry / files[longest])[1]


def _with_paths(info: dict, entry: Path) -> dict:
    paths = {v: str(entry / r["file"]) for v, r in info.get("variants", {}).items()
             if "file" in r}
    windows = {s: str(entry / f) for s, f in info.get("gate_windows", {}).items()}
    decode = dict(info.get("decode") or {})
    for key in ("file", "int8_file"):
        if key in decode:
            decode[f"{key}_path"] = str(entry / decode[key])
    return {**info, "fp32_path": str(entry / FP32_FILE), "int8_path": str(entry / INT8_FILE),
            "variant_paths": paths, "gate_paths": windows, "decode": decode}


def _flops_by_seq(tm, seq_lens: list[int]) -> dict[str, int]:
    from .flops import count_flops

    out = {}
    for seq in seq_lens:
        if tm.max_seq_len and seq > tm.max_seq_len:
            continue
        inputs = tm.make_inputs(1, seq, "cpu")
        # the same call as the torch backend's FLOP count, so torch and ORT rows agree
        out[str(seq)] = count_flops(lambda: tm.module(**inputs, **tm.forward_kwargs))
    return out


def _export_and_quantize(tm, entry: Path) -> dict:
    sample_seq = min(16, tm.max_seq_len or 16)
    inputs = tm.make_inputs(2, sample_seq, "cpu")
    method, err = export_onnx(tm, inputs, entry / FP32_FILE)
    quantize_int8(entry / FP32_FILE, entry / INT8_FILE)
    params = sum(p.numel() for p in tm.module.parameters())
    return {
        "params": int(params),
        "weight_bytes": int(sum(p.numel() * p.element_size() for p in tm.module.parameters())),
        "weight_bytes_int8": _initializer_bytes(entry / INT8_FILE),
        "vocab_size": tm.vocab_size,
        "max_seq_len": tm.max_seq_len,
        "input_names": list(tm.input_names),
        "is_causal_lm": tm.is_causal_lm,
        "export_method": method,
        "export_rel_err": err,
        "flops_per_sample": {},
    }



def _initializer_bytes(path: Path) -> int:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))


def _initializer_params(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))


def _prepare_onnx_file(spec: ModelSpec, root: Path, variants=()) -> dict:
    """A user's ONNX file: measured as given (fp32) and quantized to int8 into the cache.
    Other variants need the torch model or known inputs to calibrate: not offered."""
    entry = use(root / "onnx" / f"file-{content_hash(spec)}")
    info_path = entry / INFO_FILE
    with write_lock(entry):
        if not info_path.is_file():
            write_json_atomic(info_path, _quantize_onnx_file(spec, entry))
    return _no_variants(json.loads(info_path.read_text()), variants)


def _quantize_onnx_file(spec: ModelSpec, entry: Path) -> dict:
    """The info of a user's ONNX file, its int8 file written into `entry`."""
    quantize_int8(spec.path, entry / INT8_FILE)
    return {
        "params": _initializer_params(spec.path),
        "weight_bytes": _initializer_bytes(spec.path),
        "weight_bytes_int8": _initializer_bytes(entry / INT8_FILE),
        "vocab_size": None,
        "input_names": None,
        "is_causal_lm": False,
        "export_method": "user-file",
        "decode": {"mode": "", "reason": "a user's ONNX file is measured as given"},
        "export_rel_err": None,
        "flops_per_sample": {},  # FlopCounterMode counts torch ops; an ONNX graph has none
        "fp32_path": str(spec.path.resolve()),
        "int8_path": str(entry / INT8_FILE),
    }


def _no_variants(info: dict, variants) -> dict:
    from .variants import FILES

    why = "built for torch-exportable models only (an onnx: file is measured as given)"
    return {**info, "variants": {v: {"error": f"{v} is {why}"} for v in variants if v in FILES}}
