"""The quality gate on an encoder with a head (issue 19): an hf: sequence classifier or
cross-encoder (a *ForSequenceClassification: its first output is logits (B, num_labels), one
score (B, 1) for a cross-encoder) has each ORT variant judged against the fp32 file on real
held-out text, in the task's own terms (models.similarity.head_figures):

  classification   top-1 agreement of the variant's logits with the reference's, and the
                   largest absolute logit difference; inputs: the standard library's test
                   docstrings
  cross-encoder    Spearman of the variant's scores with the reference's (the order a ranking
                   serves), and the largest absolute score difference; inputs: (module
                   name, docstring) pairs of those docstrings (models.encoder.module_queries), with
                   the tokenizer's token_type_ids

The tolerances are per numeric format, as bench.gate's: an fp32 rewrite must match to rounding,
the lossy formats keep top-1 (or the ranking) within what bench.gate accepts of a language
model, and a logit (score) within an absolute bound: the reference classifier's logits reach
7 and its median margin between the top two classes is 3.3, so 0.25 is under a tenth of it
(its distilled student's int8 file measured 0.204 on 406 texts: BENCHMARKS.md, issue 19).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contracts.errors import InputError

from .gate import (BF16, EXACT, GATE_BATCH, GATE_TEXTS, INT4, INT8, REAL_TEXT, TOKENIZER_FILES,
                   TOLERANCES, Tolerance, cached_feeds)

HEAD_TASKS = ("classification", "cross-encoder")
NEGATIVES = 3  # candidates of other docstrings beside a query's own (cross-encoder inputs)


@dataclass(frozen=True)
class HeadTolerance:
    min_agreement: float  # classification: top-1 agreement; cross-encoder: score Spearman
    max_abs_diff: float  # largest |logit - reference logit| (or score difference)


HEAD_TOLERANCES: dict[Tolerance, HeadTolerance] = {
    EXACT: HeadTolerance(min_agreement=0.999, max_abs_diff=1e-3),
    BF16: HeadTolerance(min_agreement=0.97, max_abs_diff=0.1),
    INT8: HeadTolerance(min_agreement=0.95, max_abs_diff=0.25),
    INT4: HeadTolerance(min_agreement=0.90, max_abs_diff=0.5),
}


def head_task(model: str, info: dict, sess) -> str | None:
    """classification or cross-encoder for an hf: encoder (no causal LM, reads an attention
    mask) whose session's first output is a head's (B, L) logits and whose config.json names
    a sequence classifier (models.encoder.read_head); None otherwise."""
    from models.encoder import read_head
    from models.zoo import parse_spec

    spec = parse_spec(model)
    if (spec.kind != "hf" or info.get("is_causal_lm")
            or "attention_mask" not in (info.get("input_names") or [])
            or len(sess.get_outputs()[0].shape) != 2):
        return None
    try:
        task, _ = read_head(spec.path)
    except InputError:  # a head the gate has no terms for (multi-label): not judged
        return None
    return task if task in HEAD_TASKS else None


def head_gate(model: str, variant: str, info: dict, sess, ref_sess, seq_len: int
              ) -> dict | None:
    """The gate columns of an ORT variant of a classifier or cross-encoder against the fp32
    session `ref_sess` (a callable making it: opened only for a head); None for other models."""
    task = head_task(model, info, sess)
    if task is None:
        return None
    inputs = head_inputs(model, task, Path(info["fp32_path"]).parent, seq_len)
    if inputs is None:
        return {"gate": "none", "gate_reason": f"no tokenizer in the model's directory: the "
                f"{task} gate reads real text"}
    feeds, label = inputs
    return judge_head(variant, task, outputs_of(ref_sess(), feeds), outputs_of(sess, feeds),
                      label)


def head_texts(model: str, task: str, seq_len: int, n: int = GATE_TEXTS
               ) -> dict[str, np.ndarray] | None:
    """The first `n` test docstrings of the standard library (a cross-encoder: `n` (module name,
    docstring) pairs of them) as the model's tokenizer reads them, padded to `seq_len`; None
    when the model's directory has no tokenizer."""
    from transformers import AutoTokenizer

    from models.encoder import (RANKING_QUERIES, module_queries, quiet_transformers,
                                stdlib_docstring_splits, top_labels)
    from models.zoo import parse_spec

    quiet_transformers()
    path = parse_spec(model).path
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        return None
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    docs = stdlib_docstring_splits()["test"]
    if task == "cross-encoder":
        keep = top_labels(docs, RANKING_QUERIES)
        queries, candidates, _ = module_queries(docs, keep, NEGATIVES)
        args = (queries[:n], candidates[:n])
    else:
        args = ([t for _, _, t in docs[:n]],)
    enc = tok(*args, padding="max_length", truncation=True, max_length=seq_len,
              return_tensors="np", return_token_type_ids=task == "cross-encoder")
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}


def head_inputs(model: str, task: str, entry: Path, seq_len: int
                ) -> tuple[dict[str, np.ndarray], str] | None:
    """head_texts cached in the model's export entry, and the label of where they come from;
    None without a tokenizer."""
    feeds = cached_feeds(Path(entry) / f"gate-{task}-s{seq_len}.npz",
                         lambda: head_texts(model, task, seq_len))
    what = "(module name, docstring) pairs of " if task == "cross-encoder" else ""
    return None if feeds is None else (feeds, f"{what}stdlib test docstrings {REAL_TEXT}")


def outputs_of(sess, feeds: dict[str, np.ndarray], batch: int = GATE_BATCH) -> np.ndarray:
    """(N, L) float32 first outputs of an encoder session over all N rows of `feeds`."""
    from models.encoder import session_output

    n = len(feeds["input_ids"])
    return np.concatenate([np.asarray(session_output(
        sess, {k: v[i:i + batch] for k, v in feeds.items()}), dtype=np.float32)
        for i in range(0, n, batch)])


def judge_head(variant: str, task: str, ref: np.ndarray, got: np.ndarray, inputs_label: str
               ) -> dict:
    """The gate columns of a head's row: the same N inputs' outputs by the fp32 reference and
    the variant; figures, verdict and reason."""
    from models.similarity import head_figures

    tol = HEAD_TOLERANCES[TOLERANCES[variant]]
    fig = head_figures(task, ref, got)
    ranker = task == "cross-encoder"
    agree, diff = ((fig["score_spearman"], fig["max_abs_score_diff"]) if ranker else
                   (fig["top1_agreement"], fig["max_abs_logit_diff"]))
    what = "score Spearman" if ranker else "top-1 agreement"
    failures = []
    if not (np.isfinite(agree) and np.isfinite(diff)):
        failures.append("non-finite outputs")
    if not agree >= tol.min_agreement:
        failures.append(f"{what} {agree:.4f} < {tol.min_agreement}")
    if not diff <= tol.max_abs_diff:
        failures.append(f"max abs {'score' if ranker else 'logit'} difference {diff:.3g} > "
                        f"{tol.max_abs_diff:g}")
    row = {"gate_score_spearman" if ranker else "gate_top1_agreement": agree,
           "gate_max_abs_logit_diff": diff, "gate_inputs": inputs_label,
           "gate_texts": int(len(ref)), "gate": "fail" if failures else "pass"}
    row["gate_reason"] = "; ".join(failures) or (
        f"within {variant}'s {task} tolerance ({what} >= {tol.min_agreement}, max abs "
        f"difference <= {tol.max_abs_diff:g})")
    return row
