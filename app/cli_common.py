"""What the `roi` subcommands share: the default output directory, the line printed after
Ctrl-C (what was kept, the command that resumes), and help texts more than one command uses.
"""

from __future__ import annotations

from datetime import datetime


def default_out(prefix: str) -> str:
    return f"runs/{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def interrupted(args: list[str]) -> str:
    """The one line after Ctrl-C: what was kept and the command that resumes."""
    import shlex

    command = args[0] if args else ""
    if command == "loadtest":
        out = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--out"), None)
        where = f"{out}/results.jsonl" if out else "the results table"
        return (f"interrupted: finished runs are kept in {where}, a run cut short as a row "
                "marked interrupted; rerun the command to measure again")
    if command not in RESUMABLE or not has_out(args):  # roi run without --out: see run_command
        return "interrupted: stopped before finishing; rerun the command to start again"
    flag = RESUMABLE[command]
    again = args + ([flag] if flag and flag not in args else [])
    return (f"interrupted: what was finished is kept; `roi {shlex.join(again)}` resumes where "
            "it stopped")


def write_figures(figures: dict, out) -> str:
    """OUT/figures/NAME.png of the figures drawn (None: nothing to draw), and the console's
    line naming them, or saying why there are none."""
    from reports import write_figures as write
    from reports.figure_kit import missing

    written = write({k: v for k, v in figures.items() if v is not None}, out)
    if written:
        return f"figures: {', '.join(str(p) for p in written)}"
    return f"figures: none ({missing() or 'nothing measured to draw'})"


def has_out(args: list[str]) -> bool:
    return any(a == "--out" or a.startswith("--out=") for a in args)


# subcommand -> the flag that resumes it (pilot and run resume an existing --out by themselves)
RESUMABLE = {"bench": "--resume", "distill": "--resume", "distill-encoder": "--resume",
             "generate": "--resume", "pilot": None,
             "run": None}


HARDWARE_HELP = ("YAML file of extra or replacement hardware rows (same schema as the shipped "
                 "catalog; a row with an existing name replaces it). Repeatable.")
