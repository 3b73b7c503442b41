import json

import numpy as np

from contracts.results import JSONL, KEY_COLUMNS, ResultsStore, load_samples, read_table


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
    df = read_table(tmp_path / "results.csv")
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
    df = read_table(tmp_path)
    assert len(df) == 2
    assert df.set_index("model").loc["bad-model", "status"] == "ok"


def test_loadgen_rows_keep_their_own_identity(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(_row("m", p50=1.0))
    load = dict(_row("m", p50=9.0), source="loadgen", loadgen_scenario="server",
                loadgen_mode="performance", loadgen_target_qps=50.0,
                loadgen_latency_bound_ms=100.0)
    store.append(load)
    store.append(dict(load, loadgen_target_qps=80.0, latency_ms_p50=12.0))
    store.append(dict(load, latency_ms_p50=8.0))  # the same load test again replaces its row
    reopened = ResultsStore(tmp_path)
    assert len(reopened.rows) == 3
    key = tuple(_row("m")[c] for c in KEY_COLUMNS)
    assert reopened.get(key)["latency_ms_p50"] == 1.0  # the single-call row, not a load test
    assert reopened.done_keys() == {key}
    loads = sorted((r["loadgen_target_qps"], r["latency_ms_p50"]) for r in reopened.rows
                   if r.get("source") == "loadgen")
    assert loads == [(50.0, 8.0), (80.0, 12.0)]
    assert len({r["row_id"] for r in reopened.rows}) == 3


def test_a_jsonl_table_with_unicode_line_separators_in_a_value_reads_whole(tmp_path):
    from contracts.results import read_rows

    rows = [{**_row(f"m{c}x"), "row_id": str(i)} for i, c in enumerate("\u2028\x85\x0c")]
    path = tmp_path / JSONL
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    assert [r["model"] for r in read_rows(path)] == [r["model"] for r in rows]
    assert read_table(path)["model"].tolist() == [r["model"] for r in rows]
