"""The `roi` command line. Each subcommand maps to a plain function, grouped by job in
cli_measure.py (bench, hardware, scenarios, loadtest, import), cli_train.py (distill, pilot,
generate), cli_plan.py (plan, run, report), cli_cache.py (cache) and cli_check.py (check), and
registered here; heavy imports (torch, onnxruntime) happen inside the subcommand that needs them.

Bad input prints one line, `error: ...`, and exits with code 2, with no traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Optional

import typer

from contracts.errors import InputError
from contracts.io import check_path_args

from .cli_cache import cache_app
from .cli_check import check_app
from .cli_common import default_out, has_out, interrupted
from .cli_measure import bench, hardware, import_command, loadtest, scenarios
from .cli_plan import plan, report, run_command
from .cli_train import distill, distill_encoder, generate, pilot

app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion; values: cli_complete.py
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


# The subcommands, in the order `roi --help` lists them (the cache and check groups come last).
for _command in (bench, hardware, scenarios, distill):
    app.command()(_command)
app.command("distill-encoder")(distill_encoder)
for _command in (pilot, generate, plan, loadtest):
    app.command()(_command)
app.command("import")(import_command)
app.command("run")(run_command)
app.command()(report)
app.add_typer(cache_app, name="cache")
app.add_typer(check_app, name="check")


# ------------------------------------------------------------------------------ extras
# `pip install distill-roi` is the planner (plan, report, scenarios, hardware); a command that
# runs models needs an extra of pyproject.toml. The one place that says which: up front from
# the command's modules, and for a ModuleNotFoundError of a known module (hf: needs transformers).
COMMAND_EXTRAS = {"bench": ("bench",), "loadtest": ("loadtest",), "distill": ("train",),
                  "distill-encoder": ("train", "hf"),
                  "pilot": ("train",), "generate": ("train",), "run": ("bench", "train"),
                  "check": ("bench", "hf")}  # roi check llm-timing: torch and transformers
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
        print(interrupted(args), file=sys.stderr)
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
        print(interrupted(args), file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0


def _with_out(args: list[str]) -> list[str]:
    """A resumable subcommand without --out gets its default one spelled out here, so that an
    interrupt can name the directory to resume."""
    if not args or args[0] not in DEFAULT_OUT or "--help" in args or has_out(args):
        return args
    return [args[0], "--out", default_out(DEFAULT_OUT[args[0]]), *args[1:]]


if __name__ == "__main__":
    sys.exit(main())
