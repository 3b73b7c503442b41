"""Unit-test hooks: the fuzz suite's count of cases at the end of a session (BENCHMARKS.md)."""


def pytest_terminal_summary(terminalreporter):
    from .fuzz_helpers import CASES

    if CASES["n"]:
        terminalreporter.write_line(f"fuzz suite: {CASES['n']} cases run")
