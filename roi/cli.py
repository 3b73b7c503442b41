"""The `roi` command line. Each subcommand maps to a plain function; heavy imports (torch,
onnxruntime) happen inside the subcommand that needs them.

Bad input prints one line, `error: ...`, and exits with code 2, with no traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
from datetime import datetime
from typing import Optional

import typer

from contracts.errors import InputError
from contracts.io import check_path_args

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Should we distill this model, to what size, on what hardware, and what will it save?",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"roi (distill-roi) {version('distill-roi')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            print("roi (distill-roi), not installed")
        raise typer.Exit()


@app.callback()
def _root(show_version: bool = typer.Option(False, "--version", callback=_version,
                                            is_eager=True, help="Print the version and exit.")
          ) -> None:
    """Should we distill this model, to what size, on what hardware, and what will it save?"""


def _default_out(prefix: str) -> str:
    return f"runs/{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


@app.command()
def bench(
    teacher: str = typer.Option("builtin:teacher", help="Teacher model spec: builtin:NAME, "
                                "hf:DIR, hf:ORG/NAME[@REVISION] (the local Hugging Face "
                                "cache), onnx:FILE or ckpt:DIR."),
    students: str = typer.Option("auto", help="Comma-separated student specs, or 'auto' for "
                                 "builtin:student-5x,-10x,-20x,-50x."),
    backends: str = typer.Option("torch-eager,ort-fp32,ort-int8", help="Comma-separated: "
                                 "torch-eager, torch-eager-bf16, ort-fp32, ort-int8, "
                                 "ort-int8-static, ort-int8-static-all, ort-fused-fp32, "
                                 "ort-fused-int8, ort-int8-wo, ort-int4-wo (bench/variants.py); "
                                 "'deploy' for every deployable variant."),
    batch_sizes: Optional[str] = typer.Option(None, help="Comma-separated batch sizes "
                                              "[default: 1,8; 1 with --quick]."),
    seq_lens: str = typer.Option("128", help="Comma-separated sequence lengths (tokens)."),
    threads: Optional[str] = typer.Option(None, help="Comma-separated intra-op thread counts "
                                          "to sweep [default: physical cores]."),
    device: str = typer.Option("auto", help="cpu, cuda or auto (cuda when a GPU is visible)."),
    out: Optional[str] = typer.Option(None, help="Output directory [default: "
                                      "runs/bench-<time>]."),
    resume: bool = typer.Option(False, help="Continue a sweep in --out, skipping "
                                "configurations already measured."),
    quick: bool = typer.Option(False, help="Fewer calls per configuration (≥10 calls, ≥0.5 s)."),
    memory_budget_mb: Optional[float] = typer.Option(None, help="Skip configurations estimated "
                                                     "above this and stop any that exceed it."),
    timeout_s: Optional[float] = typer.Option(None, help="Per-configuration time limit "
                                              "[default: 600 s; 300 s with --quick]."),
    isolate: bool = typer.Option(True, help="Run each configuration in a fresh subprocess "
                                 "(--no-isolate: faster, memory peaks mix)."),
    rounds: Optional[int] = typer.Option(None, help="Repeat the sweep and pool each row's "
                                         "samples across rounds, so machine drift averages out "
                                         "[default: 2; 1 with --quick]."),
) -> None:
    """Measure the teacher and candidate students: latency percentiles, throughput, memory."""
    from bench.sweep import plan_sweep, run_plan

    plan = plan_sweep(
        teacher=teacher, students=students, backends=backends, batch_sizes=batch_sizes,
        seq_lens=seq_lens, threads=threads, device=device, out=out or _default_out("bench"),
        resume=resume, quick=quick, isolate=isolate, memory_budget_mb=memory_budget_mb,
        timeout_s=timeout_s, rounds=rounds,
    )
    from .console import progress_bar, print_bench_summary

    with progress_bar() as progress:
        df = run_plan(plan, progress)
    print_bench_summary(df, plan.out)


HARDWARE_HELP = ("YAML file of extra or replacement hardware rows (same schema as the shipped "
                 "catalog; a row with an existing name replaces it). Repeatable.")


@app.command()
def hardware(
    hardware_files: Optional[list[str]] = typer.Option(None, "--hardware", metavar="FILE",
                                                       help=HARDWARE_HELP),
) -> None:
    """Print the hardware catalog: price, peak compute, bandwidth, memory, power, sources."""
    from .console import print_hardware
    from .hardware import load_catalog

    print_hardware(load_catalog(hardware_files or []))


@app.command()
def scenarios(
    scenario: Optional[list[str]] = typer.Option(None, "--scenario", metavar="NAME|FILE",
                                                 help="A preset name or a scenario YAML "
                                                 "file to show instead of all presets. "
                                                 "Repeatable."),
    hardware_files: Optional[list[str]] = typer.Option(None, "--hardware", metavar="FILE",
                                                       help=HARDWARE_HELP),
) -> None:
    """List the scenario presets (or given scenarios): workload, SLA, constraints, candidate
    hardware and the seed's expected ranges."""
    from .console import print_scenarios
    from .hardware import load_catalog
    from .scenarios import load_scenarios, presets

    catalog = load_catalog(hardware_files or [])
    if scenario:
        found = [s for spec in scenario for s in load_scenarios(spec, catalog)]
    else:
        found = list(presets().values())
    print_scenarios(found)


DATA_HELP = ("Training data: a .jsonl file (one JSON object per line; tokenized in batches "
             "into memory-mapped arrays, cached), .txt files, stdlib or pysrc:DIR [default: "
             "the plan's data_source].")
TEXT_FIELD_HELP = "The field of each .jsonl line that holds its text [default: text]."


def data_overrides(data: Optional[str], text_field: Optional[str]) -> dict:
    """--data and --text-field as trainer settings (data_source, text_field)."""
    if text_field is not None and not text_field.strip():
        raise InputError("--text-field: must name a field; got an empty string")
    return {k: v for k, v in (("data_source", data), ("text_field", text_field))
            if v is not None}


