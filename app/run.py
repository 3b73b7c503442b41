"""`roi run`: one command from the question to the answer, in one run directory.

    RUN/run.yaml           the settings used (config over the profile's budget)
    RUN/state.json         the steps finished, with their wall times
    RUN/bench/             1. the teacher and candidate students measured        (roi bench)
    RUN/pilot/             2. pilot distillations of every student, KD and baseline (roi pilot)
    RUN/plan/              3. the plan: scenarios, sizing, retention forecast, decision, ROI
                              (roi plan --pilot)
    RUN/report/            3. the report (report.html, report.md, figures/; decision/, sizing/
                              and distill-plan/ hold the same sections as separate reports)
                              -- gate: a no-go plan stops here and says so --
    RUN/distill/           4. the recommended student distilled, exported, int8  (roi distill)
    RUN/bench-student/     5. the distilled student measured beside the teacher  (roi bench)
    RUN/report/            6. the final report: predicted beside achieved
    RUN/summary.json       the answer in a few numbers

Resume: each finished step is recorded in state.json (written atomically after its outputs);
rerunning with the same directory skips finished steps whose outputs are still there, continues
an interrupted bench or distillation from its own checkpoints, and redoes from scratch a step
whose inputs were redone. A run directory keeps its settings: rerunning it with others is
refused.

This module lives in `app` (the top layer) because it is the CLI's job, and it imports bench,
distill and reports (and so torch) only inside the steps that need them: `import app.run` stays
light.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, ContextManager, Optional

import yaml

from contracts.errors import InputError
from contracts.io import dir_lock, has_content, write_json_atomic, write_text_atomic
from contracts.run_layout import RunLayout

from . import run_encoder
from .runconfig import RunConfig, check, load_run_config, resolved
from .summary import summarize, summary_line

log = logging.getLogger(__name__)
# The pipeline's Python API (README): run, render, and the line a run's summary reads as.
__all__ = ["Hooks", "Run", "RunResult", "Step", "STEPS", "execute", "open_run", "read_state",
           "render", "run", "summary_line"]

RUN_FILE, STATE_FILE, SUMMARY_FILE = (RunLayout.RUN_FILE, RunLayout.STATE_FILE,
                                      RunLayout.SUMMARY_FILE)
RESULTS_CSV = RunLayout.RESULTS[0]  # what bench writes in a run (the .jsonl is read too)
Progress = Callable[..., None]


class Hooks:
    """What the caller sees of a run. The default logs; the CLI draws progress bars."""

    def step(self, index: int, total: int, name: str, status: str, detail: str = "") -> None:
        """status: start or resume (detail: what the step does), done (detail: wall time),
        skip (finished earlier)."""
        log.info("%s", step_line(index, total, name, status, detail))

    def bench_progress(self) -> ContextManager[Optional[Progress]]:
        return contextlib.nullcontext(None)

    def train_progress(self) -> ContextManager[Optional[Progress]]:
        return contextlib.nullcontext(None)

    def pilot_progress(self) -> ContextManager[Optional[Progress]]:
        return contextlib.nullcontext(None)


def step_line(index: int, total: int, name: str, status: str, detail: str = "") -> str:
    text = {"start": f"{detail}...", "resume": f"resuming: {detail}...",
            "skip": "finished earlier, skipped", "done": f"done in {detail}"}.get(status, status)
    return f"[{index}/{total}] {name}: {text}"


@dataclass
class Run:
    """A run directory and the settings it runs with (`settings` is run.yaml)."""

    out: Path
    settings: dict
    hooks: Hooks = field(default_factory=Hooks)

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.out)


@dataclass(frozen=True)
class Step:
    name: str
    what: str
    owns: Optional[str]  # the directory the step writes (cleared when it starts over)
    needs: tuple[str, ...]  # steps whose outputs it reads
    outputs: tuple[str, ...]  # files that must exist for the step to count as finished
    action: Callable[[Run], Any]


@dataclass(frozen=True)
class RunResult:
    out: Path
    summary: dict

    @property
    def go(self) -> bool:
        return bool(self.summary.get("go"))


# ------------------------------------------------------------------------------ the steps


def _bench_kwargs(run: Run) -> dict:
    """The run's bench settings (BenchSettings' fields that are set, over the profile's) are
    plan_sweep's keywords of the same names, as they are; a run resumes its sweeps."""
    return {**run.settings["bench"], "resume": True}


def _sweep(run: Run, out: Path, teacher: str, students: Any) -> None:
    from bench.sweep import plan_sweep, run_plan

    plan = plan_sweep(teacher=teacher, students=students, out=out, **_bench_kwargs(run))
    with run.hooks.bench_progress() as progress:
        run_plan(plan, progress)


