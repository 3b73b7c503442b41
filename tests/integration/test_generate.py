"""Teacher-generated data (issue 9): deterministic local generation, resume after a kill without
duplicated or lost samples, the API teacher against a local server with injected faults, and
sequence-level KD training on the samples."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from distill.config import make_config
from distill.generate import (
    FAILURES_FILE,
    SAMPLES_FILE,
    generate,
    make_generate_config,
)
from contracts.config import jsonl_lines
from contracts.errors import InputError
from distill.trainer import train
from app.cli import main

from .openai_server import KEY, TeacherServer
from .test_hf_teacher import hf_teacher  # noqa: F401  (a fixture)
from .test_trainer import corpus  # noqa: F401  (a fixture)

TINY_TEACHER = "builtin:n_layer=2,n_embd=32,n_head=2,block_size=64"


def _gen_cfg(corpus_path: str, **kw):
    base = dict(teacher=TINY_TEACHER, data_source=corpus_path, val_fraction=0.2,
                test_fraction=0.2, num_prompts=10, prompt_chars=24, max_new_tokens=16,
                batch_size=4, threads=1, seed=3)
    return make_generate_config({**base, **kw})


def _samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in jsonl_lines((out / SAMPLES_FILE).read_text()) if line]


def _by_id(out: Path) -> dict:
    return {r["id"]: r["completion"] for r in _samples(out)}


def test_generation_is_deterministic_in_the_seed_and_records_provenance(tmp_path, corpus):  # noqa: F811
    a = generate(_gen_cfg(corpus), tmp_path / "a").manifest
    generate(_gen_cfg(corpus), tmp_path / "b")
    generate(_gen_cfg(corpus, seed=4), tmp_path / "c")
    generate(_gen_cfg(corpus, batch_size=1), tmp_path / "d")
    assert _by_id(tmp_path / "a") == _by_id(tmp_path / "b")
    assert _by_id(tmp_path / "a") == _by_id(tmp_path / "d")  # per-sample random numbers
    assert _by_id(tmp_path / "a") != _by_id(tmp_path / "c")
    rows = _samples(tmp_path / "a")
    assert len(rows) == a["samples"] == a["prompts"] == 10 and a["missing"] == 0
    r = rows[0]
    assert r["text"] == r["prompt"] + r["completion"] and r["teacher"] == TINY_TEACHER
    assert r["sampling"] == {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 16, "seed": 3}
    assert r["completion_tokens"] <= 16 and r["prompt_tokens"] == len(r["prompt"].encode())
    assert a["completion_tokens"] == sum(x["completion_tokens"] for x in rows)
    assert a["invocations"][-1]["tokens_per_s"] > 0
    prompts = _prompts(tmp_path, [r["prompt"] for r in rows[:4]])
    for s in (1, 2):  # greedy decoding ignores the seed
        generate(_gen_cfg(corpus, temperature=0, seed=s, prompts=prompts), tmp_path / f"g{s}")
    assert _by_id(tmp_path / "g1") == _by_id(tmp_path / "g2")


KILLER = """
import os
from distill.generate import generate, make_generate_config
cfg = make_generate_config({cfg})
def progress(done, total, tokens):
    if done >= 6:
        os._exit(9)  # killed mid-run: no cleanup, no manifest rewrite
