import math

import numpy as np
import pytest

from contracts.errors import InputError
from roi.hardware import load_catalog
from roi.measurements import prepare
from roi.projection import (
    DEFAULT_BAND,
    REFERENCE_PARAMS,
    calibrate,
    check_memory_efficiency,
    fit_points,
    leave_one_out_report,
    own_rates,
    pick_reference,
    target_rates,
)

from .plan_helpers import MODELS, latency_ms, synthetic_results

CATALOG = load_catalog()


def _fits(**kw):
    return calibrate(prepare(synthetic_results(**kw), CATALOG))


def test_an_exact_roofline_is_recovered_and_predicts_out_of_sample_exactly():
    (fit,) = _fits(overhead_ms=0.5, gflop_s=20.0, exponent=0.2)
    assert fit.overhead_ms == pytest.approx(0.5, rel=1e-6)
    assert fit.compute_flop_s == pytest.approx(20e9, rel=1e-6)  # at 1 M params
    assert fit.size_exponent == pytest.approx(0.2) and fit.ridge_flop_per_byte == 0
    assert max(fit.loo_ape) < 1e-6  # each size predicted from the others
    assert fit.band == pytest.approx((1.0, 1.0), abs=1e-6)
    assert fit.predict_ms(2 * 1e6 * 128 * 4, 4e6, 1e6) == pytest.approx(0.5 + 1024e6 / 20e6)
    (row,) = leave_one_out_report([fit])
    assert row["median_ape"] < 1e-6 and row["n_predictions"] == 10


LAYERS = {"m:teacher": 12, "m:s5": 6, "m:s10": 4, "m:s20": 3, "m:s50": 2}


def test_a_per_layer_overhead_is_recovered_when_the_rows_give_layer_counts():
    (fit,) = _fits(overhead_ms=0.2, overhead_ms_per_layer=0.15, layers=LAYERS)
    assert fit.overhead_ms == pytest.approx(0.2, abs=1e-6)
    assert fit.overhead_ms_per_layer == pytest.approx(0.15, rel=1e-6)
    assert max(fit.loo_ape) < 1e-6  # each size, with its own depth, predicted from the others
    assert fit.predict_ms(2e6 * 128, 4e6, 1e6, n_layers=5) == pytest.approx(
        0.2 + 0.75 + 256e6 / 20e6)
    assert fit.layers_ref == 4 and float(fit.overhead_at(None)) == pytest.approx(0.2 + 0.6)
    # without the counts the same table is explained worse: the fixed overhead cannot follow depth
    plain = calibrate(prepare(synthetic_results(overhead_ms=0.2, overhead_ms_per_layer=0.15,
                                                layers=LAYERS).drop(columns="n_layers"), CATALOG))
    assert plain[0].overhead_ms_per_layer == 0 and np.median(plain[0].loo_ape) > 1e-3


def test_equal_layer_counts_fit_no_per_layer_term():
    same = dict.fromkeys(LAYERS, 4)
    (fit,) = _fits(overhead_ms=0.5, layers=same)
    assert fit.overhead_ms_per_layer == 0 and fit.overhead_ms == pytest.approx(0.5, rel=1e-6)


def test_memory_bound_rows_are_fitted_by_the_ridge():
    # time = max(F / 50 GFLOP/s, B / 1 GB/s): ridge 50 FLOP/byte; batch 1 is memory-bound
    f = np.array([1e8, 8e8, 4e8, 3.2e9])
    b = np.array([4e7, 4e7, 1e7, 1e7])
    t = np.maximum(f / 50e6, b / 1e6)  # ms
    a, a_layer, rate, ridge, expo = fit_points(f, b, np.full(4, REFERENCE_PARAMS), t)
    assert a_layer == 0.0  # no layer counts given: no per-layer term
    assert 0 <= a < 0.01 * t.min() and expo == 0  # grid search: close, not exact
    assert rate == pytest.approx(50e6, rel=0.02) and ridge == pytest.approx(50, rel=0.02)


def test_noisy_measurements_give_a_band_around_one():
    factors = {"m:teacher": 1.1, "m:s5": 0.9, "m:s10": 1.15, "m:s20": 0.95, "m:s50": 1.05}
    (fit,) = _fits(noise=lambda m, b: factors[m])
    lo, hi = fit.band
    assert lo < 1 < hi and fit.band_source == "leave-one-model-out"
    assert 0 < np.median(fit.loo_ape) < 0.3


def test_two_sizes_cannot_estimate_a_band():
    two = {k: MODELS[k] for k in ("m:teacher", "m:s10")}
    (fit,) = _fits(models=two)
    assert fit.band == DEFAULT_BAND and not fit.loo_ape and leave_one_out_report([fit]) == []