def step_bench(run: Run) -> None:
    s = run.settings
    students = s["students"]
    if run_encoder.is_embedding(s):  # the teacher shrunk, saved where bench can load it
        students = run_encoder.candidate_students(s["teacher"], run.path("bench"))
    _sweep(run, run.path("bench"), s["teacher"], students)


# trainer settings of a run that are about its length or bookkeeping, not its recipe: the
# pilots take everything else, so their curves forecast the run's own distillation
_NOT_PILOT = ("steps", "eval_every", "ckpt_every")


def pilot_config(settings: dict):
    """The pilots' trainer settings: the planner's recipe, the run's trainer settings over it."""
    from distill.config import make_config

    from roi.planner import TRAINER_DEFAULTS

    trainer = {k: v for k, v in settings["trainer"].items() if k not in _NOT_PILOT}
    return make_config({**TRAINER_DEFAULTS, **trainer, "teacher": settings["teacher"]},
                       "run config: trainer")


def pilot_skip_reason(settings: dict) -> Optional[str]:
    from models.zoo import parse_spec

    if not settings["pilot"]["enabled"]:
        return "pilot: enabled: false in the config"
    if run_encoder.is_embedding(settings):
        return run_encoder.pilot_skip_reason()
    if not settings["distill"]:
        return "distill: false in the config (nothing will be trained)"
    if parse_spec(settings["teacher"]).kind not in ("builtin", "ckpt", "hf"):
        return "the teacher has no weights the trainer can load"
    if not _pilot_students(settings):
        return "no builtin student (the trainer trains builtin architectures only)"
    return None


def _pilot_students(settings: dict) -> list[str]:
    from models.zoo import parse_students

    return [s.spec for s in parse_students(settings["students"])
            if s.kind == "builtin" and s.spec != settings["teacher"]]


def step_pilot(run: Run) -> None:
    from contracts.curves import to_frame

    s = run.settings
    why = pilot_skip_reason(s)
    if why is not None:
        write_json_atomic(run.layout.pilot_skipped, {"reason": why})
        write_text_atomic(run.layout.pilot_curves, to_frame([]).to_csv(index=False))
        return
    from distill.pilot import pilot

    budget = {k: v for k, v in s["pilot"].items() if k != "enabled"}  # pilot's own keywords
    with run.hooks.pilot_progress() as progress:
        pilot(pilot_config(s), _pilot_students(s), run.path("pilot"), progress=progress,
              **budget)


# the run's settings roi.planner.plan takes under the same names
PLAN_SETTINGS = ("hardware", "retention_threshold", "local_peak_gflops", "require_benefit",
                 "portfolio")


def _planned(run: Run, curves):
    """The plan of the run's results and scenarios with its settings, its economics as the ROI
    inputs, `curves` as the pilots, and the run's own budget reported."""
    from roi.payback import RoiInputs
    from roi.planner import plan

    s = run.settings
    return plan(run.path(RESULTS_CSV), s["scenarios"], roi_inputs=RoiInputs(**s["economics"]),
                pilot=curves, report_steps=[int(s["trainer"]["steps"])],
                **{k: s[k] for k in PLAN_SETTINGS})


def step_plan(run: Run) -> None:
    from roi.planner import Plan, write_plan

    s = run.settings
    result = _planned(run, _pilot_curves(run))
    doc = dict(result.to_dict())
    note = _trainer_note(s, doc["trainer"].get("steps"))
    doc["trainer_note"] = " ".join(filter(None, [doc.get("trainer_note"), note]))
    if run_encoder.is_embedding(s):
        from distill.encoder_eval import RETENTION_METRIC

        doc["retention_metric"] = RETENTION_METRIC
    write_plan(Plan(doc, result.grid), run.path("plan"))


def _trainer_note(s: dict, planned) -> str:
    """How the run's own distillation relates to the plan's trainer section."""
    if run_encoder.is_embedding(s):
        return (f"task embedding: roi run distills with the encoder trainer "
                f"(distill/encoder_pipeline.py, as `roi distill-encoder`; "
                f"{_budget_text(s['trainer'])}); this section's {planned} steps and their cost "
                "are the planner's causal-LM recipe, not that run's.")
    return (f"roi run distills with a smaller budget ({_budget_text(s['trainer'])}, profile "
            f"{s['profile']}; run.yaml) than this section's {planned} steps, which size the full "
            "distillation: `roi distill --plan plan/plan.yaml --out DIR` runs that one.")


