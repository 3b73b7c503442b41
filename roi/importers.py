"""Measurements users already have, as rows of the results table (source `imported`).

`roi import vllm|optimum-benchmark|mlperf FILE --hardware NAME --role ROLE --out DIR` reads the
result file of another tool and writes rows bench's own writer would (contracts/results.py), naming
the catalog hardware they were measured on, so that `roi plan` costs that accelerator from the
user's measurement instead of a projection from a CPU. Formats (each as its tool writes it):

- vllm: the JSON of `vllm bench serve --save-result` (benchmark_serving.py): model_id,
  completed, total_input_tokens, request_throughput, output_throughput, max_concurrency,
  request_rate and {mean,median,std,p99}_{ttft,tpot,itl,e2el}_ms.
- optimum-benchmark: benchmark.json ({"config": ..., "report": ...}) or benchmark_report.json
  (with benchmark_config.json beside it, when there): per target (prefill, decode, per_token,
  forward) a latency {unit "s", mean, p50, p90, p95, p99, stdev, count} and a throughput
  {unit, value}; the config's backend (name, model, device, torch_dtype) and scenario
  (input_shapes batch_size / sequence_length, generate_kwargs max_new_tokens).
- mlperf: LoadGen's mlperf_log_detail.txt, one `:::MLLOG {json}` record a line (key, value):
  effective_scenario, result_validity, result_{mean,min,max}_latency_ns,
  result_NN.NN_percentile_latency_ns, result_*_samples_per_sec, and for LLMs
  result_first_token_* / result_time_per_output_token_* / result_time_to_output_token_mean.

How a row maps onto the planner's model (roi/service.py: a request is a forward over seq_len
tokens scaled to the scenario's prompt, plus one decode step per output token): for a
generating engine the forward is the prefill, so latency_ms_{mean,p50,p99} hold the time to
first token (TTFT) at seq_len = the mean prompt length, tpot_ms the time per output token, and
decode_mode is kv-cache (vLLM and generate() decode with a cache). The whole-request latency
(e2el, vLLM) is kept beside them as request_ms_* for the record; putting it in latency_ms_*
would count the decode twice. batch_size is the concurrency the figures were measured at.

Pure: no torch, no file writes (the `roi import` command writes through contracts.results).
"""

from __future__ import annotations

import math
from pathlib import Path

from contracts.errors import InputError
from contracts.mlperf_log import finite as _finite
from contracts.mlperf_log import mlperf_summary, parse_mllog
from contracts.results import IMPORTED

from .import_options import ImportOptions
from .measurements import normalise_dtype

TOOLS = ("vllm", "optimum-benchmark", "mlperf")
DOCS = {"vllm": "`vllm bench serve --save-result` JSON",
        "optimum-benchmark": "optimum-benchmark benchmark.json / benchmark_report.json",
        "mlperf": "MLPerf LoadGen mlperf_log_detail.txt"}


def import_file(tool: str, path: str | Path, opts: ImportOptions, catalog) -> list[dict]:
    """The results-table rows of one result file of `tool`; InputError (one line naming the
    file and what is missing) for a malformed or foreign file or a missing option."""
    if tool not in TOOLS:
        raise InputError(f"roi import: unknown tool {tool!r}; allowed: {', '.join(TOOLS)}")
    if opts.hardware not in catalog:
        raise InputError(f"--hardware: unknown hardware {opts.hardware!r}; known: "
                         f"{', '.join(catalog.names())}")
    path = Path(path)
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise InputError(f"{path}: {what}")
    reader = {"vllm": _vllm, "optimum-benchmark": _optimum, "mlperf": _mlperf}[tool]
    rows = reader(path)
    hw = catalog.get(opts.hardware)
    device = opts.device or ("cpu" if hw.vcpus else "cuda")
    return [_complete(r, path, tool, opts, device) for r in rows]


