"""Classification and cross-encoder heads (issue 19) on tiny BERTs built offline from real
docstrings: the head read from the checkpoint, shrunk with it, pinned losses and metrics, the
user's data (JSONL, CSV) with labels checked against the head, and bad input refused in one
line before anything is written."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contracts.errors import InputError
from distill import encoder_eval as ev
from distill.build_encoder import with_head
from distill.encoder import EncoderConfig, classification_kd_loss
from distill.encoder_data import Fields, TextData, file_data, label_of
from distill.losses import IGNORE_INDEX
from models.encoder import Encoder, load_encoder, read_head, save_encoder, shrink

from .encoder_helpers import TEXTS, tiny_encoder_of

CLASSES = ["os", "json", "email"]
FAST = dict(layers=2, steps=6, batch_size=4, lr=3e-3, warmup_steps=1, ckpt_every=3,
            device="cpu", threads=1)


@pytest.fixture(scope="module")
def tiny():
    return tiny_encoder_of()


def _with_head(tiny, task, labels):
    return Encoder(with_head(tiny.module, task, labels), tiny.tokenizer, "cls", tiny.max_len,
                   task, labels)


@pytest.fixture(scope="module")
def classifier_dir(tiny, tmp_path_factory):
    return save_encoder(_with_head(tiny, "classification", CLASSES),
                        tmp_path_factory.mktemp("heads") / "classifier")


@pytest.fixture(scope="module")
def ranker_dir(tiny, tmp_path_factory):
    return save_encoder(_with_head(tiny, "cross-encoder", []),
                        tmp_path_factory.mktemp("heads") / "ranker")


# ------------------------------------------------------------------------------ the head


def test_the_head_is_read_from_the_checkpoint(classifier_dir, ranker_dir, tiny, tmp_path):
    assert read_head(classifier_dir) == ("classification", CLASSES)
    assert read_head(ranker_dir) == ("cross-encoder", ["score"])
    assert read_head(save_encoder(tiny, tmp_path / "body")) == ("embedding", [])
    clf = load_encoder(classifier_dir)
    assert (clf.task, clf.labels) == ("classification", CLASSES)
    assert clf.embed(TEXTS).shape == (6, 3)
    assert load_encoder(ranker_dir).embed(list(zip(TEXTS, TEXTS[::-1]))).shape == (6, 1)
    assert load_encoder(classifier_dir, task="embedding").embed(TEXTS).shape == (6, 32)


def test_an_unsupported_head_names_what_was_found_and_what_is_supported(classifier_dir,
                                                                         tmp_path):
    import shutil

    shutil.copytree(classifier_dir, tmp_path / "tok")
    conf = json.loads((tmp_path / "tok" / "config.json").read_text())
    conf["architectures"] = ["BertForTokenClassification"]
    (tmp_path / "tok" / "config.json").write_text(json.dumps(conf))
    with pytest.raises(InputError, match=r"a BertForTokenClassification head is not supported; "
                       r"supported: .*ForSequenceClassification"):
        load_encoder(tmp_path / "tok")


def test_a_multi_label_head_is_refused(classifier_dir, tmp_path):
    import shutil

    shutil.copytree(classifier_dir, tmp_path / "multi")
    conf = json.loads((tmp_path / "multi" / "config.json").read_text())
    conf["problem_type"] = "multi_label_classification"
    (tmp_path / "multi" / "config.json").write_text(json.dumps(conf))
    with pytest.raises(InputError, match="problem_type multi_label_classification and 3 labels "
                       "is not supported"):
        load_encoder(tmp_path / "multi")


def test_a_bare_body_has_no_head_to_distill(tiny, tmp_path):
    with pytest.raises(InputError, match="has no classification head .*says: embedding"):
        load_encoder(save_encoder(tiny, tmp_path / "body"), task="classification")


def test_shrinking_a_classifier_keeps_its_head(classifier_dir):
    teacher = load_encoder(classifier_dir)
    student, note = shrink(teacher.module, 2)
    assert note == "teacher layers [0, 3]"
    assert torch.equal(student.classifier.weight, teacher.module.classifier.weight)
    assert len(student.bert.encoder.layer) == 2


# ------------------------------------------------------------------------------ losses, metrics


def test_classification_kd_loss_pinned():
    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    student = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, IGNORE_INDEX])
    t = 2.0
    p, log_q = F.softmax(teacher / t, -1), F.log_softmax(student / t, -1)
    kl = (p * (p.log() - log_q)).sum(-1).mean() * t * t
    ce = F.cross_entropy(student[:1], labels[:1])  # the unlabeled row takes no CE
    assert classification_kd_loss(student, teacher, labels, t, 1.0).item() == \
        pytest.approx(kl.item(), rel=1e-5)
    assert classification_kd_loss(student, teacher, labels, t, 0.0).item() == \
        pytest.approx(ce.item(), rel=1e-5)
    assert classification_kd_loss(teacher, teacher, labels, t, 1.0).item() == \
        pytest.approx(0.0, abs=1e-6)
    no_labels = torch.full((2,), IGNORE_INDEX)
    assert classification_kd_loss(student, teacher, no_labels, t, 0.25).item() == \
        pytest.approx(0.25 * kl.item(), rel=1e-5)


def test_classification_metrics_on_a_hand_made_case():
    predicted, labels = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])
    # class 0: tp 1, fp 1, fn 0 -> 2/3; class 1: tp 1, fn 2 -> 2/4; class 2: fp 1 -> 0
    assert ev.macro_f1(predicted, labels) == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert ev.accuracy(predicted, labels) == 0.5
    logits = np.eye(3)[predicted]
    assert ev.top1_agreement(logits, np.eye(3)[labels]) == 0.5


def test_ranking_metrics_pinned():
    # the best candidate second, the rest in order: DCG = 1/log2(3) + 0 ... / IDCG = 1
    assert ev.ndcg_at_k(np.array([2.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0])) == \
        pytest.approx(1 / np.log2(3))
    assert np.isnan(ev.ndcg_at_k(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
    keys = ["a"] * 4 + ["b"] * 3
    teacher = np.array([3.0, 2.0, 1.0, 0.0, 0.5, 0.2, 0.1])
    same = ev.ranking_retention(teacher * 2 + 1, teacher, keys)
    assert same == {"ndcg@10": pytest.approx(1.0), "spearman": pytest.approx(1.0)}
    flipped = ev.ranking_retention(-teacher, teacher, keys)
    assert flipped["spearman"] == pytest.approx(-1.0) and flipped["ndcg@10"] < 0.7
    rel = np.array([1.0, 0, 0, 0, 0, 0, 1.0])
    assert ev.label_ndcg(teacher, rel, keys) == pytest.approx((1 + 0.5) / 2)


# ------------------------------------------------------------------------------ distillation


def _docs(n=4):
    return [f"{t} Case {i}." for i in range(n) for t in TEXTS]


def test_a_classifier_distils_on_partly_labeled_text(classifier_dir, tmp_path):
    from distill.encoder_pipeline import distill_encoder

    texts = _docs()
    labels = [i % 3 if i % 4 else None for i in range(len(texts))]  # a quarter unlabeled
    data = TextData({"train": texts, "val": [], "test": texts[:9]},
                    {"train": labels, "test": labels[:9]}, CLASSES)
    m = distill_encoder(str(classifier_dir), tmp_path / "o", EncoderConfig(**FAST), data)
    assert m["task"] == "classification" and set(m["eval"]) == {"teacher", "student",
                                                                 "baseline"}
    assert m["labeled_test"] == sum(y is not None for y in labels[:9])
    assert m["runs"]["baseline"]["settings"]["mode"] == "labels"
    for name in ("student", "baseline"):
        assert 0 <= m["eval"][name]["top1_agreement"] <= 1
        assert 0 <= m["eval"][name]["macro_f1"] <= m["eval"][name]["accuracy"] + 1
    assert read_head(tmp_path / "o") == ("classification", CLASSES)
    assert (tmp_path / "o" / "student.int8.onnx").is_file()  # the head's logits, exported
    assert m["onnx"]["fp32"]["max_abs_logit_diff"] < 1e-3
    assert m["onnx"]["fp32"]["top1_agreement"] == 1.0  # against the torch student
    assert 0 <= m["onnx"]["int8"]["top1_agreement"] <= 1


def test_kd_brings_a_classifier_student_toward_its_teacher(classifier_dir, tmp_path):
    from distill.encoder import train_encoder
    from distill.encoder_pipeline import _student, kd_targets

    teacher = load_encoder(classifier_dir)
    with torch.no_grad():  # a teacher with opinions: its head scaled away from random init
        teacher.module.classifier.weight.mul_(20)
    data = TextData({"train": _docs(), "val": [], "test": []})
    targets = kd_targets(teacher, data)
    assert (targets["labels"] == IGNORE_INDEX).all()  # unlabeled: the teacher's outputs alone
    student, _ = _student(teacher, EncoderConfig(**FAST), "random")
    cfg = EncoderConfig(**{**FAST, "steps": 40, "alpha": 1.0})
    before = ev.top1_agreement(student.embed(_docs()).numpy(), targets["teacher"].numpy())
    run = train_encoder(cfg, student, _docs(), targets, tmp_path / "s", "fp")
    after = ev.top1_agreement(student.embed(_docs()).numpy(), targets["teacher"].numpy())
    assert run["history"][-1]["train_loss"] < run["history"][0]["train_loss"]
    assert after > before


def test_a_cross_encoder_distils_on_pairs(ranker_dir, tmp_path):
    from distill.encoder_pipeline import distill_encoder

    texts = _docs(2)
    queries = [t.split()[1] for t in texts]  # a word of the text: a real (if easy) query
    pairs = {"train": texts, "test": texts}
    labels = [1.0 if i % 3 == 0 else 0.0 for i in range(len(texts))]
    data = TextData({"train": queries, "val": [], "test": queries}, {"train": labels,
                    "test": labels}, pairs=pairs)
    m = distill_encoder(str(ranker_dir), tmp_path / "o", EncoderConfig(**FAST), data)
    assert m["task"] == "cross-encoder" and m["eval_queries"] == len(set(queries))
    for name in ("student", "baseline"):
        assert set(m["eval"][name]) == {"ndcg@10", "spearman", "label_ndcg@10"}
        assert 0 <= m["eval"][name]["ndcg@10"] <= 1
    assert m["runs"]["student"]["history"][0]["train_loss"] >= 0


# ------------------------------------------------------------------------------ data, labels


def test_labels_are_checked_against_the_head():
    assert label_of("json", "classification", CLASSES, "r") == 1
    assert label_of(2, "classification", CLASSES, "r") == 2
    assert label_of("2", "classification", CLASSES, "r") == 2  # a CSV cell
    assert label_of(None, "classification", CLASSES, "r") is None
    assert label_of("", "classification", CLASSES, "r") is None
    assert label_of("0.5", "cross-encoder", [], "r") == 0.5
    with pytest.raises(InputError, match="label 'xml' is not a class; .*id2label "
                       r"\(os, json, email\) or an id 0..2"):
        label_of("xml", "classification", CLASSES, "r")
    with pytest.raises(InputError, match="label 0.5 is a float"):
        label_of(0.5, "classification", CLASSES, "r")
    with pytest.raises(InputError, match="label 3 is out of range: .*num_labels 3"):
        label_of(3, "classification", CLASSES, "r")
    with pytest.raises(InputError, match="label 'high' is not a number"):
        label_of("high", "cross-encoder", [], "r")
    with pytest.raises(InputError, match=r"label 4: a cross-encoder's relevance must be in "
                       r"\[0, 1\]"):
        label_of(4, "cross-encoder", [], "r")


def _csv(path, header, rows):
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_and_jsonl_rows_with_pairs_and_labels(tmp_path):
    rows = [(f"query {i % 40}", f"passage {i}", str(i % 2)) for i in range(400)]
    data = file_data(str(_csv(tmp_path / "d.csv", ["q", "p", "rel"], rows)),
                     Fields("q", "p", "rel"), "cross-encoder", ["score"])
    assert sum(map(len, data.texts.values())) == 400
    for split in ("train", "test"):
        for q, p in data.items(split):  # each query's candidates stay in one split
            assert all(q not in data.texts[s] for s in ("train", "val", "test") if s != split)
    assert set(data.labels["train"]) == {0.0, 1.0}
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "y": ["os", "json", None][i % 3]})
                            + "\n" for i in range(200)))
    data = file_data(str(path), Fields("text", None, "y"), "classification", CLASSES)
    assert set(data.labels["train"]) == {0, 1, None} and data.classes == CLASSES


# ------------------------------------------------------------------------------ the command


def _main(args):
    from app.cli import main

    return main(["distill-encoder", *args])


def test_cli_distils_a_classifier_from_a_csv_file(classifier_dir, tmp_path, capsys):
    rows = [(f"{t} Number {i}.", CLASSES[i % 3] if i % 2 else "") for i in range(30)
            for t in TEXTS]
    data = _csv(tmp_path / "d.csv", ["body", "module"], rows)
    code = _main(["--teacher", f"hf:{classifier_dir}", "--out", str(tmp_path / "out"),
                  "--data", str(data), "--text-field", "body", "--label-field", "module",
                  "--set", "steps=3", "--set", "batch_size=4", "--set", "layers=2",
                  "--set", "device=cpu"])
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["task"] == "classification" and "baseline" in metrics["eval"]
    printed = capsys.readouterr().out
    assert "task: classification" in printed and "student: top1_agreement" in printed


@pytest.fixture
def other_tokenizer_dir(tmp_path):
    from distill.build_encoder import new_bert, train_tokenizer

    from .encoder_helpers import TINY

    tok = train_tokenizer(TEXTS * 3, 120, TINY["max_len"])
    body = Encoder(new_bert(TINY, len(tok)), tok, "mean", TINY["max_len"])
    return save_encoder(_with_head(body, "classification", CLASSES), tmp_path / "other")


@pytest.mark.parametrize("args, label, message", [
    (["--teacher", "hf:{tok}"], "os", "a BertForTokenClassification head is not supported"),
    (["--label-field", "lbl"], "os", 'no "lbl" field (its fields: text, y); name the label '
     "field with --label-field"),
    (["--label-field", "y"], "xml", "label 'xml' is not a class"),
    (["--label-field", "y"], 7, "label 7 is out of range: the teacher's head has num_labels 3"),
    (["--label-field", "y"], 1.5, "label 1.5 is a float"),
    (["--student", "hf:{other}"], "os", "its tokenizer differs from the teacher's"),
    (["--pair-field", "p"], "os", "--pair-field p: the teacher is a classification model"),
    (["--task", "cross-encoder"], "os", "has no cross-encoder head (its config.json says: classification)"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(classifier_dir, other_tokenizer_dir,
                                                      tmp_path, capsys, args, label, message):
    import shutil

    shutil.copytree(classifier_dir, tmp_path / "tok")
    conf = json.loads((tmp_path / "tok" / "config.json").read_text())
    conf["architectures"] = ["BertForTokenClassification"]
    (tmp_path / "tok" / "config.json").write_text(json.dumps(conf))
    lines = [json.dumps({"text": t, "y": label}) for t in TEXTS * 20]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    args = [a.replace("{tok}", str(tmp_path / "tok")).replace("{other}",
                                                               str(other_tokenizer_dir))
            for a in args]
    if "--teacher" not in args:
        args += ["--teacher", f"hf:{classifier_dir}"]
    code = _main(["--out", str(tmp_path / "out"), "--data", str(tmp_path / "d.jsonl"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_cross_encoder_needs_its_pair_column(ranker_dir, tmp_path, capsys):
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": "q", "p": "d"}) + "\n")
    code = _main(["--teacher", f"hf:{ranker_dir}", "--out", str(tmp_path / "out"), "--data",
                  str(tmp_path / "d.jsonl")])
    assert code == 2 and "--pair-field: a cross-encoder scores (text, pair) rows" in \
        capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ built teachers


def test_a_head_teacher_is_built_deterministically_and_cached_once(tiny, tmp_path,
                                                                    monkeypatch):
    from itertools import islice

    import models.encoder as me
    from distill import build_encoder as b
    from models.corpus import stdlib_documents

    docs = me.docstrings(islice(stdlib_documents(), 60))  # 60 files' docstrings: seconds
    monkeypatch.setattr(me, "stdlib_docstring_splits", lambda: {"train": docs, "test": docs})
    base = save_encoder(tiny, tmp_path / "base")
    recipe = {**b.HEAD_RECIPES["classification"], "steps": 2, "batch_size": 4}
    for name in ("one", "two"):
        b._build_head_into(tmp_path / name, "classification", recipe, base, 1, None)
    built = [json.loads((tmp_path / n / b.BUILD_FILE).read_text()) for n in ("one", "two")]
    assert built[0]["weights_sha256"] == built[1]["weights_sha256"]
    task, labels = read_head(tmp_path / "one")
    assert task == "classification" and labels == built[0]["labels"] and len(labels) == 16
    calls = []
    entry = tmp_path / "cache" / "entry"
    for _ in range(2):  # the second finds build.json and builds nothing
        b._cached(entry, lambda tmp: (calls.append(tmp), tmp.mkdir(parents=True),
                                      (tmp / b.BUILD_FILE).write_text("{}")))
    assert len(calls) == 1 and (entry / b.BUILD_FILE).is_file()


def test_module_queries_rank_docstrings_by_the_module_they_document():
    from models.encoder import module_queries

    docs = [(f"{m}.py:f{i}:1", m, f"Docstring {i} of {m}.") for m in "abcd" for i in range(3)]
    docs.append(("z.py:g:1", "z", "A module not asked about."))
    keep = ["a", "b", "c"]
    queries, candidates, relevance = module_queries(docs, keep, 1, seed=0)
    assert len(queries) == 2 * 9 and relevance.count(1.0) == 9  # d and z are no candidates
    for q, c, r in zip(queries, candidates, relevance):
        assert q in keep and (r == 1.0) == c.endswith(f" of {q}.")
    assert module_queries(docs, keep, 1, seed=0) == (queries, candidates, relevance)
    queries, candidates, relevance = module_queries(docs, keep, None)  # held out: every pair
    assert len(queries) == 9 * 3 and sorted(set(queries)) == keep
    assert relevance.count(1.0) == 9