def test_local_peak_given_or_best_achieved():
    (fit,) = _fits()
    achieved = max(2 * p * 128 * 8 / (latency_ms(2 * p * 128 * 8, p, 0.5, 20.0, 0.2) / 1e3)
                   for p in MODELS.values())
    fitted = 20e9 * 10**0.2  # the fitted rate of the largest model, beyond any achieved rate
    assert fitted > achieved and fit.peak_flop_s == pytest.approx(fitted, rel=1e-6)
    assert fit.peak_source.startswith("best achieved")
    (given,) = calibrate(prepare(synthetic_results(), CATALOG), {"fp32": 100e9})
    assert given.peak_flop_s == 100e9 and given.peak_source == "given"
    assert given.compute_efficiency(1e6) == pytest.approx(0.2)


def test_projection_to_a_gpu_by_hand():
    (fit,) = calibrate(prepare(synthetic_results(), CATALOG), {"fp32": 100e9})
    l4 = CATALOG.get("l4")  # fp32 30.3 TFLOP/s, 300 GB/s
    rates = target_rates(fit, l4, memory_efficiency=0.5)
    # compute efficiency at 1 M params = 20 / 100 GFLOP/s: 30.3e12 * 0.2 FLOP/s
    assert rates.flop_per_ms == pytest.approx(30.3e12 * 0.2 / 1e3)
    assert rates.byte_per_ms == pytest.approx(300e9 * 0.5 / 1e3)
    f, b, n = 2.56e8, 4e6, 1e6
    expect = 0.5 + max(f / (30.3e12 * 0.2 / 1e3), b / (150e9 / 1e3))
    assert float(rates.predict_ms(f, b, n)) == pytest.approx(expect)
    assert rates.note == ""


def test_fallbacks_cpu_instances_and_missing_figures():
    (fit,) = _fits()
    inf2 = target_rates(fit, CATALOG.get("inf2"))  # no fp32 figure: bf16
    assert "no fp32 figure" in inf2.note
    cpu = target_rates(fit, CATALOG.get("c7i.xlarge"))  # 4 vCPUs, measured with 2 threads
    assert cpu.flop_per_ms == pytest.approx(2 * fit.flop_per_ms) and "vCPUs" in cpu.note
    assert isinstance(target_rates(fit, CATALOG.get("iot-1gb")), str)
    assert own_rates(fit).flop_per_ms == fit.flop_per_ms
    assert math.isinf(own_rates(fit).byte_per_ms)  # memory never bound here


def test_the_reference_calibration_prefers_the_same_kind_of_machine():
    cpu = _fits()[0]
    gpu = calibrate(prepare(synthetic_results(device="cuda", env_gpu="NVIDIA L4"), CATALOG))[0]
    kinds = {cpu.machine: "cpu", gpu.machine: "gpu"}
    assert pick_reference([cpu, gpu], "ort", "fp32", True, kinds) is gpu
    assert pick_reference([cpu, gpu], "ort", "fp32", False, kinds) is cpu
    assert pick_reference([cpu], "ort", "fp32", True, kinds) is cpu
    assert pick_reference([cpu], "ort", "int8", True, kinds) is None
    with pytest.raises(InputError, match="memory_efficiency"):
        check_memory_efficiency(1.5)


def test_cpu_calibration_carried_to_a_gpu_takes_the_launch_floor_and_widens_its_band():
    from pathlib import Path

    from roi.hardware import load_catalog
    from roi.measurements import load_results
    from roi.projection import (
        ACCEL_OVERHEAD_MS,
        ACCEL_OVERHEAD_MS_PER_LAYER,
        CROSS_KIND_BAND,
        calibrate,
    )
    from roi.service import forward_times

    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    catalog = load_catalog()
    cpu = load_results([fixtures / "bench_results.csv"], catalog)
    fits = calibrate(cpu)
    own = next(f for f in fits if f.backend == "torch-eager")
    fwd = forward_times(cpu, fits, [catalog.get("h200")])
    eager = fwd[(fwd["backend"] == "torch-eager")]
    assert (eager["source"] == "projected").all()
    assert eager["note"].str.contains("carried to an accelerator").all()
    for _, row in eager.iterrows():
        assert row["fwd_ms_p10"] == pytest.approx(row["fwd_ms_p50"] * own.band[0]
                                                  * CROSS_KIND_BAND[0])
        floor = ACCEL_OVERHEAD_MS + ACCEL_OVERHEAD_MS_PER_LAYER * row["n_layers"]
        assert row["fwd_ms_p50"] > floor  # the launch floor plus the carried roofline
        cpu_overhead = float(own.overhead_at(row["n_layers"]))
        assert row["fwd_ms_p50"] < floor + cpu_overhead  # the CPU's overhead did not carry
    # the H200's own rows (measured there) must fall inside the band
    gpu = load_results([fixtures / "gpu_h200_results.csv"], catalog)
    got = eager.merge(gpu[gpu["dtype"] == "fp32"], on=["model", "backend", "dtype",
                                                       "batch_size", "seq_len"])
    assert len(got) == 10
    assert ((got["fwd_ms_p10"] <= got["latency_ms_mean"])
            & (got["latency_ms_mean"] <= got["fwd_ms_p90"])).all()
