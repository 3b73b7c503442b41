"""A distilled encoder exported to ONNX (fp32 and dynamic int8) through the project's exporter
(models.runtime: verified against torch), and its outputs read back from ONNX Runtime, so the
files are measured like the student:

    embedding       the body's hidden states, pooled as the checkpoint says; each file's
                    retention against the teacher
    classification  the head's logits (B, num_labels); the fp32 file against the torch
                    student and the int8 file against the fp32 one, by top-1 agreement and the
                    largest absolute logit difference (models.similarity.head_figures)
    cross-encoder   one score (B, 1) per (text, pair), fed with the tokenizer's token_type_ids;
                    compared as the classifier's, by Spearman of the scores and the largest
                    absolute score difference
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.encoder import Encoder, session_embed, session_output

ONNX_FILE, INT8_FILE = "student.onnx", "student.int8.onnx"


def export_encoder(out: str | Path) -> dict:
    """student.onnx (the body's hidden states, or the head's logits; dynamic batch and
    sequence) and student.int8.onnx beside the checkpoint in `out`; the exporter used and its
    error."""
    from models.runtime import export_onnx, quantize_int8
    from models.zoo import load_torch, parse_spec

    from .export import quiet_exporters

    out = Path(out)
    tm = load_torch(parse_spec(f"hf:{out}"))
    with quiet_exporters():
        method, rel_err = export_onnx(tm, tm.make_inputs(2, 16, "cpu"), out / ONNX_FILE)
        quantize_int8(out / ONNX_FILE, out / INT8_FILE)
    return {"method": method, "rel_err": rel_err, "files": [ONNX_FILE, INT8_FILE]}


def onnx_outputs(path: str | Path, enc: Encoder, items: list, threads: int = 1,
                 batch_size: int = 64) -> np.ndarray:
    """`enc`'s outputs of `items` from an exported file: (N, C) embeddings pooled as `enc`
    pools, or a head's (N, L) logits (texts, or (text, pair) tuples for a cross-encoder)."""
    from models.runtime import ort_session

    sess = ort_session(str(path), threads, "cpu")
    out = []
    for i in range(0, len(items), batch_size):
        batch = enc.batch(items[i:i + batch_size])
        feeds = {k: v.cpu().numpy() for k, v in batch.items()}
        out.append(session_embed(sess, feeds, enc.pooling) if enc.task == "embedding" else
                   np.asarray(session_output(sess, feeds), dtype=np.float32))
    return np.concatenate(out)


def export_and_check(out: str | Path, student: Encoder, teacher: Encoder,
                     items: list) -> dict:
    """Export the student in `out`, then measure each file on `items` (the held-out texts or
    pairs the torch student was measured on): see the module doc."""
    from models.similarity import head_figures

    from .encoder_eval import retention

    info = export_encoder(out)
    fp32 = onnx_outputs(Path(out) / ONNX_FILE, student, items)
    int8 = onnx_outputs(Path(out) / INT8_FILE, student, items)
    if student.task == "embedding":
        ref = teacher.embed(items).numpy()
        info.update(fp32=retention(fp32, ref), int8=retention(int8, ref))
        return info
    info.update(fp32=head_figures(student.task, student.embed(items).numpy(), fp32),
                int8=head_figures(student.task, fp32, int8),
                compared={"fp32": "the torch student", "int8": "the fp32 file"})
    return info
