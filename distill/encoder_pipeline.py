"""`roi distill-encoder`: distill an encoder teacher (hf:DIR: sentence embeddings, a sequence
classifier or a cross-encoder, from its config.json) into fewer of its own layers (or a given
student with the same tokenizer) on the user's text, labels optional, train the same student
without the teacher (the baseline, on the labels where the data has them), and measure both
against the teacher on held-out text in the task's own metric (distill.encoder_eval).

    out/            the distilled student (hf:DIR) and metrics.json
    out/baseline/   the no-KD baseline (when the data is labeled)

Data: distill.encoder_data (the standard library's docstrings, or a JSONL/CSV file).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from contracts.errors import InputError
from models.encoder import (Encoder, layer_picks, load_encoder, narrow_config, reinit, shrink,
                            text_fingerprint, vocab_fingerprint)

from . import encoder_eval as ev
from .encoder import EncoderConfig, Progress, train_encoder, write_metrics
from .encoder_data import Fields, TextData, file_data, stdlib_data
from .encoder_inputs import EncoderInputs

log = logging.getLogger(__name__)
MAX_EVAL = 1000  # held-out texts compared pair by pair (Spearman over ~500k pairs)
MAX_EVAL_PAIRS = 5000  # held-out (text, pair) rows a cross-encoder scores
MAX_PROBE = 2000  # labeled training texts whose embeddings make the proxy task's centroids


def text_data(data: str, text_field: str = "text") -> TextData:
    """`data` as `roi run`'s encoder path reads it for an embedding teacher: stdlib (the
    docstrings, labeled) or a data file's text column (models.records)."""
    return (stdlib_data() if data == "stdlib" else
            file_data(data, Fields(text_field), "embedding", []))


def embed_all(enc: Encoder, texts: list) -> np.ndarray:
    return enc.embed(texts).numpy()


def evaluate(models: dict[str, Encoder], data: TextData) -> dict:
    """Per model, on held-out text, in the task's own metric: see evaluate_embeddings,
    evaluate_classifier, evaluate_ranker."""
    task = models["teacher"].task
    if task == "classification":
        return evaluate_classifier(models, data)
    if task == "cross-encoder":
        return evaluate_ranker(models, data)
    return evaluate_embeddings(models, data)


def evaluate_embeddings(models: dict[str, Encoder], data: TextData) -> dict:
    """Per model: agreement with the teacher on held-out texts and, with labels, the proxy
    task's nearest-centroid accuracy (centroids from labeled training texts)."""
    test = data.texts["test"][:MAX_EVAL]
    emb = {name: embed_all(enc, test) for name, enc in models.items()}
    out = {name: ({} if name == "teacher" else ev.retention(e, emb["teacher"]))
           for name, e in emb.items()}
    probe, probe_y = data.labeled("train")
    test_l, test_y = data.labeled("test")
    if probe and test_l:
        for name, enc in models.items():
            out[name]["proxy_accuracy"] = ev.nearest_centroid_accuracy(
                embed_all(enc, probe[:MAX_PROBE]), probe_y[:MAX_PROBE], embed_all(enc, test_l),
                test_y)
    return out


def evaluate_classifier(models: dict[str, Encoder], data: TextData) -> dict:
    """Per model: top-1 agreement with the teacher on the held-out texts, and accuracy and
    macro-F1 on those that carry a label."""
    test = data.items("test")[:MAX_EVAL]
    logits = {name: embed_all(enc, test) for name, enc in models.items()}
    labeled, ys = data.labeled("test")
    out = {}
    for name, enc in models.items():
        out[name] = {} if name == "teacher" else {
            "top1_agreement": ev.top1_agreement(logits[name], logits["teacher"])}
        if labeled:
            predicted = embed_all(enc, labeled).argmax(1)
            out[name].update(accuracy=ev.accuracy(predicted, ys),
                             macro_f1=ev.macro_f1(predicted, ys))
    return out


