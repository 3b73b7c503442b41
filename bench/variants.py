"""Deployment variants of an exported model: the ONNX files ONNX Runtime runs for each.

    ort-fp32             the verified export (bench/export.py), as exported
    ort-int8             dynamic int8 (weights int8, activations quantized per call)
    ort-int8-static      static int8, QDQ: weights int8 per channel, activations uint8 with scales
                         calibrated on real held-out text; only MatMuls with a weight operand are
                         quantized, and the LM head stays float (head_matmuls)
    ort-int8-static-all  static int8 on every op onnxruntime can quantize (LayerNorm, Softmax,
                         Add, the head...): the naive recipe, kept to show what the gate catches
    ort-fused-fp32       the built-in GPT exported with each attention block as one ONNX Runtime
                         `Attention` op (bench/fused_attention.py); other models: export at
                         opset 23 (attention as one ONNX `Attention` op) + onnxruntime's
                         transformer optimizer. Verified against torch like the plain export.
    ort-fused-int8       the fused graph, dynamic int8 (Attention -> QAttention, MatMuls ->
                         DynamicQuantizeMatMul), the LM head kept float
    ort-int8-wo          weight-only int8 (MatMulNBits, blocks of 32, int8 compute on VNNI)
    ort-int4-wo          weight-only int4 (MatMulNBits, blocks of 32, int8 compute on VNNI)

ONNX Runtime has no CPU kernel for bf16 MatMul (NOT_IMPLEMENTED in 1.32), so there is no ORT
bf16 variant; torch-eager-bf16 is the bf16 row. Files are built once into the export cache
entry, each written atomically; a variant that cannot be built records why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from contracts.io import atomic_path

log = logging.getLogger(__name__)

# variant -> file name inside the cache entry (ort-fp32 / ort-int8 are export.py's own files)
FILES = {
    "ort-int8-static": "model.int8-static.onnx",
    "ort-int8-static-all": "model.int8-static-all.onnx",
    "ort-fused-fp32": "model.fused.onnx",
    "ort-fused-int8": "model.fused-int8.onnx",
    "ort-int8-wo": "model.int8-wo.onnx",
    "ort-int4-wo": "model.int4-wo.onnx",
}
VARIANTS_VERSION = 3  # bump when a recipe changes: cached variant files are rebuilt
FUSED_OPSET = 23  # the first opset with a standard Attention op (ORT runs it on CPU)
WEIGHT_ONLY_BLOCK = 32  # weights per quantization block (MatMulNBits)
# accuracy_level 4: MatMulNBits quantizes activations to int8 per block and uses integer dot
# products (VNNI); levels below run fp32 compute on dequantized weights.
WEIGHT_ONLY_ACCURACY_LEVEL = 4
CALIBRATION_BATCH = 4  # windows per calibration call


def weight_matmuls(model) -> list[str]:
    """Names of MatMul nodes whose second operand is a constant weight (not activation x
    activation, as attention's Q·Kᵀ and A·V are), in graph order."""
    inits = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def head_matmuls(model) -> list[str]:
    """MatMuls that produce a graph output directly or through one Add (the LM head / final
    projection): quantizing them moves the logits themselves."""
    outputs = {o.name for o in model.graph.output}
    adds = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "Add"}
    return [n.name for n in model.graph.node if n.op_type == "MatMul"
            and (n.output[0] in outputs or adds.get(n.output[0]) in outputs)]


