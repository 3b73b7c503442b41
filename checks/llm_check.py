"""Time a `config:` LLM for real (random weights) and set the timings beside roi's projection.

The command line and the comparison: checks/llm_timing.py measures (TTFT, TPOT per decode mode);
this module predicts the same (B, P, N) with roi's serving model (`predict`, `compare`), writes
the table, the points and the environment, and says whether decode tokens/s is within TOLERANCE.
The method of both: checks/llm_timing.py's docstring.

    python -m checks.llm_check --model llama-3.2-1b --device cuda --out DIR
    python -m checks.llm_check --model llama-3.2-1b --device cpu --smoke --out DIR
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

from contracts.io import write_json_atomic, write_text_atomic
from contracts.llm_arch import LLMSpec, load_config
from roi.hardware import load_catalog
from roi.llm_serving import CASES, load_assumptions, peak_flop_s, prefill_s, replica

from .llm_timing import DEFAULT_BATCHES, Point, measure, shrunk

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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m checks.llm_check", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--model", action="append", required=True,
                    help="config: spec (shipped name, YAML or config.json); repeatable")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default=None, help="bf16 on CUDA, fp32 on CPU by default")
    ap.add_argument("--batch-sizes", default=",".join(map(str, DEFAULT_BATCHES)))
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--output-tokens", type=int, default=128)
    ap.add_argument("--modes", default=None, help="eager,graph (CUDA) / eager,static (CPU)")
    ap.add_argument("--ttft-reps", type=int, default=3)
    ap.add_argument("--hardware", default="h200", help="catalog row to predict for")
    ap.add_argument("--predict-dtype", default="bf16")
    ap.add_argument("--smoke", action="store_true",
                    help="shrink each model (2 layers, width 256, vocabulary 2048): a rehearsal")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (1 on a shared machine: spinning threads that wait "
                    "for a core distort every time)")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    modes = args.modes.split(",") if args.modes else None
    specs: dict[str, LLMSpec] = {}
    points: list[Point] = []
    env = environment(args.device)
    label = "REHEARSAL (shrunk models, not the figure)" if args.smoke else ""
    for name in args.model:
        spec = load_config(name.removeprefix("config:"))
        spec = shrunk(spec) if args.smoke else spec
        specs[spec.name] = spec
        points += measure(spec, args.device, args.dtype, batches, args.prompt_tokens,
                          args.output_tokens, modes, args.ttft_reps)
        # written after every model: a run cut short keeps the models it finished
        table = compare(points, specs, args.hardware, args.predict_dtype)
        paths = write_outputs(args.out, points, table, env, label)
    print(paths["md"].read_text())
    print(summary(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
