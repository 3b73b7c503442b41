"""The planner prefers a LoadGen peak measured under load to its predicted QPS per replica,
where the peak measured the same configuration on the same machine under the scenario's
conditions, and says which figure it used."""

import numpy as np
import pandas as pd
import pytest

from roi.planner import plan

from .plan_helpers import synthetic_results
from .test_planner import _scenario

ENV = {"env_cpu": "Test CPU", "env_logical_cpus": 2, "env_gpu": ""}


def _results(hardware="c7i.xlarge") -> pd.DataFrame:
    return synthetic_results(batches=(1,), hardware=hardware)


def _peak(model="m:s10", qps=37.0, percentile=99.0, bound=500.0, batch=1, seq=128,
          mode="find-peak", status="ok", **extra) -> dict:
    return {"model": model, "role": "student", "backend": "ort", "device": "cpu",
            "dtype": "fp32", "batch_size": batch, "seq_len": seq, "threads": 2,
            "status": status, "source": "loadgen", "loadgen_mode": mode,
            "loadgen_scenario": "server", "loadgen_peak_qps": qps,
            "loadgen_percentile": percentile, "loadgen_latency_bound_ms": bound,
            "loadgen_target_qps": qps, "latency_ms_p99": bound * 0.9,
            "latency_ms_p50": 5.0, "params": 1_000_000, "loadgen_log_dir": "loadgen/run-1",
            **ENV, **extra}


def _row(p, model="m:s10") -> dict:
    rows = [r for r in p.to_dict()["sizing"] if r["model"] == model]
    assert len(rows) == 1
    return rows[0]


def test_without_a_peak_the_figure_is_predicted():
    p = plan(_results(), _scenario(qps=200.0))
    row = _row(p)
    assert row["qps_source"] == "predicted" and row["qps_note"] == ""
    assert row["qps_per_replica_p50"] == pytest.approx(row["qps_per_replica_predicted"])
    assert p.to_dict()["sources"]["qps_per_replica"]["measured"] == []


def test_a_measured_peak_replaces_the_predicted_figure():
    df = pd.concat([_results(), pd.DataFrame([_peak(qps=37.0)])], ignore_index=True)
    p = plan(df, _scenario(qps=200.0))
    row = _row(p)
    assert row["qps_source"] == "measured (LoadGen peak)"
    assert row["qps_per_replica_p50"] == 37.0 == row["qps_per_replica_p90"]
    assert row["qps_per_replica_predicted"] != pytest.approx(37.0)
    assert row["replicas_p50"] == 6  # ceil(200 / 37)
    assert "LoadGen peak 37 QPS at p99 <= 500 ms" in row["qps_note"]
    cost = [c for c in p.to_dict()["cost"] if c["model"] == "m:s10"][0]
    assert cost["qps_source"] == "measured (LoadGen peak)"
    used = p.to_dict()["sources"]["qps_per_replica"]["measured"]
    assert [(u["model"], u["qps_per_replica_p50"]) for u in used] == [("m:s10", 37.0)]
    assert _row(p, "m:s5")["qps_source"] == "predicted"  # no peak for that model


@pytest.mark.parametrize("peak,why", [
    (dict(bound=800.0), "p99 <= 800 ms; this row is batch 1, the SLA p99 <= 500 ms"),
    (dict(percentile=90.0), "p90 <= 500 ms"),
    (dict(batch=8), "max batch 8"),
])
def test_a_peak_under_other_conditions_is_not_used_and_says_why(peak, why):
    df = pd.concat([_results(), pd.DataFrame([_peak(**peak)])], ignore_index=True)
    row = _row(plan(df, _scenario(qps=200.0)))
    assert row["qps_source"] == "predicted"
    assert row["qps_note"].startswith("LoadGen peak not used") and why in row["qps_note"]


def test_a_tighter_bound_still_applies_and_steps_or_failures_do_not():
    rows = [_peak(qps=30.0, bound=300.0), _peak(qps=90.0, mode="find-peak-step"),
            _peak(qps=95.0, status="error")]
    df = pd.concat([_results(), pd.DataFrame(rows)], ignore_index=True)
    row = _row(plan(df, _scenario(qps=200.0)))
    assert row["qps_source"] == "measured (LoadGen peak)" and row["qps_per_replica_p50"] == 30


def test_a_peak_from_another_machine_or_request_shape_is_not_used():
    other = dict(_peak(), env_cpu="Another CPU")
    df = pd.concat([_results(), pd.DataFrame([other])], ignore_index=True)
    assert _row(plan(df, _scenario(qps=200.0)))["qps_source"] == "predicted"
    df = pd.concat([_results(), pd.DataFrame([_peak()])], ignore_index=True)
    base = _scenario(qps=200.0)
    decode = base.model_copy(update={"workload": base.workload.model_copy(
        update={"tokens_out_per_request": 8})})
    row = _row(plan(df, decode))
    assert row["qps_source"] == "predicted" and "128 tokens in + 8 out" in row["qps_note"]


def test_calls_timed_after_idle_size_with_the_two_state_service_time():
    df = _results()
    p0 = _row(plan(df, _scenario(qps=200.0)))
    slow = df.assign(after_idle_ms_p50=df["latency_ms_p50"] + 2.0)
    p = plan(slow, _scenario(qps=200.0))
    row = _row(p)
    assert row["wake_ms"] == pytest.approx(2.0)
    assert 0 < row["qps_per_replica_p50"] < p0["qps_per_replica_p50"]
    two = p.to_dict()["sources"]["qps_per_replica"]["predicted_two_state"]
    assert {r["model"] for r in two} >= {"m:s10"}
    # calls after idle that came out faster than back to back (noise) charge nothing
    fast = df.assign(after_idle_ms_p50=df["latency_ms_p50"] - 1.0)
    assert _row(plan(fast, _scenario(qps=200.0)))["qps_per_replica_p50"] == pytest.approx(
        p0["qps_per_replica_p50"])


def test_a_cpu_instance_projection_carries_the_wake_up_share_and_a_gpu_none():
    df = _results(hardware=None)  # measured on a machine that is no catalog row
    slow = df.assign(after_idle_ms_p50=df["latency_ms_p50"] * 1.2)
    g = plan(slow, _scenario(qps=200.0, hardware=("c7i.xlarge", "l4"))).grid
    cpu = g[(g["hardware"] == "c7i.xlarge") & (g["source"] == "projected")]
    assert len(cpu) and np.allclose(cpu["wake_ms"], 0.2 * cpu["fwd_ms_p50"])
    assert (g.loc[g["hardware"] == "l4", "wake_ms"] == 0).all()
    plain = plan(df, _scenario(qps=200.0, hardware=("c7i.xlarge",))).grid
    assert (cpu["qps_per_replica_p50"].to_numpy()
            < plain.set_index(cpu.index)["qps_per_replica_p50"].to_numpy()).all()
