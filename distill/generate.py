"""Teacher-generated training data: the seed's workflow step 3, for sequence-level distillation.

Prompts come from the training corpus (train split only, deterministic in the seed) or from the
user's JSONL; the teacher writes a continuation of each. Teachers: a local model (`builtin:`,
`ckpt:` or `hf:`), batched with a KV cache, or any OpenAI-compatible endpoint (`api:MODEL`,
distill.api_teacher). The student then trains on the samples (TrainConfig.data_mode).

Output directory (every path fixed, inside it):
    run.json          the settings, written first; a resumed run must use the same ones
    samples.jsonl     one sample a line: id, prompt, completion, text, token counts, finish
                      reason, and provenance (teacher, sampling settings, time)
    failures.jsonl    one line per failed prompt (API teachers): id, error, HTTP status,
                      attempts, time; a resumed run tries those prompts again
    manifest.json     counts, tokens, tokens/s per invocation; rewritten atomically after each
                      batch

Resumable: samples are appended a batch at a time (one write, then fsync), a torn last line of
a killed run is cut off on resume, and the ids already in samples.jsonl are skipped, so a killed
run resumes without duplicated or lost samples. Sampling is deterministic per sample: sample i
draws its random numbers from (seed, i) alone, not from a shared stream (local teachers other
than `hf:`, whose `generate` is seeded per batch).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from pydantic import ValidationError

from contracts.config import jsonl_lines, read_text
from contracts.errors import InputError
from contracts.io import check_out_dir, dir_lock, has_content, write_json_atomic

from .api_teacher import ApiTeacher
from .generate_types import Completion, GenerateConfig, Prompt
from .local_teacher import LocalTeacher

log = logging.getLogger(__name__)

RUN_FILE, SAMPLES_FILE, FAILURES_FILE, MANIFEST_FILE = (
    "run.json", "samples.jsonl", "failures.jsonl", "manifest.json")
GenProgress = Callable[[int, int, int], None]  # (samples done, samples total, new tokens so far)


# where and how a run executes, not what it produces: may differ on resume (an API endpoint
# may move to another URL; the model name, part of `teacher`, may not change)
_RUN_ONLY = ("device", "threads", "concurrency", "max_retries", "max_requests", "timeout_s",
             "backoff_s", "backoff_max_s", "api_key_env", "api_base_url")


def make_generate_config(values: dict, where: str = "generate settings") -> GenerateConfig:
    from contracts.config import check_names

    check_names(values, where)
    try:
        return GenerateConfig(**values)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise InputError(f"{where}: {field}: {err['msg']} (received {err.get('input')!r})"
                         ) from None


def check_ready(cfg: GenerateConfig) -> None:
    """Everything that can be refused before a file is written: the teacher, the API settings
    and key variable, the prompts file."""
    if cfg.is_api:
        if not cfg.api_base_url:
            raise InputError("api_base_url: required for an api: teacher (e.g. "
                             "http://127.0.0.1:8000/v1); received None")
        if not os.environ.get(cfg.api_key_env):
            raise InputError(f"api_key_env: environment variable {cfg.api_key_env} is not set "
                             "(set it to the API key, any value for a server without one)")
    else:
        from models.zoo import parse_spec

        parse_spec(cfg.teacher)
    if cfg.prompts != "corpus" and not Path(cfg.prompts).is_file():
        raise InputError(f"prompts: expected corpus or a .jsonl file; {cfg.prompts!r} does not "
                         "exist")


# --------------------------------------------------------------------------- prompts


def corpus_prompts(cfg: GenerateConfig) -> list[Prompt]:
    """Prompts cut from the training split at line starts; prompt i depends on (seed, i) only,
    so asking for more prompts keeps the first ones."""
    from models.corpus import DataConfig, build_splits

    train = build_splits(DataConfig(cfg.data_source, cfg.val_fraction, cfg.test_fraction))["train"]
    n, size = cfg.num_prompts or 256, cfg.prompt_chars
    if train.size < 4 * size:
        raise InputError(f"prompt_chars: {size} is too long for a training split of "
                         f"{train.size} bytes")
    out = []
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, 7, i])
        for _ in range(1000):  # reject windows that cross a document boundary
            text = _window_at(train, int(rng.integers(0, train.size - 2 * size)), size)
            if text is not None:
                break
        else:
            raise InputError(f"prompt_chars: no {size}-byte prompt fits inside one document")
        out.append(Prompt(f"corpus-{i:06d}", text))
    return out


def _window_at(data: np.ndarray, pos: int, size: int) -> str | None:
    from models.corpus import DOC_SEPARATOR

    newlines = np.flatnonzero(data[pos : pos + size] == ord("\n"))
    start = pos + int(newlines[0]) + 1 if newlines.size else pos
    chunk = data[start : start + size]
    if chunk.size < size or (chunk == DOC_SEPARATOR).any():
        return None
    raw = chunk.tobytes()
    while raw and (raw[-1] & 0xC0) == 0x80:  # do not end inside a multi-byte character
        raw = raw[:-1]
    if raw and raw[-1] >= 0xC0:
        raw = raw[:-1]
    return raw.decode("utf-8", errors="ignore") or None


def file_prompts(path: str, limit: int | None) -> list[Prompt]:
    """{"prompt": str, "id": str (optional, unique)} per line ("text" is read as the prompt)."""
    out: list[Prompt] = []
    seen: set[str] = set()
    for i, line in enumerate(jsonl_lines(read_text(path, "prompts")), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            text = rec.get("prompt", rec.get("text"))
        except (json.JSONDecodeError, AttributeError):
            rec, text = None, None
        if not isinstance(text, str) or not text:
            raise InputError(f"{path}:{i}: each line must be an object with a non-empty "
                             "\"prompt\" string")
        pid = str(rec.get("id", f"line-{i:06d}"))
        if pid in seen:
            raise InputError(f"{path}:{i}: id {pid!r} given twice; ids must be unique")
        seen.add(pid)
        out.append(Prompt(pid, text))
        if limit and len(out) >= limit:
            break
    if not out:
        raise InputError(f"{path}: no prompts in it")
    return out


def load_prompts(cfg: GenerateConfig) -> list[Prompt]:
    return corpus_prompts(cfg) if cfg.prompts == "corpus" else file_prompts(cfg.prompts,
                                                                            cfg.num_prompts)


# --------------------------------------------------------------------------- the output files


class SampleLog:
    """An append-only JSONL file whose records reach the disk a batch at a time (one write of
    whole lines, then fsync). Opening it cuts off a torn last line left by a killed run."""

    def __init__(self, path: Path):
        self.path = path
        self.records = self._read_and_repair()

    def _read_and_repair(self) -> list[dict]:
        if not self.path.is_file():
            return []
        data = self.path.read_bytes()
        good = data.rfind(b"\n") + 1  # whole lines only
        records = []
        for line in data[:good].splitlines():
            if line.strip():
                records.append(json.loads(line))
        if good < len(data):
            log.warning("%s: cut off a torn last line (%d bytes) left by an interrupted run",
                        self.path, len(data) - good)
            with open(self.path, "r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())
        return records

    def append(self, records: Iterable[dict]) -> None:
        records = list(records)
        if not records:
            return
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records.extend(records)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sample_record(c: Completion, cfg: GenerateConfig, unit: str) -> dict:
    return {"id": c.id, "prompt": c.prompt, "completion": c.completion,
            "text": c.prompt + c.completion, "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens, "finish_reason": c.finish_reason,
            "token_unit": unit, "teacher": cfg.teacher, "sampling": cfg.sampling(),
            "time": _now()}


def failure_record(c: Completion, cfg: GenerateConfig) -> dict:
    return {"id": c.id, "error": c.error, "status": c.status, "attempts": c.attempts,
            "body": c.body, "teacher": cfg.teacher, "time": _now()}


@dataclass
class GenerateResult:
    out_dir: Path
    manifest: dict


def _identity(cfg: GenerateConfig) -> dict:
    return {k: v for k, v in cfg.model_dump().items() if k not in _RUN_ONLY}


def _open_run(cfg: GenerateConfig, out: Path, resume: bool) -> None:
    run = out / RUN_FILE
    if run.is_file():
        if not resume:
            raise InputError(f"{out} holds a generation run: pass --resume or choose another "
                             "--out")
        saved = json.loads(run.read_text())
        if saved.get("settings") != _identity(cfg):
            raise InputError(f"{out}: the saved run used other settings; --resume needs the "
                             "same ones (or choose a new --out)")
        return
    if has_content(out):
        raise InputError(f"{out} is not empty and holds no generation run: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run, {"settings": _identity(cfg), "created": _now()})


# --------------------------------------------------------------------------- the recipe


def generate(cfg: GenerateConfig, out: str | Path, *, resume: bool = False,
             progress: GenProgress | None = None) -> GenerateResult:
    """Write the teacher's continuations of the prompts of `cfg` into `out` (see the module
    docstring); returns the manifest. Refuses bad settings before writing anything."""
    out = check_out_dir(out)
    check_ready(cfg)
    prompts = load_prompts(cfg)
    teacher = None if cfg.is_api else LocalTeacher(cfg)  # loads (and checks) before writing
    with dir_lock(out):  # a second writer on the same --out is refused, naming this one
        return _generate(cfg, out, resume, progress, prompts, teacher)


def _generate(cfg: GenerateConfig, out: Path, resume: bool, progress: GenProgress | None,
              prompts, teacher) -> GenerateResult:
    _open_run(cfg, out, resume)
    samples, failures = SampleLog(out / SAMPLES_FILE), SampleLog(out / FAILURES_FILE)
    done = {r["id"] for r in samples.records}
    todo = [p for p in prompts if p.id not in done]
    earlier = _earlier_invocations(out)
    stats = _RunStats(len(prompts), len(done), progress)
    if cfg.is_api:
        api = ApiTeacher(cfg)
        for c in api.complete_all(todo):
            _record([c], cfg, samples, failures, stats, "api usage")
        stats.requests, stats.not_attempted = api.requests_sent, api.not_attempted
    else:
        unit = "tokenizer" if teacher.hf else "bytes"
        for i, batch in enumerate(teacher.batches(prompts)):
            missing = [p for p in batch if p.id not in done]
            if missing:  # a partly written batch is generated again; only its missing ids land
                results = teacher.complete(batch, i)
                _record([c for c in results if c.id not in done], cfg, samples, failures,
                        stats, unit)
                write_json_atomic(out / MANIFEST_FILE, manifest(cfg, samples, failures,
                                                                prompts, stats, earlier))
    doc = manifest(cfg, samples, failures, prompts, stats, earlier)
    write_json_atomic(out / MANIFEST_FILE, doc)
    return GenerateResult(out, doc)


class _RunStats:
    """Throughput of this invocation (a resumed run reports its own)."""

    def __init__(self, total: int, done: int, progress: GenProgress | None):
        self.total, self.done, self.progress = total, done, progress
        self.t0, self.new_tokens, self.new_samples, self.new_failures = time.perf_counter(), 0, 0, 0
        self.requests: int | None = None
        self.not_attempted = 0
        if progress:
            progress(done, total, 0)

    def add(self, ok: list[Completion], failed: int) -> None:
        self.new_samples += len(ok)
        self.new_failures += failed
        self.new_tokens += sum(c.completion_tokens or 0 for c in ok)
        self.done += len(ok)
        if self.progress:
            self.progress(self.done, self.total, self.new_tokens)

    def record(self) -> dict:
        wall = time.perf_counter() - self.t0
        return {"started": datetime.fromtimestamp(time.time() - wall, timezone.utc)
                .isoformat(timespec="seconds"), "wall_s": wall, "samples": self.new_samples,
                "failures": self.new_failures, "completion_tokens": self.new_tokens,
                "tokens_per_s": self.new_tokens / wall if wall > 0 else None,
                "requests": self.requests, "not_attempted": self.not_attempted}


def _record(results: list[Completion], cfg, samples: SampleLog, failures: SampleLog,
            stats: _RunStats, unit: str) -> None:
    ok = [c for c in results if c.error is None]
    bad = [c for c in results if c.error is not None]
    samples.append(sample_record(c, cfg, unit) for c in ok)
    failures.append(failure_record(c, cfg) for c in bad)
    stats.add(ok, len(bad))


def _earlier_invocations(out: Path) -> list[dict]:
    try:
        return list(json.loads((out / MANIFEST_FILE).read_text()).get("invocations", []))
    except (OSError, ValueError, AttributeError):
        return []


def manifest(cfg: GenerateConfig, samples: SampleLog, failures: SampleLog,
             prompts: list[Prompt], stats: _RunStats, earlier: list[dict]) -> dict:
    """Totals over the whole run directory (every invocation) plus this invocation's speed."""
    recs = samples.records
    have = {r["id"] for r in recs}
    pending_failed = {r["id"] for r in failures.records} - have

    def total(key: str) -> int | None:
        vals = [r.get(key) for r in recs]
        return None if any(v is None for v in vals) else int(sum(vals))

    return {"teacher": cfg.teacher, "settings": cfg.model_dump(), "prompts": len(prompts),
            "samples": len(recs), "missing": len(prompts) - len(have & {p.id for p in prompts}),
            "failed_pending": len(pending_failed), "failure_records": len(failures.records),
            "prompt_tokens": total("prompt_tokens"),
            "completion_tokens": total("completion_tokens"),
            "finish_reasons": {k: sum(r["finish_reason"] == k for r in recs)
                               for k in sorted({r["finish_reason"] for r in recs})},
            "invocations": [*earlier, stats.record()], "updated": _now(),
            "files": {"samples": SAMPLES_FILE, "failures": FAILURES_FILE}}
