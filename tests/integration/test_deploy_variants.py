"""Deployment variants end to end on tiny models (issue 7): each variant is built, timed and
judged against fp32 within its stated tolerance; a variant the model cannot take is caught by
the gate and never chosen to deploy as; a bad --backends value is one line, exit 2."""

import pandas as pd
import pytest

import bench
from bench.deploy import DEPLOY_CSV, DEPLOY_MD
from bench.gate import TOLERANCES, passes
from bench.measure import DEPLOY_VARIANTS, VARIANTS
from app.cli import main

from ..conftest import TINY

pytestmark = pytest.mark.slow  # exports and quantizes; about 20 s together on 2 cores

COMMON = dict(students=[], seq_lens="32", batch_sizes="1", threads="1", device="cpu",
              quick=True, isolate=False)


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "run"
    df = bench.run(teacher=TINY, backends="deploy", out=out, **COMMON)
    return out, df


def test_every_deploy_variant_is_measured_and_within_its_tolerance(tiny_sweep):
    _, df = tiny_sweep
    rows = {r["variant"]: r for _, r in df.iterrows() if r["status"] == "ok"}
    skipped = df[df["status"] == "skipped"]
    # bf16 runs only where the CPU has native bf16; every other variant must run here
    assert set(rows) | set(skipped["variant"]) == set(DEPLOY_VARIANTS)
    assert set(skipped["dtype"]) <= {"bf16"}
    for variant, r in rows.items():
        assert r["latency_ms_p50"] > 0 and r["weight_bytes"] > 0, variant
        if variant in ("torch-eager", "ort-fp32"):
            assert r["gate"] == "reference"
            continue
        tol = TOLERANCES[variant]
        assert r["gate"] == "pass", (variant, r["gate_reason"])
        assert r["gate_top1_agreement"] >= tol.min_top1, variant
        assert r["gate_max_logit_err"] <= tol.max_logit_err, variant
        assert r["gate_positions"] == 32 * 32 and "real text" in r["gate_inputs"]
    # quantized files are smaller than fp32: int4 < int8 < fp32
    wb = {v: rows[v]["weight_bytes"] for v in ("ort-fp32", "ort-int8-wo", "ort-int4-wo")}
    assert wb["ort-int4-wo"] < wb["ort-int8-wo"] < wb["ort-fp32"]
    assert "Attention" in rows["ort-fused-fp32"]["variant_recipe"] or \
        "opset 23" in rows["ort-fused-fp32"]["variant_recipe"]


def test_deploy_as_is_written_and_is_the_fastest_passing_row(tiny_sweep):
    out, df = tiny_sweep
    table = pd.read_csv(out / DEPLOY_CSV)
    assert len(table) == 1 and (out / DEPLOY_MD).is_file()
    ok = df[(df["status"] == "ok") & df["gate"].map(passes)]
    assert table.iloc[0]["latency_ms_p50"] == pytest.approx(ok["latency_ms_p50"].min())
    assert table.iloc[0]["deploy_as"] in VARIANTS


@pytest.fixture(scope="module")
def outlier_ckpt(tmp_path_factory):
    """A tiny trainer checkpoint with one outlier embedding channel, as trained LLMs have
    (LLM.int8(), Dettmers et al. 2022): per-tensor int8 of every activation cannot take it."""
    import torch

    from models.gpt import GPT, GPTConfig
    from models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_embd=32, n_head=2, block_size=64)).eval()
    with torch.no_grad():
        model.wte.weight[:, 0] *= 100.0
    return save_checkpoint(model, tmp_path_factory.mktemp("outlier") / "ckpt")


def test_int8_on_everything_is_caught_by_the_gate_and_never_deployed(outlier_ckpt, tmp_path):
    spec = f"ckpt:{outlier_ckpt}"
    df = bench.run(teacher=spec, backends="ort-fp32,ort-int8-static,ort-int8-static-all",
                   out=tmp_path / "r", **COMMON)
    rows = {r["variant"]: r for _, r in df.iterrows()}
    broken = rows["ort-int8-static-all"]
    assert broken["status"] == "ok" and broken["gate"] == "fail"
    assert "max logit error" in broken["gate_reason"]
    assert broken["gate_max_logit_err"] > TOLERANCES["ort-int8-static-all"].max_logit_err
    assert rows["ort-int8-static"]["gate"] == "pass"  # weight MatMuls only, head in float
    assert pd.notna(rows["ort-int8-static"]["gate_retention_delta_pp"])  # trained: judged
    chosen = pd.read_csv(tmp_path / "r" / DEPLOY_CSV).iloc[0]["deploy_as"]
    assert chosen != "ort-int8-static-all"


def test_bad_backend_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    """Through app.cli.main in-process (the function the `roi` script calls)."""
    out = tmp_path / "out"
    code = main(["bench", "--backends", "ort-int8-static,ort-int3-wo", "--out", str(out)])
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("error:") and "unknown backend ort-int3-wo" in lines[0]
    assert not out.exists()
