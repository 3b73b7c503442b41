"""Retention of an encoder in its own task's metrics, on held-out text. Sentence embeddings: how
well the student's geometry matches the teacher's (Spearman correlation of pairwise cosine
similarities, top-k neighbour overlap) and a labeled proxy task (nearest-centroid accuracy).
Classifiers: top-1 agreement with the teacher, accuracy and macro-F1 against labels.
Cross-encoders: NDCG@10 of the student's ranking of each query's candidates with the teacher's
scores as gains, and Spearman of the scores (per query, averaged)."""

from __future__ import annotations

import numpy as np

from models.similarity import cosine_matrix, similarity_spearman, spearman, unit as _unit

# What an embedding model's retention is (metrics.json's retention_metric, the plan's and the
# report's name for it): similarity_spearman of the student against the teacher.
RETENTION_METRIC = ("Spearman correlation of pairwise cosine similarities, student vs teacher, "
                    "on held-out text")

__all__ = ["RETENTION_METRIC", "cosine_matrix", "nearest_centroid_accuracy", "retention", "similarity_spearman",
           "spearman", "topk_overlap"]


def _neighbours(emb: np.ndarray, k: int) -> np.ndarray:
    sim = cosine_matrix(emb)
    np.fill_diagonal(sim, -np.inf)  # a text is not its own neighbour
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def topk_overlap(student: np.ndarray, teacher: np.ndarray, k: int = 10) -> float:
    """Mean share of each text's k nearest neighbours (by cosine) that student and teacher
    agree on."""
    s, t = _neighbours(student, k), _neighbours(teacher, k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(s, t)]))


def nearest_centroid_accuracy(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray,
                              test_labels: np.ndarray) -> float:
    """Accuracy of labelling each test embedding with the label whose mean train embedding
    (unit vectors averaged) is nearest by cosine."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    classes = np.unique(train_labels)
    u = _unit(train)
    centroids = _unit(np.stack([u[train_labels == c].mean(0) for c in classes]))
    predicted = classes[np.argmax(_unit(test) @ centroids.T, axis=1)]
    return float(np.mean(predicted == test_labels))


def retention(student: np.ndarray, teacher: np.ndarray, k: int = 10) -> dict:
    """The agreement metrics of a student with its teacher on the same held-out texts."""
    return {"spearman": similarity_spearman(student, teacher),
            f"top{k}_overlap": topk_overlap(student, teacher, k)}


# ----------------------------------------------------------------------------- classification


def top1_agreement(student_logits: np.ndarray, teacher_logits: np.ndarray) -> float:
    """Share of texts whose most likely class is the same for student and teacher."""
    return float(np.mean(np.argmax(student_logits, 1) == np.argmax(teacher_logits, 1)))


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def macro_f1(predicted: np.ndarray, labels: np.ndarray) -> float:
    """F1 averaged over the classes that occur in the labels or the predictions (each class
    counts once, however rare: sklearn's f1_score(average="macro"))."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    scores = []
    for c in np.union1d(predicted, labels):
        tp = np.sum((predicted == c) & (labels == c))
        errors = np.sum((predicted == c) != (labels == c))  # false positives + negatives
        scores.append(2 * tp / (2 * tp + errors))
    return float(np.mean(scores))


# ----------------------------------------------------------------------------------- ranking


def ndcg_at_k(scores: np.ndarray, gains: np.ndarray, k: int = 10) -> float:
    """NDCG@k of the order `scores` gives to candidates whose gains are `gains` (DCG with the
    log2(rank + 1) discount over the ideal order's); nan when every gain is 0."""
    discount = 1 / np.log2(np.arange(2, k + 2))
    top = np.argsort(-np.asarray(scores), kind="stable")[:k]
    ideal = np.sort(np.asarray(gains, dtype=np.float64))[::-1][:k]
    best = float(ideal @ discount[:len(ideal)])
    return float(np.asarray(gains)[top] @ discount[:len(top)]) / best if best > 0 else np.nan


def groups_of(keys: list) -> list[np.ndarray]:
    """Positions of each distinct key (a query), in order of first appearance."""
    where: dict = {}
    for i, key in enumerate(keys):
        where.setdefault(key, []).append(i)
    return [np.array(v) for v in where.values()]


def ranking_retention(student: np.ndarray, teacher: np.ndarray, keys: list, k: int = 10
                      ) -> dict:
    """A ranker's agreement with its teacher, averaged over queries (`keys` names each pair's
    query): NDCG@k of the student's order with the teacher's scores as gains (each minus the
    query's lowest, so the teacher's last candidate gains 0), and Spearman of the scores.
    Queries with a single candidate, or scores all equal, are left out."""
    ndcg, rho = [], []
    for g in groups_of(keys):
        s, t = np.asarray(student)[g], np.asarray(teacher)[g]
        if len(g) < 2 or np.ptp(t) == 0:
            continue
        ndcg.append(ndcg_at_k(s, t - t.min(), k))
        if np.ptp(s) > 0:
            rho.append(spearman(s, t))
    return {f"ndcg@{k}": float(np.mean(ndcg)) if ndcg else float("nan"),
            "spearman": float(np.mean(rho)) if rho else float("nan")}


def label_ndcg(scores: np.ndarray, relevance: np.ndarray, keys: list, k: int = 10) -> float:
    """Mean NDCG@k of the order `scores` gives each query's candidates, with the labels'
    relevances as gains (queries without a relevant candidate are left out)."""
    found = [ndcg_at_k(np.asarray(scores)[g], np.asarray(relevance)[g], k)
             for g in groups_of(keys)]
    found = [x for x in found if not np.isnan(x)]
    return float(np.mean(found)) if found else float("nan")