def _pilot_curves(run: Run) -> Optional[Path]:
    path = run.layout.pilot_curves
    return path if path.is_file() and not run.layout.pilot_skipped.is_file() else None


def _budget_text(trainer: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in trainer.items())


def step_report(run: Run) -> None:
    render(run.out)


def step_distill(run: Run) -> None:
    from distill.pipeline import distill_from_plan

    plan = _plan(run.out)
    if run_encoder.is_embedding(run.settings):
        with run.hooks.train_progress() as progress:
            run_encoder.distill(run.settings, plan, run.path("distill"), progress)
        return
    refine = bool(plan["decision"].get("retention_unconfirmed"))  # the run's own gate let it in
    with run.hooks.train_progress() as progress:
        distill_from_plan(run.layout.plan_yaml, run.path("distill"), resume=True,
                          force=run.settings["force"] or refine,
                          overrides=run.settings["trainer"], progress=progress)


def step_replan(run: Run) -> None:
    """The plan again with the distillation's own result (a KD and a baseline point at the run's
    budget) beside the pilots: what the full budget is now forecast to reach, and cost."""
    from roi.planner import write_plan

    own = None if run_encoder.is_embedding(run.settings) else run.layout.metrics  # no own curve
    curves = [p for p in (_pilot_curves(run), own) if p is not None] or None
    write_plan(_planned(run, curves), run.path("replan"))


def step_bench_student(run: Run) -> None:
    student = f"ckpt:{run.path('distill').resolve()}"
    if run_encoder.is_embedding(run.settings):
        student = run_encoder.distilled_spec(run.path("distill"))
    _sweep(run, run.path("bench-student"), run.settings["teacher"], [student])


STEPS: tuple[Step, ...] = (
    Step("bench", "measure the teacher and candidate students", "bench", (),
         (RESULTS_CSV,), step_bench),
    Step("pilot", "pilot distillations of every student (KD and no-KD baseline)", "pilot", (),
         (RunLayout.PILOT_CURVES,), step_pilot),
    Step("plan", "cost, sizing, retention forecast and decision for every scenario", "plan",
         ("bench", "pilot"), RunLayout.PLAN, step_plan),
    Step("report", "the decision and sizing report", "report", ("bench", "plan"),
         ("report/report.html",), step_report),
    Step("distill", "distill the recommended student, export, int8", "distill", ("plan",),
         (RunLayout.METRICS,), step_distill),
    Step("bench-student", "measure the distilled student beside the teacher", "bench-student",
         ("distill",), RunLayout.STUDENT_RESULTS[:1], step_bench_student),
    Step("replan", "the plan again, with the distillation's own result beside the pilots",
         "replan", ("plan", "distill"), (RunLayout.REPLAN,), step_replan),
    Step("final-report", "the report with predicted beside achieved", "report",
         ("bench", "plan", "distill", "bench-student", "replan"), ("report/report.html",),
         step_report),
)
GATE_AFTER = "report"


# ------------------------------------------------------------------------------ rendering