def evaluate_ranker(models: dict[str, Encoder], data: TextData) -> dict:
    """Per model: NDCG@10 and Spearman against the teacher's scores of each held-out query's
    candidates and, where every row is labeled, NDCG@10 against the labels."""
    test, keys = data.items("test")[:MAX_EVAL_PAIRS], data.texts["test"][:MAX_EVAL_PAIRS]
    scores = {name: embed_all(enc, test)[:, 0] for name, enc in models.items()}
    labels = data.labels.get("test", [])[:len(test)]
    out = {}
    for name in models:
        out[name] = ({} if name == "teacher" else
                     ev.ranking_retention(scores[name], scores["teacher"], keys))
        if labels and None not in labels:
            out[name]["label_ndcg@10"] = ev.label_ndcg(scores[name], np.array(labels), keys)
    return out


def train_items(data: TextData, cfg: EncoderConfig) -> list:
    """What the student trains on: the training texts or pairs, or (query, positive,
    negative) triples for Margin-MSE."""
    return data.triples["train"] if cfg.loss == "margin-mse" else data.items("train")


def kd_targets(teacher: Encoder, data: TextData, loss: str = "mse"):
    """What the student learns, per training item (see distill.encoder.train_encoder): the
    teacher's embeddings, its scores (with loss margin-mse: its margins score(q, p) -
    score(q, n) of each triple), or its logits with the labels where present."""
    from .losses import IGNORE_INDEX

    if loss == "margin-mse":
        triples = data.triples["train"]
        pos = embed_all(teacher, [(q, p) for q, p, _ in triples])[:, 0]
        return torch.from_numpy(pos - embed_all(teacher, [(q, n) for q, _, n in triples])[:, 0])
    out = torch.from_numpy(embed_all(teacher, data.items("train")))
    if teacher.task == "cross-encoder":
        return out[:, 0]
    if teacher.task == "classification":
        ys = data.labels.get("train") or [None] * len(out)
        return {"teacher": out, "labels": torch.tensor([IGNORE_INDEX if y is None else y
                                                        for y in ys])}
    return out


def check_loss(cfg: EncoderConfig, task: str, data: TextData,
               negative_field: str | None = None) -> None:
    """Margin-MSE is a cross-encoder's, on (query, positive, negative) rows; negatives are
    read for it alone."""
    if cfg.loss == "margin-mse" and task != "cross-encoder":
        raise InputError(f"--set loss=margin-mse: Margin-MSE ranks a cross-encoder's pairs; "
                         f"the teacher is a {task} model (use mse, cosine or mse+cosine)")
    if cfg.loss == "margin-mse" and cfg.hidden_weight > 0:
        raise InputError("--set hidden_weight: the hidden-state loss is not combined with "
                         "margin-mse (its triples score two pairs each); use hidden_weight=0")
    if cfg.loss == "margin-mse" and not data.triples.get("train"):
        raise InputError("--set loss=margin-mse: needs (query, positive, negative) rows: a "
                         "data file with --pair-field (the positive) and --negative-field")
    if data.triples and cfg.loss != "margin-mse":
        raise InputError(f"--negative-field{' ' + negative_field if negative_field else ''}: "
                         "negatives are read by --set loss=margin-mse alone; add it, or drop "
                         "--negative-field")


def check_student(student: Encoder, teacher: Encoder, spec: str) -> None:
    """A given student must share the teacher's tokenizer and head."""
    mine, theirs = vocab_fingerprint(student.tokenizer), vocab_fingerprint(teacher.tokenizer)
    if mine != theirs:
        raise InputError(f"--student {spec}: its tokenizer differs from the teacher's "
                         f"(vocabulary of {len(student.tokenizer)} tokens, fingerprint {mine}; "
                         f"the teacher's: {len(teacher.tokenizer)} tokens, {theirs}); expected "
                         "a student with the teacher's tokenizer")
    if (student.task, len(student.labels)) != (teacher.task, len(teacher.labels)):
        raise InputError(f"--student {spec}: a {student.task} model with "
                         f"{len(student.labels)} labels; expected the teacher's head: "
                         f"{teacher.task} with {len(teacher.labels)} labels")


