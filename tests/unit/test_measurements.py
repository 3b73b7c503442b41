import json

import numpy as np
import pandas as pd
import pytest

from contracts.errors import InputError
from contracts.results import read_table
from roi.hardware import load_catalog
from roi.measurements import DEFAULT_CV, load_results, match_gpu, merge, prepare, raw_latency_ms

from .plan_helpers import FIXTURE, synthetic_results

CATALOG = load_catalog()


def test_the_real_bench_table_reads_and_prepares():
    df = load_results([FIXTURE], CATALOG)
    assert len(df) == 30 and set(df["status"]) == {"ok"}
    assert df["machine"].nunique() == 1 and df["hardware"].isna().all()
    assert set(df["backend"]) == {"torch-eager", "ort"} and set(df["dtype"]) == {"fp32", "int8"}
    assert (df["cv_source"] == "measured").all() and (df["flops_source"] == "measured").all()


def test_a_hand_written_minimal_table_gets_stated_estimates():
    df = pd.DataFrame({"model": ["a", "b"], "role": ["teacher", "student"],
                       "backend": ["ort", "ort"], "dtype": ["fp32", "int8"],
                       "batch_size": [1, 1], "seq_len": [64, 64], "status": ["ok", "ok"],
                       "params": [1000, 100], "latency_ms_p50": [2.0, 1.0]})
    out = prepare(df, CATALOG, "hand.csv")
    assert list(out["flops_per_sample"]) == [2 * 1000 * 64, 2 * 100 * 64]
    assert list(out["weight_bytes"]) == [4000, 100]  # fp32: 4 bytes, int8: 1
    assert list(out["latency_ms_mean"]) == [2.0, 1.0]  # the p50 fills the mean
    assert list(out["latency_ms_cv"]) == [DEFAULT_CV] * 2
    assert out["cv_source"].iloc[0].startswith("assumed")
    assert out["machine"].iloc[0].startswith("unknown machine") and (out["device"] == "cpu").all()


def test_cv_from_std_when_no_cv_column():
    df = synthetic_results().drop(columns=["latency_ms_cv"]).assign(latency_ms_std=0.0)
    df.loc[0, "latency_ms_std"] = df.loc[0, "latency_ms_mean"] * 0.3
    out = prepare(df, CATALOG)
    assert out["latency_ms_cv"].iloc[0] == pytest.approx(0.3) and out["latency_ms_cv"].iloc[1] == 0


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.drop(columns=["params"]), "missing required column(s) params"),
    (lambda d: d.drop(columns=["latency_ms_mean", "latency_ms_p50"]),
     "latency_ms_mean or latency_ms_p50"),
    (lambda d: d.assign(status="error"), "no row is ok"),
    (lambda d: d.assign(role="teacherish"), "role: allowed teacher, student; got 'teacherish'"),
    (lambda d: d.assign(dtype="fp64"), "dtype: allowed fp32, fp16, bf16, int8, int4; got 'fp64'"),
    (lambda d: d.assign(batch_size=0), "batch_size must be a positive integer"),
    (lambda d: d.assign(params=1.5), "params must be a positive integer"),
    (lambda d: d.assign(latency_ms_mean=-1.0, latency_ms_p50=-1.0), "latency_ms_mean must be "
     "a positive number"),
    (lambda d: d.assign(hardware="tpu-v9"), "unknown hardware 'tpu-v9'"),
])
def test_bad_tables_are_one_line_input_errors(mutate, needle):
    with pytest.raises(InputError) as e:
        prepare(mutate(synthetic_results()), CATALOG, "t.csv")
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("t.csv: ")


def test_failed_rows_are_left_out_but_do_not_fail_the_table():
    df = synthetic_results()
    df.loc[0, "status"] = "oom"
    df.loc[0, "latency_ms_mean"] = np.nan  # an oom row has no latency; that is fine
    assert len(prepare(df, CATALOG)) == len(df) - 1


def test_machines_and_gpu_matching():
    assert match_gpu("NVIDIA A100-SXM4-80GB", CATALOG) == "a100-80gb"
    assert match_gpu("NVIDIA A100-SXM4-40GB", CATALOG) == "a100-40gb"
    assert match_gpu("NVIDIA H100 80GB HBM3", CATALOG) == "h100"
    assert match_gpu("NVIDIA L4", CATALOG) == "l4"
    assert match_gpu("NVIDIA L40S", CATALOG) == "l40s"
    assert match_gpu("NVIDIA GeForce RTX 4090", CATALOG) is None
    gpu = prepare(synthetic_results(device="cuda", env_gpu="NVIDIA L4"), CATALOG)
    assert set(gpu["hardware"]) == {"l4"} and set(gpu["machine"]) == {"NVIDIA L4"}
    cpu = prepare(synthetic_results(), CATALOG)
    assert set(cpu["machine"]) == {"Test CPU (2 logical CPUs)"}
    named = prepare(synthetic_results(hardware="c7i.xlarge"), CATALOG)
    assert set(named["hardware"]) == {"c7i.xlarge"}


def test_merge_keeps_machines_apart_and_the_later_duplicate():
    a = prepare(synthetic_results(), CATALOG)
    b = prepare(synthetic_results(env_cpu="Other CPU"), CATALOG)
    again = prepare(synthetic_results(overhead_ms=9.0), CATALOG)
    merged = merge([a, b, again])
    assert len(merged) == 2 * len(a) and merged["machine"].nunique() == 2
    kept = merged[merged["machine"] == a["machine"].iloc[0]]
    assert kept["latency_ms_mean"].min() > 9.0  # the later table won


def test_read_table_formats_and_raw_samples(tmp_path):
    df = synthetic_results().assign(row_id="abc")
    run = tmp_path / "run"
    (run / "raw").mkdir(parents=True)
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n"
                                               for r in df.to_dict("records")))
    np.savez(run / "raw" / "abc.npz", latency_ns=np.array([1e6, 3e6]))
    got = read_table(run)
    assert len(got) == len(df) and got["results_dir"].iloc[0] == str(run)
    np.testing.assert_allclose(raw_latency_ms(got.iloc[0]), [1.0, 3.0])
    df.to_csv(tmp_path / "r.csv", index=False)
    assert len(read_table(tmp_path / "r.csv")) == len(df)
    for bad, needle in ((tmp_path / "none.csv", "does not exist"),
                        (tmp_path, "holds no results"), (tmp_path / "r.txt", "allowed formats")):
        if bad.suffix == ".txt":
            bad.write_text("x")
        with pytest.raises(InputError, match=needle):
            read_table(bad)
    with pytest.raises(InputError, match="at least one"):
        load_results([], CATALOG)


def test_projected_and_loadgen_rows_are_not_measurements():
    df = synthetic_results().assign(source="measured")
    df.loc[0, "source"] = "projected"
    df.loc[1, "source"] = "loadgen"
    assert len(prepare(df, CATALOG)) == len(df) - 2
    with pytest.raises(InputError, match="source: no ok row is measured"):
        prepare(df.assign(source="projected"), CATALOG)
