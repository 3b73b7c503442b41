import json

import numpy as np

from bench.results import JSONL, KEY_COLUMNS, ResultsStore, load_samples, read_results


def _row(model="m", status="ok", p50=1.0):
    key = dict(zip(KEY_COLUMNS, (model, "teacher", "ort", "cpu", "fp32", 1, 16, 1)))
    return {**key, "status": status, "latency_ms_p50": p50, "flops_per_sample": float("nan")}


def test_append_writes_jsonl_and_csv_atomically(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(_row(), {"latency_ns": np.array([1, 2, 3])})
    store.append(_row("n", status="error"))
    lines = (tmp_path / JSONL).read_text().splitlines()
    assert [json.loads(x)["model"] for x in lines] == ["m", "n"]
    assert json.loads(lines[0])["flops_per_sample"] is None  # NaN stored as null
    df = read_results(tmp_path / "results.csv")
    assert list(df.columns[: len(KEY_COLUMNS)]) == list(KEY_COLUMNS)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*tmp"))
    rid = json.loads(lines[0])["row_id"]
    assert load_samples(tmp_path, rid)["latency_ns"].tolist() == [1, 2, 3]


def test_resume_keys_and_retried_rows_replace_failures(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(_row("ok-model"))
    store.append(_row("bad-model", status="timeout"))
    reopened = ResultsStore(tmp_path)
    done = {k[0] for k in reopened.done_keys()}
    assert done == {"ok-model"}  # a timeout is retried on --resume
    reopened.append(_row("bad-model", status="ok", p50=2.0))
    df = read_results(tmp_path)
    assert len(df) == 2
    assert df.set_index("model").loc["bad-model", "status"] == "ok"