def _student(teacher: Encoder, cfg: EncoderConfig, init: str,
             given: Encoder | None = None) -> tuple[Encoder, str]:
    """The teacher shrunk to cfg.layers (teacher-layer init, head copied) at width
    cfg.hidden_size (a narrower one: random init) or, where a student is given, that one (as it
    is, or freshly initialised for init random)."""
    if given is not None:
        return ((replace(given, module=reinit(given.module)), "random") if init == "random"
                else (given, "given student"))
    module, note = shrink(teacher.module, cfg.layers, init, cfg.hidden_size)
    return replace(teacher, module=module), note


def _fingerprint(items: list) -> str:
    return text_fingerprint([x if isinstance(x, str) else "\0".join(x) for x in items])


def _baseline(teacher: Encoder, cfg: EncoderConfig, data: TextData, out: Path, resume: bool,
              progress: Progress | None, given: Encoder | None = None
              ) -> tuple[Encoder, dict] | None:
    """The no-KD baseline: the same student from a random init, trained on the labels alone
    for the same steps (None without labeled training texts)."""
    items, ys = data.labeled("train")
    if not items:
        return None
    base_cfg = cfg.model_copy(update={"mode": "labels", "init": "random"})
    enc, _ = _student(teacher, base_cfg, "random", given)
    run = train_encoder(base_cfg, enc, items, torch.tensor(ys), out / "baseline",
                        _fingerprint(items), resume, progress)
    return enc, run


