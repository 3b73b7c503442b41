"""`roi check`: the side tools that set roi's models beside a measurement, on the roi command.
`roi check llm-timing` is checks/llm_check.py's comparison; its options are derived
(app/cli_options.py) from checks.llm_check_settings.LLMCheckSettings, where each is defined once
(the same fields give `python -m checks.llm_check` its argparse options). Added to the command
in app/cli.py.
"""

from __future__ import annotations

import typer

from checks.llm_check_settings import LLMCheckSettings
from contracts.config import validate

from .cli_options import options, with_parameters

check_app = typer.Typer(no_args_is_help=True, help="Set roi's models beside a measurement: "
                        "llm-timing times a config: LLM for real against roi's serving model.")


def llm_timing(**values) -> None:
    """Time a config: LLM for real (random weights: TTFT, TPOT, tokens/s, memory per decode
    mode) and set each point beside roi's serving-model projection; writes measured.json and
    comparison.csv/.json/.md to --out. Needs torch and transformers ([hf]).

    Example: roi check llm-timing --model llama-3.2-1b --device cpu --smoke --batch-sizes 1,4
    --threads 1 --out runs/llm-check
    """
    from checks.llm_check import run

    run(validate(LLMCheckSettings, values, "roi check llm-timing: "))


_OPTIONS = options(LLMCheckSettings)
check_app.command("llm-timing")(with_parameters(
    llm_timing, _OPTIONS, {p.name: (LLMCheckSettings, p.name, False) for p in _OPTIONS}))