def render(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """RUN/report: the whole report, plus its decision, sizing and distill-plan parts as
    separate reports in report/<part>/. Returns report.html's path."""
    import reports

    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "report"
    return reports.write_with_parts(reports.build(run_dir), out).html


# ------------------------------------------------------------------------------ the run


def open_run(config: RunConfig, out: str | Path, profile: str = "default",
             hooks: Hooks | None = None) -> Run:
    """Check everything, then create (or reopen) the run directory; refuse to reopen one with
    other settings."""
    settings = resolved(config, profile)
    check(settings)
    from contracts.io import check_out_dir

    out = check_out_dir(out)  # a file, a file above it, an unwritable place: one line
    saved = out / RUN_FILE
    if saved.is_file():
        from contracts.config import read_yaml

        _same_settings(read_yaml(saved, "run settings"), settings, out)
    elif has_content(out):
        raise InputError(f"--out {out}: not empty and not a run directory (no {RUN_FILE}); "
                         "choose another --out")
    else:
        write_text_atomic(saved, yaml.safe_dump(settings, sort_keys=False))
    return Run(out, settings, hooks or Hooks())


def _same_settings(saved: Any, now: dict, out: Path) -> None:
    if saved == now:
        return
    saved = saved if isinstance(saved, dict) else {}
    diff = next((k for k in dict.fromkeys([*now, *saved]) if saved.get(k) != now.get(k)), "?")
    raise InputError(f"{out} was started with other settings ({diff}: {saved.get(diff)!r} in "
                     f"{RUN_FILE}, {now.get(diff)!r} now); rerun it with the same --config and "
                     "--quick, or choose another --out")


def read_state(out: Path) -> dict:
    path = out / STATE_FILE
    if not path.is_file():
        return {"steps": {}}
    import json

    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        state = e
    if not isinstance(state, dict) or not isinstance(state.get("steps"), dict):
        why = state if isinstance(state, Exception) else "no steps mapping"
        raise InputError(f"{path} is damaged ({why}); it records which steps finished, so the "
                         "run will not guess: restore it, delete it to redo every step, or "
                         "choose another --out")
    return state


def execute(run: Run, steps: tuple[Step, ...] = STEPS) -> RunResult:
    """Run the steps not finished yet, in order, gating on the plan's decision (a second
    `roi run` on the same directory is refused while this one holds it)."""
    with dir_lock(run.out):
        return _execute(run, steps)


def _execute(run: Run, steps: tuple[Step, ...]) -> RunResult:
    state = read_state(run.out)
    state.pop("stopped", None)
    redone: set[str] = set()
    for i, step in enumerate(steps, 1):
        finished = step.name in state["steps"] and all(run.path(o).is_file()
                                                       for o in step.outputs)
        if finished and not redone.intersection(step.needs):
            run.hooks.step(i, len(steps), step.name, "skip", "finished earlier")
        else:
            _do(run, state, step, i, len(steps),
                fresh=step.name in state["steps"] or bool(redone.intersection(step.needs)))
            redone.add(step.name)
        if step.name == GATE_AFTER:
            stop = _gate(run)
            if stop:
                state["stopped"] = stop
                write_json_atomic(run.path(STATE_FILE), state)
                break
    return RunResult(run.out, finish(run, state))


def _do(run: Run, state: dict, step: Step, index: int, total: int, fresh: bool) -> None:
    """One step; `fresh` clears what an earlier attempt left (its inputs changed, or its
    outputs went missing), otherwise the step resumes from whatever is there."""
    state["steps"].pop(step.name, None)
    write_json_atomic(run.path(STATE_FILE), state)
    owned = run.path(step.owns) if step.owns else None
    if fresh and owned is not None and owned.exists():
        shutil.rmtree(owned)
    resuming = owned is not None and has_content(owned)
    run.hooks.step(index, total, step.name, "resume" if resuming else "start", step.what)
    t0 = time.perf_counter()
    step.action(run)
    wall = time.perf_counter() - t0
    state["steps"][step.name] = {"finished": _now(), "wall_s": round(wall, 2)}
    write_json_atomic(run.path(STATE_FILE), state)
    run.hooks.step(index, total, step.name, "done", f"{wall:.0f} s")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _gate(run: Run) -> Optional[str]:
    """Why the run stops after the report (None: it goes on to distill)."""
    plan = _plan(run.out)
    if not run.settings["distill"]:
        return "distill: false in the config (plan and report only)"
    if plan["decision"]["go"]:
        return None
    if run.settings["force"]:
        log.warning("the plan says no-go; distilling anyway (force: true)")
        return None
    if plan["decision"].get("retention_unconfirmed"):
        log.warning("the forecast cannot confirm the retention yet: distilling %s for the "
                    "run's budget to refine it, then re-planning",
                    plan["decision"]["retention_unconfirmed"]["model"])
        return None
    return "no-go"


def _plan(out: Path) -> dict:
    from roi.planner import read_plan

    return read_plan(RunLayout(out).plan_json).document()


def run(config: RunConfig | str | Path | None = None, out: str | Path | None = None, *,
        quick: bool = False, hooks: Hooks | None = None) -> RunResult:
    """Python API: bench → plan → report → (go) distill → bench the student → final report.

    config: a RunConfig, a YAML file, or None (the default question). out: the run directory
    [default: runs/<time>]; an existing one resumes."""
    if not isinstance(config, RunConfig):
        config = load_run_config(config)
    out = out if out is not None else default_out()
    return execute(open_run(config, out, "quick" if quick else "default", hooks))


def default_out() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


# ------------------------------------------------------------------------------ the answer


def finish(run: Run, state: dict) -> dict:
    """RUN/summary.json: the decision, the student, savings, payback, and what was achieved."""
    plan = _plan(run.out)
    summary = summarize(plan, _metrics(run.out), state, run.out, _replan(run.out))
    write_json_atomic(run.path(SUMMARY_FILE), summary)
    return summary


def _metrics(out: Path) -> Optional[dict]:
    import json

    path = RunLayout(out).metrics
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _replan(out: Path) -> Optional[dict]:
    from roi.planner import read_plan

    path = RunLayout(out).replan
    return read_plan(path).document() if path.is_file() else None
