"""The `roi` options derived from settings models (app/cli_options.py). Each converted command's
options carry their field's default and help, so the two cannot drift apart again; and the
derivation gives typer what the command line takes: choices, repeatable or comma-separated
lists, required and optional options, beside a command's own options."""

from __future__ import annotations

from typing import Literal, Optional

import pytest
import typer
import typer.main
from pydantic import BaseModel, Field, PositiveInt

from app.cli import app
from app.cli_options import from_settings, model_field, setting


def _commands(group: typer.Typer, prefix: tuple = ()):
    """(path, function) of every registered subcommand, those of the groups included."""
    for c in group.registered_commands:
        yield prefix + (c.name or c.callback.__name__,), c.callback
    for g in group.registered_groups:
        yield from _commands(g.typer_instance, prefix + (g.name,))


DERIVED = {" ".join(path): f for path, f in _commands(app) if getattr(f, "__settings__", None)}


def _click(path: str):
    cmd = typer.main.get_command(app)
    for name in path.split():
        cmd = cmd.commands[name]
    return {p.name: p for p in cmd.params}


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


# The options each converted command takes from its settings model: written back by hand, an
# option leaves this set and the test below fails.
CONVERTED = {
    "distill": {"data", "text_field"},
    "pilot": {"points", "modes", "data", "text_field"},
    "bench": {"teacher", "students", "batch_sizes", "threads", "device", "memory_budget_mb",
              "timeout_s", "isolate", "rounds"},
    "check llm-timing": {"model", "out", "device", "dtype", "batch_sizes", "prompt_tokens",
                         "output_tokens", "modes", "ttft_reps", "hardware", "predict_dtype",
                         "smoke", "threads"},
    "generate": {"teacher", "prompts", "num_prompts", "max_new_tokens", "temperature", "top_p",
                 "seed", "batch_size", "api_base_url", "api_endpoint", "api_key_env",
                 "concurrency", "max_requests"},
    "loadtest": {"model", "backend", "scenario", "qps", "latency_ms", "percentile", "seq_len",
                 "threads", "max_batch", "batch_window_ms", "workers", "min_duration_ms",
                 "min_query_count", "samples", "role", "user_conf", "mode"},
    "distill-encoder": {"data", "text_field", "pair_field", "label_field", "negative_field",
                        "task", "student", "baseline", "export"},
    "import": {"hardware", "role", "model", "dtype", "params", "device", "batch_size",
               "seq_len"},
    "plan": {"retention_threshold", "local_peak_gflops", "engineering_weeks",
             "engineering_usd_per_week", "training_hardware", "training_hours",
             "require_benefit", "portfolio", "datagen", "datagen_samples",
             "datagen_prompt_tokens", "datagen_completion_tokens", "datagen_tokens_per_s",
             "datagen_price_in", "datagen_price_out", "datagen_prices"},
}


def test_the_converted_commands_derive_their_options():
    assert {path: set(DERIVED[path].__settings__) for path in DERIVED} == CONVERTED


@pytest.mark.parametrize("path", sorted(DERIVED))
def test_each_derived_option_has_its_fields_default_and_help(path):
    params = _click(path)
    for name, (model, field_name, unset) in DERIVED[path].__settings__.items():
        info, param = model_field(model, field_name), params[name]
        assert info.description, f"{model.__name__}.{field_name} has no description"
        assert param.help.startswith(info.description), (name, param.help)
        assert param.required == info.is_required(), name
        default = info.get_default(call_default_factory=True)
        if unset:  # not given: the model's default (or the command's own) said in the help
            assert param.default is None, name
            assert default is None or "[default:" in param.help[len(info.description):], name
        elif not info.is_required():
            shown = list(param.default) if param.multiple else param.default
            assert shown == (default if param.multiple or not isinstance(default, list)
                             else _shown(default)), name


class Toy(BaseModel):
    path: str = Field(description="Required path.")
    names: list[str] = Field(["a", "b"], description="Names.")
    sizes: Optional[list[PositiveInt]] = Field(None, description="Sizes.")
    mode: Literal["x", "y"] = Field("x", description="Mode.")
    count: int = Field(3, gt=0, description="Count.")
    limit: list[PositiveInt] | None = Field(None, description="Limits.")


def _toy(unset: bool) -> typer.Typer:
    toy_app = typer.Typer(add_completion=False)

    @toy_app.command()
    @from_settings(Toy, unset=unset)
    def toy(path=setting(), names=setting(comma=True), sizes=setting(), mode=setting(),
            own: bool = typer.Option(False, help="A command-only option."),
            how_many=setting("count", note="(here)")) -> None:
        print(repr((path, names, sizes, mode, own, how_many)))

    return toy_app


