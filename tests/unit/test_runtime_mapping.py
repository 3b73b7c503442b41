"""Which runtimes a hardware row is costed for (the catalog's `runtimes`) and what roi.service
does with a configuration the hardware does not run."""

import typing

import numpy as np
import pytest

from roi.fleet import best_per_hardware, scenario_grid
from roi.hardware import ALL_RUNTIMES, NVIDIA_GPU_RUNTIMES, Runtime, load_catalog, shipped_catalog
from roi.measurements import DTYPE_BYTES, merge, prepare
from roi.projection import calibrate, target_rates
from roi.scenarios import Scenario
from roi.service import NOT_APPLICABLE, forward_times

from .plan_helpers import synthetic_results

CATALOG = shipped_catalog()
GPUS = ["h100", "h200", "a100-40gb", "a100-80gb", "a10g", "l4", "l40s"]
ACCELERATORS = GPUS + ["inf2", "a17-pro", "m4", "snapdragon-8-gen-3", "jetson-orin-nano",
                       "jetson-agx-orin"]
EVERY = (("torch-eager", "fp32"), ("torch-eager", "bf16"), ("ort", "fp32"), ("ort", "int8"),
         ("ort-static", "int8"))


def _fwd(df, names, catalog=CATALOG):
    df = prepare(df, catalog) if "machine" not in df else df
    fits = calibrate(df)
    return forward_times(df, fits, [catalog.get(n) for n in names]), fits


def _rows(fwd, hw, backend, dtype):
    return fwd[(fwd.hardware == hw) & (fwd.backend == backend) & (fwd.dtype == dtype)]


def test_runtime_dtypes_are_the_results_dtypes():
    allowed = typing.get_args(Runtime.model_fields["dtype"].annotation)
    assert set(allowed) == set(DTYPE_BYTES) | {"*"}


def test_defaults_by_kind_and_the_shipped_rows():
    # every shipped GPU spells out the default of a cloud accelerator (one YAML anchor)
    for name in GPUS:
        assert CATALOG.get(name).runtimes == NVIDIA_GPU_RUNTIMES, name
    assert CATALOG.get("iot-1gb").runtimes is None and CATALOG.get("iot-1gb").runs == ALL_RUNTIMES
    h100 = CATALOG.get("h100")
    assert h100.runtime_for("torch-eager", "bf16").proxy_for is None
    assert h100.runtime_for("ort", "int8") is None  # dynamic int8 is a CPU recipe
    assert h100.runtime_for("ort-static", "int8").proxy_for.startswith("TensorRT")
    for name in ("m7g.large", "c7i.xlarge"):
        assert all(CATALOG.get(name).runtime_for(b, d) for b, d in EVERY)
    assert CATALOG.get("raspberry-pi-5").runtime_for("torch-eager", "bf16") is None
    assert CATALOG.get("raspberry-pi-5").runtime_for("ort-wo", "int4") is not None
    inf2 = CATALOG.get("inf2")
    assert inf2.runtime_for("torch-eager", "bf16").proxy_for == "AWS Neuron (bf16)"
    assert inf2.runtime_for("ort", "fp32") is None and inf2.runtime_for("ort", "int8") is None


def test_a_user_row_without_runtimes_takes_its_kinds_default(tmp_path):
    path = tmp_path / "hw.yaml"
    path.write_text("hardware:\n"
                    "  - {name: my-gpu, kind: cloud, source: s, source_date: 2026-01,\n"
                    "     instance_usd_per_hour: 2.0, peak_bf16_tflops: 100}\n"
                    "  - {name: my-cpu, kind: cloud, vcpus: 8, source: s, source_date: 2026-01,\n"
                    "     instance_usd_per_hour: 0.3}\n"
                    "  - {name: my-box, kind: device}\n"
                    "  - {name: my-npu, kind: device, runtimes: ['ort/int8', 'ort-wo/*',\n"
                    "     {backend: torch-eager, dtype: fp16, proxy_for: Vendor SDK}]}\n")
    catalog = load_catalog(path)
    assert catalog.get("my-gpu").runs == NVIDIA_GPU_RUNTIMES
    assert catalog.get("my-cpu").runs == ALL_RUNTIMES
    assert catalog.get("my-box").runs == ALL_RUNTIMES
    npu = catalog.get("my-npu")
    assert npu.runtime_for("ort", "int8") == Runtime(backend="ort", dtype="int8")
    assert npu.runtime_for("ort-wo", "int4") is not None
    assert npu.runtime_for("torch-eager", "fp16").proxy_for == "Vendor SDK"
    assert npu.runtime_for("ort", "fp32") is None
    assert "(default)" in catalog.get("my-box").runtimes_text()
    assert "(default)" not in npu.runtimes_text()


