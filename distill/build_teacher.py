"""Rebuild the built-in teacher: plain cross-entropy training of the `builtin:teacher`
architecture on the default data (the stdlib corpus), then ship it as bf16 safetensors.

    python -m distill.build_teacher [--steps 2400] [--work runs/teacher-build] [--resume]
                                    [--set batch_size=64 --set dtype=bf16 ...]

The run is resumable (--resume) and deterministic for a given machine, thread count and Python
version (the corpus is this Python's standard library). The shipped files land in
models/assets/teacher/ with the held-out metrics in metrics.json; README.md records how it was made.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import torch

from models.checkpoint import save_checkpoint
from distill.config import make_config
from distill.trainer import METRICS_FILE, train

ASSET_DIR = Path(__file__).resolve().parent.parent / "models" / "assets" / "teacher"
DEFAULTS = dict(teacher=None, mode="ce", student="builtin:teacher", init="random",
                batch_size=16, block_size=256, lr=1e-3, min_lr=1e-4, warmup_steps=200,
                schedule="cosine",  # the shipped teacher was built with it (BENCHMARKS.md)
                eval_every=200, ckpt_every=100, eval_windows=64, threads=None, seed=0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--work", default="runs/teacher-build")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override one trainer setting (repeatable), e.g. batch_size=64")
    ap.add_argument("--asset-dir", default=str(ASSET_DIR), help="where the shipped files go")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from distill.pipeline import parse_overrides

    cfg = make_config({**DEFAULTS, "steps": args.steps, "threads": args.threads,
                       **parse_overrides(args.sets)})
    asset_dir = Path(args.asset_dir)

    def progress(step: int, total: int, loss: float) -> None:
        if step % 100 == 0 or step == total:
            print(f"step {step}/{total} loss {loss:.4f}", flush=True)

    result = train(cfg, args.work, resume=args.resume, progress=progress)
    from models.checkpoint import load_checkpoint

    model = load_checkpoint(args.work)
    tmp = asset_dir.with_name(".teacher.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(model, tmp, extra={"built_by": "python -m distill.build_teacher",
                                       "steps": args.steps, "settings": cfg.model_dump()},
                    dtype=torch.bfloat16)
    (tmp / METRICS_FILE).write_text(json.dumps(result.metrics, indent=2))
    shutil.rmtree(asset_dir, ignore_errors=True)
    tmp.rename(asset_dir)
    print(json.dumps(result.metrics["student"], indent=2))


if __name__ == "__main__":
    main()
