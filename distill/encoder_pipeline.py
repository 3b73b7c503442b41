"""`roi distill-encoder`: distill a sentence-embedding teacher (hf:DIR) into fewer of its own
layers on unlabeled text, train the same student from scratch without the teacher (the
baseline, on the labels where the data has them), and measure both against the teacher on
held-out text.

    out/            the distilled student (hf:DIR) and metrics.json
    out/baseline/   the no-KD baseline (when the data is labeled)

Data: the standard library's docstrings (labeled by module: `stdlib`, the default) or a JSONL
file's text field (unlabeled: no baseline, no proxy task). Splits by a hash of each text's name.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from contracts.errors import InputError
from models.encoder import Encoder, layer_picks, load_encoder, shrink, text_fingerprint

from .encoder import EncoderConfig, Progress, train_encoder, write_metrics
from .encoder_eval import nearest_centroid_accuracy, retention

log = logging.getLogger(__name__)
N_LABELS = 32  # the proxy task's classes: the most common labels of the training split
MAX_EVAL = 1000  # held-out texts compared pair by pair (Spearman over ~500k pairs)
MAX_PROBE = 2000  # labeled training texts whose embeddings make the proxy task's centroids


@dataclass
class TextData:
    """Texts of each split and, where the data has them, their labels (ids into `classes`)."""

    texts: dict[str, list[str]]
    labels: dict[str, list[int]] = field(default_factory=dict)  # split -> label ids
    classes: list[str] = field(default_factory=list)
    source: str = "stdlib"

    def labeled(self, split: str) -> tuple[list[str], list[int]]:
        """The texts of `split` that carry one of the classes, and their label ids."""
        pairs = [(t, y) for t, y in zip(self.texts[split], self.labels.get(split, []))
                 if y >= 0]
        return [t for t, _ in pairs], [y for _, y in pairs]


def stdlib_data() -> TextData:
    """The standard library's docstrings, labeled by module (the N_LABELS most common)."""
    from models.encoder import stdlib_docstring_splits, top_labels

    splits = stdlib_docstring_splits()
    classes = top_labels(splits["train"], N_LABELS)
    index = {c: i for i, c in enumerate(classes)}
    return TextData({s: [t for _, _, t in d] for s, d in splits.items()},
                    {s: [index.get(lb, -1) for _, lb, _ in d] for s, d in splits.items()},
                    classes)


def jsonl_data(path: str, text_field: str) -> TextData:
    """The `text_field` of each line of a JSONL file, split by line (no labels)."""
    from models.corpus import DataConfig, jsonl_documents, split_of

    if not Path(path).is_file():
        raise InputError(f"--data {path}: no such file; expected a .jsonl file or stdlib")
    cfg, texts = DataConfig(), {"train": [], "val": [], "test": []}
    for name, text in jsonl_documents(Path(path), text_field):
        texts[split_of(name, cfg)].append(text)
    for split in ("train", "test"):
        if len(texts[split]) < 3:  # Spearman over pairs of test texts needs 2 pairs at least
            raise InputError(f"--data {path}: {len(texts[split])} texts in the {split} split "
                             f"(5% of the lines are held out for the test); at least 3 each "
                             "are needed (give more lines)")
    return TextData(texts, source=path)


def text_data(data: str, text_field: str = "text") -> TextData:
    """`data` as the encoder pipeline reads it: stdlib (docstrings, labeled) or a JSONL file."""
    return stdlib_data() if data == "stdlib" else jsonl_data(data, text_field)


def embed_all(enc: Encoder, texts: list[str]) -> np.ndarray:
    return enc.embed(texts).numpy()


def evaluate(models: dict[str, Encoder], data: TextData) -> dict:
    """Per model: agreement with the teacher on held-out texts and, with labels, the proxy
    task's nearest-centroid accuracy (centroids from labeled training texts)."""
    test = data.texts["test"][:MAX_EVAL]
    emb = {name: embed_all(enc, test) for name, enc in models.items()}
    out = {name: ({} if name == "teacher" else retention(e, emb["teacher"]))
           for name, e in emb.items()}
    probe, probe_y = data.labeled("train")
    test_l, test_y = data.labeled("test")
    if probe and test_l:
        for name, enc in models.items():
            out[name]["proxy_accuracy"] = nearest_centroid_accuracy(
                embed_all(enc, probe[:MAX_PROBE]), probe_y[:MAX_PROBE], embed_all(enc, test_l),
                test_y)
    return out


def _student(teacher: Encoder, cfg: EncoderConfig, init: str) -> tuple[Encoder, str]:
    module, note = shrink(teacher.module, cfg.layers, init)
    return Encoder(module, teacher.tokenizer, teacher.pooling, teacher.max_len), note


