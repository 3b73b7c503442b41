"""roi import: vLLM, optimum-benchmark and MLPerf results as rows of the results table, the
planner reading them as measurements of the named hardware, and refusals of bad files; MLPerf
scenario names in any case; torch dtype names in a hand-written table."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from app.cli import main
from contracts.errors import InputError
from roi.hardware import load_catalog
from roi.importers import ImportOptions, import_file
from contracts.mlperf_log import mlperf_summary, parse_mllog
from roi.measurements import normalise_dtype, prepare

FIXTURES = Path(__file__).parent.parent / "fixtures"
IMPORTS = FIXTURES / "imports"
VLLM = IMPORTS / "vllm_serve_result.json"
OPTIMUM = IMPORTS / "optimum_benchmark.json"
SERVER = IMPORTS / "mlperf_server" / "mlperf_log_detail.txt"
SINGLE = IMPORTS / "mlperf_singlestream" / "mlperf_log_detail.txt"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog([])


def _one(tool, path, catalog, **kw):
    opts = dict(hardware="h100", role="teacher", params=8_030_261_248)
    opts.update(kw)
    rows = import_file(tool, path, ImportOptions(**opts), catalog)
    assert len(rows) == 1
    return rows[0]


def test_vllm_serve_result_maps_ttft_to_the_forward_and_tpot_to_the_step(catalog):
    row = _one("vllm", VLLM, catalog, dtype="bfloat16")
    assert (row["model"], row["backend"], row["device"], row["dtype"]) == (
        "meta-llama/Llama-3.1-8B-Instruct", "vllm", "cuda", "bf16")
    assert (row["source"], row["hardware"], row["status"]) == ("imported", "h100", "ok")
    assert row["batch_size"] == 16  # max_concurrency
    assert row["seq_len"] == 128  # 25600 input tokens / 200 requests
    assert (row["latency_ms_mean"], row["latency_ms_p50"], row["latency_ms_p99"]) == (
        38.2, 31.7, 92.4)
    assert (row["ttft_ms"], row["tpot_ms"], row["decode_mode"]) == (38.2, 13.1, "kv-cache")
    assert row["throughput_samples_s"] == 9.25 and row["n_calls"] == 200
    assert row["output_tokens_mean"] == 128
    # the planner gives one spread to the whole request: the request's, not the TTFT's
    assert row["latency_ms_cv"] == pytest.approx(
        (14.1 ** 2 + (127 * 0.6) ** 2) ** 0.5 / (38.2 + 127 * 13.1))


def test_vllm_without_max_concurrency_takes_littles_law(tmp_path, catalog):
    data = json.loads(VLLM.read_text())
    data["max_concurrency"] = None
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    row = _one("vllm", path, catalog, dtype="bf16")
    # 9.25 req/s x (38.2 + 127 x 13.1 ms) = 15.7 in flight
    assert row["batch_size"] == 16
    assert "Little" in row["imported_batch_size_from"]


def test_optimum_benchmark_json_reads_its_config(catalog):
    row = _one("optimum-benchmark", OPTIMUM, catalog, params=124_439_808, role="student")
    assert (row["model"], row["backend"], row["dtype"]) == (
        "openai-community/gpt2", "optimum-pytorch", "fp16")
    assert (row["batch_size"], row["seq_len"]) == (4, 256)
    assert row["latency_ms_mean"] == pytest.approx(6.262)  # prefill, seconds -> ms
    assert row["latency_ms_p99"] == pytest.approx(6.392)
    assert row["tpot_ms"] == pytest.approx(7.163)  # per_token
    assert row["peak_gpu_mb"] == pytest.approx(1254.1)


def test_optimum_report_alone_takes_its_config_beside_or_the_options(tmp_path, catalog):
    data = json.loads(OPTIMUM.read_text())
    report = dict(data["report"])
    del report["per_token"]  # a backend without per-token tracking
    (tmp_path / "benchmark_report.json").write_text(json.dumps(report))
    with pytest.raises(InputError, match="names no model; give --model"):
        _one("optimum-benchmark", tmp_path / "benchmark_report.json", catalog, dtype="fp16")
    (tmp_path / "benchmark_config.json").write_text(json.dumps(data["config"]))
    row = _one("optimum-benchmark", tmp_path / "benchmark_report.json", catalog)
    assert row["model"] == "openai-community/gpt2"
    assert row["tpot_ms"] == pytest.approx(451.43 / 63)  # decode over max_new_tokens - 1


def test_mlperf_detail_log_server_and_singlestream(catalog):
    server = _one("mlperf", SERVER, catalog, model="gpt2", dtype="fp16", seq_len=128,
                  hardware="l4")
    assert (server["backend"], server["mlperf_scenario"], server["mlperf_result"]) == (
        "mlperf", "Server", "VALID")
    assert server["latency_ms_p99"] == pytest.approx(7.849981)
    assert server["throughput_samples_s"] == pytest.approx(97.7908)
    single = _one("mlperf", SINGLE, catalog, model="gpt2", dtype="int8", seq_len=128,
                  hardware="c7i.xlarge")
    assert single["device"] == "cpu"  # a CPU instance
    assert single["latency_ms_p90"] == pytest.approx(5.091495)
    assert single["latency_ms_mean"] == pytest.approx(3.859198)


def test_mlperf_offline_costs_the_throughput_not_the_queueing(catalog):
    row = _one("mlperf", IMPORTS / "mlperf_offline" / "mlperf_log_detail.txt", catalog,
               model="gpt2", dtype="fp16", seq_len=128)
    assert row["mlperf_scenario"] == "Offline" and row["mlperf_result"] == "INVALID"
    assert "min duration not satisfied" in row["mlperf_invalid_reasons"]
    assert row["latency_ms_mean"] == pytest.approx(1000.0 / 464.17)
    assert "latency_ms_p99" not in row


def test_mlperf_detail_agrees_with_the_human_summary():
    from contracts.mlperf_log import parse_summary

    for folder in ("mlperf_server", "mlperf_singlestream"):
        human = parse_summary((IMPORTS / folder / "mlperf_log_summary.txt").read_text())
        detail = mlperf_summary(parse_mllog((IMPORTS / folder / "mlperf_log_detail.txt")
                                            .read_text()))
        for key in ("scenario", "mode", "result", "valid", "early_stopping_met",
                    "invalid_reasons", "claimed_percentile"):
            assert detail.get(key) == human.get(key), key
        for key, value in human["latency_ms"].items():
            assert detail["latency_ms"][key] == pytest.approx(value), key
        for key in ("completed_qps", "scheduled_qps", "qps_with_overhead"):
            if human.get(key) is not None:
                assert detail[key] == pytest.approx(human[key], rel=1e-3), key


def test_loadtest_run_reads_the_detail_log(tmp_path):
    from contracts.mlperf_log import read_run_summary

    shutil.copy(SERVER, tmp_path / "mlperf_log_detail.txt")
    assert read_run_summary(tmp_path)["completed_qps"] == pytest.approx(97.7908)
    (tmp_path / "mlperf_log_detail.txt").write_text("garbage\n")  # damaged: the summary
    shutil.copy(SERVER.with_name("mlperf_log_summary.txt"), tmp_path)
    assert read_run_summary(tmp_path)["completed_qps"] == pytest.approx(97.79)


@pytest.mark.parametrize("name", ["Server", "server", "SERVER", " Offline", "SingleStream",
                                  "multistream"])
def test_loadtest_scenarios_as_mlperf_spells_them(name):
    from bench.loadgen import SCENARIOS, LoadtestSettings, check_settings

    s = check_settings(LoadtestSettings(model="builtin:teacher", scenario=name, qps=10.0,
                                        latency_ms=50.0))
    assert s.scenario in SCENARIOS and s.scenario == name.strip().lower()


def test_loadtest_unknown_scenario_still_refused(capsys):
    assert main(["loadtest", "--model", "builtin:teacher", "--scenario", "Streaming",
                 "--out", "/tmp/never-made-roi-import"]) == 2
    assert "unknown scenario" in capsys.readouterr().err


def test_round_trip_import_then_plan_costs_h100_from_the_import(tmp_path, capsys):
    out = tmp_path / "h100"
    assert main(["import", "vllm", str(VLLM), "--hardware", "h100", "--role", "teacher",
                 "--model", "builtin:teacher", "--dtype", "bf16", "--params", "14393088",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out / "results.csv")
    assert table.loc[0, "source"] == "imported" and table.loc[0, "hardware"] == "h100"
    assert (out / "results.jsonl").is_file()
    plan_dir = tmp_path / "plan"
    assert main(["plan", "--results", str(FIXTURES / "bench_results.csv"), "--results",
                 str(out), "--scenario", "real-time-api", "--out", str(plan_dir)]) == 0
    capsys.readouterr()
    plan = json.loads((plan_dir / "plan.json").read_text())
    h100 = next(h for h in plan["sources"]["hardware"] if h["hardware"] == "h100")
    assert h100["measured_on"] == ["hardware h100 (imported)"]
    sizing = pd.read_csv(plan_dir / "sizing.csv")
    mine = sizing[(sizing["hardware"] == "h100") & (sizing["backend"] == "vllm")]
    assert len(mine) and (mine["source"] == "measured").all()
    assert (mine["measured_on"] == "hardware h100 (imported)").all()
    # a request of 128 tokens in, 8 out: the measured TTFT + 8 x the measured TPOT
    assert mine["service_ms_p50"].iloc[0] == pytest.approx(38.2 + 8 * 13.1)
    assert (mine["decode_mode"] == "kv-cache").all()


def test_imports_add_to_one_table(tmp_path, capsys):
    out = tmp_path / "t"
    common = ["--role", "student", "--params", "124439808", "--out", str(out)]
    assert main(["import", "optimum-benchmark", str(OPTIMUM), "--hardware", "h100",
                 *common]) == 0
    assert main(["import", "mlperf", str(SERVER), "--hardware", "l4", "--model", "gpt2",
                 "--dtype", "float16", "--seq-len", "128", *common]) == 0
    # the same configuration measured on two machines: both kept; again on one: replaced
    assert main(["import", "mlperf", str(SERVER), "--hardware", "a10g", "--model", "gpt2",
                 "--dtype", "float16", "--seq-len", "128", *common]) == 0
    assert "replaces" not in capsys.readouterr().out
    assert main(["import", "mlperf", str(SINGLE), "--hardware", "l4", "--model", "gpt2",
                 "--dtype", "float16", "--seq-len", "128", *common]) == 0
    assert "replaces the row imported before" in capsys.readouterr().out
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["hardware"], r.get("mlperf_scenario")) for r in rows] == [
        ("h100", None), ("a10g", "Server"), ("l4", "SingleStream")]


@pytest.mark.parametrize("tool,content,needle", [
    ("vllm", "not json at all", "cannot be read as JSON"),
    ("vllm", "[1, 2]", "must hold a JSON object"),
    ("vllm", '{"model_id": "m", "completed": 10}', "field mean_ttft_ms is missing"),
    ("vllm", '{"completed": 0}', "no request finished"),
    ("optimum-benchmark", '{"prefill": {"latency": {"unit": "ms", "mean": 3}}}', "unit"),
    ("optimum-benchmark", '{"report": {"load_model": {}}}', "no prefill or forward latency"),
    ("mlperf", "Result is : VALID\n", "no `:::MLLOG"),
    ("mlperf", ':::MLLOG {"key": "sut_name", "value": "x"}\n', "effective_scenario"),
])
def test_malformed_or_foreign_files_are_one_line_errors(tmp_path, capsys, tool, content,
                                                         needle):
    path = tmp_path / "result.txt"
    path.write_text(content)
    code = main(["import", tool, str(path), "--hardware", "h100", "--role", "teacher",
                 "--dtype", "bf16", "--params", "1000", "--model", "m", "--seq-len", "8",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and str(path) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "results.jsonl").exists()


@pytest.mark.parametrize("args,needle", [
    (["vllm", str(VLLM), "--hardware", "h900", "--role", "teacher"], "unknown hardware"),
    (["vllm", str(VLLM), "--hardware", "h100", "--role", "teach"], "--role"),
    (["nvidia", str(VLLM), "--hardware", "h100", "--role", "teacher"], "unknown tool"),
    (["vllm", "/no/such/file.json", "--hardware", "h100", "--role", "teacher"], "does not exist"),
    (["vllm", str(VLLM), "--hardware", "h100", "--role", "teacher"], "give --dtype"),
    (["vllm", str(VLLM), "--hardware", "h100", "--role", "teacher", "--dtype", "fp64"],
     "dtype: allowed"),
    (["mlperf", str(SERVER), "--hardware", "h100", "--role", "teacher", "--dtype", "fp16",
      "--model", "m"], "give --seq-len"),
    (["vllm", str(VLLM), "--hardware", "h100", "--role", "teacher", "--dtype", "bf16",
      "--batch-size", "0"], "--batch-size must be a positive integer"),
    (["vllm", str(VLLM), "--hardware", "h100", "--role", "teacher", "--dtype", "bf16",
      "--params", "-5"], "--params must be a positive integer"),
    (["vllm", str(VLLM), "--hardware", "h100", "--role", "teacher", "--device", "tpu"],
     "--device: allowed"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, needle):
    extra = [] if "--params" in args else ["--params", "1000"]
    assert main(["import", *args, *extra, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize("given,want", [("float32", "fp32"), ("torch.bfloat16", "bf16"),
                                        ("float16", "fp16"), ("half", "fp16"), ("FP32", "fp32"),
                                        ("int8", "int8"), ("bf16", "bf16")])
def test_torch_dtype_names_are_normalised(given, want):
    assert normalise_dtype(given) == want


def test_hand_written_table_with_torch_dtypes_is_accepted(catalog):
    df = pd.read_csv(FIXTURES / "bench_results.csv")
    df["dtype"] = df["dtype"].map({"fp32": "float32", "int8": "int8"}).fillna(df["dtype"])
    assert (df["dtype"] == "float32").any()
    ok = prepare(df, catalog, "hand.csv")
    assert set(ok["dtype"]) <= {"fp32", "int8"} and "fp32" in set(ok["dtype"])
    df.loc[df.index[0], "dtype"] = "float64"
    with pytest.raises(InputError, match="dtype: allowed fp32"):
        prepare(df, catalog, "hand.csv")


def test_import_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys, roi.importers, contracts.mlperf_log, contracts.results; "
            "bad = [m for m in ('torch', 'onnxruntime', 'mlperf_loadgen') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