generate(cfg, {out!r}, progress=progress)
"""


def test_a_killed_run_resumes_without_duplicated_or_lost_samples(tmp_path, corpus):  # noqa: F811
    cfg = _gen_cfg(corpus, num_prompts=12)
    out = tmp_path / "run"
    code = KILLER.format(cfg=repr(cfg.model_dump()), out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    kept = _samples(out)
    assert 0 < len(kept) < 12
    with open(out / SAMPLES_FILE, "a") as f:  # a torn last line, as a kill mid-write leaves
        f.write('{"id": "corpus-00001')
    code = main(["generate", "--out", str(out), "--set", f"data_source={corpus}"])
    assert code == 2  # an existing run needs --resume
    with pytest.raises(InputError, match="other settings"):
        generate(cfg.model_copy(update={"temperature": 0.5}), out, resume=True)
    m = generate(cfg, out, resume=True).manifest
    rows = _samples(out)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 12 == m["samples"] and m["missing"] == 0
    assert rows[: len(kept)] == kept  # what the killed run wrote is kept as it was
    generate(cfg, tmp_path / "straight")
    assert _by_id(out) == _by_id(tmp_path / "straight")  # same samples as an uninterrupted run
    # the killed run's manifest (rewritten after its first batch) and the resumed run's
    assert len(m["invocations"]) == 2 and m["invocations"][-1]["samples"] == 12 - len(kept)


def _api_cfg(corpus_path: str, server: TeacherServer, **kw):
    base = dict(teacher="api:builtin-teacher", api_base_url=server.base_url,
                api_key_env="ROI_TEST_KEY", concurrency=3, max_retries=3, backoff_s=0.01,
                backoff_max_s=0.05, timeout_s=30, max_new_tokens=8)
    return _gen_cfg(corpus_path, **{**base, **kw})


def _prompts(tmp_path: Path, texts: list[str]) -> str:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps({"id": f"p{i}", "prompt": t})
                              for i, t in enumerate(texts)))
    return str(path)


def test_api_teacher_retries_429_and_500_and_records_every_failure(tmp_path, corpus,  # noqa: F811
                                                                   monkeypatch):
    monkeypatch.setenv("ROI_TEST_KEY", KEY)
    texts = [f"def f{i}(x):\n    return " for i in range(3)]
    texts += ["# FAIL:429:2\nx = ", "# FAIL:503:1\ny = ", "# FAIL:500:99\nz = ",
              "# MALFORMED\nw = ", "# FAIL:400:1\nv = "]
    prompts = _prompts(tmp_path, texts)
    out = tmp_path / "out"
    with TeacherServer() as server:
        m = generate(_api_cfg(corpus, server, prompts=prompts), out).manifest
        # 3 plain + (2 x 429, then ok) + (503, ok) + 500 four times + malformed once + 400 once
        assert server.requests == 3 + 3 + 2 + 4 + 1 + 1
        assert 1 <= server.connections <= 3  # kept alive: at most one per worker (concurrency)
        first = _samples(out), m
        # a resumed run asks again for the failed prompts only: p5, p6 fail the same way, p7's
        # 400 is over
        m = generate(_api_cfg(corpus, server, prompts=prompts), out, resume=True).manifest
        assert server.requests == 14 + 4 + 1 + 1
    rows, m1 = first
    got = {r["id"]: r for r in rows}
    failures = [json.loads(x) for x in (out / FAILURES_FILE).read_text().splitlines()]
    by_id = {f["id"]: f for f in failures[:3]}  # the first run's records
    assert set(got) == {"p0", "p1", "p2", "p3", "p4"} and set(by_id) == {"p5", "p6", "p7"}
    assert by_id["p5"]["status"] == 500 and by_id["p5"]["attempts"] == 4  # 1 + max_retries
    assert "malformed" in by_id["p6"]["error"] and by_id["p6"]["attempts"] == 1
    assert by_id["p6"]["body"].startswith('{"choices": []')  # kept for the record
    assert by_id["p7"]["status"] == 400 and by_id["p7"]["attempts"] == 1  # not retried
    assert all(r["completion_tokens"] == 8 and r["prompt_tokens"] > 0 for r in got.values())
    assert all(r["token_unit"] == "api usage" for r in got.values())
    assert m1["samples"] == 5 and m1["failed_pending"] == 3 and m1["missing"] == 3
    assert m1["invocations"][-1]["requests"] == 14 and m1["completion_tokens"] == 5 * 8
    assert m["samples"] == 6 and m["failed_pending"] == 2 and m["failure_records"] == 5
    assert [r["id"] for r in _samples(out)] == [r["id"] for r in rows] + ["p7"]


def test_api_budget_and_chat_shape_and_resume(tmp_path, corpus, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ROI_TEST_KEY", KEY)
    prompts = _prompts(tmp_path, [f"import os{i}\n" for i in range(6)])
    with TeacherServer() as server:
        cfg = _api_cfg(corpus, server, prompts=prompts, api_endpoint="chat", concurrency=2,
                       max_requests=3)
        m = generate(cfg, tmp_path / "out").manifest
        run = m["invocations"][-1]
        assert run["requests"] == 3 and m["samples"] == 3 and run["not_attempted"] == 3
        assert not (tmp_path / "out" / FAILURES_FILE).exists() or not (
            tmp_path / "out" / FAILURES_FILE).read_text().strip()
        m = generate(cfg.model_copy(update={"max_requests": None}), tmp_path / "out",
                     resume=True).manifest
    ids = [r["id"] for r in _samples(tmp_path / "out")]
    assert sorted(ids) == [f"p{i}" for i in range(6)] and m["missing"] == 0
    assert len(m["invocations"]) == 2


def test_bad_settings_are_refused_in_one_line_with_nothing_written(tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.delenv("ROI_MISSING_KEY", raising=False)
    out = tmp_path / "never"
    cases = {
        ("--temperature", "-0.5"): "temperature",
        ("--top-p", "0"): "top_p",
        ("--top-p", "1.2"): "top_p",
        ("--max-new-tokens", "0"): "max_new_tokens",
        ("--teacher", "api:m", "--api-base-url", "http://127.0.0.1:9/v1", "--api-key-env",
         "ROI_MISSING_KEY"): "ROI_MISSING_KEY is not set",
        ("--teacher", "api:m"): "api_base_url",
        ("--api-endpoint", "rpc"): "api_endpoint",
    }
    for args, field in cases.items():
        code = main(["generate", "--out", str(out), *args])
        err = capsys.readouterr().err.strip()
        assert code == 2 and field in err and len(err.splitlines()) == 1, (args, err)
        assert "Traceback" not in err and not out.exists()


@pytest.fixture(scope="module")
def teacher_samples(tmp_path_factory, corpus):  # noqa: F811
    data = tmp_path_factory.mktemp("samples") / "gen"
    generate(_gen_cfg(corpus, teacher="builtin:teacher", num_prompts=24, prompt_chars=32,
                      max_new_tokens=48, batch_size=24), data)
    return data


def _seq_kd(corpus_path: str, data: Path, tmp_path: Path, **kw) -> dict:
    return {**dict(teacher="builtin:teacher", mode="ce", data_mode="generated",
                generated_data=str(data), student="builtin:n_layer=2,n_embd=32,n_head=2,"
                "block_size=32", steps=30, batch_size=8, block_size=32, eval_every=30,
                ckpt_every=30, warmup_steps=2, eval_windows=4, threads=1, lr=3e-3,
                data_source=corpus_path, val_fraction=0.2, test_fraction=0.2,
                teacher_cache_dir=str(tmp_path / "cache")), **kw}


def test_sequence_level_kd_trains_on_the_teacher_samples(tmp_path, corpus,  # noqa: F811
                                                         teacher_samples):
    losses: list[float] = []
    base = _seq_kd(corpus, teacher_samples, tmp_path)
    m = train(make_config(base), tmp_path / "seq",
              progress=lambda s, n, loss: losses.append(loss)).metrics
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, (first, last)  # it learns the teacher's continuations
    assert "+generated-" in m["data_fingerprint"] and "retention_accuracy" in m
    both = train(make_config({**base, "mode": "kd", "alpha": 0.5, "steps": 4}),
                 tmp_path / "both").metrics  # logit KD on the same windows
    mixed = train(make_config({**base, "data_mode": "mixed", "steps": 4}), tmp_path / "mixed")
    assert both["speed"]["teacher"] == "cache" and mixed.metrics["student"]["loss"] > 0
    with pytest.raises(InputError, match="generated_data"):
        make_config({**base, "generated_data": None})


def test_hf_teacher_generates_with_its_tokenizer_reproducibly(tmp_path, corpus, hf_teacher):  # noqa: F811
    path, _ = hf_teacher
    cfg = _gen_cfg(corpus, teacher=f"hf:{path}", num_prompts=5, max_new_tokens=6)
    m = generate(cfg, tmp_path / "a").manifest
    generate(cfg, tmp_path / "b")
    rows = _samples(tmp_path / "a")
    assert m["samples"] == 5 and _by_id(tmp_path / "a") == _by_id(tmp_path / "b")
    assert all(r["token_unit"] == "tokenizer" and 0 < r["completion_tokens"] <= 6 for r in rows)
    # the student trains on them with the teacher's tokenizer
    res = train(make_config(dict(teacher=f"hf:{path}", mode="ce", data_mode="generated",
                                 generated_data=str(tmp_path / "a"), steps=2, batch_size=2,
                                 block_size=8, student="builtin:n_layer=1,n_embd=32,n_head=2,"
                                 "block_size=32", eval_every=2, ckpt_every=2, eval_windows=2,
                                 threads=1, data_source=corpus, val_fraction=0.2,
                                 test_fraction=0.2)), tmp_path / "train")
    assert res.metrics["student"]["tokens"] > 0


def test_roi_distill_with_sequence_level_kd_keeps_a_no_kd_baseline(tmp_path, corpus,  # noqa: F811
                                                                   teacher_samples):
    from distill.pipeline import distill

    cfg = make_config(_seq_kd(corpus, teacher_samples, tmp_path, steps=4, eval_every=4,
                              ckpt_every=4))
    m = distill(cfg, tmp_path / "out").metrics
    assert m["settings"]["data_mode"] == "generated" and "+generated-" in m["data_fingerprint"]
    base = json.loads((tmp_path / "out" / "baseline" / "metrics.json").read_text())
    assert base["settings"]["data_mode"] == "corpus" and base["settings"]["mode"] == "ce"
    assert "+" not in base["data_fingerprint"] and "teacher" not in base  # no teacher at all
    assert m["baseline_retention_accuracy"] == pytest.approx(
        m["baseline"]["accuracy"] / m["teacher"]["accuracy"])