@app.command()
def distill(
    plan: str = typer.Option(..., help="plan.yaml written by roi plan (decision + trainer)."),
    out: str = typer.Option(..., help="Output directory: the student checkpoint (ckpt:DIR), its "
                            "ONNX and int8 exports, metrics.json, and the no-KD baseline."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out."),
    force: bool = typer.Option(False, help="Train even when the plan says no-go."),
    config: Optional[str] = typer.Option(None, help="YAML file of trainer settings overriding "
                                         "the plan's trainer section."),
    set_: list[str] = typer.Option([], "--set", help="Override one trainer setting, "
                                   "key=value (repeatable), e.g. --set steps=500."),
    data: Optional[str] = typer.Option(None, metavar="FILE", help=DATA_HELP),
    text_field: Optional[str] = typer.Option(None, metavar="NAME", help=TEXT_FIELD_HELP),
) -> None:
    """Distill the plan's recommended student; measure retention against teacher and baseline.

    Example: roi distill --plan runs/plan-1/plan.yaml --out runs/student --data docs.jsonl
    --text-field body
    """
    from distill.pipeline import distill_from_plan, parse_overrides

    from .console import print_distill_summary, training_progress

    overrides = {**parse_overrides(set_), **data_overrides(data, text_field)}
    with training_progress() as progress:
        result = distill_from_plan(plan, out, resume=resume, force=force, config_file=config,
                                   overrides=overrides, progress=progress)
    if result.metrics:  # under torchrun only rank 0 reports
        print_distill_summary(result.metrics, result.out_dir)


@app.command("distill-encoder")
def distill_encoder(
    teacher: str = typer.Option(..., help="A sentence-embedding encoder: hf:DIR or "
                                "hf:ORG/NAME[@REVISION] (BERT family; pooled as its "
                                "1_Pooling/config.json says, else by mean). python -m "
                                "distill.build_encoder builds one offline."),
    out: str = typer.Option(..., help="Output directory: the student (hf:DIR), metrics.json, "
                            "and baseline/ (the no-KD baseline, labeled data only)."),
    data: str = typer.Option("stdlib", metavar="FILE", help="stdlib (the standard library's "
                             "docstrings, labeled by module) or a .jsonl file (unlabeled)."),
    text_field: str = typer.Option("text", metavar="NAME", help="The field of each .jsonl "
                                   "line that holds its text."),
    baseline: bool = typer.Option(True, help="Also train the student from scratch on the "
                                  "labels, without the teacher (labeled data only)."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out."),
    export: bool = typer.Option(True, help="Export the student to ONNX (student.onnx, "
                                "student.int8.onnx) and measure both against the teacher."),
    set_: list[str] = typer.Option([], "--set", help="Override one setting, key=value "
                                   "(distill.encoder.EncoderConfig), e.g. --set layers=2."),
) -> None:
    """Distill a sentence encoder into fewer of its layers (embedding MSE + cosine on unlabeled
    text); retention as Spearman of pairwise similarities, top-10 neighbours and proxy accuracy.

    Example: roi distill-encoder --teacher hf:DIR --out runs/encoder --set steps=600
    """
    from distill.encoder_pipeline import run, summary_lines
    from distill.pipeline import parse_overrides

    from .console import training_progress

    with training_progress() as progress:
        metrics = run(teacher, out, data, text_field, parse_overrides(set_), baseline, resume,
                      progress, export)
    print("\n".join(summary_lines(metrics)))


@app.command()
def pilot(
    teacher: str = typer.Option("builtin:teacher", help="Teacher model spec (builtin:NAME, "
                                "ckpt:DIR, hf:DIR or hf:ORG/NAME[@REVISION]: the trainer's "
                                "teacher)."),
    students: str = typer.Option("auto", help="Comma-separated builtin student specs, or "
                                 "'auto' for builtin:student-5x,-10x,-20x,-50x."),
    steps: int = typer.Option(96, help="The longest pilot budget, optimizer steps."),
    points: Optional[str] = typer.Option(None, help="Comma-separated budgets (steps) whose "
                                         "results the pilot measures [default: up to 5, "
                                         "sqrt(2) apart up to --steps, each longer than the "
                                         "warm-up]."),
    modes: str = typer.Option("kd,ce", help="kd (distilled), ce (the no-KD baseline), or both."),
    config: Optional[str] = typer.Option(None, help="YAML file of trainer settings over the "
                                         "planner's recipe (the recipe the full distillation "
                                         "will use)."),
    set_: list[str] = typer.Option([], "--set", help="Override one trainer setting, key=value "
                                   "(repeatable), e.g. --set dtype=bf16."),
    out: Optional[str] = typer.Option(None, help="Output directory for pilot.csv "
                                      "[default: runs/pilot-<time>]; an existing one resumes."),
    data: Optional[str] = typer.Option(None, metavar="FILE", help=DATA_HELP),
    text_field: Optional[str] = typer.Option(None, metavar="NAME", help=TEXT_FIELD_HELP),
) -> None:
    """Pilot distillations: short runs of every student (KD and no-KD baseline) whose points
    are what whole runs of those budgets end at; pilot.csv is what roi plan --pilot forecasts
    retention from."""
    from distill.pipeline import parse_overrides
    from distill.pilot import pilot as run_pilot

    from .console import pilot_progress, print_pilot_summary

    cfg, specs, budget, mode_list = pilot_settings(
        teacher, students, steps, points, modes, config,
        {**parse_overrides(set_), **data_overrides(data, text_field)})
    from contracts.io import check_out_dir

    out_dir = str(check_out_dir(out or _default_out("pilot")))
    with pilot_progress() as progress:
        df = run_pilot(cfg, specs, out_dir, steps=steps, points=budget, modes=mode_list,
                       progress=progress)
    print_pilot_summary(df, out_dir)


def pilot_settings(teacher: str, students, steps: int, points: Optional[str], modes: str,
                   config: Optional[str], overrides: dict):
    """The trainer recipe of the pilots (the planner's, then a file, then --set), the student
    specs, the budgets and the modes, checked before anything runs."""
    from models.zoo import parse_spec, parse_students
    from distill.config import load_config

    from .planner import TRAINER_DEFAULTS

    if steps < 1:
        raise InputError(f"--steps must be a positive number of steps; got {steps}")
    specs = [s.spec for s in parse_students(students)]
    other = [s for s in specs if parse_spec(s).kind != "builtin"]
    if other:
        raise InputError(f"students {', '.join(other)}: the trainer trains builtin "
                         "architectures only")
    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    if not mode_list or any(m not in ("kd", "ce") for m in mode_list):
        raise InputError(f"--modes: allowed kd, ce (comma-separated); got {modes!r}")
    budget = _int_list(points, "--points") if points else None
    if budget and (min(budget) < 1 or max(budget) > steps):
        raise InputError(f"--points: budgets must be in 1..--steps ({steps}); got {points!r}")
    file_values = load_config(config).model_dump(exclude_unset=True) if config else {}
    parse_spec(teacher)
    cfg = load_config(None, {**TRAINER_DEFAULTS, **file_values, **overrides,
                             "teacher": teacher})
    return cfg, specs, budget, mode_list


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{what}: comma-separated whole numbers; got {text!r}") from None


@app.command()
def generate(
    teacher: Optional[str] = typer.Option(None, help="builtin:NAME, ckpt:DIR, hf:DIR, or "
                                          "api:MODEL for an OpenAI-compatible endpoint "
                                          "(--api-base-url) [default: builtin:teacher]."),
    out: Optional[str] = typer.Option(None, help="Output directory: samples.jsonl, "
                                      "failures.jsonl, manifest.json, run.json [default: "
                                      "runs/generate-<time>]."),
    prompts: Optional[str] = typer.Option(None, help="corpus (cut from the training split of "
                                          "the data source) or a .jsonl file of "
                                          "{\"prompt\": ...} lines [default: corpus]."),
    num_prompts: Optional[int] = typer.Option(None, help="How many prompts [default: 256 from "
                                              "the corpus; all lines of a file]."),
    max_new_tokens: Optional[int] = typer.Option(None, help="Most new tokens per prompt, > 0 "
                                                 "[default: 128]."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature, >= 0; 0 is "
                                                "greedy [default: 1.0]."),
    top_p: Optional[float] = typer.Option(None, help="Nucleus sampling mass, in (0, 1] "
                                          "[default: 1.0]."),
    seed: Optional[int] = typer.Option(None, help="Seeds prompt choice and sampling "
                                       "[default: 0]."),
    batch_size: Optional[int] = typer.Option(None, help="Prompts per batched generation call "
                                             "of a local teacher [default: 32]."),
    api_base_url: Optional[str] = typer.Option(None, help="api: teachers: base URL ending in "
                                               "/v1, e.g. http://127.0.0.1:8000/v1."),
    api_endpoint: Optional[str] = typer.Option(None, help="api: teachers: completions or chat "
                                               "[default: completions]."),
    api_key_env: Optional[str] = typer.Option(None, help="api: teachers: environment variable "
                                              "holding the key [default: OPENAI_API_KEY]."),
    concurrency: Optional[int] = typer.Option(None, help="api: teachers: requests in flight "
                                              "[default: 4]."),
    max_requests: Optional[int] = typer.Option(None, help="api: teachers: request budget of "
                                               "this invocation, retries included."),
    config: Optional[str] = typer.Option(None, help="YAML file of generate settings (fields of "
                                         "distill.generate.GenerateConfig); options given on "
                                         "the command line win."),
    set_: list[str] = typer.Option([], "--set", help="Any other setting, key=value "
                                   "(repeatable), e.g. --set prompt_chars=96."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out."),
) -> None:
    """Teacher-generated training data (sequence-level distillation): continuations of prompts,
    written as JSONL with provenance; train on it with data_mode: generated."""
    from distill.generate import generate as run_generate
    from distill.generate import make_generate_config
    from distill.pipeline import parse_overrides

    from contracts.config import read_yaml

    options = dict(teacher=teacher, prompts=prompts, num_prompts=num_prompts,
                   max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                   seed=seed, batch_size=batch_size, api_base_url=api_base_url,
                   api_endpoint=api_endpoint, api_key_env=api_key_env,
                   concurrency=concurrency, max_requests=max_requests)
    values = (read_yaml(config, "generate settings") or {}) if config else {}
    if not isinstance(values, dict):
        raise InputError(f"{config}: expected a mapping of generate settings")
    given = {k: v for k, v in options.items() if v is not None}
    cfg = make_generate_config({**values, **given, **parse_overrides(set_)})
    with _generation_progress() as progress:
        result = run_generate(cfg, out or _default_out("generate"), resume=resume,
                              progress=progress)
    m, run = result.manifest, result.manifest["invocations"][-1]
    tps = f"{run['tokens_per_s']:,.0f}" if run["tokens_per_s"] else "-"
    print(f"{m['samples']}/{m['prompts']} samples ({run['samples']} new, {tps} new tokens/s, "
          f"{run['wall_s']:.1f} s); {m['failed_pending']} failed (failures.jsonl), "
          f"{m['missing'] - m['failed_pending']} not yet attempted; out: {result.out_dir}")


def _generation_progress():
    """A callback (done, total, new tokens) drawing one bar with the tokens/s of this run."""
    import contextlib
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .console import console

    @contextlib.contextmanager
    def bar():
        prog = Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]} tokens/s"), TimeElapsedColumn(),
                        console=console)
        state: dict = {"task": None}

        def update(done: int, total: int, tokens: int) -> None:
            if state["task"] is None:  # first call: the teacher is loaded, generation starts
                prog.start()
                state["task"] = prog.add_task("generate", total=total, rate="-")
                state["t0"] = time.perf_counter()
            rate = tokens / max(time.perf_counter() - state["t0"], 1e-9)
            prog.update(state["task"], completed=done, total=total, rate=f"{rate:,.0f}")

        try:
            yield update
        finally:
            if state["task"] is not None:
                prog.stop()

    return bar()


