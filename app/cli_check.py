"""`roi check`: the side tools that set roi's models beside a measurement, on the roi command.
`roi check llm-timing` is checks/llm_check.py's comparison; its options are derived here from
checks.llm_check_settings.LLMCheckSettings, where each is defined once (the same fields give
`python -m checks.llm_check` its argparse options). Added to the command in app/cli.py.
"""

from __future__ import annotations

import inspect

import typer
from pydantic import BaseModel

from checks.llm_check_settings import LLMCheckSettings
from contracts.config import validate

check_app = typer.Typer(no_args_is_help=True, help="Set roi's models beside a measurement: "
                        "llm-timing times a config: LLM for real against roi's serving model.")


def _options(model: type[BaseModel]) -> list[inspect.Parameter]:
    """One keyword parameter per field of `model`: type, default and help from the field, the
    flag from its name (batch_sizes -> --batch-sizes); a required field is a required option."""
    return [inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=field.annotation,
        default=typer.Option(... if field.is_required() else field.default,
                             "--" + name.replace("_", "-"), help=field.description))
        for name, field in model.model_fields.items()]


def llm_timing(**values) -> None:
    """Time a config: LLM for real (random weights: TTFT, TPOT, tokens/s, memory per decode
    mode) and set each point beside roi's serving-model projection; writes measured.json and
    comparison.csv/.json/.md to --out. Needs torch and transformers ([hf]).

    Example: roi check llm-timing --model llama-3.2-1b --device cpu --smoke --batch-sizes 1,4
    --threads 1 --out runs/llm-check
    """
    from checks.llm_check import run

    run(validate(LLMCheckSettings, values, "roi check llm-timing: "))


llm_timing.__signature__ = inspect.Signature(_options(LLMCheckSettings))
llm_timing.__annotations__ = {p.name: p.annotation
                              for p in llm_timing.__signature__.parameters.values()}
check_app.command("llm-timing")(llm_timing)
