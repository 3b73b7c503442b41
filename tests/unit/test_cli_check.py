"""`roi check llm-timing` and `python -m checks.llm_check`: both command lines are derived from
LLMCheckSettings' fields (the same flags, defaults and help), and both refuse bad settings in
one line with exit code 2 before anything is measured or written. Nothing here runs a model."""

from __future__ import annotations

import pytest
import typer.main

from app.cli import app, main
from checks import llm_check
from checks.llm_check_settings import LLMCheckSettings

FIELDS = LLMCheckSettings.model_fields


def _roi_options() -> dict[str, object]:
    check = typer.main.get_command(app).commands["check"].commands["llm-timing"]
    return {p.opts[0]: p for p in check.params if p.opts[0] != "--help"}


def test_both_command_lines_have_the_fields_flags_defaults_and_help():
    flags = {"--" + name.replace("_", "-"): f for name, f in FIELDS.items()}
    roi = _roi_options()
    assert set(roi) == set(flags)
    argparse_opts = {a.option_strings[0]: a for a in llm_check._parser()._actions
                     if a.option_strings[0] != "-h"}
    assert set(argparse_opts) == set(flags)
    for flag, field in flags.items():
        assert roi[flag].help == field.description
        assert argparse_opts[flag].help.startswith(field.description)
        assert roi[flag].required == argparse_opts[flag].required == field.is_required()
        if not field.is_required() and field.annotation is not bool:
            assert roi[flag].default == field.default
    assert roi["--prompt-tokens"].default == 512 and roi["--model"].multiple


BAD = {  # argument changed -> the field the one error line names
    ("--batch-sizes", "1,0"): "batch_sizes: must be positive integers",
    ("--modes", "eager,fast"): "modes: must be decode modes of eager, static, graph",
    ("--prompt-tokens", "0"): "prompt_tokens: must be greater than 0",
    ("--device", "tpu"): "device:",
    ("--hardware", "nope"): "unknown hardware 'nope'",
    ("--model", "nope"): "config:nope: no such file",
}


@pytest.mark.parametrize("change,expected", list(BAD.items()), ids=lambda x: str(x))
@pytest.mark.parametrize("entry", ["roi", "python -m"])
def test_bad_settings_are_one_line_and_exit_2_with_nothing_written(tmp_path, capsys, entry,
                                                                   change, expected):
    out = tmp_path / "out"
    args = {"--model": "llama-3.2-1b", "--device": "cpu", "--out": str(out), **dict([change])}
    argv = [x for kv in args.items() for x in kv]
    code = main(["check", "llm-timing", *argv]) if entry == "roi" else llm_check.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert expected in err
    assert not out.exists()
