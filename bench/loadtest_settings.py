"""The settings of one load test (bench/loadgen.py): a frozen pydantic model whose fields'
descriptions are `roi loadtest`'s help and whose defaults are its defaults (app/cli_options.py
derives the options), with the closed sets (scenario, backend variant, test mode, device, role)
as choices. A value outside them is refused when the settings are made, in the one line the
command line prints (contracts.errors.InputError), naming the option and what is allowed.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import ConfigDict, Field, ValidationError, field_validator

from contracts.config import Checked
from contracts.defaults import VARIANTS

# name on the command line -> LoadGen's TestScenario member
SCENARIOS = {"singlestream": "SingleStream", "multistream": "MultiStream", "server": "Server",
             "offline": "Offline"}
# The percentile each scenario claims (MLPerf's rules): SingleStream p90, MultiStream and Server
# p99; Offline claims throughput only.
PERCENTILE = {"singlestream": 90.0, "multistream": 99.0, "server": 99.0, "offline": None}
# LoadGen's early stopping needs at least this many queries to give a verdict at the percentile
# claimed (64 for p90 and 662 for p99 with one slow query allowed; loadgen/early_stopping.cc),
# so the default short run asks for them and a run stays short only where the SUT is fast.
MIN_QUERIES = {"singlestream": 64, "multistream": 662, "server": 662, "offline": 1}
DEFAULT_MIN_DURATION_MS = 10_000
TEST_MODES = {"performance": "PerformanceOnly", "accuracy": "AccuracyOnly"}  # -> LoadGen TestMode

Scenario = Literal[tuple(SCENARIOS)]
Variant = Literal[tuple(VARIANTS)]
TestMode = Literal[tuple(TEST_MODES)]
Role = Literal["teacher", "student"]


def scenario_name(name: str) -> str:
    """A scenario as this module keys it, from MLPerf's spelling (Server, Offline,
    SingleStream, MultiStream) or any case of it."""
    return str(name).strip().lower()


class LoadtestSettings(Checked):
    """One load test: the model and backend, LoadGen's scenario and settings, the SUT's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="Model spec: builtin:NAME, hf:DIR, onnx:FILE or ckpt:DIR.")
    variant: Variant = Field("ort-fp32", description="Backend variant (bench.measure.VARIANTS): "
                             "torch-eager, torch-eager-bf16, ort-fp32, ort-int8, ...")
    scenario: Scenario = Field("server", description="LoadGen scenario: singlestream (p90), "
                               "multistream (p99), server (Poisson arrivals, p99 bound) or "
                               "offline (throughput); any case (MLPerf's Server, Offline, ...).")
    qps: Optional[float] = Field(None, description="server: target QPS; offline: expected QPS "
                                 "(it sizes the query).")
    latency_ms: Optional[float] = Field(None, description="server: the latency bound (ms) at "
                                        "--percentile.")
    percentile: Optional[float] = Field(None, description="Latency percentile claimed "
                                        "[default: the scenario's: 90 singlestream, 99 "
                                        "multistream and server].")
    seq_len: int = Field(128, description="Tokens per sample.")
    threads: int = Field(1, description="Intra-op threads of the backend.")
    max_batch: int = Field(1, description="Dynamic batching: most samples per backend call.")
    batch_window_ms: float = Field(0.0, description="How long a worker waits for a batch to "
                                   "fill after its first sample (0: take what is queued).")
    workers: int = Field(1, description="SUT worker threads, each running batches.")
    min_duration_ms: int = Field(DEFAULT_MIN_DURATION_MS,
                                 description="LoadGen's minimum run time per test.")
    min_query_count: Optional[int] = Field(None, description="LoadGen's minimum queries "
                                           "[default: what early stopping needs for the "
                                           "percentile: 64 for p90, 662 for p99].")
    max_duration_ms: int = Field(0, description="LoadGen's maximum run time per test (0: no "
                                 "cap, LoadGen's default).")
    samples: int = Field(256, description="Distinct real inputs in the query-sample library.")
    samples_per_query: int = Field(8, description="multistream: samples per query.")
    device: Literal["cpu", "cuda"] = Field("cpu", description="Device the backend runs on.")
    role: Optional[Role] = Field(None, description="teacher or student [default: the role the "
                                 "results table gives the model; teacher for builtin:teacher].")
    seed: int = Field(0, description="LoadGen's schedule, sample-index and QSL seeds.")
    user_conf: Optional[str] = Field(None, description="MLPerf user.conf (MODEL.SCENARIO.KEY = "
                                     "VALUE lines; MODEL is the --model spec or *) passed to "
                                     "LoadGen's FromConfig; its keys win over the options.")
    test_mode: TestMode = Field("performance", description="performance, or accuracy: "
                                "LoadGen's AccuracyOnly, every sample once, the outputs logged "
                                "and their agreement with the PyTorch (else ONNX fp32) model "
                                "recorded.")

    @classmethod
    def refusal(cls, err: ValidationError) -> str:  # as the command line words it
        return _refusal(err)

    @field_validator("scenario", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return scenario_name(value) if isinstance(value, str) else value

    @property
    def claimed_percentile(self) -> float | None:
        return self.percentile if self.percentile is not None else PERCENTILE[self.scenario]

    @property
    def queries(self) -> int:
        return self.min_query_count or MIN_QUERIES[self.scenario]


# the fields whose option is named otherwise, and the order check_settings refuses them in
FLAGS = {"variant": "backend", "test_mode": "mode"}
CHOICES = {
    "scenario": lambda v: f"--scenario: unknown scenario {v!r}; allowed: {', '.join(SCENARIOS)}",
    "test_mode": lambda v: f"--mode: allowed {', '.join(TEST_MODES)}; got {v!r}",
    "variant": lambda v: f"--backend: unknown backend {v!r}; allowed: {', '.join(VARIANTS)}",
    "device": lambda v: f"--device: allowed cpu, cuda; got {v!r}",
    "role": lambda v: f"--role: allowed teacher, student; got {v!r}",
}


def _refusal(error: ValidationError) -> str:
    """One line for the first of `error`'s problems (a choice's before the others)."""
    problems = [(p["loc"][0] if p["loc"] else "", p) for p in error.errors()]
    order = list(CHOICES)
    field, problem = min(problems, key=lambda fp: order.index(fp[0]) if fp[0] in order
                         else len(order))
    if field in CHOICES and problem["type"] == "literal_error":
        return CHOICES[field](problem["input"])
    flag = FLAGS.get(field, str(field)).replace("_", "-")
    if problem["type"] == "extra_forbidden":
        return f"{field}: unknown setting; allowed: {', '.join(LoadtestSettings.model_fields)}"
    return f"--{flag}: {problem['msg'].replace('Input should be', 'must be')}; got " \
           f"{problem['input']!r}"