@app.command()
def plan(
    results: Optional[list[str]] = typer.Option(None, "--results", metavar="FILE", help="Results "
                                                "table: a bench run directory, results.csv or "
                                                "results.jsonl (or one written by hand in the "
                                                "same schema). Repeatable: tables from several "
                                                "machines merge."),
    scenario: list[str] = typer.Option(..., "--scenario", metavar="NAME|FILE", help="A preset "
                                       "(cloud-batch, real-time-api, mobile-on-device, "
                                       "embedded-iot, multi-model) or a scenario YAML file. "
                                       "Repeatable."),
    hardware_files: Optional[list[str]] = typer.Option(None, "--hardware", metavar="FILE",
                                                       help=HARDWARE_HELP),
    retention_threshold: float = typer.Option(0.95, help="Lowest acceptable accuracy "
                                              "retention (student / teacher), a fraction; the "
                                              "low end of a student's band must reach it."),
    out: Optional[str] = typer.Option(None, help="Output directory for plan.yaml, plan.json "
                                      "and sizing.csv [default: runs/plan-<time>]."),
    local_peak_gflops: Optional[float] = typer.Option(None, help="Measured fp32 peak of the "
                                                      "machine the results come from, GFLOP/s "
                                                      "[default: the best rate a row reached]."),
    metrics: Optional[list[str]] = typer.Option(None, "--metrics", metavar="SPEC=FILE",
                                                help="A distilled student's metrics.json: its "
                                                "measured retention replaces the prior. "
                                                "Repeatable (ckpt:DIR students are found "
                                                "without it)."),
    engineering_weeks: float = typer.Option(2.0, help="Engineering effort of the project."),
    engineering_usd_per_week: float = typer.Option(4000.0, help="Loaded cost of an engineer-"
                                                   "week, USD."),
    training_hardware: str = typer.Option("a10g", help="Catalog hardware that labels and "
                                          "trains (its hourly price is charged)."),
    training_hours: Optional[float] = typer.Option(None, help="Training time [default: "
                                                   "estimated from FLOPs]."),
    pilot: Optional[list[str]] = typer.Option(None, "--pilot", metavar="FILE", help="Pilot "
                                              "curves (roi pilot's pilot.csv or its directory, "
                                              "or a distillation's metrics.json): retention is "
                                              "forecast per training budget from them and the "
                                              "budget becomes part of the decision. "
                                              "Repeatable."),
    max_steps: Optional[int] = typer.Option(None, help="The largest training budget (steps) "
                                            "the plan considers [default: 64x the longest "
                                            "pilot]."),
    require_benefit: bool = typer.Option(True, help="Go only when the student saves money or "
                                         "meets a scenario the teacher cannot "
                                         "(--no-require-benefit: the seed's criteria alone)."),
    portfolio: bool = typer.Option(False, "--portfolio", help="The scenarios are one "
                                   "portfolio, deployed together: the headline ROI is their "
                                   "total, labelled so [default: each scenario is its own "
                                   "answer; the headline is the one where the student saves "
                                   "most]."),
    teacher: Optional[str] = typer.Option(None, help="A teacher known only by its architecture, "
                                          "config:NAME|FILE (e.g. config:llama-3-70b): planned "
                                          "from projections alone, without --results."),
    students: Optional[str] = typer.Option(None, help="With a config: teacher: comma-separated "
                                           "config: students [default: the seed's sizes]."),
    llm_sla: Optional[str] = typer.Option(None, help="With a config: teacher: mlperf (TTFT 2 s, "
                                          "TPOT 100 ms) or mlperf-interactive (500 / 30 ms) "
                                          "[default: the scenario's latency bound]."),
    datagen: str = typer.Option("none", help="Teacher-generated training data to price into "
                                "the one-time cost: none, local (the teacher on the training "
                                "hardware) or api:MODEL (roi/data/api_prices.yaml)."),
    datagen_samples: int = typer.Option(0, help="Samples the teacher generates."),
    datagen_prompt_tokens: float = typer.Option(64.0, help="Prompt tokens per sample."),
    datagen_completion_tokens: float = typer.Option(128.0, help="Generated tokens per sample."),
    datagen_tokens_per_s: Optional[float] = typer.Option(None, help="local: the teacher's "
                                                         "decode rate [default: from the "
                                                         "results table]."),
    datagen_price_in: Optional[float] = typer.Option(None, help="api: USD per 1M input tokens "
                                                     "[default: the price catalog's]."),
    datagen_price_out: Optional[float] = typer.Option(None, help="api: USD per 1M output "
                                                      "tokens [default: the catalog's]."),
    datagen_prices: Optional[str] = typer.Option(None, metavar="FILE", help="api: a price "
                                                 "catalog YAML in the shape of "
                                                 "roi/data/api_prices.yaml."),
) -> None:
    """Plan the distillation: cost and sizing per scenario and hardware, projection, decision,
    recommended student and ROI; writes plan.yaml (read by roi distill) and plan.json."""
    if teacher is not None or not results:
        if results or teacher is None or not teacher.startswith("config:"):
            raise InputError("roi plan: give --results FILE (measured models), or --teacher "
                             "config:NAME|FILE alone (a model described by its config)")
        return _plan_llm(teacher, students, scenario, retention_threshold, llm_sla, out)
    from .datagen_cost import DataGenInputs
    from .payback import RoiInputs
    from .planner import plan as make_plan
    from .planner import write_plan
    from .retention import parse_metrics_args

    gen = DataGenInputs(teacher=datagen, samples=datagen_samples,
                        prompt_tokens=datagen_prompt_tokens,
                        completion_tokens=datagen_completion_tokens,
                        tokens_per_s=datagen_tokens_per_s, usd_per_1m_input_tokens=datagen_price_in,
                        usd_per_1m_output_tokens=datagen_price_out, prices_file=datagen_prices)
    inputs = RoiInputs(engineering_weeks=engineering_weeks,
                       engineering_usd_per_week=engineering_usd_per_week,
                       training_hardware=training_hardware, training_hours=training_hours,
                       datagen=gen)
    out_dir = _plan_out_dir(out)  # checked before the work
    result = make_plan(results, scenario, hardware=hardware_files or [],
                       retention_threshold=retention_threshold,
                       measured_retention=parse_metrics_args(metrics or []),
                       local_peak_gflops=local_peak_gflops, roi_inputs=inputs,
                       require_benefit=require_benefit, pilot=pilot or None,
                       max_steps=max_steps, portfolio=portfolio)
    write_plan(result, out_dir)
    from .console import print_plan_summary

    print_plan_summary(result.to_dict(), out_dir)


