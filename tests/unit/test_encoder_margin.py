"""Margin-MSE for cross-encoders (issue 19; Hofstätter et al. 2020): on (query, positive,
negative) triples the student learns the teacher's margin score(q, p) - score(q, n). The loss
pinned, a short run on a tiny cross-encoder lowering it, and the negative column read and
checked like the others."""

import json

import pytest
import torch

from contracts.errors import InputError
from distill.encoder import EncoderConfig, margin_mse, train_encoder
from distill.encoder_data import Fields, file_data
from models.encoder import load_encoder

from .encoder_helpers import TEXTS, tiny_encoder_of, tiny_head_dir

FAST = dict(layers=2, steps=30, batch_size=4, lr=3e-3, warmup_steps=1, ckpt_every=30,
            device="cpu", threads=1, loss="margin-mse")


@pytest.fixture(scope="module")
def ranker_dir(tmp_path_factory):
    return tiny_head_dir(tiny_encoder_of(), "cross-encoder",
                         tmp_path_factory.mktemp("margin") / "ranker")


def _rows(n=120):
    """(query, positive, negative): a word of a text and a number, the text, another text."""
    k = len(TEXTS)
    return [{"q": f"{TEXTS[i % k].split()[1 + i % 3]} {i}", "p": f"{TEXTS[i % k]} Case {i}.",
             "n": f"{TEXTS[(i + 1 + i % (k - 1)) % k]} Case {i}."} for i in range(n)]


def test_margin_mse_is_zero_exactly_when_the_margins_match_the_teachers():
    pos, neg = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 0.5, -3.0])
    margin = pos - neg
    assert margin_mse(pos, neg, margin).item() == 0.0
    assert margin_mse(pos + 5.0, neg + 5.0, margin).item() == pytest.approx(0.0)  # scale-free
    assert margin_mse(pos, neg, margin + torch.tensor([0.0, 0.0, 1.0])).item() == \
        pytest.approx(1 / 3)  # one triple off by 1
    assert margin_mse(neg, pos, margin).item() > 0  # the order reversed


def test_a_short_run_lowers_the_margin_loss(ranker_dir, tmp_path):
    from distill.encoder_pipeline import _student, kd_targets, train_items

    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    data = file_data(str(path), Fields("q", "p", None, "n"), "cross-encoder", ["score"])
    cfg = EncoderConfig(**FAST)
    triples = train_items(data, cfg)
    assert triples and all(len(t) == 3 for t in triples)
    teacher = load_encoder(ranker_dir)
    margins = kd_targets(teacher, data, cfg.loss)
    assert margins.shape == (len(triples),) and margins.abs().max() > 0.1

    student, _ = _student(teacher, cfg, "random")

    def loss():
        with torch.no_grad():
            student.module.eval()
            pos = student.embed([(q, p) for q, p, _ in triples])[:, 0]
            neg = student.embed([(q, n) for q, _, n in triples])[:, 0]
            return margin_mse(pos, neg, margins).item()

    before = loss()
    run = train_encoder(cfg, student, triples, margins, tmp_path / "s", "fp")
    assert run["settings"]["loss"] == "margin-mse"
    assert loss() < 0.5 * before, (before, loss())


def test_the_negative_column_is_read_beside_the_pair(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(400)))
    data = file_data(str(path), Fields("q", "p", None, "n"), "cross-encoder", ["score"])
    for split in ("train", "test"):
        triples, pairs = data.triples[split], data.items(split)
        assert len(pairs) == 2 * len(triples)  # each negative ranked beside its positive
        assert {(q, n) for q, _, n in triples} <= set(pairs)
    with pytest.raises(InputError, match=r'no "neg" field \(its fields: n, p, q\); name the '
                       "negative field with --negative-field"):
        file_data(str(path), Fields("q", "p", None, "neg"), "cross-encoder", ["score"])


def _main(args):
    from app.cli import main

    return main(["distill-encoder", *args])


@pytest.mark.parametrize("args, message", [
    (["--negative-field", "nope"], 'no "nope" field (its fields: n, p, q); name the negative '
     "field with --negative-field"),
    (["--negative-field", "n"], "--negative-field n: negatives are read by --set "
     "loss=margin-mse alone"),
    (["--set", "loss=margin-mse"], "--set loss=margin-mse: needs (query, positive, negative) "
     "rows"),
])
def test_cli_bad_margin_input_is_one_line_and_writes_nothing(ranker_dir, tmp_path, capsys,
                                                              args, message):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    code = _main(["--teacher", f"hf:{ranker_dir}", "--out", str(tmp_path / "out"), "--data",
                  str(path), "--text-field", "q", "--pair-field", "p", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_margin_mse_is_refused_for_a_classifier():
    from distill.encoder_data import TextData
    from distill.encoder_pipeline import check_loss

    with pytest.raises(InputError, match="Margin-MSE ranks a cross-encoder's pairs; the "
                       "teacher is a classification model"):
        check_loss(EncoderConfig(loss="margin-mse"), "classification", TextData({}))


def test_cli_distils_a_cross_encoder_with_margin_mse(ranker_dir, tmp_path, capsys):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    code = _main(["--teacher", f"hf:{ranker_dir}", "--out", str(tmp_path / "o"), "--data",
                  str(path), "--text-field", "q", "--pair-field", "p", "--negative-field",
                  "n", "--no-baseline", "--no-export", "--set", "loss=margin-mse",
                  "--set", "steps=4", "--set", "batch_size=4", "--set", "layers=2",
                  "--set", "threads=1", "--set", "device=cpu"])
    assert code == 0, capsys.readouterr().err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["runs"]["student"]["settings"]["loss"] == "margin-mse"
    assert {"ndcg@10", "spearman"} <= set(m["eval"]["student"])
