"""Embedding distillation (distill/encoder.py, distill/encoder_pipeline.py) on a tiny BERT built
offline: pinned loss values, resumable deterministic batches, a student that moves toward its
teacher, and bad input refused in one line before anything is written."""

import json

import numpy as np
import pytest
import torch

from contracts.errors import InputError
from distill.encoder import (EncoderConfig, batch_indices, embedding_loss, make_encoder_config,
                             train_encoder)
from distill.encoder_eval import similarity_spearman
from models.encoder import Encoder, save_encoder, shrink

from .encoder_helpers import TEXTS, tiny_encoder_of

tiny_encoder = pytest.fixture(scope="module")(tiny_encoder_of)

FAST = dict(layers=2, steps=6, batch_size=4, lr=3e-3, warmup_steps=1, ckpt_every=3,
            device="cpu", threads=1)


def test_embedding_loss_pinned_values():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    # mse: ((1+1) + (0+1)) / 4 = 0.75; cosine: (1 - 0) and (1 - 1): mean 0.5
    assert embedding_loss(s, t, "mse").item() == pytest.approx(0.75)
    assert embedding_loss(s, t, "cosine").item() == pytest.approx(0.5)
    assert embedding_loss(s, t, "mse+cosine").item() == pytest.approx(1.25)


def test_batches_cover_each_epoch_and_depend_on_the_step_alone():
    first_epoch = np.concatenate([batch_indices(10, 3, s, seed=0) for s in range(3)])
    assert sorted(first_epoch) == sorted(set(first_epoch))  # no text twice in an epoch
    assert len(first_epoch) == 9
    assert np.array_equal(batch_indices(10, 3, 7, 0), batch_indices(10, 3, 7, 0))
    assert not np.array_equal(batch_indices(10, 3, 0, 0), batch_indices(10, 3, 3, 0))


def test_bad_setting_is_one_line_naming_the_field():
    with pytest.raises(InputError, match=r"--set: loss: .*received 'kl'"):
        make_encoder_config({"loss": "kl"}, "--set")
    with pytest.raises(InputError, match="--set: lyers: Extra inputs"):
        make_encoder_config({"lyers": 2}, "--set")


def _student(teacher: Encoder, init="teacher-layers") -> Encoder:
    module, _ = shrink(teacher.module, 2, init)
    return Encoder(module, teacher.tokenizer, teacher.pooling, teacher.max_len)


def test_distillation_moves_the_student_toward_the_teacher(tiny_encoder, tmp_path):
    import copy

    texts, teacher = TEXTS * 4, copy.deepcopy(tiny_encoder)
    with torch.no_grad():  # a teacher worth copying: perturbed away from its random init
        for p in teacher.module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    targets = teacher.embed(texts)
    student = _student(teacher, "random")
    before = similarity_spearman(student.embed(TEXTS).numpy(), targets[:6].numpy())
    cfg = EncoderConfig(**{**FAST, "steps": 30})
    run = train_encoder(cfg, student, texts, targets, tmp_path / "s", "fp")
    after = similarity_spearman(student.embed(TEXTS).numpy(), targets[:6].numpy())
    assert run["history"][-1]["train_loss"] < run["history"][0]["train_loss"]
    assert after > before
    assert (tmp_path / "s" / "model.safetensors").is_file()
    assert (tmp_path / "s" / "1_Pooling" / "config.json").is_file()


def test_resume_ends_where_an_uninterrupted_run_ends(tiny_encoder, tmp_path):
    texts, targets = TEXTS * 2, tiny_encoder.embed(TEXTS * 2)
    whole = _student(tiny_encoder)
    train_encoder(EncoderConfig(**FAST), whole, texts, targets, tmp_path / "a", "fp")
    def stop_after_checkpoint(step, total, loss):
        if step == 4:  # the checkpoint of step 3 is written; step 4's is lost
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_encoder(EncoderConfig(**FAST), _student(tiny_encoder), texts, targets,
                      tmp_path / "b", "fp", progress=stop_after_checkpoint)
    resumed = _student(tiny_encoder)
    train_encoder(EncoderConfig(**FAST), resumed, texts, targets, tmp_path / "b", "fp",
                  resume=True)
    assert torch.allclose(resumed.embed(TEXTS), whole.embed(TEXTS), atol=1e-5)
    with pytest.raises(InputError, match="holds a training run: pass --resume"):
        train_encoder(EncoderConfig(**FAST), resumed, texts, targets, tmp_path / "b", "fp")
    with pytest.raises(InputError, match="other settings or data"):
        train_encoder(EncoderConfig(**FAST), resumed, texts, targets, tmp_path / "b", "other",
                      resume=True)


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tiny_encoder, tmp_path):
    texts, targets = TEXTS * 2, tiny_encoder.embed(TEXTS * 2)
    cfg = EncoderConfig(**{**FAST, "steps": 4})
    train_encoder(cfg, _student(tiny_encoder), texts, targets, tmp_path / "r", "fp")
    state = torch.load(tmp_path / "r" / "train_state.pt", weights_only=True)
    for added in ("temperature", "alpha"):  # settings added with the classification head
        del state["config"][added]
    torch.save(state, tmp_path / "r" / "train_state.pt")
    assert len(train_encoder(cfg, _student(tiny_encoder), texts, targets, tmp_path / "r",
                             "fp", resume=True)["history"]) == 4
    with pytest.raises(InputError, match="other settings or data"):
        train_encoder(EncoderConfig(**{**FAST, "steps": 4, "alpha": 0.9}),
                      _student(tiny_encoder), texts, targets, tmp_path / "r", "fp", resume=True)


