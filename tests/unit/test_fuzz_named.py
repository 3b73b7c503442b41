"""Named hostile cases (issue 18): the inputs a hostile new user tried, each with the words its
one-line error must hold. Exit 2, no traceback, at most 3 lines, nothing written into --out."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fuzz_helpers import BINARY, FIXTURE_RESULTS, expect_error, no_work, run_cli

pytestmark = pytest.mark.usefixtures("no_work")
assert no_work  # the module fixture, used through pytestmark

TINY = "builtin:n_layer=2,n_embd=32,n_head=2,block_size=64"
RES = str(FIXTURE_RESULTS)
PLAN = ["plan", "--results", RES, "--scenario", "real-time-api", "--no-figures"]
LONG = "n" * 300
GO = "decision: {go: true}\ntrainer: {teacher: 'builtin:teacher'}\n"

# name -> (argv with {tmp}, {bin}, {file}, {dir}, {go} placeholders; words of the error)
CASES = {
    # binary files wherever a text file is read
    "binary-plan": (["distill", "--plan", "{bin}", "--out", "{out}"], "is not UTF-8 text"),
    "binary-trainer-config": (["distill", "--plan", "{go}", "--config", "{bin}", "--out",
                               "{out}"], "is not UTF-8 text"),
    "binary-scenario": (["scenarios", "--scenario", "{bin}"], "is not UTF-8 text"),
    "binary-hardware": (["hardware", "--hardware", "{bin}"], "is not UTF-8 text"),
    "binary-run-config": (["run", "--config", "{bin}", "--out", "{out}"], "is not UTF-8 text"),
    "binary-pilot-config": (["pilot", "--config", "{bin}", "--out", "{out}"],
                            "is not UTF-8 text"),
    "binary-results-csv": ([*PLAN[:2], "{tmp}/r.csv", *PLAN[3:], "--out", "{out}"],
                           "cannot be read"),
    "binary-prompts": (["generate", "--prompts", "{bin}", "--out", "{out}"], "is not UTF-8"),
    # wrong kinds of path
    "dev-null-plan": (["distill", "--plan", "/dev/null", "--out", "{out}"],
                      "not a regular file"),
    "directory-plan": (["distill", "--plan", "{dir}", "--out", "{out}"], "is a directory"),
    "dev-null-results": ([*PLAN[:2], "/dev/null", *PLAN[3:], "--out", "{out}"],
                         "not a regular file"),
    "proc-results": ([*PLAN[:2], "/proc/x", *PLAN[3:], "--out", "{out}"], "does not exist"),
    "directory-scenario": (["scenarios", "--scenario", "{dir}/"], ""),
    "report-of-a-file": (["report", "{file}", "--out", "{out}"], ""),
    "report-of-an-empty-dir": (["report", "{dir}", "--out", "{out}"], ""),
    # unwritable or impossible outputs
    "plan-out-dev-null": ([*PLAN, "--out", "/dev/null"], "must be a directory"),
    "plan-out-proc": ([*PLAN, "--out", "/proc/x"], "/proc"),
    "plan-out-under-a-file": ([*PLAN, "--out", "{file}/sub"], "is a file"),
    "run-out-dev-null": (["run", "--out", "/dev/null"], "must be a directory"),
    "run-out-proc": (["run", "--out", "/proc/x"], "/proc"),
    "distill-out-file": (["distill", "--plan", "{go}", "--out", "{file}"],
                         "must be a directory"),
    "generate-out-proc": (["generate", "--out", "/proc/x"], "/proc"),
    "bench-out-dev-null": (["bench", "--teacher", TINY, "--out", "/dev/null"], "directory"),
    "loadtest-out-proc": (["loadtest", "--model", TINY, "--scenario", "offline", "--out",
                           "/proc/x"], "/proc"),
    "report-out-dev-null": (["report", "{tmp}", "--out", "/dev/null"], ""),
    "long-out-name": ([*PLAN, "--out", "{tmp}/" + LONG], "longer than file systems allow"),
    "long-plan-name": (["distill", "--plan", "{tmp}/" + LONG, "--out", "{out}"],
                       "longer than file systems allow"),
    "long-scenario-name": (["scenarios", "--scenario", LONG + ".yaml"],
                           "longer than file systems allow"),
    # numbers: NaN, infinities, negatives, zero, huge
    "plan-threshold-nan": ([*PLAN, "--retention-threshold", "nan", "--out", "{out}"], ""),
    "plan-threshold-2": ([*PLAN, "--retention-threshold", "2", "--out", "{out}"], ""),
    "plan-weeks-negative": ([*PLAN, "--engineering-weeks=-1", "--out", "{out}"], ""),
    "plan-weeks-inf": ([*PLAN, "--engineering-weeks", "inf", "--out", "{out}"], ""),
    "plan-hours-nan": ([*PLAN, "--training-hours", "nan", "--out", "{out}"], ""),
    "plan-peak-zero": ([*PLAN, "--local-peak-gflops", "0", "--out", "{out}"], ""),
    "plan-max-steps-zero": ([*PLAN, "--max-steps", "0", "--out", "{out}"], ""),
    "plan-datagen-samples-negative": ([*PLAN, "--datagen-samples=-5", "--out", "{out}"], ""),
    "bench-timeout-zero": (["bench", "--teacher", TINY, "--timeout-s", "0", "--out", "{out}"],
                           "--timeout-s"),
    "bench-rounds-zero": (["bench", "--teacher", TINY, "--rounds", "0", "--out", "{out}"],
                          "--rounds"),
    "loadtest-threads-zero": (["loadtest", "--model", TINY, "--scenario", "offline",
                               "--threads", "0", "--out", "{out}"], "--threads"),
    "loadtest-qps-nan": (["loadtest", "--model", TINY, "--qps", "nan", "--latency-ms", "10",
                          "--out", "{out}"], "--qps"),
    "loadtest-qps-huge": (["loadtest", "--model", TINY, "--qps", "1e300", "--latency-ms", "10",
                           "--out", "{out}"], "--qps"),
    "generate-top-p-2": (["generate", "--top-p", "2", "--out", "{out}"], "top_p"),
    "generate-temperature-nan": (["generate", "--temperature", "nan", "--out", "{out}"],
                                 "temperature"),
    "pilot-steps-zero": (["pilot", "--steps", "0", "--out", "{out}"], "--steps"),
    "set-steps-nan": (["distill", "--plan", "{go}", "--set", "steps=nan", "--out", "{out}"],
                      "steps"),
    "set-lr-negative": (["distill", "--plan", "{go}", "--set", "lr=-1", "--out", "{out}"],
                        "lr"),
    # YAML: duplicate keys, wrong shapes, hostile strings
    "scenario-duplicate-key": (["scenarios", "--scenario", "{tmp}/dup.yaml"], "duplicate key"),
    "scenario-huge-qps": (["scenarios", "--scenario", "{tmp}/huge.yaml"], "qps"),
    "scenario-hostile-name": (["scenarios", "--scenario", "{tmp}/img.yaml"], ""),
    "plan-is-a-list": (["distill", "--plan", "{tmp}/list.yaml", "--out", "{out}"],
                       "a plan is a mapping"),
    "plan-go-is-a-string": (["distill", "--plan", "{tmp}/yes.yaml", "--out", "{out}"],
                            "decision.go must be true or false"),
    "trainer-config-duplicate": (["distill", "--plan", "{go}", "--config", "{tmp}/dupcfg.yaml",
                                  "--out", "{out}"], "duplicate key 'steps'"),
    "trainer-config-number-key": (["distill", "--plan", "{go}", "--config",
                                   "{tmp}/numkey.yaml", "--out", "{out}"],
                                  "setting names must be text; got 1 (int)"),
    "nul-byte-in-out": ([*PLAN, "--out", "{tmp}/a\x00b"], "holds a NUL byte"),
    "builtin-spec-split-by-yaml": (["run", "--config", "{tmp}/split.yaml", "--out", "{out}"],
                                   "quote"),
    # results tables: truncated, empty, missing columns, NaN
    "results-truncated-csv": ([*PLAN[:2], "{tmp}/cut.csv", *PLAN[3:], "--out", "{out}"],
                              "truncated"),
    "results-empty-csv": ([*PLAN[:2], "{tmp}/empty.csv", *PLAN[3:], "--out", "{out}"], ""),
    "results-no-model-column": ([*PLAN[:2], "{tmp}/nomodel.csv", *PLAN[3:], "--out", "{out}"],
                                "missing required column(s) model"),
    "results-nan-latency": ([*PLAN[:2], "{tmp}/nan.csv", *PLAN[3:], "--out", "{out}"],
                            "a positive number of milliseconds"),
    "results-truncated-jsonl": ([*PLAN[:2], "{tmp}/cut.jsonl", *PLAN[3:], "--out", "{out}"],
                                "cannot be read"),
}


def _files(tmp: Path) -> dict:
    csv = FIXTURE_RESULTS.read_text()
    header, *rows = csv.splitlines(keepends=True)
    files = {
        "bin": BINARY, "file": "x", "go": GO, "r.csv": BINARY,
        "dup.yaml": "name: dup\nqps: 5\nqps: 50\n",
        "huge.yaml": "name: huge\ndeployment: cloud\nworkload: {qps: 1e300, "
                     "tokens_in_per_request: 1, tokens_out_per_request: 1, arrival: poisson}\n"
                     "sla: {percentile: 99, latency_ms: 100}\ncandidate_hardware: [a10g]\n",
        "img.yaml": "name: <img onerror=x>\ndeployment: cloud\nworkload: {qps: 1, "
                    "tokens_in_per_request: 1, tokens_out_per_request: 1, arrival: poisson}\n"
                    "sla: {percentile: 99, latency_ms: 100}\ncandidate_hardware: [a10g]\n",
        "list.yaml": "- decision\n- trainer\n",
        "yes.yaml": "decision: {go: 'yes'}\ntrainer: {}\n",
        "dupcfg.yaml": "steps: 3\nsteps: 4\n",
        "numkey.yaml": "1: 2\nsteps: 3\n",
        "split.yaml": "students: [builtin:n_layer=1,n_embd=32]\n",
        "cut.csv": header + "".join(rows[:3]) + rows[3][:120],
        "empty.csv": "",
        "nomodel.csv": "\n".join(",".join(line.split(",")[1:]) for line in csv.splitlines()),
        "nan.csv": header + rows[0].replace(",186.1336125,", ",nan,").replace(
            ",299.1266540666667,", ",nan,") + "".join(rows[1:]),
        "cut.jsonl": '{"model": "m", "status": "ok"}\n{"model": "m", "st',
    }
    out = {}
    for name, content in files.items():
        path = tmp / (name if "." in name else f"{name}.yaml")
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        out[name] = path
    (tmp / "a-dir").mkdir()
    out["dir"] = tmp / "a-dir"
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_named_hostile_case(tmp_path, capsys, name):
    argv, needle = CASES[name]
    files = _files(tmp_path)
    out = tmp_path / "out"
    args = [a.format(tmp=tmp_path, out=out, **files) for a in argv]
    watched = out if "{out}" in argv else None
    if name.startswith("scenario-hostile") or name == "directory-scenario":
        run_cli(capsys, args, watched)  # valid or refused; either way one clean outcome
        return
    expect_error(capsys, args, needle, watched)