def distill_encoder(teacher_dir: str, out: str | Path, cfg: EncoderConfig, data: TextData,
                    baseline: bool = True, resume: bool = False,
                    progress: Progress | None = None, export: bool = True, task: str = "auto",
                    student_dir: str | None = None) -> dict:
    """Distill, train the baseline (labeled data only), evaluate, export the student to ONNX
    (fp32, int8: its embeddings or its head's logits) and measure those files too
    (distill.encoder_export); metrics.json into `out`."""
    out = Path(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    teacher, train = load_encoder(teacher_dir, task=task), train_items(data, cfg)
    check_loss(cfg, teacher.task, data)
    given = load_encoder(student_dir) if student_dir else None
    t0 = time.perf_counter()
    targets = kd_targets(teacher, data, cfg.loss)  # the teacher's outputs, once
    teacher_s = time.perf_counter() - t0
    student, init = _student(teacher, cfg, cfg.init, given)
    data_fp = f"{_fingerprint(train)}-{teacher_dir}"  # resume only against this teacher
    runs = {"student": train_encoder(cfg, student, train, targets, out, data_fp, resume,
                                     progress, teacher)}
    models = {"teacher": teacher, "student": student}
    base = _baseline(teacher, cfg, data, out, resume, progress, given) if baseline else None
    if base is not None:
        models["baseline"], runs["baseline"] = base
    metrics = {"task": teacher.task, "teacher": teacher_dir, "init": init, "data": data.source,
               "train_texts": len(train), "train_mb": _megabytes(train),
               "teacher_embed_s": teacher_s, "runs": runs, "eval": evaluate(models, data),
               **_eval_sizes(teacher.task, data),
               "teacher_params": sum(p.numel() for p in teacher.module.parameters()),
               "student_params": sum(p.numel() for p in student.module.parameters())}
    if export:
        from .encoder_export import export_and_check

        held_out = data.items("test")[:MAX_EVAL]  # texts, or a cross-encoder's pairs
        metrics["onnx"] = export_and_check(out, student, teacher, held_out)
    if teacher.task == "embedding":
        metrics.update(retention_figures(metrics))
    write_metrics(out, metrics)
    return metrics


def _megabytes(items: list) -> float:
    return sum(len((x if isinstance(x, str) else "".join(x)).encode()) for x in items) / 1e6


def _eval_sizes(task: str, data: TextData) -> dict:
    """How many held-out items each metric was measured on."""
    labeled = len(data.labeled("test")[0])
    if task == "cross-encoder":
        return {"eval_texts": min(MAX_EVAL_PAIRS, len(data.texts["test"])),
                "eval_queries": len(set(data.texts["test"][:MAX_EVAL_PAIRS]))}
    if task == "classification":
        return {"eval_texts": min(MAX_EVAL, len(data.texts["test"])), "labeled_test": labeled}
    return {"eval_texts": min(MAX_EVAL, len(data.texts["test"])), "proxy_texts": {
        "centroids": min(MAX_PROBE, len(data.labeled("train")[0])), "test": labeled}}


def _hf_dir(spec: str, flag: str) -> str:
    from models.zoo import parse_spec

    if not spec.startswith("hf:"):
        raise InputError(f"{flag} {spec}: expected hf:DIR or hf:ORG/NAME[@REVISION], a "
                         "Hugging Face encoder")
    return str(parse_spec(spec).path)


def retention_figures(metrics: dict) -> dict:
    """The distill result's retention, in the task's own metric and named (metrics.json, as
    reports and `roi run` read it): the student's, its int8 file's and the no-KD baseline's
    similarity Spearman against the teacher (None where not measured)."""
    from .encoder_eval import RETENTION_METRIC

    ev, onnx = metrics["eval"], metrics.get("onnx") or {}
    return {"retention_metric": RETENTION_METRIC, "retention": ev["student"]["spearman"],
            "int8_retention": (onnx.get("int8") or {}).get("spearman"),
            "baseline_retention": (ev.get("baseline") or {}).get("spearman")}


def run(teacher: str, out: str, inputs: EncoderInputs = EncoderInputs(),
        overrides: dict | None = None, resume: bool = False,
        progress: Progress | None = None) -> dict:
    """`roi distill-encoder`: every input checked (one InputError each) before training; the
    task, data and extras are `inputs` (a bad task was refused making them)."""
    from contracts.io import check_out_dir, dir_lock

    from .encoder import check_dtype, make_encoder_config
    from .trainer import resolve_device

    task, student, data = inputs.task, inputs.student, inputs.data
    teacher_dir = _hf_dir(teacher, "--teacher")
    cfg = make_encoder_config(overrides or {}, "--set")
    teacher_enc = load_encoder(teacher_dir, task=task)  # refused before anything is written
    student_dir = _hf_dir(student, "--student") if student else None
    if student_dir:
        check_student(load_encoder(student_dir), teacher_enc, student)
        if cfg.hidden_size is not None:
            raise InputError(f"--set hidden_size: --student {student} has its own width; "
                             "drop one of them")
    else:
        layer_picks(int(teacher_enc.module.config.num_hidden_layers), cfg.layers)
        narrow_config(teacher_enc.module.config, cfg.hidden_size)
    check_dtype(cfg, resolve_device(cfg.device))
    texts = (stdlib_data(teacher_enc.task, teacher_enc.labels) if data == "stdlib" else
             file_data(data, Fields(inputs.text_field, inputs.pair_field, inputs.label_field,
                                    inputs.negative_field), teacher_enc.task, teacher_enc.labels))
    check_loss(cfg, teacher_enc.task, texts, inputs.negative_field)
    with dir_lock(check_out_dir(out)):
        return distill_encoder(teacher_dir, out, cfg, texts, inputs.baseline, resume, progress,
                               inputs.export, task, student_dir)


def summary_lines(metrics: dict) -> list[str]:
    """What `roi distill-encoder` prints: each model's agreement with the teacher and its
    task metrics, and the training budget."""
    evals, runs = metrics["eval"], metrics["runs"]
    lines = [f"task: {metrics['task']}; data: {metrics['data']}, {metrics['train_texts']} "
             f"training texts ({metrics['train_mb']:.2f} MB); student init: {metrics['init']}"]
    for name, m in evals.items():
        parts = [f"{k} {v:.3f}" for k, v in m.items()]
        run = runs.get(name)
        if run:
            parts.append(f"{run['steps']} steps in {run['train_s']:.0f} s")
        lines.append(f"{name}: " + (", ".join(parts) or "reference"))
    for kind in ("fp32", "int8"):
        if kind in metrics.get("onnx", {}):
            m = metrics["onnx"][kind]
            lines.append(f"student ONNX {kind}: " + ", ".join(f"{k} {v:.3f}" for k, v in
                                                              m.items()))
    return lines
