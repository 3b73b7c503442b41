"""The sweep on tiny built-in models: subprocess isolation, failures, resume, formats."""

import json

import numpy as np
import pytest

import bench
from bench.worker import FAULT_ENV
from contracts.errors import InputError
from contracts.results import load_samples, read_table

from ..conftest import TINY, TINY_B

pytestmark = pytest.mark.slow  # end to end: subprocesses that import torch; still run in CI

COMMON = dict(seq_lens="16", batch_sizes="1", threads="1", device="cpu", quick=True)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "run"
    df = bench.run(teacher=TINY, students=TINY_B, out=out, **COMMON)
    return out, df


def test_every_backend_measures_every_model(sweep):
    out, df = sweep
    assert len(df) == 6 and set(df["status"]) == {"ok"}, df[["model", "error"]]
    assert set(zip(df["backend"], df["dtype"])) == {("torch-eager", "fp32"), ("ort", "fp32"),
                                                    ("ort", "int8")}
    assert (df["latency_ms_p50"] > 0).all() and (df["n_calls"] >= 10).all()
    assert (df["latency_ms_p50"] <= df["latency_ms_p99"]).all()
    assert (df["peak_rss_mb"] > 0).all() and (df["params"] > 0).all()
    assert (df["flops_per_sample"] > 0).all()
    assert df["env_cpu"].nunique() == 1 and (df["threads"] == 1).all()
    torch_rows = df[df["backend"] == "torch-eager"]
    assert torch_rows["ttft_ms"].notna().all() and torch_rows["tpot_ms"].notna().all()
    assert (df["memory_method"].str.contains("fresh process")).all()


def test_teacher_and_students_are_interleaved(sweep):
    _, df = sweep
    roles = list(df["role"])
    assert roles == ["teacher", "student"] * 3


def test_raw_samples_and_speedups_are_written(sweep):
    out, df = sweep
    for _, row in df.iterrows():
        samples = load_samples(out, row["row_id"])
        raw = samples["latency_ns"]
        assert len(raw) == row["n_calls"]
        assert np.percentile(raw / 1e6, 50) == pytest.approx(row["latency_ms_p50"])
        idle = samples["after_idle_ns"]  # calls after idle gaps, for the two-state sizing
        assert len(idle) == row["after_idle_n"] >= 3 and row["after_idle_gap_ms"] >= 5
        assert np.median(idle / 1e6) == pytest.approx(row["after_idle_ms_p50"])
    sp = read_table(out / "speedups.csv")
    assert len(sp) == 3 and (sp["speedup_ci95_low"] <= sp["speedup_p50"]).all()
    assert ((out / "results.jsonl").read_text().count("\n")) == 6


def test_existing_results_need_resume_and_resume_skips_measured(sweep, tmp_path):
    out, df = sweep
    with pytest.raises(InputError, match="--resume"):
        bench.run(teacher=TINY, students=TINY_B, out=out, **COMMON)
    again = bench.run(teacher=TINY, students=TINY_B, out=out, resume=True, **COMMON)
    assert list(again["env_time"]) == list(df["env_time"])  # nothing re-measured


@pytest.mark.parametrize("kind,status", [("raise", "error"), ("exit", "error")])
def test_a_failing_configuration_costs_one_row(tmp_path, monkeypatch, kind, status):
    monkeypatch.setenv(FAULT_ENV, json.dumps({"model": TINY, "kind": kind}))
    df = bench.run(teacher=TINY, students=TINY_B, out=tmp_path / "r", backends="torch-eager",
                   **COMMON)
    by_model = df.set_index("model")
    assert by_model.loc[TINY, "status"] == status and by_model.loc[TINY, "error"]
    assert by_model.loc[TINY_B, "status"] == "ok"


