"""Benchmark: the API teacher's HTTP cost (issue 20): completions per second and TCP connections
opened against the local OpenAI-compatible server, at concurrency 1 and 8.

Run:  .venv/bin/python -m pytest tests/benchmarks/test_api_teacher_http.py -s -p no:cacheprovider

The server (tests/integration/openai_server.py, HTTP/1.1 keep-alive) answers with a tiny built-in
teacher writing one token, so what is timed is mostly the client and the HTTP round trip, not the
model. PROMPTS prompts per run, ROUNDS rounds interleaving the two concurrencies, medians. The
connection count is exact; the rate is noisy on a shared machine (compare side by side); the
process's CPU time per completion (client and server threads together) is disturbed least.
"""

from __future__ import annotations

import os
import statistics
import time

from distill.api_teacher import ApiTeacher
from distill.generate import Prompt, make_generate_config

from ..integration.openai_server import KEY, TeacherServer
from .figures import record

PROMPTS, ROUNDS, CONCURRENCY = 200, 3, (1, 8)
TEACHER = "builtin:n_layer=1,n_embd=16,n_head=1,block_size=64"


def _run(server: TeacherServer, concurrency: int) -> tuple[float, float, int]:
    """(completions per second, CPU ms per completion of client and server together,
    connections opened) of one run of PROMPTS prompts."""
    cfg = make_generate_config({
        "teacher": "api:tiny", "api_base_url": server.base_url, "api_key_env": "ROI_BENCH_KEY",
        "concurrency": concurrency, "max_new_tokens": 1, "max_retries": 0})
    prompts = [Prompt(f"p{i}", f"x = {i}\n") for i in range(PROMPTS)]
    opened, t0, cpu0 = server.connections, time.perf_counter(), time.process_time()
    done = [c for c in ApiTeacher(cfg).complete_all(prompts) if c.error is None]
    rate = len(done) / (time.perf_counter() - t0)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / PROMPTS
    assert len(done) == PROMPTS
    return rate, cpu_ms, server.connections - opened


def test_api_teacher_completions_per_second_and_connections(monkeypatch):
    monkeypatch.setenv("ROI_BENCH_KEY", KEY)
    rates: dict[int, list[float]] = {c: [] for c in CONCURRENCY}
    cpu: dict[int, list[float]] = {c: [] for c in CONCURRENCY}
    conns: dict[int, list[int]] = {c: [] for c in CONCURRENCY}
    with TeacherServer(TEACHER) as server:
        _run(server, 1)  # warm-up
        for _ in range(ROUNDS):
            for c in CONCURRENCY:
                rate, cpu_ms, opened = _run(server, c)
                rates[c].append(rate)
                cpu[c].append(cpu_ms)
                conns[c].append(opened)
    record("api_teacher_http", prompts=PROMPTS, load_avg_1min=os.getloadavg()[0],
           **{f"completions_per_s_c{c}": round(statistics.median(rates[c]), 1)
              for c in CONCURRENCY},
           **{f"cpu_ms_per_completion_c{c}": round(statistics.median(cpu[c]), 2)
              for c in CONCURRENCY},
           **{f"connections_c{c}": conns[c] for c in CONCURRENCY},
           runs={c: [round(r, 1) for r in rates[c]] for c in CONCURRENCY})
    assert all(n <= c for c in CONCURRENCY for n in conns[c]), conns  # one per worker at most
