"""MLPerf LoadGen's logs, read: the machine-readable mlperf_log_detail.txt (one `:::MLLOG {json}`
record a line: {"key", "value", "time_ms", "namespace", "event_type", "metadata"};
loadgen/logging.h, results.cc), read in place of the human summary (mlperf_log_summary.txt)
when there is one, by `roi loadtest` (bench/loadgen.py) and `roi import mlperf`
(roi/importers.py). Pure: no LoadGen needed.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

from contracts.errors import InputError

log = logging.getLogger(__name__)

MLLOG = ":::MLLOG"
SUMMARY, DETAIL = "mlperf_log_summary.txt", "mlperf_log_detail.txt"


def parse_mllog(text: str, path: str | Path = "mlperf_log_detail.txt") -> dict:
    """LoadGen's mlperf_log_detail.txt as {key: value} (the last record of a key wins; lines
    that are no `:::MLLOG {json}` record are skipped). InputError when no line is one."""
    out: dict = {}
    bad = 0
    for line in text.splitlines():
        start = line.find(MLLOG)
        if start < 0:
            continue
        try:
            record = json.loads(line[start + len(MLLOG):])
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict) and "key" in record:
            out[str(record["key"])] = record.get("value")
    if not out:
        raise InputError(f"{path}: no `:::MLLOG {{json}}` record" + (
            f" ({bad} damaged)" if bad else "") + "; expected MLPerf LoadGen's "
            "mlperf_log_detail.txt")
    return out


def mlperf_summary(log: dict, path: str | Path = "mlperf_log_detail.txt") -> dict:
    """The figures of a parsed detail log, in the shape bench/loadgen.py's row builder reads
    (the same keys parse_summary gives from the human summary)."""
    scenario, validity = log.get("effective_scenario"), log.get("result_validity")
    if not scenario or validity is None:
        missing = "effective_scenario" if not scenario else "result_validity"
        raise InputError(f"{path}: MLLOG key {missing} missing: not the log of a finished "
                         "LoadGen run")
    ns = lambda k: finite(log.get(k))  # noqa: E731
    latency: dict = {}
    for key, value in log.items():
        if key.startswith("result_") and key.endswith("_percentile_latency_ns") and \
                "first_token" not in key and "per_query" not in key:
            pct = float(key[len("result_"):-len("_percentile_latency_ns")])
            if ns(key) is not None:
                latency[f"p{pct:g}"] = ns(key) / 1e6
    for name in ("min", "max", "mean"):
        if ns(f"result_{name}_latency_ns") is not None:
            latency[name] = ns(f"result_{name}_latency_ns") / 1e6
    for key in log:  # MultiStream: the per-query figures are the ones it claims
        if key.startswith("result_") and key.endswith("_percentile_per_query_latency_ns") \
                and ns(key) is not None:
            pct = float(key[len("result_"):-len("_percentile_per_query_latency_ns")])
            latency[f"p{pct:g}"] = ns(key) / 1e6
    for name in ("min", "max", "mean"):
        if ns(f"result_{name}_query_latency_ns") is not None:
            latency[name] = ns(f"result_{name}_query_latency_ns") / 1e6
    checks = {"performance constraints satisfied": log.get("result_perf_constraints_met"),
              "min duration satisfied": log.get("result_min_duration_met"),
              "min queries satisfied": log.get("result_min_queries_met"),
              "early stopping satisfied": log.get("early_stopping_met")}
    checks = {k: bool(v) for k, v in checks.items() if v is not None}
    percentile = ns("effective_target_latency_percentile")
    out = {"scenario": scenario, "mode": log.get("effective_test_mode"),
           "result": str(validity), "valid": validity == "VALID", "checks": checks,
           "early_stopping_met": checks.get("early stopping satisfied"),
           "invalid_reasons": [k.replace(" satisfied", "") + " not satisfied"
                               for k, ok in checks.items() if not ok],
           "early_stopping": " ".join(str(log.get("early_stopping_result") or "").replace(
               "*", " ").split()),
           "recommendations": str(log.get("result_invalid_reason") or "").strip(),
           "completed_qps": ns("result_completed_samples_per_sec"),
           "scheduled_qps": ns("result_scheduled_samples_per_sec"),
           "offline_qps": ns("result_samples_per_second"),
           "qps_with_overhead": ns("result_qps_with_loadgen_overhead"),
           "qps_without_overhead": ns("result_qps_without_loadgen_overhead"),
           "target_qps": ns("effective_target_qps"),
           "target_latency_ns": ns("effective_target_latency_ns"),
           "min_duration_ms": ns("effective_min_duration_ms"),
           "min_query_count": ns("effective_min_query_count"),
           "samples_per_query": ns("effective_samples_per_query"),
           "latency_ms": latency,
           "ttft_ms": (ns("result_first_token_mean_latency_ns") or 0) / 1e6 or None,
           "tpot_ms": (ns("result_time_to_output_token_mean") or 0) / 1e6 or None,
           "tokens_s": ns("result_completed_tokens_per_second") or ns(
               "result_tokens_per_second") or ns("result_token_throughput")}
    if percentile is not None and scenario in ("SingleStream", "MultiStream"):
        claimed = latency.get(f"p{percentile * 100:g}")
        if claimed is not None:
            out["claimed_percentile"], out["claimed_latency_ms"] = percentile * 100, claimed
    estimate = ns("early_stopping_latency_ss") or ns("early_stopping_latency_ms")
    if estimate:
        out["early_stopping_estimate_ms"] = estimate / 1e6
    return out


def finite(value) -> float | None:
    """A JSON number as a finite float; None for anything else (bool, text, NaN, missing)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# --------------------------------------------------------------------------- the summary


