"""A local Hugging Face causal LM as the teacher, with its own (BPE) tokenizer: the student
takes its vocabulary, the data is tokenized with it, bits per byte count the text's bytes."""

import json

import pytest
import torch

from contracts.errors import InputError
from distill.pipeline import distill
from distill.trainer import train

from .test_trainer import _cfg, corpus  # noqa: F401  (corpus is a fixture)

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.slow
STUDENT = "builtin:n_layer=1,n_embd=32,n_head=2,block_size=32"


def _texts(corpus_path):
    return [json.loads(line)["text"] for line in open(corpus_path)]


@pytest.fixture(scope="module")
def hf_teacher(tmp_path_factory, corpus):  # noqa: F811
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_texts(corpus), vocab_size=400, min_frequency=2,
                            special_tokens=["<|endoftext|>"])
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    path = tmp_path_factory.mktemp("hf") / "gpt2-bpe"
    tok.save_pretrained(path)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=64,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id))
    model.save_pretrained(path)
    return path, len(tok)


def test_hf_teacher_tokenizer_drives_data_student_and_metrics(tmp_path, corpus, hf_teacher):  # noqa: F811
    path, vocab = hf_teacher
    cfg = _cfg(corpus, teacher=f"hf:{path}", mode="kd", student=STUDENT, steps=4, alpha=0.8,
               teacher_cache_dir=str(tmp_path / "cache"))
    m = distill(cfg, tmp_path / "out").metrics
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["config"]["vocab_size"] == vocab  # the student speaks the teacher's tokens
    for key in ("teacher", "student", "baseline", "student_int8"):
        # BPE tokens stand for several bytes each; bits per byte divide by the bytes
        assert m[key]["bytes"] > 1.5 * m[key]["tokens"], key
        assert m[key]["bits_per_byte"] == pytest.approx(
            m[key]["loss"] * m[key]["tokens"] / m[key]["bytes"] / 0.6931471805599453)
    assert m["teacher"]["tokens"] == m["student"]["tokens"] == m["student_int8"]["tokens"]
    assert m["init"].startswith("random")  # a GPT-2 teacher's layers are not this student's


def test_bytes_can_be_forced_and_an_empty_tokenizer_dir_refused(tmp_path, corpus, hf_teacher):  # noqa: F811
    path, vocab = hf_teacher
    cfg = _cfg(corpus, teacher=f"hf:{path}", mode="kd", student=STUDENT, steps=2,
               tokenizer="bytes")
    # bytes are valid ids of a 400-token vocabulary, so this runs: the student keeps vocab 400
    m = train(cfg, tmp_path / "b").metrics
    assert m["student"]["tokens"] == m["student"]["bytes"]
    with pytest.raises(InputError, match="no tokenizer files"):
        train(_cfg(corpus, tokenizer=str(tmp_path)), tmp_path / "c")
