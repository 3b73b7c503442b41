"""How alike two sets of embeddings of the same texts are, in numpy: the cosine similarity of
each pair of texts and Spearman's rank correlation between two such sets of similarities. The
trainer's retention (distill/encoder_eval.py) and the quality gate of an exported encoder
(bench/gate.py) both judge an embedding model by them."""

from __future__ import annotations

import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    """Rows of x scaled to unit length (float64; a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_matrix(emb: np.ndarray) -> np.ndarray:
    """(N, N) cosine similarities of N embeddings."""
    u = unit(emb)
    return u @ u.T


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of each row of a with the same row of b."""
    return np.sum(unit(a) * unit(b), axis=1)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of x, ties given their average rank (as Spearman's rho needs)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if len(values) < len(x):  # average the ranks of tied values
        ranks = (np.bincount(inverse, ranks) / counts)[inverse]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equally long vectors."""
    ra, rb = _ranks(np.ravel(a)), _ranks(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float(ra @ rb / np.sqrt((ra @ ra) * (rb @ rb)))


def similarity_spearman(student: np.ndarray, teacher: np.ndarray) -> float:
    """Spearman correlation between the student's and the teacher's cosine similarities over
    every pair of distinct texts (the upper triangle of both matrices)."""
    iu = np.triu_indices(len(student), k=1)
    return spearman(cosine_matrix(student)[iu], cosine_matrix(teacher)[iu])


def head_figures(task: str, ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """How alike two sets of a head's outputs of the same inputs are, in the task's own terms:
    a classifier's (N, L) logits by the share of rows whose argmax agrees and the largest
    absolute logit difference; a cross-encoder's (N,) or (N, 1) scores by their Spearman
    correlation (the order a ranking serves) and the largest absolute score difference."""
    ref, got = np.asarray(ref, dtype=np.float64), np.asarray(got, dtype=np.float64)
    diff = float(np.abs(got - ref).max()) if ref.size else 0.0
    if task == "cross-encoder":
        return {"score_spearman": spearman(got, ref), "max_abs_score_diff": diff}
    return {"top1_agreement": float(np.mean(ref.argmax(-1) == got.argmax(-1))),
            "max_abs_logit_diff": diff}