_NUMBER = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"


def parse_summary(text: str) -> dict:
    """LoadGen's mlperf_log_summary.txt as data: scenario, mode, VALID / INVALID and why,
    early-stopping verdict and detail, QPS figures and latency percentiles (ms)."""
    def field_(pattern: str) -> str | None:
        m = re.search(pattern, text, re.MULTILINE)
        return m.group(1).strip() if m else None

    out: dict = {"scenario": field_(r"^Scenario\s*:\s*(.+)$"),
                 "mode": field_(r"^Mode\s*:\s*(.+)$"),
                 "result": field_(r"^Result is\s*:\s*(\w+)")}
    if out["result"] is None:
        raise ValueError("not a LoadGen summary: no 'Result is' line")
    out["valid"] = out["result"] == "VALID"
    checks = {}
    for name, verdict in re.findall(r"^\s+(.+?)\s*:\s*(Yes|NO)\s*$", text, re.MULTILINE):
        checks[name.strip().lower()] = verdict == "Yes"
    out["checks"] = checks
    out["early_stopping_met"] = checks.get("early stopping satisfied")
    out["invalid_reasons"] = [k.replace(" satisfied", "") + " not satisfied"
                              for k, ok in checks.items() if not ok]
    out["early_stopping"] = _block(text, "Early Stopping Result:")
    out["recommendations"] = _block(text, "Recommendations:")
    numbers = {
        "completed_qps": r"^Completed samples per second\s*:\s*" + _NUMBER,
        "scheduled_qps": r"^Scheduled samples per second\s*:\s*" + _NUMBER,
        "offline_qps": r"^Samples per second\s*:\s*" + _NUMBER,
        "qps_with_overhead": r"^QPS w/ loadgen overhead\s*:\s*" + _NUMBER,
        "qps_without_overhead": r"^QPS w/o loadgen overhead\s*:\s*" + _NUMBER,
        "target_qps": r"^target_qps\s*:\s*" + _NUMBER,
        "target_latency_ns": r"^target_latency \(ns\)\s*:\s*" + _NUMBER,
        "min_duration_ms": r"^min_duration \(ms\)\s*:\s*" + _NUMBER,
        "min_query_count": r"^min_query_count\s*:\s*" + _NUMBER,
        "samples_per_query": r"^samples_per_query\s*:\s*" + _NUMBER,
    }
    for key, pat in numbers.items():
        value = field_(pat)
        out[key] = float(value) if value is not None else None
    out["latency_ms"] = {}
    for label, ns in re.findall(r"^(Min|Max|Mean|\d+\.\d+ percentile) latency \(ns\)\s*:\s*"
                                + _NUMBER, text, re.MULTILINE):
        first = label.split()[0]
        key = f"p{float(first):g}" if first[0].isdigit() else first.lower()
        out["latency_ms"].setdefault(key, float(ns) / 1e6)  # MultiStream lists per-query first
    claimed = re.search(r"^(\d+(?:\.\d+)?)th percentile latency \(ns\)\s*:\s*" + _NUMBER,
                        text, re.MULTILINE)
    if claimed:
        out["claimed_percentile"] = float(claimed.group(1))
        out["claimed_latency_ms"] = float(claimed.group(2)) / 1e6
    estimate = re.search(r"Early stopping (\d+(?:\.\d+)?)th percentile estimate:\s*" + _NUMBER,
                         text)
    if estimate:
        out["early_stopping_estimate_ms"] = float(estimate.group(2)) / 1e6
    return out


def read_run_summary(log_dir: Path) -> dict:
    """A finished run's figures: from LoadGen's machine-readable mlperf_log_detail.txt (its
    `:::MLLOG {json}` records), else from the human summary."""
    detail = log_dir / DETAIL
    if detail.is_file():
        try:
            return mlperf_summary(parse_mllog(detail.read_text(encoding="utf-8"), detail), detail)
        except InputError as e:
            log.warning("%s; reading the summary instead", e)
    return parse_summary((log_dir / SUMMARY).read_text())


def _block(text: str, header: str) -> str:
    """The ` * ...` lines under a header, joined into one line."""
    lines = text.splitlines()
    try:
        start = next(i for i, x in enumerate(lines) if x.strip() == header)
    except StopIteration:
        return ""
    body = []
    for line in lines[start + 1:]:
        if not line.strip() or not line[0].isspace():  # a blank line or the next header
            break
        body.append(line.strip().lstrip("* ").strip())
    return " ".join(body)
