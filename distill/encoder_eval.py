"""Retention of a sentence encoder in its own task's metrics, on held-out text: how well the
student's geometry matches the teacher's (Spearman correlation of pairwise cosine similarities,
top-k neighbour overlap) and a labeled proxy task (nearest-centroid accuracy)."""

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