def _complete(row: dict, path: Path, tool: str, opts: ImportOptions, device: str) -> dict:
    where = f"{path} ({DOCS[tool]})"
    given = {k: row.pop(k, None) for k in ("model", "dtype", "params", "batch_size", "seq_len")}
    model = opts.model or given["model"]
    if not model:
        raise InputError(f"{where}: the file names no model; give --model NAME")
    dtype = opts.dtype or given["dtype"]
    if not dtype:
        raise InputError(f"{where}: the file does not say the dtype; give --dtype "
                         "(fp32, bf16, fp16, int8, int4 or torch's names)")
    pick = lambda given_value, option: option if option is not None else given_value  # noqa
    params = pick(given["params"], opts.params)
    if params is None:
        raise InputError(f"{where}: the file does not give the parameter count; give --params N")
    batch = pick(given["batch_size"] or 1, opts.batch_size)
    seq = pick(given["seq_len"], opts.seq_len)
    if seq is None:
        raise InputError(f"{where}: the file does not give the prompt length; give --seq-len N")
    for name, value in (("--params", params), ("--batch-size", batch), ("--seq-len", seq)):
        if isinstance(value, bool) or not (isinstance(value, (int, float))
                                           and math.isfinite(value) and value >= 1):
            raise InputError(f"{where}: {name} must be a positive integer; got {value!r}")
    out = {"model": str(model), "role": opts.role, "backend": row.pop("backend"),
           "device": device, "dtype": normalise_dtype(dtype, f"{where}: dtype"),
           "batch_size": int(round(batch)), "seq_len": int(round(seq)), "threads": None,
           "status": "ok", "error": "", "source": IMPORTED, "params": int(params),
           "hardware": opts.hardware, "decode_mode": row.pop("decode_mode", None),
           "imported_tool": tool, "imported_from": str(path)}
    out.update({k: v for k, v in row.items() if v is not None})
    _check_latency(out, where)
    return out


def _check_latency(row: dict, where: str) -> None:
    ok = [row.get(c) for c in ("latency_ms_mean", "latency_ms_p50")]
    if not any(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in ok):
        raise InputError(f"{where}: no positive latency in the file (latency_ms_mean / p50)")


# ------------------------------------------------------------------------------------- vLLM

def _json(path: Path, tool: str) -> dict:
    """The file's one JSON object (contracts.config's reader: the same one-line refusals)."""
    from contracts.config import read_json_object

    return read_json_object(path, DOCS[tool])


def _number(data: dict, key: str, path: Path, tool: str, required: bool = True):
    value = data.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        if not required:
            return None
        got = "missing" if key not in data else f"{value!r}"
        raise InputError(f"{path}: field {key} is {got}, a number is required; expected "
                         f"{DOCS[tool]}")
    return float(value)


def _vllm(path: Path) -> list[dict]:
    data = _json(path, "vllm")
    num = lambda k, req=True: _number(data, k, path, "vllm", req)  # noqa: E731
    completed = num("completed")
    if completed < 1:
        raise InputError(f"{path}: field completed is {completed:g}: no request finished, "
                         "nothing was measured")
    ttft = {s: num(f"{s}_ttft_ms", s == "mean") for s in ("mean", "median", "std", "p90",
                                                           "p99")}
    tpot = num("mean_tpot_ms")
    throughput = num("request_throughput")
    e2el = {s: num(f"{s}_e2el_ms", False) for s in ("mean", "median", "p99")}
    out_tokens = num("total_output_tokens", False)
    out_mean = out_tokens / completed if out_tokens else None
    if e2el["mean"] is None and out_mean:  # e2el is not among vLLM's default metrics
        e2el_est = ttft["mean"] + max(out_mean - 1, 0) * tpot
    else:
        e2el_est = e2el["mean"]
    cv, cv_from = _request_cv(data, e2el_est, out_mean, num)
    conc = data.get("max_concurrency")
    if isinstance(conc, (int, float)) and not isinstance(conc, bool) and conc >= 1:
        batch, batch_note = int(conc), "max_concurrency"
    elif e2el_est:  # unbounded: the mean number of requests in flight (Little's law)
        batch = max(1, round(throughput * e2el_est / 1000.0))
        batch_note = "request_throughput x request latency (Little's law; no max_concurrency)"
    else:
        batch, batch_note = 1, "assumed 1 (neither max_concurrency nor e2el given)"
    return [{
        "model": data.get("model_id") or None, "backend": "vllm",
        "batch_size": batch, "seq_len": num("total_input_tokens") / completed,
        "latency_ms_mean": ttft["mean"], "latency_ms_p50": ttft["median"],
        "latency_ms_p90": ttft["p90"], "latency_ms_p99": ttft["p99"],
        "latency_ms_std": ttft["std"], "latency_ms_cv": cv, "latency_cv_from": cv_from,
        "ttft_ms": ttft["mean"], "tpot_ms": tpot,
        "n_calls": int(completed), "throughput_samples_s": throughput,
        "throughput_tokens_s": num("output_throughput", False),
        "decode_mode": "kv-cache",
        "request_ms_mean": e2el["mean"], "request_ms_p50": e2el["median"],
        "request_ms_p99": e2el["p99"], "itl_ms_mean": num("mean_itl_ms", False),
        "output_tokens_mean": out_mean,
        "imported_batch_size_from": batch_note,
        "imported_request_rate": str(data.get("request_rate")),
        "imported_date": str(data.get("date") or ""),
    }]


