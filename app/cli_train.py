"""The `roi` subcommands that train or make training data: distill, pilot and generate.
Registered on the command in app/cli.py. Options that are settings are derived from their
fields (app/cli_options.py): generate's from distill.generate_types.GenerateConfig, --data and
--text-field from the trainer's distill.config.TrainConfig, pilot's --points and --modes from
`roi run`'s pilot settings (app/runconfig.py), distill-encoder's from
distill.encoder_inputs.EncoderInputs.
"""

from __future__ import annotations

from typing import Optional

import typer

from contracts.errors import InputError
from distill.config import TrainConfig
from distill.encoder_inputs import EncoderInputs
from distill.generate_types import GenerateConfig

from .cli_common import default_out
from .cli_options import from_settings, setting, settings_values
from .runconfig import RunConfig


# --data and --text-field: the trainer's data_source and text_field (unset: the plan's)
DATA = setting("data_source", note="[default: the plan's data_source]", metavar="FILE")
TEXT_FIELD = setting("text_field", metavar="NAME")


def data_overrides(data: Optional[str], text_field: Optional[str]) -> dict:
    """--data and --text-field as trainer settings (data_source, text_field)."""
    if text_field is not None and not text_field.strip():
        raise InputError("--text-field: must name a field; got an empty string")
    return {k: v for k, v in (("data_source", data), ("text_field", text_field))
            if v is not None}


@from_settings(TrainConfig, unset=True)
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
    data=DATA,
    text_field=TEXT_FIELD,
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


@from_settings(EncoderInputs)
def distill_encoder(
    teacher: str = typer.Option(..., help="An encoder: hf:DIR or hf:ORG/NAME[@REVISION] (BERT "
                                "family): sentence embeddings (pooled as its 1_Pooling/"
                                "config.json says, else by mean), a *ForSequenceClassification "
                                "classifier, or a cross-encoder (num_labels 1). python -m "
                                "distill.build_encoder [--task ...] builds one offline."),
    out: str = typer.Option(..., help="Output directory: the student (hf:DIR), metrics.json, "
                            "and baseline/ (the no-KD baseline, labeled data only)."),
    data=setting(metavar="FILE"),
    text_field=setting(metavar="NAME"),
    pair_field=setting(metavar="NAME"),
    label_field=setting(metavar="NAME"),
    negative_field=setting(metavar="NAME"),
    task=setting(as_text=True),
    student=setting(),
    baseline=setting(),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out."),
    export=setting(),
    set_: list[str] = typer.Option([], "--set", help="Override one setting, key=value "
                                   "(distill.encoder.EncoderConfig), e.g. --set layers=2."),
) -> None:
    """Distill an encoder into fewer of its layers on your text (embeddings: MSE + cosine;
    classifier: logit KD + CE on labels; cross-encoder: score MSE, or Margin-MSE on
    (query, positive, negative) rows); retention in the task's
    metric (Spearman and top-10 neighbours; accuracy, F1, top-1 agreement; NDCG@10).

    Example: roi distill-encoder --teacher hf:DIR --out runs/encoder --set steps=600
    """
    from distill.encoder_pipeline import run, summary_lines
    from distill.pipeline import parse_overrides

    from .console import training_progress

    inputs = EncoderInputs(**settings_values(distill_encoder, locals()))
    with training_progress() as progress:
        metrics = run(teacher, out, inputs, parse_overrides(set_), resume, progress)
    print("\n".join(summary_lines(metrics)))


@from_settings(TrainConfig, unset=True)
def pilot(
    teacher: str = typer.Option("builtin:teacher", help="Teacher model spec (builtin:NAME, "
                                "ckpt:DIR, hf:DIR or hf:ORG/NAME[@REVISION]: the trainer's "
                                "teacher)."),
    students: str = typer.Option("auto", help="Comma-separated builtin student specs, or "
                                 "'auto' for builtin:student-5x,-10x,-20x,-50x."),
    steps: int = typer.Option(96, help="The longest pilot budget, optimizer steps."),
    points=setting("pilot.points", model=RunConfig, unset=False, comma=True),
    modes=setting("pilot.modes", model=RunConfig, unset=False, comma=True),
    config: Optional[str] = typer.Option(None, help="YAML file of trainer settings over the "
                                         "planner's recipe (the recipe the full distillation "
                                         "will use)."),
    set_: list[str] = typer.Option([], "--set", help="Override one trainer setting, key=value "
                                   "(repeatable), e.g. --set dtype=bf16."),
    out: Optional[str] = typer.Option(None, help="Output directory for pilot.csv "
                                      "[default: runs/pilot-<time>]; an existing one resumes."),
    data=DATA,
    text_field=TEXT_FIELD,
) -> None:
    """Pilot distillations: short runs of every student (KD and no-KD baseline) whose points
    are what whole runs of those budgets end at; pilot.csv is what roi plan --pilot forecasts
    retention from.

    \b
    Example: roi pilot --students builtin:student-10x --steps 64 --out runs/pilot-1
    """
    from distill.pipeline import parse_overrides
    from distill.pilot import pilot as run_pilot

    from .console import pilot_progress, print_pilot_summary

    cfg, specs, budget, mode_list = pilot_settings(
        teacher, students, steps, points, modes, config,
        {**parse_overrides(set_), **data_overrides(data, text_field)})
    from contracts.io import check_out_dir

    out_dir = str(check_out_dir(out or default_out("pilot")))
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

    from roi.planner import TRAINER_DEFAULTS

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


API = "(api: teachers)"


@from_settings(GenerateConfig, unset=True)
def generate(
    teacher=setting(),
    out: Optional[str] = typer.Option(None, help="Output directory: samples.jsonl, "
                                      "failures.jsonl, manifest.json, run.json [default: "
                                      "runs/generate-<time>]."),
    prompts=setting(),
    num_prompts=setting(),
    max_new_tokens=setting(),
    temperature=setting(),
    top_p=setting(),
    seed=setting(),
    batch_size=setting(),
    api_base_url=setting(note=API),
    api_endpoint=setting(note=API, as_text=True),  # the model's error names the field
    api_key_env=setting(note=API),
    concurrency=setting(note=API),
    max_requests=setting(note=API),
    config: Optional[str] = typer.Option(None, help="YAML file of generate settings (fields of "
                                         "distill.generate_types.GenerateConfig); options given on "
                                         "the command line win."),
    set_: list[str] = typer.Option([], "--set", help="Any other setting, key=value "
                                   "(repeatable), e.g. --set prompt_chars=96."),
    resume: bool = typer.Option(False, help="Continue an interrupted run in --out."),
) -> None:
    """Teacher-generated training data (sequence-level distillation): continuations of prompts,
    written as JSONL with provenance; train on it with data_mode: generated.

    \b
    Example: roi generate --teacher builtin:teacher --num-prompts 256 --max-new-tokens 64
             --out runs/generate-1
    """
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
        result = run_generate(cfg, out or default_out("generate"), resume=resume,
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
