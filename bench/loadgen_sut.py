"""The system under test and its query sample library for LoadGen (bench/loadgen.py): real
inputs of the measured shape, and the batching SUT that answers LoadGen's queries.

    LoadGen ──issue_query──► queue ──► worker thread(s): take up to max_batch samples (waiting
       ▲                                at most batch_window_ms after the first), run one batch
       └────────QuerySamplesComplete◄── on the backend, answer each sample with its output
"""

from __future__ import annotations

import queue
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------- the QSL


def real_inputs(n: int, seq_len: int, vocab_size: int, byte_level: bool,
                seed: int = 0) -> np.ndarray:
    """(n, seq_len) int64 token ids: for byte-level models, n windows of the standard library's
    own .py sources (the built-in models' training domain); else seeded ids below vocab_size."""
    rng = np.random.default_rng(seed)
    if byte_level:
        text = _stdlib_bytes(n * seq_len * 4)
        if text.size >= seq_len + 1:
            starts = rng.integers(0, text.size - seq_len, n)
            return np.stack([text[s:s + seq_len] for s in starts]).astype(np.int64)
    return rng.integers(0, vocab_size, (n, seq_len), dtype=np.int64)


def _stdlib_bytes(want: int) -> np.ndarray:
    root = Path(sysconfig.get_paths()["stdlib"])
    chunks, size = [], 0
    for path in sorted(root.glob("*.py")):  # top-level modules: plain code, stable order
        try:
            data = path.read_bytes()
        except OSError:
            continue
        chunks.append(np.frombuffer(data, np.uint8))
        size += len(data)
        if size >= want:
            break
    return np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)


# --------------------------------------------------------------------------- the SUT


class BatchingSUT:
    """The system under test: LoadGen's issue_query puts samples on a queue; `workers` threads
    each take up to max_batch of them (waiting at most batch_window_ms after the first for the
    batch to fill), run them as one batch and answer each sample with its output.

    It counts what it was issued and what it answered: `check()` says whether every issued
    sample was answered exactly once with a complete response."""

    _STOP = object()

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], samples: np.ndarray,
                 complete: Callable[[list], None], response: Callable[[int, int, int], object],
                 *, max_batch: int = 1, batch_window_ms: float = 0.0, workers: int = 1):
        self.run, self.samples = run, samples
        self.complete, self.response = complete, response
        self.max_batch, self.window_s = max_batch, batch_window_ms / 1000.0
        self.queue: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.issued: dict[int, int] = {}
        self.answered: dict[int, int] = {}
        self.bad_responses = 0
        self.batches: list[int] = []
        self.service_ns: list[int] = []  # each batch's backend call, timed inside the SUT
        self.idle_ns: list[int] = []  # how long its worker sat idle before that call
        self.in_sut_ns: list[int] = []  # per sample: issue_query to its batch's end
        self._last_end: dict[int, int] = {}
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"sut-{i}")
                        for i in range(workers)]

    def start(self) -> BatchingSUT:
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        for _ in self.threads:
            self.queue.put(self._STOP)
        for t in self.threads:
            t.join()

    # LoadGen's two callbacks
    def issue_query(self, query_samples) -> None:
        with self.lock:
            for s in query_samples:
                self.issued[s.id] = self.issued.get(s.id, 0) + 1
        now = time.perf_counter_ns()
        for s in query_samples:
            self.queue.put((s.id, s.index, now))

    def flush_queries(self) -> None:
        pass  # nothing is held back: a batch waits at most batch_window_ms

    def _take_batch(self) -> list | None:
        first = self.queue.get()
        if first is self._STOP:
            return None
        batch = [first]
        deadline = time.perf_counter() + self.window_s
        while len(batch) < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                item = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if item is self._STOP:
                self.queue.put(item)  # for this worker's next take
                break
            batch.append(item)
        return batch

    def _work(self) -> None:
        while (batch := self._take_batch()) is not None:
            ids = [b[0] for b in batch]
            try:
                x = self.samples[[b[1] for b in batch]]
                t0 = time.perf_counter_ns()
                out = self.run(x)
                end = time.perf_counter_ns()
                worker = threading.get_ident()
                self.idle_ns.append(t0 - self._last_end.get(worker, t0))
                self.service_ns.append(end - t0)
                self.in_sut_ns.extend(end - b[2] for b in batch)
                self._last_end[worker] = end
                out = np.ascontiguousarray(out, np.int64)
                if out.shape != (len(batch),):
                    raise RuntimeError(f"backend returned shape {out.shape} for a batch of "
                                       f"{len(batch)}")
            except Exception as e:  # noqa: BLE001 (answer anyway: unanswered hangs LoadGen)
                self.errors.append(f"{type(e).__name__}: {e}")
                out = None
            self._answer(ids, out)

    def _answer(self, ids: list[int], out: np.ndarray | None) -> None:
        item = out.itemsize if out is not None else 0
        base = out.ctypes.data if out is not None else 0
        responses = [self.response(i, base + k * item, item) for k, i in enumerate(ids)]
        with self.lock:
            self.batches.append(len(ids))
            for i in ids:
                self.answered[i] = self.answered.get(i, 0) + 1
            self.bad_responses += 0 if out is not None else len(ids)
        self.complete(responses)  # LoadGen reads the data during the call; `out` lives until then

    def check(self) -> list[str]:
        """Problems found: samples never answered, answered twice, or answered with no data."""
        problems = list(dict.fromkeys(self.errors))[:3]
        missing = [i for i in self.issued if i not in self.answered]
        twice = [i for i, n in self.answered.items() if n != 1 or self.issued.get(i) != 1]
        if missing:
            problems.append(f"{len(missing)} issued sample(s) never answered")
        if twice:
            problems.append(f"{len(twice)} sample(s) issued or answered more than once")
        if self.bad_responses:
            problems.append(f"{self.bad_responses} response(s) without output")
        return problems

    @property
    def mean_batch(self) -> float:
        return float(np.mean(self.batches)) if self.batches else float("nan")