def _request_cv(data: dict, e2el_mean, out_mean, num) -> tuple:
    """The spread of whole requests, which the planner gives every request it sizes (the
    TTFT's own spread, with its queueing for a slot, would stand for the decode's too): the
    e2el's std / mean where measured, else TTFT and (output tokens - 1) x TPOT taken as
    independent; None (the planner's stated default) without either."""
    std_e2el = num("std_e2el_ms", False)
    if std_e2el is not None and e2el_mean:
        return std_e2el / e2el_mean, "std_e2el_ms / mean_e2el_ms"
    std_ttft, std_tpot = num("std_ttft_ms", False), num("std_tpot_ms", False)
    if std_ttft is None or std_tpot is None or not e2el_mean or not out_mean:
        return None, None
    std = math.hypot(std_ttft, max(out_mean - 1, 0) * std_tpot)
    return std / e2el_mean, "std_ttft_ms and std_tpot_ms over the mean request"


# -------------------------------------------------------------------------- optimum-benchmark

def _optimum(path: Path) -> list[dict]:
    data = _json(path, "optimum-benchmark")
    if "report" in data and isinstance(data["report"], dict):  # benchmark.json
        report, config = data["report"], data.get("config") or {}
    else:  # benchmark_report.json, its config beside it when there
        report, config = data, {}
        beside = path.with_name("benchmark_config.json")
        if beside.is_file():
            config = _json(beside, "optimum-benchmark")
    backend = config.get("backend") or {}
    scenario = config.get("scenario") or {}
    shapes = scenario.get("input_shapes") or {}
    target = next((t for t in ("prefill", "forward") if _latency(report.get(t))), None)
    if target is None:
        raise InputError(f"{path}: no prefill or forward latency (a latency object with unit "
                         "and mean); expected optimum-benchmark benchmark.json or "
                         "benchmark_report.json of an inference scenario with latency on")
    lat = _seconds_to_ms(report[target]["latency"], path, target)
    row = {"model": backend.get("model"), "dtype": _optimum_dtype(backend.get("torch_dtype")),
           "backend": f"optimum-{backend.get('name') or 'unknown'}",
           "batch_size": shapes.get("batch_size"), "seq_len": shapes.get("sequence_length"),
           **{f"latency_ms_{k}": lat.get(k) for k in ("mean", "p50", "p90", "p95", "p99",
                                                      "std")},
           "n_calls": lat.get("count"),
           "throughput_samples_s": _throughput(report[target], "samples/s")}
    if target == "prefill":
        row["ttft_ms"] = lat["mean"]
        row["tpot_ms"] = _tpot(report, scenario, path)
        row["throughput_tokens_s"] = _throughput(report.get("decode") or {}, "tokens/s")
        row["decode_mode"] = "kv-cache"
    memory = report[target].get("memory") or {}
    row["peak_rss_mb"] = _finite(memory.get("max_ram"))
    row["peak_gpu_mb"] = _finite(memory.get("max_process_vram") or memory.get("max_allocated"))
    row["optimum_device"] = backend.get("device")
    return [row]


def _latency(m) -> bool:
    return isinstance(m, dict) and isinstance(m.get("latency"), dict) and _finite(
        m["latency"].get("mean")) is not None


