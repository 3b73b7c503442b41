import json

import numpy as np
import pytest

from models.corpus import DOC_SEPARATOR, DataConfig, build_splits, eval_windows, fingerprint, split_of, stdlib_documents
from distill.data import BatchSampler
from contracts.errors import InputError


def test_stdlib_corpus_is_real_code_without_tests():
    docs = dict(stdlib_documents())
    assert len(docs) > 300 and sum(map(len, docs.values())) > 5e6
    assert not any(name.startswith(("test/", "idlelib/")) for name in docs)
    assert "json/__init__.py" in docs


def test_split_depends_on_the_document_name_only():
    cfg = DataConfig()
    assert split_of("a/b.py", cfg) == split_of("a/b.py", DataConfig())
    splits = [split_of(f"doc{i}", cfg) for i in range(4000)]
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert 0.03 < share["val"] < 0.07 and 0.03 < share["test"] < 0.07
    other = [split_of(f"doc{i}", DataConfig(split_seed=1)) for i in range(4000)]
    assert other != splits


def test_user_text_and_jsonl_files(tmp_path):
    lines = [json.dumps({"text": f"def f{i}():\n    return {i}\n" * 20}) for i in range(400)]
    (tmp_path / "d.jsonl").write_text("\n".join(lines))
    splits = build_splits(DataConfig(source=str(tmp_path / "d.jsonl"), val_fraction=0.1,
                                     test_fraction=0.1))
    assert {k: v.dtype for k, v in splits.items()} == {s: np.uint8 for s in splits}
    assert (splits["train"] == DOC_SEPARATOR).sum() > 100
    assert fingerprint(splits) == fingerprint(build_splits(DataConfig(
        source=str(tmp_path / "d.jsonl"), val_fraction=0.1, test_fraction=0.1)))


@pytest.mark.parametrize("content,match", [
    ('{"txt": "x"}', "no \"text\" field"),
    ('not json', "not JSON"),
    ('{"text": 3}', "must be a string"),
])
def test_bad_jsonl_is_refused_with_the_line(tmp_path, content, match):
    (tmp_path / "bad.jsonl").write_text(content)
    with pytest.raises(InputError, match=match):
        build_splits(DataConfig(source=str(tmp_path / "bad.jsonl")))


def test_too_small_or_missing_data_is_refused(tmp_path):
    (tmp_path / "t.txt").write_text("tiny")
    with pytest.raises(InputError, match="too small"):
        build_splits(DataConfig(source=str(tmp_path / "t.txt")))
    with pytest.raises(InputError, match="does not exist"):
        build_splits(DataConfig(source=str(tmp_path / "nope.txt")))
    with pytest.raises(InputError, match="val_fraction"):
        DataConfig(val_fraction=0.7)


def test_batches_depend_only_on_seed_and_step():
    data = np.arange(10_000, dtype=np.int64).astype(np.uint8)
    a, b = BatchSampler(data, 32, 4, seed=3), BatchSampler(data, 32, 4, seed=3)
    x1, y1 = a.batch_at(7)
    x2, y2 = b.batch_at(7)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert np.array_equal(x1[:, 1:], y1[:, :-1])  # targets are inputs shifted by one
    assert not np.array_equal(a.batch_at(8)[0], x1)
    assert not np.array_equal(a.batch_at(7, micro=1)[0], x1)


def test_eval_windows_are_disjoint_and_deterministic():
    data = np.arange(1000, dtype=np.uint8)
    w = eval_windows(data, 10, 5)
    assert w.shape == (5, 11) and np.array_equal(w, eval_windows(data, 10, 5))
    starts = w[:, 0].astype(int)
    assert (np.diff(starts) % 256 != 0).all()


def test_pysrc_reads_a_copied_library_with_the_same_names_and_splits(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n" * 400)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_mod.py").write_text("assert True\n")
    assert dict(stdlib_documents(tmp_path)) == {"pkg/mod.py": b"x = 1\n" * 400}
    with pytest.raises(InputError, match="not a directory"):
        build_splits(DataConfig(source=f"pysrc:{tmp_path / 'missing'}"))