@app.command()
def loadtest(
    model: str = typer.Option(..., help="Model spec: builtin:NAME, hf:DIR, onnx:FILE or "
                              "ckpt:DIR."),
    backend: str = typer.Option("ort-fp32", help="torch-eager, torch-eager-bf16, ort-fp32 or "
                                "ort-int8."),
    scenario: str = typer.Option("server", help="LoadGen scenario: singlestream (p90), "
                                 "multistream (p99), server (Poisson arrivals, p99 bound) or "
                                 "offline (throughput)."),
    qps: Optional[float] = typer.Option(None, help="server: target QPS (with --find-peak, "
                                        "where the search starts); offline: expected QPS."),
    latency_ms: Optional[float] = typer.Option(None, help="server: the latency bound (ms) at "
                                               "--percentile."),
    percentile: Optional[float] = typer.Option(None, help="Latency percentile claimed "
                                               "[default: the scenario's: 90 singlestream, "
                                               "99 multistream and server]."),
    find_peak: bool = typer.Option(False, help="server: search the highest QPS that stays "
                                   "VALID (bracket from --qps, then bisection over runs)."),
    out: Optional[str] = typer.Option(None, help="Run directory: results.jsonl/.csv (the "
                                      "table roi plan reads) and LoadGen's logs under "
                                      "loadgen/ [default: runs/loadtest-<time>]."),
    seq_len: int = typer.Option(128, help="Tokens per sample."),
    threads: Optional[int] = typer.Option(None, help="Intra-op threads of the backend "
                                          "[default: physical cores]."),
    max_batch: int = typer.Option(1, help="Dynamic batching: most samples per backend call."),
    batch_window_ms: float = typer.Option(0.0, help="How long a worker waits for a batch to "
                                          "fill after its first sample (0: take what is "
                                          "queued)."),
    workers: int = typer.Option(1, help="SUT worker threads, each running batches."),
    min_duration_ms: int = typer.Option(10_000, help="LoadGen's minimum run time per test."),
    min_query_count: Optional[int] = typer.Option(None, help="LoadGen's minimum queries "
                                                  "[default: what early stopping needs for "
                                                  "the percentile: 64 for p90, 662 for p99]."),
    samples: int = typer.Option(256, help="Distinct real inputs in the query-sample library."),
    role: Optional[str] = typer.Option(None, help="teacher or student [default: the role the "
                                       "results table gives the model; teacher for "
                                       "builtin:teacher]."),
    precision: float = typer.Option(0.05, help="--find-peak: stop when the VALID / INVALID "
                                    "bracket is this close (relative)."),
    max_runs: int = typer.Option(10, help="--find-peak: most LoadGen runs."),
) -> None:
    """Load-test a model on MLPerf LoadGen; the summary becomes a row (source loadgen) of the
    results table roi plan reads, and --find-peak a measured peak the planner prefers."""
    from bench.loadgen import LoadtestSettings, check_settings

    if precision <= 0 or max_runs < 2:
        raise InputError(f"--precision must be > 0 and --max-runs >= 2; got {precision:g}, "
                         f"{max_runs}")
    if find_peak and scenario.strip().lower() != "server":  # MLPerf spells it Server
        raise InputError(f"--find-peak searches a server QPS; got --scenario {scenario}")
    from models.runtime import default_threads

    settings = check_settings(LoadtestSettings(
        model=model, variant=backend, scenario=scenario, qps=qps, latency_ms=latency_ms,
        percentile=percentile, seq_len=seq_len,
        threads=threads if threads is not None else default_threads(),
        max_batch=max_batch, batch_window_ms=batch_window_ms, workers=workers,
        min_duration_ms=min_duration_ms, min_query_count=min_query_count, samples=samples,
        role=role))
    out_dir = out or _default_out("loadtest")
    from pathlib import Path

    from contracts.io import check_out_dir

    check_out_dir(out_dir)
    from .console import print_loadtest_run

    from bench.interrupt import LoadtestInterrupted
    from checks import loadgen as predictor  # the sizing model's figures beside each run

    try:
        if find_peak:
            from bench.loadgen import find_peak as search

            result = search(settings, out_dir, precision=precision, max_runs=max_runs,
                            progress=lambda r: print_loadtest_run(r.row), predictor=predictor)
            _print_peak(result, settings, out_dir)
        else:
            from bench.loadgen import run_one

            print_loadtest_run(run_one(settings, out_dir, predictor=predictor).row)
            print(f"results: {Path(out_dir) / 'results.jsonl'} (+ results.csv); LoadGen logs "
                  f"under {Path(out_dir) / 'loadgen'}")
    except LoadtestInterrupted:  # LoadGen's threads may run on: no interpreter shutdown
        import os

        print(_interrupted(["loadtest", "--out", str(out_dir)]), file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


def _print_peak(result, settings, out_dir) -> None:
    if result.peak_qps is None:
        print(f"no VALID run: even {result.runs[-1].row['loadgen_target_qps']:g} QPS failed "
              f"the p{settings.claimed_percentile:g} <= {settings.latency_ms:g} ms bound")
        return
    hi = result.bracket[1]
    print(f"peak: {result.peak_qps:.1f} QPS VALID at p{settings.claimed_percentile:g} <= "
          f"{settings.latency_ms:g} ms" + (f" ({hi:.1f} QPS was INVALID)" if hi else
                                           " (no INVALID rate found within --max-runs)")
          + f"; {len(result.runs)} runs; row appended to {out_dir}/results.jsonl")


@app.command("import")
def import_command(
    tool: str = typer.Argument(..., metavar="TOOL", help="vllm (`vllm bench serve "
                               "--save-result` JSON), optimum-benchmark (benchmark.json or "
                               "benchmark_report.json) or mlperf (mlperf_log_detail.txt)."),
    file: str = typer.Argument(..., metavar="FILE", help="The tool's result file."),
    hardware: str = typer.Option(..., metavar="NAME", help="The catalog hardware it was "
                                 "measured on (roi hardware lists them: h100, a100-80gb, l4, "
                                 "...)."),
    role: str = typer.Option(..., help="teacher or student."),
    out: str = typer.Option(..., help="Directory of the results table to write or add to "
                            "(results.jsonl + results.csv), the table roi plan --results "
                            "reads."),
    model: Optional[str] = typer.Option(None, help="Model name [default: the file's]; the "
                                        "same name as the other tables' rows of that model."),
    dtype: Optional[str] = typer.Option(None, help="fp32, bf16, fp16, int8, int4 (or torch's "
                                        "names) [default: the file's, where it says]."),
    params: Optional[int] = typer.Option(None, help="Parameter count [required: none of the "
                                         "formats gives it]."),
    device: Optional[str] = typer.Option(None, help="cuda or cpu [default: cuda on an "
                                         "accelerator row, cpu on a CPU instance]."),
    batch_size: Optional[int] = typer.Option(None, help="Concurrency / batch the figures were "
                                             "measured at [default: the file's]."),
    seq_len: Optional[int] = typer.Option(None, help="Prompt tokens [default: the file's mean "
                                          "prompt; mlperf: required]."),
) -> None:
    """Import another tool's measurement as rows (source imported) of a results table, so roi
    plan costs that hardware from it instead of a projection.

    Example: roi import vllm result.json --hardware h100 --role teacher --dtype bf16
    --params 8030261248 --out runs/h100
    """
    from .hardware import load_catalog
    from .importers import ImportOptions, import_file
    from contracts.io import check_out_dir, dir_lock

    opts = ImportOptions(hardware=hardware, role=role, model=model, dtype=dtype, params=params,
                         device=device, batch_size=batch_size, seq_len=seq_len)
    rows = import_file(tool, file, opts, load_catalog([]))
    out_dir = check_out_dir(out)
    from contracts.results import JSONL, ResultsStore, row_key

    with dir_lock(out_dir):
        store = ResultsStore(out_dir)
        for row in rows:
            again = any(row_key(r) == row_key(row) for r in store.rows)
            store.append(row)
            print(f"imported {row['model']} ({row['role']}, {row['backend']}/{row['dtype']}, "
                  f"batch {row['batch_size']}, {row['seq_len']} tokens) on {row['hardware']}: "
                  f"latency {row['latency_ms_mean']:.4g} ms mean"
                  + (f", tpot {row['tpot_ms']:.4g} ms" if row.get("tpot_ms") else "")
                  + ("; replaces the row imported before for this configuration and hardware"
                     if again else ""))
    print(f"results: {out_dir / JSONL} (+ results.csv); roi plan --results {out_dir} ...")


# ------------------------------------------------------------------------------ roi cache

cache_app = typer.Typer(no_args_is_help=True, help="The caches roi keeps on disk (ONNX exports, "
                        "teacher logits, tokenized JSONL data): list them, prune the least "
                        "recently used.")
app.add_typer(cache_app, name="cache")


@cache_app.command("list")
def cache_list(entries: bool = typer.Option(False, "--entries", help="Every entry too, least "
                                            "recently used first.")) -> None:
    """Each cache under the cache root ($ROI_CACHE_DIR, else $XDG_CACHE_HOME/roi, else
    ~/.cache/roi): its path, entries, size and last use.

    Example: roi cache list --entries
    """
    from contracts.caches import listing

    print("\n".join(listing(each=entries)))


@cache_app.command("prune")
def cache_prune(
    max_gb: Optional[float] = typer.Option(None, help="Remove least recently used entries "
                                           "until the caches hold at most this many GB."),
    older_than_days: Optional[float] = typer.Option(None, help="Remove every entry unused "
                                                    "for longer than this many days."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; delete nothing."),
) -> None:
    """Remove cache entries, least recently used first; an entry another process uses or
    writes (a running bench or distillation holds its lock) is kept.

    Example: roi cache prune --max-gb 5 --older-than-days 30 --dry-run
    """
    from contracts.caches import limit, prune, prune_lines

    gb, days = limit(max_gb, "--max-gb"), limit(older_than_days, "--older-than-days")
    if gb is None and days is None:
        raise InputError("roi cache prune: give --max-gb N and/or --older-than-days D")
    result = prune(max_bytes=None if gb is None else int(gb * 1e9),
                   older_than_s=None if days is None else days * 86400, dry_run=dry_run)
    print("\n".join(prune_lines(result, dry_run)))


# ------------------------------------------------------------------------------ roi run / report


@app.command("run")
def run_command(
    config: Optional[str] = typer.Option(None, metavar="FILE", help="YAML run config: teacher, "
                                         "students, scenarios, hardware, retention_threshold, "
                                         "bench and trainer settings (README, `roi run`)."),
    quick: bool = typer.Option(False, help="The smaller budget (<= 3 minutes on 2 CPU cores): "
                               "batch 1, fewer calls, a short distillation."),
    out: Optional[str] = typer.Option(None, help="Run directory [default: runs/<time>]; an "
                                      "existing one resumes where it stopped."),
    no_pilot: bool = typer.Option(False, "--no-pilot", help="No pilot distillations (the "
                                  "config's pilot: {enabled: false}): the plan's retention is "
                                  "the prior, labelled so."),
) -> None:
    """From the question to the answer: bench, pilot, plan the scenarios, report, and (on go)
    distill the recommended student, bench it and report predicted beside achieved."""
    from .run import default_out, execute, open_run, summary_line

    run_dir = out or str(default_out())
    cfg = run_config(config, no_pilot)
    try:
        run = open_run(cfg, run_dir, "quick" if quick else "default", _ConsoleHooks())
    except InputError as e:  # a setting of the config file: say which file
        if config and not str(e).startswith(f"{config}:"):
            raise InputError(f"{config}: {e}") from None
        raise
    try:
        result = execute(run)
    except KeyboardInterrupt:
        again = " ".join(["roi run", *(["--config", config] if config else []),
                          *(["--quick"] if quick else []),
                          *(["--no-pilot"] if no_pilot else []), "--out", run_dir])
        print(f"interrupted: `{again}` resumes where it stopped", file=sys.stderr)
        sys.exit(130)
    print(summary_line(result.summary))


def run_config(config: Optional[str], no_pilot: bool = False):
    """The run's config file (None: every default), with --no-pilot applied."""
    from .runconfig import load_run_config

    cfg = load_run_config(config)
    if no_pilot:
        cfg = cfg.model_copy(update={"pilot": cfg.pilot.model_copy(update={"enabled": False})})
    return cfg


class _ConsoleHooks:
    """roi run's terminal: a line per step, rich progress bars for bench and distill."""

    def step(self, index: int, total: int, name: str, status: str, detail: str = "") -> None:
        from .console import console
        from .run import step_line

        console.print(step_line(index, total, name, status, detail), highlight=False,
                      markup=False)

    def bench_progress(self):
        from .console import progress_bar

        return progress_bar()

    def train_progress(self):
        from .console import training_progress

        return training_progress()

    def pilot_progress(self):
        from .console import pilot_progress

        return pilot_progress()


@app.command()
def report(
    run_dir: Optional[str] = typer.Argument(None, metavar="[DIR]", help="A run directory (roi "
                                            "run --out)."),
    plan: Optional[str] = typer.Option(None, metavar="FILE", help="Instead of DIR: a plan "
                                       "(plan.json or plan.yaml, as roi plan writes)."),
    results: Optional[str] = typer.Option(None, metavar="FILE", help="With --plan: the "
                                          "results table it was planned from (.csv, .jsonl or "
                                          "a directory holding one)."),
    metrics: Optional[str] = typer.Option(None, metavar="FILE", help="With --plan: a "
                                          "distillation's metrics.json (roi distill --out)."),
    out: Optional[str] = typer.Option(None, help="Where to write [default: DIR/report, or "
                                      "report/ beside the plan file]."),
) -> None:
    """Render a run directory again, or a plan with its results table: report.html,
    report.md, figures/ and the decision, sizing and distill-plan parts.

    Examples: roi report runs/run-1;
    roi report --plan runs/plan-1/plan.json --results runs/bench-1/results.csv --out report
    """
    forms = "give a run directory DIR, or --plan FILE [--results FILE] [--metrics FILE]"
    if run_dir is not None and (plan or results or metrics):
        raise InputError(f"roi report: {forms}; not both")
    if run_dir is None and plan is None:
        extra = [o for o, v in (("--results", results), ("--metrics", metrics)) if v]
        raise InputError(f"roi report: {' and '.join(extra)} without --plan; {forms}"
                         if extra else f"roi report: {forms}")
    if run_dir is not None:
        from .run import render

        page = render(run_dir, out)
    else:
        page = _report_files(plan, results, metrics, out)
    print(f"report: {page} (+ report.md, figures/; decision/, sizing/, distill-plan/)")


def _report_files(plan: str, results: Optional[str], metrics: Optional[str],
                  out: Optional[str]):
    """roi report --plan FILE [--results FILE] [--metrics FILE]: report.html's path."""
    from pathlib import Path

    from reports import build_files, write_with_parts

    from contracts.io import check_out_dir

    out_dir = check_out_dir(Path(out) if out else Path(plan).parent / "report")
    return write_with_parts(build_files(plan, results, metrics), out_dir).html


def _plan_out_dir(out: Optional[str]):
    """roi plan's output directory, refused when it names an existing file."""
    from pathlib import Path

    from contracts.io import check_out_dir

    return check_out_dir(Path(out or _default_out("plan")))


def _plan_llm(teacher: str, students: Optional[str], scenarios: list[str],
              threshold: float, sla: Optional[str], out: Optional[str]) -> None:
    """roi plan for a config: teacher: projections only; plan.yaml, plan.json, plan.md and the
    decision report (report/report.html, report.md, figures/)."""
    import json

    import yaml

    from reports.llm import llm_plan_markdown, llm_report
    from reports.report import write as write_report

    from contracts.io import write_json_atomic, write_text_atomic
    from .llm_plan import llm_plan

    studs = [s.strip() for s in students.split(",") if s.strip()] if students else None
    doc = llm_plan(teacher, studs, scenarios, retention_threshold=threshold, sla_preset=sla)
    out_dir = _plan_out_dir(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "plan.json", doc)
    plain = json.loads(json.dumps(doc))  # numpy scalars -> plain numbers for YAML
    write_text_atomic(out_dir / "plan.yaml", yaml.safe_dump(plain, sort_keys=False))
    write_text_atomic(out_dir / "plan.md", llm_plan_markdown(doc))
    page = write_report(llm_report(doc), out_dir / "report").html
    d = doc["decision"]
    print(f"{'GO' if d['go'] else 'NO-GO'}: distill {teacher} to "
          f"{doc['recommended']['model'] or 'no student'} (projected, not measured)")
    for r in d["reasons"]:
        print(f"  - {r}")
    print(f"plan: {out_dir / 'plan.yaml'}; report: {page} (+ report.md, figures/; plan.md)")


# ------------------------------------------------------------------------------ extras
# `pip install distill-roi` is the planner (plan, report, scenarios, hardware); a command that
# runs models needs an extra of pyproject.toml. The one place that says which: up front from
# the command's modules, and for a ModuleNotFoundError of a known module (hf: needs transformers).
COMMAND_EXTRAS = {"bench": ("bench",), "loadtest": ("loadtest",), "distill": ("train",),
                  "distill-encoder": ("train", "hf"),
                  "pilot": ("train",), "generate": ("train",), "run": ("bench", "train")}
EXTRA_MODULES = {"bench": ("torch", "onnx", "onnxruntime", "psutil", "safetensors"),
                 "loadtest": ("torch", "onnx", "onnxruntime", "psutil", "mlperf_loadgen"),
                 "train": ("torch", "onnx", "onnxruntime", "psutil", "safetensors"),
                 "hf": ("transformers",)}


def _missing_extra(command: str, module: Optional[str] = None) -> Optional[str]:
    """The one line naming the extra `roi COMMAND` lacks: for `module` (a ModuleNotFoundError's
    name), else for the command's own modules; None when nothing known is missing."""
    from importlib.util import find_spec

    if module is not None:
        top = module.split(".")[0]
        extras = [x for x, mods in EXTRA_MODULES.items() if top in mods]
        if not extras:
            return None
        own = [x for x in COMMAND_EXTRAS.get(command, ()) if top in EXTRA_MODULES[x]]
        extras = own or extras[:1]
    else:
        extras = [x for x in COMMAND_EXTRAS.get(command, ())
                  if any(find_spec(m) is None for m in EXTRA_MODULES[x])]
        if not extras:
            return None
    what = f"the {' and '.join(extras)} extra{'s' if len(extras) > 1 else ''}"
    return f"roi {command} needs {what}: pip install 'distill-roi[{','.join(extras)}]'"


# subcommand -> the flag that resumes it (pilot and run resume an existing --out by themselves)
RESUMABLE = {"bench": "--resume", "distill": "--resume", "distill-encoder": "--resume",
             "generate": "--resume", "pilot": None,
             "run": None}
DEFAULT_OUT = {"bench": "bench", "generate": "generate", "pilot": "pilot",
               "loadtest": "loadtest"}  # runs/<prefix>-<time>


def main(argv: list[str] | None = None) -> int:
    """The `roi` command (argv None: this process's arguments; a list: called in-process)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _with_out(list(sys.argv[1:] if argv is None else argv))
    if argv is not None:  # in-process (tests, notebooks): the caller's Ctrl-C stays its own
        return _main(args)
    try:
        code = _main(args)
    except KeyboardInterrupt:  # after the command's own handling, before the return
        print(_interrupted(args), file=sys.stderr)
        code = 130
    # The command is over and its output written. A Ctrl-C from here on would only interrupt
    # the interpreter's shutdown (torch's atexit hooks): the process would die by the signal
    # with no line, or print a traceback and exit 0.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _main(args: list[str]) -> int:
    try:
        check_path_args(args)
        missing = _missing_extra(args[0]) if args and "--help" not in args else None
        if missing:
            raise InputError(missing)
        code = app(args=args, prog_name="roi", standalone_mode=False)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # an optional module a command imports: name its extra
        missing = _missing_extra(args[0] if args else "", e.name or "")
        if not missing:
            raise
        print(f"error: {missing}", file=sys.stderr)
        return 2
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except typer.TyperException as e:  # click's usage errors (typer vendors click)
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.ctx.get_help() if getattr(e, "ctx", None) else "usage: roi COMMAND --help")
            return 0
        print(f"error: {e.format_message()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        code = 130
    if code == 130:  # typer turns Ctrl-C inside a command into a return value of 130
        print(_interrupted(args), file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0


def _with_out(args: list[str]) -> list[str]:
    """A resumable subcommand without --out gets its default one spelled out here, so that an
    interrupt can name the directory to resume."""
    if not args or args[0] not in DEFAULT_OUT or "--help" in args or _has_out(args):
        return args
    return [args[0], "--out", _default_out(DEFAULT_OUT[args[0]]), *args[1:]]


def _has_out(args: list[str]) -> bool:
    return any(a == "--out" or a.startswith("--out=") for a in args)


def _interrupted(args: list[str]) -> str:
    """The one line after Ctrl-C: what was kept and the command that resumes."""
    import shlex

    command = args[0] if args else ""
    if command == "loadtest":
        out = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--out"), None)
        where = f"{out}/results.jsonl" if out else "the results table"
        return (f"interrupted: finished runs are kept in {where}, a run cut short as a row "
                "marked interrupted; rerun the command to measure again")
    if command not in RESUMABLE or not _has_out(args):  # roi run without --out: see run_command
        return "interrupted: stopped before finishing; rerun the command to start again"
    flag = RESUMABLE[command]
    again = args + ([flag] if flag and flag not in args else [])
    return (f"interrupted: what was finished is kept; `roi {shlex.join(again)}` resumes where "
            "it stopped")


if __name__ == "__main__":
    sys.exit(main())
