"""Narrower encoder students, the hidden-state loss and bf16 autocast (distill/encoder.py,
models.encoder.shrink) on a tiny BERT built offline (width 32, 2 heads, 4 layers), 1 thread."""

import json

import pytest
import torch
from safetensors import safe_open

from distill.encoder import EncoderConfig, hidden_state_loss, train_encoder
from models.encoder import Encoder, load_encoder, save_encoder, shrink

from .encoder_helpers import TEXTS, tiny_encoder_of

tiny_encoder = pytest.fixture(scope="module")(tiny_encoder_of)

FAST = dict(layers=2, steps=4, batch_size=4, lr=3e-3, warmup_steps=1, ckpt_every=4,
            device="cpu", threads=1)


def _student(teacher: Encoder, hidden_size=None, init="teacher-layers") -> Encoder:
    module, _ = shrink(teacher.module, 2, init, hidden_size)
    return Encoder(module, teacher.tokenizer, teacher.pooling, teacher.max_len)


def test_a_narrower_student_has_the_asked_width_and_loads_as_an_hf_dir(tiny_encoder, tmp_path):
    module, note = shrink(tiny_encoder.module, 2, "teacher-layers", 16)
    conf = module.config
    assert (conf.hidden_size, conf.num_attention_heads, conf.intermediate_size,
            conf.num_hidden_layers) == (16, 2, 32, 2)
    assert note == "random (width 16)"
    assert tiny_encoder.module.config.hidden_size == 32  # the teacher's own config untouched
    student = Encoder(module, tiny_encoder.tokenizer, "mean", tiny_encoder.max_len)
    save_encoder(student, tmp_path / "s")
    loaded = load_encoder(tmp_path / "s")
    assert loaded.embed(TEXTS).shape == (len(TEXTS), 16)
    assert torch.allclose(loaded.embed(TEXTS), student.embed(TEXTS), atol=1e-5)
    pooling = json.loads((tmp_path / "s" / "1_Pooling" / "config.json").read_text())
    assert pooling["word_embedding_dimension"] == 16


def test_the_same_width_keeps_the_teacher_layer_init(tiny_encoder):
    module, note = shrink(tiny_encoder.module, 2, "teacher-layers", 32)
    assert note == "teacher layers [0, 3]"
    theirs = dict(tiny_encoder.module.named_parameters())
    mine = dict(module.named_parameters())
    assert torch.equal(mine["encoder.layer.1.attention.self.query.weight"],
                       theirs["encoder.layer.3.attention.self.query.weight"])


def test_a_width_the_head_count_does_not_divide_is_one_input_error(tiny_encoder):
    from contracts.errors import InputError

    with pytest.raises(InputError, match=r"hidden_size=15: .* 2 attention heads"):
        shrink(tiny_encoder.module, 2, "teacher-layers", 15)


def test_hidden_state_loss_pinned_values():
    mask = torch.tensor([[1, 1, 0]])
    s = (torch.zeros(1, 3, 2), torch.ones(1, 3, 2))  # embeddings, then layer 0
    t = (torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), torch.full((1, 3, 2), 3.0))
    # student layer 0 <- teacher layer 1: (1 - 3)^2 on the 2 real tokens = 4; the pad is left out
    assert hidden_state_loss(s, t, [1], mask, None).item() == pytest.approx(4.0)
    assert hidden_state_loss(s, t, [0], mask, None).item() == pytest.approx(1.0)
    proj = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        proj.weight.copy_(3 * torch.eye(2))
    assert hidden_state_loss(s, t, [1], mask, proj).item() == pytest.approx(0.0)


def _state_keys(path):
    return set(torch.load(path, weights_only=True)["model"])


@pytest.mark.parametrize("width, projected", [(16, True), (None, False)])
def test_the_projection_trains_only_where_widths_differ_and_is_not_saved(
        tiny_encoder, tmp_path, width, projected):
    texts = TEXTS * 2
    cfg = EncoderConfig(**FAST, hidden_size=width, hidden_weight=1.0)
    run = train_encoder(cfg, _student(tiny_encoder, width), texts, tiny_encoder.embed(texts),
                        tmp_path / "s", "fp", teacher=tiny_encoder)
    assert all("hidden_loss" in h for h in run["history"])
    keys = _state_keys(tmp_path / "s" / "train_state.pt")
    assert any(k.startswith("proj.") for k in keys) is projected
    with safe_open(tmp_path / "s" / "model.safetensors", "pt") as f:
        saved = list(f.keys())
    assert saved and not any("proj" in k for k in saved)
    assert load_encoder(tmp_path / "s").embed(TEXTS).shape[1] == (width or 32)


def test_the_hidden_state_loss_falls_with_training(tiny_encoder, tmp_path):
    texts = TEXTS * 4
    cfg = EncoderConfig(**{**FAST, "steps": 20, "ckpt_every": 20}, hidden_size=16,
                        hidden_weight=1.0)
    run = train_encoder(cfg, _student(tiny_encoder, 16), texts, tiny_encoder.embed(texts),
                        tmp_path / "h", "fp", teacher=tiny_encoder)
    hidden = [h["hidden_loss"] for h in run["history"]]
    assert sum(hidden[-3:]) / 3 < 0.8 * sum(hidden[:3]) / 3