def test_an_exact_entry_wins_over_a_wildcard():
    hw = CATALOG.get("c7i.xlarge").model_copy(update={"runtimes": (
        Runtime.model_validate("*/*"),
        Runtime(backend="ort", dtype="int8", proxy_for="OpenVINO (int8)"))})
    assert hw.runtime_for("ort", "int8").proxy_for == "OpenVINO (int8)"
    assert hw.runtime_for("ort", "fp32").proxy_for is None


def test_ort_dynamic_int8_is_never_costed_on_inf2_or_a_gpu():
    fwd, _ = _fwd(synthetic_results(runtimes=EVERY), GPUS + ["inf2", "c7i.xlarge"])
    for hw in GPUS + ["inf2"]:
        int8 = _rows(fwd, hw, "ort", "int8")
        assert len(int8) == 10 and (int8["source"] == NOT_APPLICABLE).all(), hw
        assert int8[[f"fwd_ms_{b}" for b in ("p10", "p50", "p90")]].isna().all().all()
        assert int8["note"].str.contains(f"{hw} does not run ort/int8").all()
        assert int8["deploy_runtime"].isna().all()
    # ...while the CPU instance costs it from the same calibration
    cpu = _rows(fwd, "c7i.xlarge", "ort", "int8")
    assert (cpu["source"] == "projected").all() and np.isfinite(cpu["fwd_ms_p50"]).all()
    # the GPUs cost what they run, as measured
    h100 = _rows(fwd, "h100", "ort", "fp32")
    assert np.isfinite(h100["fwd_ms_p50"]).all() and (h100["deploy_runtime"] == "ort/fp32").all()


def test_ort_int8_is_never_the_configuration_a_plan_costs_on_a_gpu():
    # ort/int8 is by far the fastest runtime of this table: before the runtime mapping, every
    # GPU's cheapest configuration was ort/int8 at the GPU's int8 peak
    df = merge([prepare(synthetic_results(runtimes=(("ort", "fp32"),), gflop_s=20.0), CATALOG),
                prepare(synthetic_results(runtimes=(("ort", "int8"),), gflop_s=200.0), CATALOG)])
    fwd, _ = _fwd(df, GPUS + ["inf2", "c7i.xlarge"])
    scenario = Scenario.model_validate({
        "name": "t", "deployment": "cloud", "workload": {"qps": 100, "tokens_in_per_request": 128,
                                  "tokens_out_per_request": 0, "arrival": "poisson"},
        "sla": {"percentile": 99, "latency_ms": 200},
        "candidate_hardware": GPUS + ["inf2", "c7i.xlarge"]})
    grid = scenario_grid(scenario, fwd, CATALOG)
    on_accel = grid[grid["hardware"].isin(GPUS + ["inf2"]) & (grid["dtype"] == "int8")]
    assert len(on_accel) and not on_accel["feasible"].any()
    assert on_accel["reason"].str.contains("not applicable").all()
    best = best_per_hardware(grid).set_index(["hardware", "model"])
    for hw in GPUS:
        assert set(best.loc[hw, "backend"] + "/" + best.loc[hw, "dtype"]) == {"ort/fp32"}, hw
    assert set(best.loc["c7i.xlarge", "dtype"]) == {"int8"}  # a CPU runs it
    # inf2 runs neither of this table's runtimes: every model says why, none is costed
    assert not best.loc["inf2", "feasible"].any()
    assert best.loc["inf2", "reason"].str.contains("inf2 does not run").all()


