"""A distilled encoder exported to ONNX (fp32 and dynamic int8) through the project's exporter
(models.runtime: verified against torch), and its embeddings read back from ONNX Runtime with
the checkpoint's own pooling, so the int8 file's retention is measured like the student's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.encoder import Encoder, session_embed

ONNX_FILE, INT8_FILE = "student.onnx", "student.int8.onnx"


def export_encoder(out: str | Path) -> dict:
    """student.onnx (hidden states of the body; dynamic batch and sequence) and
    student.int8.onnx beside the checkpoint in `out`; the exporter used and its error."""
    from models.runtime import export_onnx, quantize_int8
    from models.zoo import load_torch, parse_spec

    from .export import quiet_exporters

    out = Path(out)
    tm = load_torch(parse_spec(f"hf:{out}"))
    with quiet_exporters():
        method, rel_err = export_onnx(tm, tm.make_inputs(2, 16, "cpu"), out / ONNX_FILE)
        quantize_int8(out / ONNX_FILE, out / INT8_FILE)
    return {"method": method, "rel_err": rel_err, "files": [ONNX_FILE, INT8_FILE]}


def onnx_embed(path: str | Path, enc: Encoder, texts: list[str], threads: int = 1,
               batch_size: int = 64) -> np.ndarray:
    """(N, C) embeddings of `texts` from an exported encoder, pooled as `enc` pools."""
    from models.runtime import ort_session

    sess = ort_session(str(path), threads, "cpu")
    out = []
    for i in range(0, len(texts), batch_size):
        batch = enc.batch(texts[i:i + batch_size])
        out.append(session_embed(sess, {k: v.cpu().numpy() for k, v in batch.items()},
                                 enc.pooling))
    return np.concatenate(out)


def export_and_check(out: str | Path, student: Encoder, teacher: Encoder,
                     texts: list[str]) -> dict:
    """Export the student in `out`, then each file's agreement with the teacher on `texts`
    (the held-out texts the torch student was measured on)."""
    from .encoder_eval import retention

    info = export_encoder(out)
    ref = teacher.embed(texts).numpy()
    for name, file in (("fp32", ONNX_FILE), ("int8", INT8_FILE)):
        info[name] = retention(onnx_embed(Path(out) / file, student, texts), ref)
    return info
