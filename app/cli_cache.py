"""`roi cache list|prune`: the caches roi keeps on disk. Added to the command in app/cli.py.
"""

from __future__ import annotations

from typing import Optional

import typer

from contracts.errors import InputError


cache_app = typer.Typer(no_args_is_help=True, help="The caches roi keeps on disk (ONNX exports, "
                        "teacher logits, tokenized JSONL data): list them, prune the least "
                        "recently used.")


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
