"""The text an encoder is distilled on (`roi distill-encoder --data`): the standard library's
docstrings (`stdlib`, labeled for the teacher's task) or the user's own data file (JSONL, CSV,
parquet or a datasets directory: models.records), a text column, a pair column for a cross-encoder and an optional label column, each row's label checked
against the teacher's head (one InputError naming the row). Rows go to train/val/test by a
stable hash (models.corpus.split_of: 5% validation, 5% test); a cross-encoder's rows by their
text (the query), so that each query's candidates stay together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from contracts.errors import InputError
from models.records import FORMATS, is_record_file, rows

N_LABELS = 32  # embedding proxy task's classes: the most common labels of the training split
TRAIN_NEGATIVES = 1  # stdlib ranking task: other modules per training docstring
SPLITS = ("train", "val", "test")


@dataclass
class TextData:
    """Texts of each split and, where the data has them, their labels (class ids into
    `classes`, or a cross-encoder's relevances; None where a text has none) and pairs."""

    texts: dict[str, list[str]]
    labels: dict[str, list] = field(default_factory=dict)  # split -> label per text
    classes: list[str] = field(default_factory=list)
    source: str = "stdlib"
    pairs: dict[str, list[str]] = field(default_factory=dict)  # split -> pair per text
    # split -> (text, positive pair, negative) per row of a file with a negative column; each
    # (text, negative) is also a pair of its own above (unlabeled), so a query is ranked
    # against its negatives when measured
    triples: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    def items(self, split: str) -> list:
        """The texts of `split`, or (text, pair) tuples where the data has pairs."""
        if self.pairs:
            return list(zip(self.texts[split], self.pairs[split]))
        return list(self.texts[split])

    def labeled(self, split: str) -> tuple[list, list]:
        """The items of `split` that carry a label, and their labels."""
        found = [(x, y) for x, y in zip(self.items(split), self.labels.get(split, []))
                 if y is not None]
        return [x for x, _ in found], [y for _, y in found]


@dataclass(frozen=True)
class Fields:
    """The columns of a data file: text, pair (cross-encoder), label (optional) and a
    cross-encoder's negative (Margin-MSE: the pair is the positive)."""

    text: str = "text"
    pair: str | None = None
    label: str | None = None
    negative: str | None = None


# ----------------------------------------------------------------------------------- stdlib


def stdlib_data(task: str = "embedding", classes: list[str] | None = None) -> TextData:
    """The standard library's docstrings for `task`: labeled by top-level module (`classes`,
    else the N_LABELS most common; others unlabeled), or, for a cross-encoder, a module's name
    as the query and docstrings as candidates, relevant where they document it
    (models.encoder.module_queries: TRAIN_NEGATIVES other modules per training docstring; on
    held-out text every module ranks every docstring)."""
    from models.encoder import (RANKING_QUERIES, module_queries, stdlib_docstring_splits,
                                top_labels)

    splits = stdlib_docstring_splits()
    if task == "cross-encoder":
        keep = top_labels(splits["train"], RANKING_QUERIES)  # (a ranker's head has no classes)
        data = TextData({}, {}, source="stdlib", pairs={})
        for s, docs in splits.items():
            negatives = TRAIN_NEGATIVES if s == "train" else None
            data.texts[s], data.pairs[s], data.labels[s] = module_queries(docs, keep, negatives)
        return data
    classes = classes or top_labels(splits["train"], N_LABELS)
    index = {c: i for i, c in enumerate(classes)}
    return TextData({s: [t for _, _, t in d] for s, d in splits.items()},
                    {s: [index.get(lb) for _, lb, _ in d] for s, d in splits.items()},
                    list(classes))


# ----------------------------------------------------------------------------------- files


def _text(row: dict, role: str, name: str, where: str) -> str:
    value = row[role]
    if not isinstance(value, str):
        raise InputError(f'{where}: "{name}" must be a string, got {type(value).__name__}')
    return value


def file_data(path: str, fields: Fields, task: str, classes: list[str]) -> TextData:
    """The rows of a data file (models.records: JSONL, CSV, parquet, a datasets directory) as
    TextData for a teacher of `task` whose head has
    `classes` (id2label): labels checked against it (see label_of)."""
    from models.corpus import DataConfig, split_of

    source = Path(path)
    if not (source.is_file() or source.is_dir()):
        raise InputError(f"--data {path}: no such file; expected {FORMATS}, or stdlib")
    if not is_record_file(source):
        raise InputError(f"--data {path}: a {source.suffix or 'suffixless'} file; expected "
                         f"{FORMATS}, or stdlib")
    _check_fields(fields, task)
    cfg, data = DataConfig(), TextData({s: [] for s in SPLITS}, {s: [] for s in SPLITS},
                                       source=path)
    if fields.pair:
        data.pairs = {s: [] for s in SPLITS}
    if fields.negative:
        data.triples = {s: [] for s in SPLITS}
    columns = {role: name for role, name in (("text", fields.text), ("pair", fields.pair),
                                             ("label", fields.label),
                                             ("negative", fields.negative)) if name}
    for where, row in rows(source, columns):
        text = _text(row, "text", fields.text, where)
        split = split_of(f"query:{text}" if fields.pair else where, cfg)
        data.texts[split].append(text)
        if fields.pair:
            data.pairs[split].append(_text(row, "pair", fields.pair, where))
        data.labels[split].append(label_of(row.get("label"), task, classes, where))
        if fields.negative:  # the negative: a pair of its query's too, unlabeled
            negative = _text(row, "negative", fields.negative, where)
            data.triples[split].append((text, data.pairs[split][-1], negative))
            data.texts[split].append(text)
            data.pairs[split].append(negative)
            data.labels[split].append(None)
    _check_sizes(data, path)
    return _class_ids(data) if task == "embedding" else _named(data, classes)


def _check_fields(fields: Fields, task: str) -> None:
    if task == "cross-encoder" and not fields.pair:
        raise InputError("--pair-field: a cross-encoder scores (text, pair) rows; name the "
                         "column that holds each text's pair (e.g. the candidate passage)")
    if task != "cross-encoder" and fields.pair:
        raise InputError(f"--pair-field {fields.pair}: the teacher is a {task} model; pairs "
                         "are for a cross-encoder (a *ForSequenceClassification with "
                         "num_labels 1)")
    if fields.negative and not fields.pair:
        raise InputError(f"--negative-field {fields.negative}: negatives are a cross-encoder's "
                         "(query, positive, negative) rows; name the positive's column with "
                         "--pair-field")


def _check_sizes(data: TextData, path: str) -> None:
    for split in ("train", "test"):
        if len(data.texts[split]) < 3:  # Spearman over test pairs needs 2 pairs at least
            raise InputError(f"--data {path}: {len(data.texts[split])} rows in the {split} "
                             "split (5% of the rows are held out for the test); at least 3 "
                             "each are needed (give more rows)")


def _named(data: TextData, classes: list[str]) -> TextData:
    data.classes = list(classes)
    return data


def _class_ids(data: TextData) -> TextData:
    """An embedding model's labels (any names) as ids of the N_LABELS most common training
    labels (the proxy task's classes; other labels unlabeled)."""
    from collections import Counter

    counts = Counter(y for y in data.labels["train"] if y is not None)
    data.classes = sorted(counts, key=lambda c: (-counts[c], c))[:N_LABELS]
    index = {c: i for i, c in enumerate(data.classes)}
    data.labels = {s: [index.get(y) for y in ys] for s, ys in data.labels.items()}
    return data


# ----------------------------------------------------------------------------------- labels


def label_of(value, task: str, classes: list[str], where: str):
    """A row's label for a head: None where the row has none (null or empty); a class id of
    a classifier (a name in its id2label or an id below num_labels); a cross-encoder's
    relevance (a number); an embedding model's class name (the proxy task)."""
    if value is None or value == "":
        return None
    if task == "cross-encoder":
        return _score(value, where)
    if task == "classification":
        return _class_id(value, classes, where)
    if isinstance(value, (dict, list)):
        raise InputError(f"{where}: label {value!r}: expected a class name or number")
    return str(value)


def _score(value, where: str) -> float:
    try:
        if isinstance(value, (bool, dict, list)):
            raise ValueError
        score = float(value)
    except ValueError:
        raise InputError(f"{where}: label {value!r} is not a number; a cross-encoder's head "
                         "gives one score (num_labels 1), so its labels are numeric "
                         "relevances") from None
    if not 0 <= score <= 1:  # NaN too
        raise InputError(f"{where}: label {value!r}: a cross-encoder's relevance must be in "
                         "[0, 1] (the sigmoid of its score)")
    return score


def _class_id(value, classes: list[str], where: str) -> int:
    n = len(classes)
    allowed = (f"a name of the teacher's id2label ({', '.join(classes[:6])}"
               f"{', ...' if n > 6 else ''}) or an id 0..{n - 1}")
    if isinstance(value, str) and value in classes:
        return classes.index(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a float" if isinstance(value, float) or _is_float(value) else "not a class"
        raise InputError(f"{where}: label {value!r} is {kind}; a classification head of "
                         f"{n} classes takes {allowed}")
    if not 0 <= value < n:
        raise InputError(f"{where}: label {value} is out of range: the teacher's head has "
                         f"num_labels {n}, so the data has more classes than the head; "
                         f"expected {allowed}")
    return value


def _is_float(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False
