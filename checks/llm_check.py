"""Time a `config:` LLM for real (random weights) and set the timings beside roi's projection.

The comparison: checks/llm_timing.py measures (TTFT, TPOT per decode mode); this module predicts
the same (B, P, N) with roi's serving model (`predict`, `compare`), writes the table, the points
and the environment, and says whether decode tokens/s is within TOLERANCE. The method of both:
checks/llm_timing.py's docstring. The options are `LLMCheckSettings`, defined once; two command
lines are derived from its fields:

    roi check llm-timing --model llama-3.2-1b --device cuda --out DIR      (app/cli_check.py)
    python -m checks.llm_check --model llama-3.2-1b --device cpu --smoke --out DIR

The second (argparse, standard library) is for a device machine with the source tree and torch
but without the `roi` command's own dependencies (typer, rich): scripts/gpu_llm.sh runs it.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from contracts.config import validate
from contracts.errors import InputError
from contracts.io import write_json_atomic, write_text_atomic
from contracts.llm_arch import LLMSpec, load_config
from roi.hardware import load_catalog
from roi.llm_serving import CASES, load_assumptions, peak_flop_s, prefill_s, replica

from .llm_check_settings import LLMCheckSettings
from .llm_timing import Point, measure, shrunk

TOLERANCE = 0.25  # the figure: predicted vs measured decode tokens/s within 25%
def predict(spec: LLMSpec, batch: int, prompt_tokens: int, output_tokens: int,
            hardware: str = "h200", dtype: str = "bf16", tp: int = 1) -> dict[str, Any]:
    """roi's projection of a static batch on `hardware`: the decode step (TPOT), tokens/s and
    the prefill of the B prompts (TTFT), each per case (pessimistic, mid, optimistic)."""
    hw = load_catalog().get(hardware)
    a = load_assumptions()
    r = replica(spec, hw, dtype, tp, prompt_tokens, output_tokens, a, batch=[batch])
    if isinstance(r, str):
        return {"reason": r}
    if r.batch.shape[1] == 0:
        return {"reason": f"batch {batch} exceeds roi's KV-cache limit {r.max_batch}"}
    peak, _ = peak_flop_s(hw, dtype, a)
    bw = hw.figure("memory_bandwidth_gb_s") * 1e9
    w_gpu = spec.weight_bytes(dtype) / tp
    e_pc, e_bw = a.prefill_compute.values()[:, 0], a.decode_bandwidth.values()[:, 0]
    prefill = prefill_s(spec, prompt_tokens, tp, peak, bw, w_gpu, e_pc, e_bw, batch)
    step_ms = r.step_ms[:, 0]
    return {"reason": "", "tpot_ms": step_ms, "ttft_ms": prefill * 1e3,
            "output_tokens_s": batch / (step_ms / 1e3), "roi_serving_tpot_ms": r.tpot_ms[:, 0],
            "roi_serving_ttft_ms": r.ttft_ms[:, 0], "max_batch": r.max_batch}


def _case_cols(row: dict, name: str, values: np.ndarray) -> None:
    for case, v in zip(CASES, values):
        row[f"predicted_{name}" + ("" if case == "mid" else f"_{case}")] = float(v)


def compare(points: Sequence[Point], specs: dict[str, LLMSpec], hardware: str = "h200",
            dtype: str = "bf16", tp: int = 1) -> pd.DataFrame:
    """Measured points beside roi's prediction for `hardware`/`dtype`/`tp`: point, band,
    measured/predicted ratios, whether tokens/s is within TOLERANCE, and the efficiencies the
    measurement implies (decode: bytes a step reads over time × peak bandwidth; prefill: FLOPs
    over time × peak)."""
    hw = load_catalog().get(hardware)
    peak, _ = peak_flop_s(hw, dtype, load_assumptions())
    bw = hw.figure("memory_bandwidth_gb_s") * 1e9
    rows = []
    for p in points:
        spec = specs[p.model]
        row: dict[str, Any] = {k: v for k, v in asdict(p).items() if k != "ttft_runs_ms"}
        row.update(hardware=hardware, predicted_dtype=dtype, tp=tp)
        pred = predict(spec, p.batch, p.prompt_tokens, p.output_tokens, hardware, dtype, tp)
        row["prediction_note"] = pred["reason"]
        if not pred["reason"]:
            for name in ("ttft_ms", "tpot_ms", "output_tokens_s"):
                _case_cols(row, name, pred[name])
            row["roi_serving_ttft_ms"] = float(pred["roi_serving_ttft_ms"][1])
            row["roi_serving_tpot_ms"] = float(pred["roi_serving_tpot_ms"][1])
            lo, hi = sorted((row["predicted_output_tokens_s_pessimistic"],
                             row["predicted_output_tokens_s_optimistic"]))
            measured = row["output_tokens_s"]
            row["ttft_ratio"] = row["ttft_ms"] / row["predicted_ttft_ms"]
            row["tpot_ratio"] = row["tpot_ms"] / row["predicted_tpot_ms"]
            row["tokens_s_ratio"] = measured / row["predicted_output_tokens_s"]
            row["tokens_s_within_tolerance"] = bool(abs(row["tokens_s_ratio"] - 1) <= TOLERANCE)
            row["tokens_s_in_band"] = bool(lo <= measured <= hi)
            read = spec.weight_bytes(dtype) / tp + p.batch * spec.kv_bytes_per_token_per_gpu(
                tp, "bf16") * p.context_tokens_mean
            row["implied_decode_bandwidth"] = read / (bw * row["tpot_ms"] / 1e3)
            row["implied_prefill_compute"] = (p.batch * spec.prefill_flops(p.prompt_tokens, 1)
                                              / tp / (peak * row["ttft_ms"] / 1e3))
        rows.append(row)
    return pd.DataFrame(rows)


def _sig(v, digits: int = 3) -> str:
    """`v` to `digits` significant figures, thousands separated; a dash for a missing value."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if v == 0 or abs(v) >= 10**digits:
        return f"{v:,.0f}"
    return f"{v:,.{max(0, digits - 1 - math.floor(math.log10(abs(v))))}f}"


def markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table (middle case, band in brackets)."""
    head = ("| model | mode | B | P / N | TTFT ms measured | predicted (band) | ratio | "
            "TPOT ms measured | predicted (band) | ratio | out tok/s measured | predicted (band) "
            "| ratio | within 25% | peak MiB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def band(r, name):
        if pd.isna(r.get(f"predicted_{name}", math.nan)):
            return "—"
        lo, hi = r[f"predicted_{name}_pessimistic"], r[f"predicted_{name}_optimistic"]
        return f"{_sig(r[f'predicted_{name}'])} ({_sig(min(lo, hi))}–{_sig(max(lo, hi))})"

    for _, r in table.iterrows():
        r = r.to_dict()
        status = "" if r["status"] == "ok" else f" ({r['status'][:40]})"
        within = r.get("tokens_s_within_tolerance")
        lines.append(
            f"| {r['model']} | {r['mode']}{status} | {r['batch']} | {r['prompt_tokens']} / "
            f"{r['output_tokens']} | {_sig(r['ttft_ms'])} | {band(r, 'ttft_ms')} | "
            f"{_sig(r.get('ttft_ratio'))} | {_sig(r['tpot_ms'])} | {band(r, 'tpot_ms')} | "
            f"{_sig(r.get('tpot_ratio'))} | {_sig(r['output_tokens_s'])} | "
            f"{band(r, 'output_tokens_s')} | {_sig(r.get('tokens_s_ratio'))} | "
            f"{'—' if pd.isna(r.get('tokens_s_ratio', math.nan)) else ('yes' if within else 'no')}"
            f" | {_sig(r['peak_memory_mib'], 4)} |")
    return "\n".join(lines) + "\n"


def environment(device: str) -> dict[str, Any]:
    import torch
    import transformers

    env = {"date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "host": platform.node(), "python": platform.python_version(),
           "torch": torch.__version__, "transformers": transformers.__version__,
           "device": device, "cpu": platform.processor() or platform.machine(),
           "command": " ".join(sys.argv)}
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda
    return env


def write_outputs(out: Path, points: Sequence[Point], table: pd.DataFrame,
                  env: dict[str, Any], label: str = "") -> dict[str, Path]:
    """measured.json (raw points, TTFT runs included), comparison.csv / .json / .md, atomic."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"measured": out / "measured.json", "csv": out / "comparison.csv",
             "json": out / "comparison.json", "md": out / "comparison.md"}
    write_json_atomic(paths["measured"], {"environment": env,
                                          "points": [asdict(p) for p in points]})
    write_text_atomic(paths["csv"], table.to_csv(index=False))
    records = json.loads(table.to_json(orient="records"))
    write_json_atomic(paths["json"], {"environment": env, "rows": records})
    title = f"# {label}\n\n" if label else ""
    meta = (f"{env['date_utc']}, {env.get('gpu', env['cpu'])}, torch {env['torch']}, "
            f"transformers {env['transformers']}; predicted: roi/llm_serving.py on "
            f"{table['hardware'].iloc[0] if len(table) else '?'} "
            f"{table['predicted_dtype'].iloc[0] if len(table) else ''}, TP 1.\n\n")
    write_text_atomic(paths["md"], title + meta + markdown(table))
    return paths