def test_without_hidden_weight_no_teacher_pass_and_no_hidden_loss(tiny_encoder, tmp_path):
    texts = TEXTS * 2
    run = train_encoder(EncoderConfig(**FAST), _student(tiny_encoder), texts,
                        tiny_encoder.embed(texts), tmp_path / "n", "fp", teacher=tiny_encoder)
    assert not any("hidden_loss" in h for h in run["history"])


def test_a_bf16_step_is_finite_and_close_to_fp32(tiny_encoder, tmp_path):
    texts = TEXTS * 2
    targets = tiny_encoder.embed(texts)
    first = {}
    for dtype in ("fp32", "bf16"):
        cfg = EncoderConfig(**{**FAST, "steps": 1}, dtype=dtype, hidden_weight=1.0)
        run = train_encoder(cfg, _student(tiny_encoder), texts, targets, tmp_path / dtype,
                            "fp", teacher=tiny_encoder)
        first[dtype] = run["history"][0]
    for key in ("train_loss", "hidden_loss"):
        assert torch.isfinite(torch.tensor(first["bf16"][key]))
        assert first["bf16"][key] == pytest.approx(first["fp32"][key], rel=0.05, abs=1e-3)
        assert first["bf16"][key] != first["fp32"][key]  # autocast did run in bf16


@pytest.fixture
def teacher_dir(tiny_encoder, tmp_path):
    return save_encoder(tiny_encoder, tmp_path / "teacher")


@pytest.mark.parametrize("setting, message", [
    ("hidden_size=15", "--set hidden_size=15: the student keeps the teacher's 2 attention "
                       "heads"),
    ("hidden_size=0", "--set: hidden_size: Input should be greater than 0"),
    ("dtype=fp16", "--set: dtype: Input should be 'fp32' or 'bf16'"),
])
def test_cli_bad_width_or_dtype_is_one_line_and_writes_nothing(teacher_dir, tmp_path, capsys,
                                                               setting, message):
    from app.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS * 10))
    code = main(["distill-encoder", "--teacher", f"hf:{teacher_dir}", "--out",
                 str(tmp_path / "out"), "--data", str(data), "--set", setting])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_hidden_state_loss_is_refused_with_margin_mse():
    from contracts.errors import InputError
    from distill.encoder_data import TextData
    from distill.encoder_pipeline import check_loss

    cfg = EncoderConfig(loss="margin-mse", hidden_weight=0.5)
    with pytest.raises(InputError, match="--set hidden_weight: .* not combined with margin-mse"):
        check_loss(cfg, "cross-encoder", TextData({"train": []}))
    check_loss(cfg.model_copy(update={"hidden_weight": 0.0}), "cross-encoder",
               TextData({"train": [("q", "p", "n")]}, triples={"train": [("q", "p", "n")]}))


def test_a_narrow_run_with_its_projection_resumes_where_an_uninterrupted_one_ends(
        tiny_encoder, tmp_path):
    texts, targets = TEXTS * 2, tiny_encoder.embed(TEXTS * 2)
    cfg = EncoderConfig(**{**FAST, "steps": 6, "ckpt_every": 3}, hidden_size=16,
                        hidden_weight=1.0)
    whole = _student(tiny_encoder, 16)
    train_encoder(cfg, whole, texts, targets, tmp_path / "a", "fp", teacher=tiny_encoder)

    def stop(step, total, loss):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_encoder(cfg, _student(tiny_encoder, 16), texts, targets, tmp_path / "b", "fp",
                      progress=stop, teacher=tiny_encoder)
    resumed = _student(tiny_encoder, 16)
    train_encoder(cfg, resumed, texts, targets, tmp_path / "b", "fp", resume=True,
                  teacher=tiny_encoder)
    assert torch.allclose(resumed.embed(TEXTS), whole.embed(TEXTS), atol=1e-5)


def test_a_narrow_classifier_learns_logits_and_hidden_states(tiny_encoder, tmp_path):
    from distill.build_encoder import with_head

    labels = ["a", "b", "c"]
    teacher = Encoder(with_head(tiny_encoder.module, "classification", labels),
                      tiny_encoder.tokenizer, "cls", tiny_encoder.max_len, "classification",
                      labels)
    module, _ = shrink(teacher.module, 2, "teacher-layers", 16)
    student = Encoder(module, teacher.tokenizer, "cls", teacher.max_len, "classification",
                      labels)
    texts = TEXTS * 2
    targets = {"teacher": teacher.embed(texts), "labels": torch.tensor([0, 1, 2] * 4)}
    run = train_encoder(EncoderConfig(**FAST, hidden_size=16, hidden_weight=1.0), student,
                        texts, targets, tmp_path / "c", "fp", teacher=teacher)
    assert all(h["hidden_loss"] > 0 for h in run["history"])
    assert student.embed(TEXTS).shape == (len(TEXTS), 3)
    assert load_encoder(tmp_path / "c").module.config.hidden_size == 16