def _seconds_to_ms(lat: dict, path: Path, target: str) -> dict:
    unit = lat.get("unit", "s")
    if unit != "s":
        raise InputError(f"{path}: {target}.latency.unit is {unit!r}; optimum-benchmark "
                         "writes seconds ('s'), other units are not supported")
    out = {k: _finite(lat.get(k)) for k in ("mean", "p50", "p90", "p95", "p99")}
    out["std"] = _finite(lat.get("stdev"))
    out = {k: v * 1000.0 if v is not None else None for k, v in out.items()}
    out["count"] = int(lat["count"]) if _finite(lat.get("count")) else None
    return out


def _throughput(m: dict, unit: str):
    t = m.get("throughput") if isinstance(m, dict) else None
    if isinstance(t, dict) and t.get("unit") == unit:
        return _finite(t.get("value"))
    return None


def _tpot(report: dict, scenario: dict, path: Path):
    """Time per output token: the per_token latency where the backend tracked it, else the
    decode latency over the new tokens after the first."""
    if _latency(report.get("per_token")):
        return _seconds_to_ms(report["per_token"]["latency"], path, "per_token")["mean"]
    if _latency(report.get("decode")):
        new = (scenario.get("generate_kwargs") or {}).get("max_new_tokens") or 100  # its default
        decode = _seconds_to_ms(report["decode"]["latency"], path, "decode")["mean"]
        return decode / max(int(new) - 1, 1)
    return None


def _optimum_dtype(value):
    if value in (None, "", "auto"):
        return None
    return str(value).replace("torch.", "")


# ---------------------------------------------------------------------------------- MLPerf

def _mlperf(path: Path) -> list[dict]:
    from contracts.config import read_text

    log = parse_mllog(read_text(path, DOCS["mlperf"]), path)
    s = mlperf_summary(log, path)
    if s["mode"] not in (None, "PerformanceOnly"):
        raise InputError(f"{path}: effective_test_mode is {s['mode']!r}; only PerformanceOnly "
                         "runs measure latency")
    lat = s["latency_ms"]
    per_query = s["samples_per_query"] if s["scenario"] == "MultiStream" else None
    row = {"model": None, "backend": "mlperf", "batch_size": per_query or 1,
           **{f"latency_ms_{k}": lat.get(k) for k in ("p50", "p90", "p95", "p99", "mean",
                                                      "min", "max")},
           "n_calls": _finite(log.get("result_query_count")),
           "throughput_samples_s": s["completed_qps"] or s["offline_qps"] or s[
               "qps_with_overhead"],
           "throughput_tokens_s": s["tokens_s"],
           "mlperf_scenario": s["scenario"], "mlperf_result": s["result"],
           "mlperf_invalid_reasons": "; ".join(s["invalid_reasons"]),
           "mlperf_target_qps": s["target_qps"],
           "mlperf_target_latency_ms": (s["target_latency_ns"] or 0) / 1e6 or None,
           "mlperf_sut_name": log.get("sut_name"), "mlperf_loadgen_version":
           log.get("loadgen_version")}
    if s["ttft_ms"]:  # an LLM run with token latencies: the forward is the prefill
        row.update({"latency_ms_mean": s["ttft_ms"], "latency_ms_p50": None,
                    "latency_ms_p90": None, "latency_ms_p95": None, "latency_ms_p99": None,
                    "ttft_ms": s["ttft_ms"], "tpot_ms": s["tpot_ms"], "decode_mode": "kv-cache",
                    "request_ms_mean": lat.get("mean"), "request_ms_p99": lat.get("p99")})
    elif s["scenario"] == "Offline":
        # every sample is issued at once: latencies are queueing, the service time per sample
        # is what throughput says
        qps = row["throughput_samples_s"]
        if not qps:
            raise InputError(f"{path}: Offline log without result_samples_per_second")
        row.update({k: None for k in list(row) if k.startswith("latency_ms_")})
        row["latency_ms_mean"] = 1000.0 * float(row["batch_size"]) / qps
        row["latency_note"] = "Offline: 1000 / samples per second (throughput-equivalent)"
    return [row]