def _run(toy_app: typer.Typer, *args: str):
    from typer.testing import CliRunner

    return CliRunner().invoke(toy_app, list(args))


def test_types_defaults_and_command_options_come_through():
    toy_app = _toy(unset=False)
    done = _run(toy_app, "--path", "p")
    assert done.exit_code == 0 and done.stdout.strip() == "('p', 'a,b', None, 'x', False, 3)"
    done = _run(toy_app, "--path", "p", "--sizes", "2", "--sizes", "4", "--names", "c",
                "--mode", "y", "--own", "--how-many", "5")
    assert done.stdout.strip() == "('p', 'c', [2, 4], 'y', True, 5)", done.output
    params = {p.name: p for p in typer.main.get_command(toy_app).params}
    assert list(params) == ["path", "names", "sizes", "mode", "own", "how_many"]
    assert params["how_many"].help == "Count. (here)" and params["own"].help.startswith("A ")


def test_choices_and_required_options_are_checked_by_the_command_line():
    toy_app = _toy(unset=False)
    assert _run(toy_app, "--path", "p", "--mode", "z").exit_code == 2
    assert _run(toy_app).exit_code == 2  # --path is required


def test_unset_options_default_to_none_and_say_the_models_default():
    toy_app = _toy(unset=True)
    done = _run(toy_app, "--path", "p")
    assert done.stdout.strip() == "('p', None, None, None, False, None)", done.output
    params = {p.name: p for p in typer.main.get_command(toy_app).params}
    assert params["names"].help == "Names. (comma-separated) [default: a,b]"
    assert params["how_many"].help == "Count. (here) [default: 3]"
    assert params["sizes"].help == "Sizes."


def test_options_picks_fields_and_gives_each_its_one_flag():
    from app.cli_options import options

    picked = options(Toy, exclude=("names", "sizes", "limit"))
    assert [p.name for p in picked] == ["path", "mode", "count"]
    assert [p.name for p in options(Toy, include=("count", "mode"))] == ["count", "mode"]
    assert options(Toy, include=("limit",))[0].annotation == Optional[list[int]]
    assert picked[0].default.default is ... and picked[2].default.default == 3
    assert [p.default.param_decls for p in picked] == [("--path",), ("--mode",), ("--count",)]


@pytest.mark.parametrize("args,allowed", [
    (["--scenario", "bogus"], "allowed: singlestream, multistream, server, offline"),
    (["--test-mode", "x"], "--mode: allowed performance, accuracy; got 'x'"),
    (["--mode", "x"], "--mode: allowed performance, accuracy; got 'x'"),
    (["--backend", "trt"], "allowed: torch-eager, torch-eager-bf16, ort-fp32, ort-int8"),
    (["--role", "judge"], "--role: allowed teacher, student; got 'judge'"),
])
def test_an_unknown_choice_is_one_line_naming_the_allowed_ones(tmp_path, capsys, args, allowed):
    from app.cli import main

    code = main(["loadtest", "--model", "builtin:student-50x", "--qps", "5", "--latency-ms",
                 "5", *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert allowed in err
    assert not (tmp_path / "out").exists()


def test_a_choice_taken_as_text_shows_its_values_and_mlperf_spellings_pass():
    from bench.loadtest_settings import SCENARIOS, LoadtestSettings

    params = _click("loadtest")
    assert params["scenario"].metavar == "[" + "|".join(SCENARIOS) + "]"
    assert params["mode"].opts == ["--mode", "--test-mode"]
    for name, key in zip(SCENARIOS.values(), SCENARIOS):
        assert LoadtestSettings(model="m", scenario=name).scenario == key


def test_the_import_options_choices_are_the_readers():
    from typing import get_args

    from roi.import_options import ImportOptions
    from roi.measurements import ROLES

    assert get_args(ImportOptions.model_fields["role"].annotation) == ROLES
    params = _click("import")
    assert params["role"].metavar == "[teacher|student]" and params["role"].required


def test_the_encoder_tasks_are_the_models_and_a_bad_one_is_one_line(tmp_path, capsys):
    from typing import get_args

    from app.cli import main
    from distill.encoder_inputs import EncoderInputs
    from models.encoder import TASKS

    assert get_args(EncoderInputs.model_fields["task"].annotation) == ("auto", *TASKS)
    code = main(["distill-encoder", "--teacher", "hf:x", "--out", str(tmp_path / "o"),
                 "--task", "ranking"])
    err = capsys.readouterr().err
    assert code == 2 and err == ("error: --task ranking: expected one of auto, embedding, "
                                 "classification, cross-encoder\n")
    assert not (tmp_path / "o").exists()
