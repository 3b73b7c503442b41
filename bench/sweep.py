"""The sweep: every model × backend × batch × sequence × threads, one fresh subprocess each.

Order interleaves teacher and students: for each setting, the teacher runs and then each student,
so slow drift of a shared machine falls on all models alike rather than on whoever ran last.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from contracts.errors import InputError
from contracts.io import check_out_dir, check_unlocked
from contracts.results import KEY_COLUMNS, ResultsStore, load_samples
from models.runtime import default_threads
from models.zoo import (
    DEFAULT_TEACHER, ModelSpec, builtin_config, layer_count, parse_spec, parse_students,
)

from . import env
from .children import child_env, kill_on_interrupt
from .deploy import write_deploy_as
from .measure import (
    DEFAULT_VARIANTS,
    DEPLOY_VARIANTS,
    VARIANTS,
    BenchConfig,
    MeasureSettings,
    after_idle_columns,
    is_ort,
    measure,
)
from .stats import speedup_ci, summarize_ns, throughput

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (label, done, total)
BASELINE_RSS_MB = 300.0  # an interpreter with torch imported, before any model
SPEEDUPS = "speedups.csv"


@dataclass
class SweepPlan:
    """Everything a sweep will do, validated before anything is written."""

    teacher: ModelSpec
    students: list[ModelSpec]
    variants: list[str]
    batch_sizes: list[int]
    seq_lens: list[int]
    threads: list[int]
    device: str
    out: Path
    settings: MeasureSettings
    resume: bool = False
    isolate: bool = True
    memory_budget_mb: float | None = None
    timeout_s: float = 600.0
    rounds: int = 1
    configs: list[BenchConfig] = field(default_factory=list)


def _ints(name: str, values: Sequence[int] | str | None, default: Sequence[int]) -> list[int]:
    if values is None or values == "":
        return list(default)
    if isinstance(values, str):
        try:
            values = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise InputError(f"--{name} must be comma-separated integers, got {values!r}") from None
    values = list(values)
    bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v <= 0]
    if bad or not values:
        raise InputError(f"--{name} must be positive integers, got {bad or values!r}")
    return values


def _positive(name: str, value: float | None, default: float | None, unit: str):
    """`value` (or `default` when not given) if it is a finite number > 0; else InputError."""
    if value is None:
        return default
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InputError(f"--{name} must be a finite number of {unit} > 0, got {value!r}")
    return float(value)


def _variants(backends: Sequence[str] | str | None) -> list[str]:
    if backends is None:
        return list(DEFAULT_VARIANTS)
    if isinstance(backends, str):
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    backends = [v for b in backends for v in (DEPLOY_VARIANTS if b == "deploy" else [b])]
    unknown = [b for b in backends if b not in VARIANTS]
    if unknown or not backends:
        raise InputError(
            f"unknown backend {', '.join(unknown) or '(none)'}: allowed {', '.join(VARIANTS)} "
            "or deploy (all of them but ort-int8-static-all)"
        )
    return list(dict.fromkeys(backends))


def resolve_device(device: str) -> str:
    if device not in ("cpu", "cuda", "auto"):
        raise InputError(f"--device must be cpu, cuda or auto, got {device!r}")
    if device == "cpu":
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise InputError("--device cuda: no CUDA GPU is visible here (allowed: cpu, auto)")
    return "cuda" if has_cuda else "cpu"


def plan_sweep(
    teacher: str = DEFAULT_TEACHER,
    students: str | Sequence[str] = "auto",
    backends: Sequence[str] | str | None = None,
    batch_sizes: Sequence[int] | str | None = None,
    seq_lens: Sequence[int] | str | None = None,
    threads: Sequence[int] | str | None = None,
    device: str = "auto",
    out: str | Path = "runs/bench",
    resume: bool = False,
    quick: bool = False,
    isolate: bool = True,
    memory_budget_mb: float | None = None,
    timeout_s: float | None = None,
    rounds: int | None = None,
) -> SweepPlan:
    """Validate every input (raising InputError) and list the configurations, in run order."""
    t = parse_spec(teacher)
    s = [spec for spec in parse_students(students) if spec.spec != t.spec]
    plan = SweepPlan(
        teacher=t,
        students=s,
        variants=_variants(backends),
        batch_sizes=_ints("batch-sizes", batch_sizes, (1,) if quick else (1, 8)),
        seq_lens=_ints("seq-lens", seq_lens, (128,)),
        threads=_ints("threads", threads, (default_threads(),)),
        device=resolve_device(device),
        out=Path(out),
        settings=MeasureSettings.quick() if quick else MeasureSettings(),
        resume=resume,
        isolate=isolate,
        memory_budget_mb=memory_budget_mb,
        timeout_s=_positive("timeout-s", timeout_s, 300.0 if quick else 600.0, "seconds"),
        rounds=rounds if rounds is not None else (1 if quick else 2),
    )
    if plan.rounds < 1:
        raise InputError(f"--rounds must be >= 1, got {plan.rounds}")
    _positive("memory-budget-mb", memory_budget_mb, None, "MB")
    check_out_dir(plan.out)  # a file, a file above it, an unwritable place: one line, now
    results = plan.out / "results.jsonl"
    check_unlocked(plan.out)  # a bench running there: name it, not the results it is writing
    if results.exists() and not resume:
        raise InputError(f"{plan.out} already holds results: pass --resume or choose another --out")
    plan.configs = _configs(plan)
    return plan


def _configs(plan: SweepPlan) -> list[BenchConfig]:
    models = [(plan.teacher, "teacher")] + [(s, "student") for s in plan.students]
    return [
        BenchConfig(m.spec, role, v, plan.device, b, seq, th)
        for th in plan.threads
        for v in plan.variants
        for b in plan.batch_sizes
        for seq in plan.seq_lens
        for m, role in models
    ]


def run_plan(plan: SweepPlan, progress: Progress | None = None) -> pd.DataFrame:
    """Measure every configuration of a validated plan; return the whole results table.

    With several rounds the whole sweep repeats and each row pools the samples of its rounds:
    a configuration's samples then come from moments spread over the sweep, so the slow drift
    of a shared machine (seconds to minutes) averages out instead of landing on one row."""
    from contracts.io import dir_lock

    with dir_lock(plan.out):  # a second bench on the same --out is refused, naming this one
        return _run_plan(plan, progress)


def _run_plan(plan: SweepPlan, progress: Progress | None) -> pd.DataFrame:
    store = ResultsStore(plan.out)
    done = {c.key(): rounds_kept(store, c.key()) if plan.resume else 0 for c in plan.configs}
    jobs = [(r, c) for r in range(plan.rounds) for c in plan.configs if done[c.key()] <= r]
    fp = env.fingerprint(_gpu_name(plan.device))
    layers = {c.model: layer_count(parse_spec(c.model)) for c in plan.configs}
    infos = _prepare_exports(plan, [c for _, c in jobs], progress)
    for i, (rnd, cfg) in enumerate(jobs):
        if progress:
            label = f"{cfg.model} {cfg.variant} b{cfg.batch_size} s{cfg.seq_len}"
            progress(label + (f" r{rnd + 1}" if plan.rounds > 1 else ""), i, len(jobs))
        row, samples = _run_one(plan, cfg, infos)
        previous = store.get(cfg.key()) if rnd > 0 else None
        if previous is not None and previous.get("status") == "ok":
            if row.get("status") != "ok":
                log.warning("round %d of %s failed (%s); keeping %s earlier round(s)", rnd + 1,
                            cfg.key(), row.get("error"), previous.get("rounds", 1))
                continue
            earlier = load_samples(plan.out, previous["row_id"])
            row, samples = merge_rounds(cfg, previous, earlier, row, samples)
        store.append({**cfg.key_columns(), "variant": cfg.variant, "source": "measured", **row,
                      "n_layers": layers[cfg.model], **fp}, samples)
    if progress:
        progress("done", len(jobs), len(jobs))
    df = store.frame()
    write_speedups(plan.out, df)
    write_deploy_as(plan.out, df)
    _warn_if_nothing_measured(df, plan.out)
    return df


def rounds_kept(store: ResultsStore, key: tuple) -> int:
    """Rounds already pooled in the row of `key` (ResultsStore.rounds_done); 0, so that it is
    measured again from its first round, when its raw samples are not those its figures came
    from: a kill between a round's two writes (its pooled samples, then its row) leaves the new
    samples beside the old row, and pooling onto them would count a round twice."""
    rounds, row = store.rounds_done(key), store.get(key)
    if row is None or row.get("status") != "ok":
        return rounds
    raw = load_samples(store.out_dir, row["row_id"]).get("latency_ns")
    if raw is not None and len(raw) == row.get("n_calls"):
        return rounds
    log.warning("%s: its raw samples (%s) do not match its row (%s calls), as an interrupted "
                "write leaves them; measuring it again", row["model"],
                "none" if raw is None else len(raw), row.get("n_calls"))
    return 0


def _warn_if_nothing_measured(df: pd.DataFrame, out: Path) -> None:
    """Say plainly when no row has a measurement: the rows are written as they are, and each
    names its reason (skipped, timeout, error, or projected for a `config:` model)."""
    status = df["status"] if "status" in df.columns else pd.Series(dtype=object)
    if (status == "ok").any():
        return
    counts = ", ".join(f"{n} {s}" for s, n in status.fillna("unknown").value_counts().items())
    projected = int((df["source"] == "projected").sum()) if "source" in df.columns else 0
    note = f" ({projected} config: models, projected, never run)" if projected else ""
    log.warning("nothing was measured: of %d rows, %s%s; each row's reason is in %s",
                len(df), counts or "none has a status", note, out / "results.csv")


def merge_rounds(cfg: BenchConfig, prev: dict, prev_samples: dict, row: dict,
                 samples: dict) -> tuple[dict, dict]:
    """Pool a new round's raw samples into a row; statistics are recomputed from all samples.

    Load time and cold first call stay those of the first round; peak memory is the maximum."""
    pooled = {k: np.concatenate([prev_samples[k], v]) for k, v in samples.items()
              if k in prev_samples}
    merged = {k: v for k, v in prev.items() if k not in ("row_id",)}
    merged.update(summarize_ns(pooled["latency_ns"]))
    merged.update(throughput(cfg.batch_size, cfg.seq_len, merged["latency_ms_mean"]))
    for name in ("ttft", "tpot"):
        if f"{name}_ns" in pooled:
            merged[f"{name}_ms"] = float(np.median(pooled[f"{name}_ns"])) / 1e6
    if "after_idle_ns" in pooled:
        gap = row.get("after_idle_gap_ms") or prev.get("after_idle_gap_ms") or float("nan")
        merged.update(after_idle_columns(pooled["after_idle_ns"], gap))
    merged["peak_rss_mb"] = max(prev.get("peak_rss_mb") or 0.0, row.get("peak_rss_mb") or 0.0)
    merged["rounds"] = int(prev.get("rounds") or 1) + 1
    return merged, pooled


def run(progress: Progress | None = None, **kwargs) -> pd.DataFrame:
    """Python API: `bench.run(teacher=..., students=..., ...) -> DataFrame` (see plan_sweep)."""
    return run_plan(plan_sweep(**kwargs), progress)


# --------------------------------------------------------------------------- one configuration


def _skip_reason(plan: SweepPlan, cfg: BenchConfig, spec: ModelSpec) -> str | None:
    if cfg.backend == "torch-eager" and not spec.torch_capable:
        return "an ONNX model runs on the ort backends only"
    if cfg.dtype == "bf16":
        if cfg.device == "cpu" and not env.cpu_has_bf16():
            return "this CPU has no native bf16 (avx512_bf16 / amx_bf16); torch would emulate it"
        if cfg.device == "cuda":
            import torch

            if not torch.cuda.is_bf16_supported():
                return "this GPU has no bf16 support"
    if spec.kind == "builtin":
        block = builtin_config(spec.target).block_size
        if cfg.seq_len > block:
            return f"seq_len {cfg.seq_len} exceeds the model's context of {block}"
    if plan.memory_budget_mb is not None:
        need = estimate_memory_mb(spec, cfg)
        if need > plan.memory_budget_mb:
            return f"estimated {need:.0f} MB exceeds the memory budget of {plan.memory_budget_mb:.0f} MB"
    return None


def estimate_memory_mb(spec: ModelSpec, cfg: BenchConfig) -> float:
    """A coarse pre-filter (runtime baseline + 3× fp32 weights); the watchdog enforces the budget."""
    if spec.kind == "builtin":
        from models.gpt import closed_form_params

        weight_mb = closed_form_params(builtin_config(spec.target)) * 4 / 2**20
    else:
        files = [spec.path] if spec.path.is_file() else list(spec.path.glob("*.safetensors"))
        weight_mb = sum(f.stat().st_size for f in files) / 2**20
    return BASELINE_RSS_MB + 3 * weight_mb


def projected_row(spec: ModelSpec, cfg: BenchConfig) -> dict:
    """The row of a `config:` model: never run, so no latency; what its architecture fixes
    (params, weight bytes in the row's dtype, prompt FLOPs per sample) is computed and the row
    says it is projected."""
    from contracts.llm_arch import load_config

    arch = load_config(spec.target)
    return {"status": "skipped", "source": "projected",
            "error": "config: model (architecture, no weights) was not run: params, weight "
                     "bytes and FLOPs are computed; roi/llm_serving.py projects its serving",
            "params": arch.params, "weight_bytes": arch.weight_bytes(cfg.dtype),
            "flops_per_sample": arch.prefill_flops(cfg.seq_len),
            "model_family": f"config-{arch.family or 'llm'}"}


def _run_one(plan: SweepPlan, cfg: BenchConfig, infos: dict) -> tuple[dict, dict | None]:
    spec = parse_spec(cfg.model)
    if not spec.runnable:
        return projected_row(spec, cfg), None
    reason = _skip_reason(plan, cfg, spec)
    if reason:
        return {"status": "skipped", "error": reason}, None
    info = infos.get(cfg.model) if is_ort(cfg.variant) else None
    if is_ort(cfg.variant) and isinstance(info, str):  # the export itself failed
        return {"status": "error", "error": info}, None
    if not plan.isolate:
        m = measure(cfg, plan.settings, info)
        m.row["memory_method"] = "VmHWM of a shared process (includes earlier work)"
        return m.row, {"latency_ns": m.samples_ns, **m.extra_samples}
    return _run_subprocess(plan, cfg, info)


def _run_subprocess(plan: SweepPlan, cfg: BenchConfig, info: dict | None):
    with tempfile.TemporaryDirectory(prefix="roi-bench-") as tmp:
        job = {
            "config": cfg.to_dict(),
            "settings": asdict(plan.settings),
            "info": info,
            "result_path": os.path.join(tmp, "result.json"),
            "samples_path": os.path.join(tmp, "samples.npz"),
        }
        job_path = os.path.join(tmp, "job.json")
        Path(job_path).write_text(json.dumps(job))
        status, message = _watch([sys.executable, "-m", "bench.worker", job_path], plan, tmp)
        result_path = Path(job["result_path"])
        if status is None and result_path.is_file():
            row = json.loads(result_path.read_text())["row"]
            if row.get("status") == "ok":
                row["memory_method"] = "VmHWM (kernel high-water RSS) of a fresh process"
                with np.load(job["samples_path"], allow_pickle=False) as data:
                    return row, {k: data[k] for k in data.files}
            return row, None
        return {"status": status or "error", "error": message}, None


def _watch(cmd: list[str], plan: SweepPlan, tmp: str) -> tuple[str | None, str]:
    """Run the worker; enforce the timeout and the memory budget. (status, message) on failure."""
    import psutil

    stderr_path = os.path.join(tmp, "stderr.txt")
    root = Path(__file__).resolve().parent.parent
    env_vars = child_env({**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])})  # dies with this process
    with open(stderr_path, "wb") as err, kill_on_interrupt(
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env_vars)) as proc:
        watched = psutil.Process(proc.pid)
        deadline = time.monotonic() + plan.timeout_s
        budget = plan.memory_budget_mb
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                return "timeout", f"no result within {plan.timeout_s:.0f} s"
            if budget is not None and _rss_mb(watched) > budget:
                proc.kill()
                proc.wait()
                return "oom", f"RSS exceeded the memory budget of {budget:.0f} MB"
            time.sleep(0.05)
    if proc.returncode == 0:
        return None, ""
    tail = Path(stderr_path).read_text(errors="replace").strip().splitlines()[-1:] or [""]
    if proc.returncode == -9:
        return "oom", "killed by SIGKILL (most likely the kernel's OOM killer)"
    return "error", f"worker exited with code {proc.returncode}: {tail[0][:300]}"


def _rss_mb(proc) -> float:
    import psutil

    try:
        return proc.memory_info().rss / 2**20
    except psutil.Error:
        return 0.0


def _gpu_name(device: str) -> str:
    if device != "cuda":
        return ""
    import torch

    return torch.cuda.get_device_name(0)


# --------------------------------------------------------------------------- exports


def _prepare_exports(plan: SweepPlan, todo: list[BenchConfig], progress: Progress | None):
    """Export each model needing ORT once (cached); map spec -> info, or -> error message."""
    models = list(dict.fromkeys(c.model for c in todo
                                if is_ort(c.variant) and not c.model.startswith("config:")))
    infos: dict[str, dict | str] = {}
    for i, model in enumerate(models):
        if progress:
            progress(f"export {model}", i, len(models))
        infos[model] = _prepare_one(plan, model)
    if progress and models:
        progress("export: done", len(models), len(models))
    return infos


def _prepare_one(plan: SweepPlan, model: str) -> dict | str:
    seq_lens = list(plan.seq_lens)
    variants = [v for v in plan.variants if is_ort(v)]
    if not plan.isolate:
        from .export import prepare

        try:
            return prepare(parse_spec(model), seq_lens, variants=variants)
        except Exception as e:
            return f"ONNX export failed: {type(e).__name__}: {e}"
    code = (
        "from bench.children import die_with_parent; die_with_parent(); "
        "import json, sys; from bench.export import prepare; from models.zoo import parse_spec; "
        "print(json.dumps(prepare(parse_spec(sys.argv[1]), json.loads(sys.argv[2]), "
        "variants=json.loads(sys.argv[3]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, model, json.dumps(seq_lens), json.dumps(variants)],
        capture_output=True, text=True, timeout=max(plan.timeout_s, 600),
        cwd=Path(__file__).resolve().parent.parent, env=child_env(),
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"ONNX export failed: {last[:300]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- speedups


def speedup_table(out_dir: str | Path, df: pd.DataFrame) -> pd.DataFrame:
    """Teacher p50 / student p50 per setting, with a bootstrap 95% CI from the raw samples."""
    ok = df[df["status"] == "ok"] if "status" in df else df.iloc[0:0]
    setting = [c for c in KEY_COLUMNS if c not in ("model", "role")]
    rows = []
    for keys, group in ok.groupby(setting):
        teacher = group[group["role"] == "teacher"]
        if teacher.empty:
            continue
        t_samples = load_samples(out_dir, teacher.iloc[0]["row_id"]).get("latency_ns")
        for _, student in group[group["role"] == "student"].iterrows():
            s_samples = load_samples(out_dir, student["row_id"]).get("latency_ns")
            if t_samples is None or s_samples is None:
                continue
            ratio, lo, hi = speedup_ci(t_samples, s_samples)
            rows.append({**dict(zip(setting, keys)), "teacher": teacher.iloc[0]["model"],
                         "student": student["model"], "speedup_p50": ratio,
                         "speedup_ci95_low": lo, "speedup_ci95_high": hi})
    return pd.DataFrame(rows)


def write_speedups(out_dir: Path, df: pd.DataFrame) -> None:
    from contracts.io import write_text_atomic

    table = speedup_table(out_dir, df)
    if not table.empty:
        write_text_atomic(out_dir / SPEEDUPS, table.to_csv(index=False))