def test_memory_exhaustion_is_stopped_at_the_budget(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, json.dumps({"model": TINY, "kind": "alloc"}))
    df = bench.run(teacher=TINY, students=TINY_B, out=tmp_path / "r", backends="torch-eager",
                   memory_budget_mb=1200, **COMMON)
    by_model = df.set_index("model")
    assert by_model.loc[TINY, "status"] == "oom"
    assert "memory budget" in by_model.loc[TINY, "error"]
    assert by_model.loc[TINY_B, "status"] == "ok"


def test_a_hanging_configuration_times_out(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, json.dumps({"model": TINY, "kind": "hang"}))
    df = bench.run(teacher=TINY, students=TINY_B, out=tmp_path / "r", backends="torch-eager",
                   timeout_s=8, **COMMON)
    by_model = df.set_index("model")
    assert by_model.loc[TINY, "status"] == "timeout"
    assert by_model.loc[TINY_B, "status"] == "ok"


def test_budget_skips_what_cannot_fit_and_bf16_without_hardware(tmp_path):
    df = bench.run(teacher="builtin:teacher", students=TINY, out=tmp_path / "r",
                   backends="torch-eager", memory_budget_mb=350, **COMMON)
    by_model = df.set_index("model")
    assert by_model.loc["builtin:teacher", "status"] == "skipped"
    assert "memory budget" in by_model.loc["builtin:teacher", "error"]


def test_onnx_file_and_checkpoint_specs(tmp_path, sweep):
    from bench.export import prepare
    from models.zoo import load_torch, parse_spec
    from models.checkpoint import save_checkpoint

    onnx_file = prepare(parse_spec(TINY), [16])["fp32_path"]
    save_checkpoint(load_torch(parse_spec(TINY_B)).module, tmp_path / "ck")
    df = bench.run(teacher=f"onnx:{onnx_file}", students=f"ckpt:{tmp_path / 'ck'}",
                   out=tmp_path / "r", **COMMON)
    rows = {(r.model.split(":")[0], r.backend, r.dtype): r for r in df.itertuples()}
    assert rows[("onnx", "torch-eager", "fp32")].status == "skipped"
    assert rows[("onnx", "ort", "fp32")].status == "ok"
    assert rows[("onnx", "ort", "int8")].status == "ok"
    assert all(rows[("ckpt", b, d)].status == "ok" for b, d in
               [("torch-eager", "fp32"), ("ort", "fp32"), ("ort", "int8")])
    _, tiny = sweep
    ckpt_torch = rows[("ckpt", "torch-eager", "fp32")]
    ref = tiny[(tiny.model == TINY_B) & (tiny.backend == "torch-eager")].iloc[0]
    assert ckpt_torch.params == ref["params"] and ckpt_torch.flops_per_sample == ref[
        "flops_per_sample"]


def test_rounds_pool_samples_and_resume_adds_missing_rounds(tmp_path):
    args = dict(teacher=TINY, students=TINY_B, backends="ort-fp32", out=tmp_path / "r", **COMMON)
    one = bench.run(rounds=1, **args).set_index("model")
    two = bench.run(rounds=2, resume=True, **args).set_index("model")
    assert (one["rounds"] == 1).all() and (two["rounds"] == 2).all()
    for model in (TINY, TINY_B):
        raw = load_samples(tmp_path / "r", two.loc[model, "row_id"])["latency_ns"]
        assert len(raw) == two.loc[model, "n_calls"] > one.loc[model, "n_calls"]
        assert two.loc[model, "latency_ms_p50"] == pytest.approx(np.percentile(raw / 1e6, 50))
        idle = load_samples(tmp_path / "r", two.loc[model, "row_id"])["after_idle_ns"]
        assert len(idle) == two.loc[model, "after_idle_n"] > one.loc[model, "after_idle_n"]
        assert two.loc[model, "load_s"] == one.loc[model, "load_s"]  # first round's cold figures
    again = bench.run(rounds=2, resume=True, **args)
    assert list(again["n_calls"]) == list(two.reset_index()["n_calls"])  # nothing left to do
    with pytest.raises(InputError, match="rounds"):
        bench.run(rounds=0, **{**args, "out": tmp_path / "x"})