def test_inf2_is_costed_from_its_proxy_with_the_runtime_in_the_note():
    fwd, fits = _fwd(synthetic_results(runtimes=EVERY), ["inf2"])
    bf16 = _rows(fwd, "inf2", "torch-eager", "bf16")
    assert len(bf16) == 10 and (bf16["source"] == "projected").all()
    assert bf16["note"].str.startswith(
        "projected from Test CPU (2 logical CPUs) torch-eager/bf16 as a proxy for AWS Neuron "
        "(bf16);").all()
    assert (bf16["deploy_runtime"] == "AWS Neuron (bf16)").all()
    fit = next(f for f in fits if (f.backend, f.dtype) == ("torch-eager", "bf16"))
    row = bf16[(bf16.model == "m:s10") & (bf16.batch_size == 8)].iloc[0]
    expect = target_rates(fit, CATALOG.get("inf2"), cross_kind=True).predict_ms(
        2e6 * 128 * 8, row["weight_bytes"], 1e6)
    assert row["fwd_ms_p50"] == pytest.approx(float(expect))  # the bf16 peak, 190 TFLOP/s
    fp32 = _rows(fwd, "inf2", "torch-eager", "fp32")
    assert fp32["note"].str.contains("as a proxy for AWS Neuron (fp32 model, "
                                     "--auto-cast=matmult", regex=False).all()
    assert np.isfinite(fp32["fwd_ms_p50"]).all()
    for backend, dtype in (("ort", "fp32"), ("ort", "int8"), ("ort-static", "int8")):
        assert (_rows(fwd, "inf2", backend, dtype)["source"] == NOT_APPLICABLE).all()


def test_devices_are_costed_as_their_deployed_runtime():
    fwd, _ = _fwd(synthetic_results(runtimes=EVERY),
                  ["a17-pro", "snapdragon-8-gen-3", "jetson-orin-nano"])
    apple = _rows(fwd, "a17-pro", "ort-static", "int8")
    assert (apple["deploy_runtime"] == "Core ML (W8A8 int8, Neural Engine)").all()
    assert (_rows(fwd, "a17-pro", "ort", "int8")["source"] == NOT_APPLICABLE).all()
    qnn = _rows(fwd, "snapdragon-8-gen-3", "ort", "fp32")
    assert qnn["note"].str.contains("as a proxy for ONNX Runtime QNN EP").all()
    jetson = _rows(fwd, "jetson-orin-nano", "ort", "fp32")
    assert (jetson["deploy_runtime"] == "TensorRT (fp16, from the ONNX model)").all()
    assert (_rows(fwd, "jetson-orin-nano", "torch-eager", "bf16")["deploy_runtime"]
            == "torch-eager/bf16").all()
    assert (_rows(fwd, "jetson-orin-nano", "torch-eager", "fp32")["source"]
            == NOT_APPLICABLE).all()


def test_measured_rows_and_the_hardwares_own_calibration_are_kept_whatever_the_catalog_says():
    cpu = prepare(synthetic_results(runtimes=(("ort", "int8"),)), CATALOG)
    gpu_models = {"m:teacher": 10_000_000, "m:s5": 2_000_000, "m:s10": 1_000_000}
    gpu = prepare(synthetic_results(runtimes=(("ort", "int8"),), device="cuda",
                                    env_gpu="NVIDIA L4", overhead_ms=0.1, gflop_s=5000.0,
                                    models=gpu_models), CATALOG)
    fwd, _ = _fwd(merge([cpu, gpu]), ["l4", "a10g"])
    l4 = _rows(fwd, "l4", "ort", "int8")
    measured = l4[l4.model.isin(gpu_models)]
    assert (measured["source"] == "measured").all() and len(measured) == 6
    assert (measured["deploy_runtime"] == "ort/int8").all()
    own = l4[~l4.model.isin(gpu_models)]  # the students only the CPU measured
    assert (own["source"] == "projected").all() and np.isfinite(own["fwd_ms_p50"]).all()
    assert own["note"].str.contains("from this hardware's own calibration").all()
    # another GPU is not the one that ran it: not costed, the catalog says so
    assert (_rows(fwd, "a10g", "ort", "int8")["source"] == NOT_APPLICABLE).all()


def test_a_user_catalog_can_say_a_gpu_runs_dynamic_int8(tmp_path):
    path = tmp_path / "hw.yaml"
    path.write_text("hardware:\n"
                    "  - name: l4\n    kind: cloud\n    source: s\n    source_date: 2026-01\n"
                    "    instance_usd_per_hour: 0.8\n    peak_int8_tops: 242\n"
                    "    peak_fp32_tflops: 30\n    runtimes: [ort/fp32, ort/int8]\n")
    catalog = load_catalog(path)
    fwd, _ = _fwd(synthetic_results(runtimes=(("ort", "int8"),)), ["l4"], catalog)
    assert (fwd["source"] == "projected").all() and np.isfinite(fwd["fwd_ms_p50"]).all()
