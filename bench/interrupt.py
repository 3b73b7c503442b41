"""Ctrl-C during a LoadGen test (issue 18).

LoadGen's StartTest blocks in C++ and calls back into Python from its own threads; a
KeyboardInterrupt raised inside one of those calls unwinds through C++ and aborts the process
("terminate called without an active exception"), or leaves it hung, and no row is written.

Here the test runs on a thread of its own while the main thread waits in Python, where Ctrl-C
lands as an ordinary KeyboardInterrupt. The caller then writes what it measured so far as a
row with status `interrupted` and raises `LoadtestInterrupted`. LoadGen has no way to stop a test
early, and its threads may outlive an interrupted StartTest: the CLI ends the process at once
with os._exit after printing its one line (an interpreter shutdown under them is what crashes).
"""

from __future__ import annotations

import threading

INTERRUPTED = "interrupted"  # the row status (contracts.results.STATUSES)


class LoadtestInterrupted(KeyboardInterrupt):
    """Ctrl-C during a load test; `row` is the partial row written. LoadGen's threads may
    outlive its interrupted test (its StartTest can return at once on the signal while they
    run on), and an interpreter shutdown under them crashes (SIGSEGV): whoever catches this
    ends the process with os._exit once its own output is flushed, as `roi loadtest` does."""

    def __init__(self, row: dict):
        super().__init__("load test interrupted")
        self.row = row


class LoadgenInterrupted(KeyboardInterrupt):
    """Ctrl-C while LoadGen's test ran on `thread` (start_test)."""

    def __init__(self, thread: threading.Thread):
        super().__init__("interrupted")
        self.thread = thread


def start_test(lg, sut_handle, qsl, test_settings, log_settings) -> None:
    """lg.StartTestWithLogSettings on its own thread, the caller waiting in Python so that
    Ctrl-C reaches it (as `LoadgenInterrupted`, carrying the LoadGen thread, maybe still running)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            lg.StartTestWithLogSettings(sut_handle, qsl, test_settings, log_settings)
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller)
            errors.append(e)

    thread = threading.Thread(target=target, name="loadgen-test", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.05)
    except KeyboardInterrupt:
        raise LoadgenInterrupted(thread) from None
    if errors:
        raise errors[0]


# LoadGen's summary of a test it never finished: no verdict, no percentiles
NO_SUMMARY = {"latency_ms": {}, "invalid_reasons": [INTERRUPTED], "valid": False,
              "result": INTERRUPTED}


def interrupted_fields(wall_s: float, answered: int) -> dict:
    """What an interrupted row says instead of LoadGen's verdict."""
    return {"status": INTERRUPTED, "loadgen_result": INTERRUPTED, "loadgen_valid": False,
            "error": f"interrupted (Ctrl-C) after {wall_s:.1f} s and {answered} answered "
                     "samples; LoadGen's summary was not written, so no percentile is its "
                     "verdict"}
