"""Sentence encoders (models/encoder.py), their retention metrics (distill/encoder_eval.py) and
the embedding-distillation loop (distill/encoder.py), on a tiny BERT built offline from a
config and a WordPiece tokenizer trained on real docstrings of the standard library."""

import json

import numpy as np
import pytest
import torch

from contracts.errors import InputError
from distill.encoder_eval import (nearest_centroid_accuracy, similarity_spearman, spearman,
                                  topk_overlap)
from models.encoder import (Encoder, docstrings, layer_picks, load_encoder, pool, read_pooling,
                            save_encoder, shrink, write_pooling)

from .encoder_helpers import TEXTS, tiny_encoder_of

tiny_encoder = pytest.fixture(scope="module")(tiny_encoder_of)


# ------------------------------------------------------------------------------ models/encoder


def test_layer_picks_spread_from_first_to_last():
    assert layer_picks(6, 3) == [0, 2, 5]
    assert layer_picks(12, 6) == [0, 2, 4, 7, 9, 11]
    assert layer_picks(4, 4) == [0, 1, 2, 3]
    for bad in (0, 7):
        with pytest.raises(InputError, match="between 1 and the teacher's 6"):
            layer_picks(6, bad)


def test_pool_mean_ignores_padding_and_cls_takes_first():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2)
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]


def test_pooling_read_from_the_checkpoints_own_config(tmp_path):
    assert read_pooling(tmp_path) == "mean"  # no pooling note: sentence-transformers' default
    write_pooling(tmp_path, "cls", 8)
    assert read_pooling(tmp_path) == "cls"
    assert json.loads((tmp_path / "modules.json").read_text())[1]["path"] == "1_Pooling"
    conf = {"word_embedding_dimension": 8, "pooling_mode_max_tokens": True}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(conf))
    with pytest.raises(InputError, match="pooling pooling_mode_max_tokens is not supported"):
        read_pooling(tmp_path)


def test_docstrings_labeled_by_top_level_module():
    files = [("email/mime/text.py", b'"""A MIME text message class."""\ndef f():\n'
              b'    """Return the payload of the message."""\n'),
             ("os.py", b'def g():\n    """short"""\n'),  # under 20 characters: left out
             ("broken.py", b"def (:\n")]  # not Python: skipped
    found = docstrings(files)
    assert [(label, text) for _, label, text in found] == [
        ("email", "A MIME text message class."), ("email", "Return the payload of the message.")]
    assert len({name for name, _, _ in found}) == 2


def test_shrink_copies_the_chosen_teacher_layers(tiny_encoder):
    teacher = tiny_encoder.module
    student, note = shrink(teacher, 2)
    assert note == "teacher layers [0, 3]" and student.config.num_hidden_layers == 2
    assert teacher.config.num_hidden_layers == 4  # the teacher is untouched
    for i, j in enumerate([0, 3]):
        assert torch.equal(student.encoder.layer[i].output.dense.weight,
                           teacher.encoder.layer[j].output.dense.weight)
    assert torch.equal(student.embeddings.word_embeddings.weight,
                       teacher.embeddings.word_embeddings.weight)
    same, _ = shrink(teacher, 4)  # every layer kept: the same function
    enc = Encoder(same, tiny_encoder.tokenizer, "mean", 32)
    assert torch.allclose(enc.embed(TEXTS), tiny_encoder.embed(TEXTS), atol=1e-6)
    fresh, note = shrink(teacher, 2, "random")
    assert note == "random"
    assert not torch.equal(fresh.encoder.layer[0].output.dense.weight,
                           teacher.encoder.layer[0].output.dense.weight)


def test_save_and_load_round_trip(tiny_encoder, tmp_path):
    save_encoder(tiny_encoder, tmp_path / "enc")
    import os

    umask = os.umask(0)
    os.umask(umask)  # the weights get a plain file's mode (save_pretrained leaves 0600)
    assert (tmp_path / "enc" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
    back = load_encoder(tmp_path / "enc")
    assert back.pooling == "mean" and back.max_len == 32
    assert torch.allclose(back.embed(TEXTS), tiny_encoder.embed(TEXTS), atol=1e-5)


def test_load_refuses_a_generative_checkpoint(tiny_encoder, tmp_path):
    save_encoder(tiny_encoder, tmp_path / "lm")
    conf = json.loads((tmp_path / "lm" / "config.json").read_text())
    conf["architectures"] = ["GPT2LMHeadModel"]
    (tmp_path / "lm" / "config.json").write_text(json.dumps(conf))
    with pytest.raises(InputError, match="a GPT2LMHeadModel is a generative language model"):
        load_encoder(tmp_path / "lm")


def test_load_refuses_a_directory_without_an_encoder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match="not a Hugging Face encoder with its tokenizer"):
        load_encoder(tmp_path)


# ------------------------------------------------------------------------------ retention metrics


def test_spearman_matches_hand_computed_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2, 3, 4, 5) vs (2, 1, 4, 3, 5): 1 - 6*sum(d^2)/(n(n^2-1)) = 1 - 6*4/120 = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # a tie gets the average rank: x ranks (1.5, 1.5, 3), y ranks (1, 2, 3); Pearson of ranks
    assert spearman([5, 5, 7], [1, 2, 3]) == pytest.approx(0.8660254, abs=1e-6)


def test_similarity_agreement_of_a_rotated_copy_is_perfect():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))  # a rotation keeps every cosine
    assert similarity_spearman(2.5 * emb @ q, emb) == pytest.approx(1.0)
    assert topk_overlap(emb @ q, emb, k=5) == pytest.approx(1.0)
    noise = rng.normal(size=(30, 8))
    assert similarity_spearman(noise, emb) < 0.5
    assert topk_overlap(noise, emb, k=5) < 0.6


def test_nearest_centroid_accuracy_on_a_hand_made_case():
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = np.array([0, 0, 1, 1])
    test = np.array([[1.0, 0.2], [0.2, 1.0], [0.6, 0.4]])  # the last is nearer class 0
    assert nearest_centroid_accuracy(train, labels, test, np.array([0, 1, 1])) == \
        pytest.approx(2 / 3)


def test_tokenizer_training_is_deterministic():
    from itertools import islice

    from distill.build_encoder import train_tokenizer
    from models.corpus import stdlib_documents

    texts = [t for _, _, t in docstrings(islice(stdlib_documents(), 40))]
    vocabs = [train_tokenizer(texts, 300, 32).get_vocab() for _ in range(3)]
    assert vocabs[0] == vocabs[1] == vocabs[2]  # the same pieces, the same ids
    tok = train_tokenizer(texts, 300, 32)
    assert tok.convert_ids_to_tokens(tok("a [MASK] b")["input_ids"]) == [
        "[CLS]", "a", "[MASK]", "b", "[SEP]"]  # only BERT's own specials are special