def test_labels_mode_trains_a_head(tiny_encoder, tmp_path):
    student = _student(tiny_encoder, "random")
    run = train_encoder(EncoderConfig(**{**FAST, "mode": "labels"}), student, TEXTS,
                        torch.tensor([0, 1, 2, 0, 1, 2]), tmp_path / "l", "fp")
    assert run["history"][0]["train_loss"] == pytest.approx(np.log(3), abs=0.3)  # 3 classes


# ------------------------------------------------------------------------------ the command


@pytest.fixture
def teacher_dir(tiny_encoder, tmp_path):
    return save_encoder(tiny_encoder, tmp_path / "teacher")


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow  # end to end with the ONNX export (dynamo): ~15 s of CPU
def test_cli_distills_a_jsonl_file(teacher_dir, tmp_path, capsys):
    from app.cli import main

    data = _jsonl(tmp_path / "d.jsonl", [{"body": f"{t} Number {i}."} for i in range(30)
                                         for t in TEXTS])
    code = main(["distill-encoder", "--teacher", f"hf:{teacher_dir}", "--out",
                 str(tmp_path / "out"), "--data", str(data), "--text-field", "body",
                 "--set", "steps=4", "--set", "batch_size=4", "--set", "layers=2",
                 "--set", "device=cpu"])
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["init"] == "teacher layers [0, 3]"
    assert set(metrics["eval"]) == {"teacher", "student"}  # unlabeled: no baseline
    assert -1 <= metrics["eval"]["student"]["spearman"] <= 1
    onnx = metrics["onnx"]  # the exported files measured like the torch student
    assert onnx["rel_err"] < 1e-3 and onnx["fp32"]["spearman"] > 0.99
    assert -1 <= onnx["int8"]["spearman"] <= 1
    assert (tmp_path / "out" / "student.int8.onnx").is_file()
    printed = capsys.readouterr().out
    assert "student: spearman" in printed and "student ONNX int8: spearman" in printed


@pytest.mark.parametrize("args, message", [
    (["--teacher", "builtin:teacher"], "--teacher builtin:teacher: expected hf:DIR"),
    (["--teacher", "hf:{tmp}/nothing"], "does not exist"),
    (["--data", "{tmp}/missing.jsonl"], "--data {tmp}/missing.jsonl: no such file"),
    (["--data", "{tmp}/d.jsonl", "--text-field", "body"], 'no "body" field (its fields: text)'),
    (["--set", "layers=9"], "between 1 and the teacher's 4; got 9"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(teacher_dir, tmp_path, capsys, args,
                                                       message):
    from app.cli import main

    _jsonl(tmp_path / "d.jsonl", [{"text": t} for t in TEXTS * 10])
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--teacher" not in args:
        args += ["--teacher", f"hf:{teacher_dir}"]
    code = main(["distill-encoder", "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message.replace("{tmp}", str(tmp_path)) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_labeled_data_gets_a_baseline_and_the_proxy_task(teacher_dir, tmp_path):
    from distill.encoder_data import TextData
    from distill.encoder_pipeline import distill_encoder

    texts = [f"{t} Case {i}." for i in range(4) for t in TEXTS]
    labels = [i % 3 for i in range(len(texts))]
    data = TextData({"train": texts, "val": [], "test": texts[:9]},
                    {"train": labels, "test": labels[:9]}, ["a", "b", "c"])
    cfg = EncoderConfig(**FAST)
    metrics = distill_encoder(str(teacher_dir), tmp_path / "o", cfg, data, export=False)
    assert set(metrics["eval"]) == {"teacher", "student", "baseline"}
    assert metrics["proxy_texts"] == {"centroids": 24, "test": 9}
    assert metrics["runs"]["baseline"]["settings"]["mode"] == "labels"
    assert metrics["runs"]["baseline"]["settings"]["init"] == "random"
    for name in ("teacher", "student", "baseline"):
        assert 0 <= metrics["eval"][name]["proxy_accuracy"] <= 1
    assert (tmp_path / "o" / "baseline" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["task"] == "embedding"


def test_ctrl_c_saves_the_step_it_ends_then_stops(tiny_encoder, tmp_path):
    import os
    import signal

    def interrupt(step, total, loss):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the handler sets a flag; the step completes

    texts = TEXTS * 2
    with pytest.raises(KeyboardInterrupt, match="stopped at step 2; checkpoint saved"):
        train_encoder(EncoderConfig(**FAST), _student(tiny_encoder), texts,
                      tiny_encoder.embed(texts), tmp_path / "c", "fp", progress=interrupt)
    assert torch.load(tmp_path / "c" / "train_state.pt", weights_only=True)["step"] == 2