class WindowReader:
    """onnxruntime's CalibrationDataReader over token windows (N, T), a few windows per call."""

    def __init__(self, input_name: str, windows: np.ndarray):
        self.batches: Iterator[dict] = iter(
            {input_name: windows[i : i + CALIBRATION_BATCH].astype(np.int64)}
            for i in range(0, len(windows), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict | None:
        return next(self.batches, None)


def _reader(input_name: str, windows: np.ndarray):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(WindowReader, CalibrationDataReader):
        pass

    return Reader(input_name, windows)


def preprocess(src: Path, dst: Path) -> None:
    """onnxruntime's recommended step before quantization: shape inference + constant folding
    (a tied LM head's Transpose(wte) becomes a plain weight)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with atomic_path(dst) as tmp:
        quant_pre_process(str(src), str(tmp), skip_symbolic_shape=True)


def quantize_static_qdq(src: Path, dst: Path, calib: np.ndarray, everything: bool = False) -> dict:
    """Static int8 in QDQ form; returns what was kept in float and why."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    pre = dst.with_suffix(".pre.onnx")
    preprocess(src, pre)
    model = onnx.load(str(pre))
    name = model.graph.input[0].name
    kwargs: dict = {}
    kept: list[str] = []
    if not everything:
        kept = head_matmuls(model)
        todo = [n for n in weight_matmuls(model) if n not in kept]
        kwargs = dict(op_types_to_quantize=["MatMul"], nodes_to_quantize=todo)
    with atomic_path(dst) as tmp:
        quantize_static(str(pre), str(tmp), _reader(name, calib), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, **kwargs)
    pre.unlink(missing_ok=True)
    return {"float_kept": kept, "recipe": "static int8 QDQ of every quantizable op" if everything
            else "static int8 QDQ of weight MatMuls (per channel), LM head in float"}


def quantize_weight_only(src: Path, dst: Path, bits: int) -> dict:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    pre = dst.with_suffix(".pre.onnx")
    preprocess(src, pre)
    cfg = DefaultWeightOnlyQuantConfig(block_size=WEIGHT_ONLY_BLOCK, is_symmetric=True,
                                       accuracy_level=WEIGHT_ONLY_ACCURACY_LEVEL, bits=bits)
    q = MatMulNBitsQuantizer(onnx.load(str(pre)), algo_config=cfg)
    q.process()
    with atomic_path(dst) as tmp:
        q.model.save_model_to_file(str(tmp))
    pre.unlink(missing_ok=True)
    return {"recipe": f"MatMulNBits {bits}-bit, block {WEIGHT_ONLY_BLOCK}, "
                      f"accuracy_level {WEIGHT_ONLY_ACCURACY_LEVEL}"}


def fuse(tm, src: Path, dst: Path) -> dict:
    """The fused-attention export for the built-in GPT; for other models an opset-23 export
    run through onnxruntime's transformer optimizer. Verified against torch either way."""
    from models.runtime import verify_onnx

    with atomic_path(dst) as tmp:
        if tm.family in ("builtin", "ckpt"):
            from .fused_attention import export_fused

            export_fused(tm, tmp)
            how = "attention exported as com.microsoft.Attention (unidirectional)"
        else:
            how = _optimize_opset(tm, src, tmp)
        rel_err = verify_onnx(tm, tmp)
    return {"recipe": how, "ops": _op_counts(dst), "rel_err": rel_err}


def _optimize_opset(tm, src: Path, dst: Path) -> str:
    from onnxruntime.transformers import optimizer

    opset_file = dst.with_suffix(".opset.onnx")
    try:
        _export_opset(tm, opset_file, FUSED_OPSET)
        start, how = opset_file, f"opset {FUSED_OPSET} export"
    except Exception as e:  # exporters raise anything; the plain graph still fuses
        log.info("opset %d export failed (%s); fusing the plain export", FUSED_OPSET, e)
        start, how = src, "plain export"
    model_type = "gpt2" if tm.is_causal_lm else "bert"
    opt = optimizer.optimize_model(str(start), model_type=model_type, opt_level=0)
    opt.save_model_to_file(str(dst))
    opset_file.unlink(missing_ok=True)
    return f"{how} + onnxruntime.transformers optimizer ({model_type})"


def quantize_fused_dynamic(src: Path, dst: Path) -> dict:
    """Dynamic int8 of the fused graph: Attention becomes QAttention, weight MatMuls
    DynamicQuantizeMatMul; the LM head stays float."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kept = head_matmuls(onnx.load(str(src)))
    with atomic_path(dst) as tmp:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=kept)
    return {"float_kept": kept, "recipe": "ort-fused-fp32's graph, dynamic int8 "
                                          "(QAttention, DynamicQuantizeMatMul), LM head in float"}


def _export_opset(tm, path: Path, opset: int) -> None:
    import warnings

    import torch
    from torch.export import Dim

    from models.runtime import first_output_module

    inputs = tm.make_inputs(2, min(16, tm.max_seq_len or 16), "cpu")
    names = list(inputs)
    batch, seq = Dim("batch", min=1, max=4096), Dim("seq", min=2, max=tm.max_seq_len or 65536)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*axis name: \w+ will not be used")
        torch.onnx.export(
            first_output_module(tm.module, names, tm.forward_kwargs), tuple(inputs.values()),
            str(path), input_names=names, output_names=["output"],
            dynamic_shapes=(tuple({0: batch, 1: seq} for _ in names),), dynamo=True,
            external_data=False, verbose=False, opset_version=opset,
        )


def _op_counts(path: Path) -> dict[str, int]:
    import collections

    import onnx

    model = onnx.load(str(path))
    return dict(collections.Counter(n.op_type for n in model.graph.node).most_common())


def build(variant: str, entry: Path, fp32: Path, calib: np.ndarray, tm=None) -> dict:
    """Build one variant's file in a cache entry; returns its record (path, recipe...)."""
    dst = entry / FILES[variant]
    if variant == "ort-int8-static":
        rec = quantize_static_qdq(fp32, dst, calib)
    elif variant == "ort-int8-static-all":
        rec = quantize_static_qdq(fp32, dst, calib, everything=True)
    elif variant == "ort-fused-fp32":
        if tm is None:
            raise ValueError("fusing needs the torch model (an onnx: file is measured as given)")
        rec = fuse(tm, fp32, dst)
    elif variant == "ort-fused-int8":
        fused = entry / FILES["ort-fused-fp32"]
        if not fused.is_file():
            raise ValueError("ort-fused-int8 needs ort-fused-fp32 built first")
        rec = quantize_fused_dynamic(fused, dst)
    elif variant in ("ort-int8-wo", "ort-int4-wo"):
        rec = quantize_weight_only(fp32, dst, 8 if variant == "ort-int8-wo" else 4)
    else:
        raise ValueError(f"no ONNX file to build for {variant}")
    return {**rec, "file": FILES[variant]}


def build_order(variants: Iterable[str]) -> list[str]:
    """Variants needing files, dependencies first (fused-int8 starts from fused-fp32)."""
    todo = [v for v in FILES if v in set(variants)]
    if "ort-fused-int8" in todo and "ort-fused-fp32" not in todo:
        todo.insert(todo.index("ort-fused-int8"), "ort-fused-fp32")
    return todo