def _baseline(teacher: Encoder, cfg: EncoderConfig, data: TextData, out: Path, resume: bool,
              progress: Progress | None) -> tuple[Encoder, dict] | None:
    """The no-KD baseline: the same student from a random init, trained on the labels alone
    for the same steps (None without labeled training texts)."""
    texts, ys = data.labeled("train")
    if not texts:
        return None
    base_cfg = cfg.model_copy(update={"mode": "labels", "init": "random"})
    enc, _ = _student(teacher, base_cfg, "random")
    run = train_encoder(base_cfg, enc, texts, torch.tensor(ys), out / "baseline",
                        text_fingerprint(texts), resume, progress)
    return enc, run


def distill_encoder(teacher_dir: str, out: str | Path, cfg: EncoderConfig, data: TextData,
                    baseline: bool = True, resume: bool = False,
                    progress: Progress | None = None, export: bool = True) -> dict:
    """Distill, train the baseline (labeled data only), evaluate, export the student to ONNX
    (fp32, int8) and measure those files too; metrics.json into `out`."""
    out = Path(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    teacher, train = load_encoder(teacher_dir), data.texts["train"]
    t0 = time.perf_counter()
    targets = torch.from_numpy(embed_all(teacher, train))  # (N, C): the KD targets, once
    teacher_s = time.perf_counter() - t0
    student, init = _student(teacher, cfg, cfg.init)
    data_fp = f"{text_fingerprint(train)}-{teacher_dir}"  # resume only against this teacher
    runs = {"student": train_encoder(cfg, student, train, targets, out, data_fp, resume,
                                     progress)}
    models = {"teacher": teacher, "student": student}
    base = _baseline(teacher, cfg, data, out, resume, progress) if baseline else None
    if base is not None:
        models["baseline"], runs["baseline"] = base
    test = data.texts["test"][:MAX_EVAL]
    metrics = {"task": "embedding", "teacher": teacher_dir, "init": init, "data": data.source,
               "train_texts": len(train), "train_mb": sum(len(t.encode()) for t in train) / 1e6,
               "teacher_embed_s": teacher_s, "runs": runs, "eval": evaluate(models, data),
               "eval_texts": len(test), "proxy_texts": {
                   "centroids": min(MAX_PROBE, len(data.labeled("train")[0])),
                   "test": len(data.labeled("test")[0])},
               "teacher_params": sum(p.numel() for p in teacher.module.parameters()),
               "student_params": sum(p.numel() for p in student.module.parameters())}
    if export:
        from .encoder_export import export_and_check

        metrics["onnx"] = export_and_check(out, student, teacher, test)
    metrics.update(retention_figures(metrics))
    write_metrics(out, metrics)
    return metrics


def retention_figures(metrics: dict) -> dict:
    """The distill result's retention, in the task's own metric and named (metrics.json, as
    reports and `roi run` read it): the student's, its int8 file's and the no-KD baseline's
    similarity Spearman against the teacher (None where not measured)."""
    from .encoder_eval import RETENTION_METRIC

    ev, onnx = metrics["eval"], metrics.get("onnx") or {}
    return {"retention_metric": RETENTION_METRIC, "retention": ev["student"]["spearman"],
            "int8_retention": (onnx.get("int8") or {}).get("spearman"),
            "baseline_retention": (ev.get("baseline") or {}).get("spearman")}


def run(teacher: str, out: str, data: str = "stdlib", text_field: str = "text",
        overrides: dict | None = None, baseline: bool = True, resume: bool = False,
        progress: Progress | None = None, export: bool = True) -> dict:
    """`roi distill-encoder`: every input checked (one InputError each) before training."""
    from contracts.io import check_out_dir, dir_lock
    from models.zoo import parse_spec

    from .encoder import make_encoder_config

    if not teacher.startswith("hf:"):
        raise InputError(f"--teacher {teacher}: expected hf:DIR or hf:ORG/NAME[@REVISION], a "
                         "Hugging Face sentence-embedding encoder")
    teacher_dir = str(parse_spec(teacher).path)
    cfg = make_encoder_config(overrides or {}, "--set")
    teacher_enc = load_encoder(teacher_dir)  # refused before anything is written: no encoder,
    layer_picks(int(teacher_enc.module.config.num_hidden_layers), cfg.layers)  # too many layers
    texts = text_data(data, text_field)
    with dir_lock(check_out_dir(out)):
        return distill_encoder(teacher_dir, out, cfg, texts, baseline, resume, progress, export)


def summary_lines(metrics: dict) -> list[str]:
    """What `roi distill-encoder` prints: each model's agreement with the teacher and proxy
    accuracy, and the training budget."""
    ev, runs = metrics["eval"], metrics["runs"]
    lines = [f"data: {metrics['data']}, {metrics['train_texts']} training texts "
             f"({metrics['train_mb']:.2f} MB); student init: {metrics['init']}"]
    for name, m in ev.items():
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