def summary(table: pd.DataFrame) -> str:
    """One line per decode mode: points within the tolerance and the tokens/s ratio range."""
    lines = []
    for mode, g in table.groupby("mode", sort=False):
        ok = g[g["status"].eq("ok") & g.get("tokens_s_ratio", pd.Series(dtype=float)).notna()]
        if ok.empty:
            lines.append(f"{mode}: no measured point")
            continue
        within = int(ok["tokens_s_within_tolerance"].sum())
        lines.append(f"{mode}: decode tokens/s within {TOLERANCE:.0%} of the prediction at "
                     f"{within}/{len(ok)} points; measured/predicted "
                     f"{_sig(ok['tokens_s_ratio'].min())}–{_sig(ok['tokens_s_ratio'].max())}")
    return "\n".join(lines)


def run(s: LLMCheckSettings) -> None:
    """Measure each model, compare, write the files after every model (a run cut short keeps
    the models it finished), then print the Markdown table and the summary."""
    load_catalog().get(s.hardware)  # an unknown name or model is refused before any work
    specs = {spec.name: spec for spec in (_spec(name, s.smoke) for name in s.model)}
    if s.threads:
        import torch

        torch.set_num_threads(s.threads)
    points: list[Point] = []
    env = environment(s.device)
    label = "REHEARSAL (shrunk models, not the figure)" if s.smoke else ""
    for spec in specs.values():
        points += measure(spec, s.device, s.dtype, s.batches(), s.prompt_tokens,
                          s.output_tokens, s.mode_list(), s.ttft_reps)
        table = compare(points, specs, s.hardware, s.predict_dtype)
        paths = write_outputs(Path(s.out), points, table, env, label)
    print(paths["md"].read_text())
    print(summary(table))


def _spec(name: str, smoke: bool) -> LLMSpec:
    spec = load_config(name.removeprefix("config:"))
    return shrunk(spec) if smoke else spec


def _parser() -> argparse.ArgumentParser:
    """`python -m checks.llm_check`'s options, from LLMCheckSettings' fields (an option left
    out is left to the field's default)."""
    ap = argparse.ArgumentParser(prog="python -m checks.llm_check",
                                 description=__doc__.split("\n\n")[0])
    for name, field in LLMCheckSettings.model_fields.items():
        shown = "" if field.default in (None, False) or field.is_required() else (
            f" [default: {field.default}]")
        kw: dict[str, Any] = {"help": field.description + shown, "default": argparse.SUPPRESS}
        if field.annotation is bool:
            kw["action"] = "store_true"
        elif name == "model":
            kw.update(action="append", required=True)
        else:
            kw["required"] = field.is_required()
        ap.add_argument("--" + name.replace("_", "-"), **kw)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m checks.llm_check`: bad settings are one line on stderr and exit code 2."""
    values = vars(_parser().parse_args(argv))
    try:
        run(validate(LLMCheckSettings, values, ""))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
