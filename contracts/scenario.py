"""What a deployment scenario asks for, as roi/scenarios.py validates it and the plan records it
(plan.json's scenario_details): the traffic (Workload), the latency bound (SLA) and the limits
(Constraints). One definition for the planner that reads a scenario and the reports that render
the plan's record of it."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .config import MAX_QPS

SECONDS_PER_DAY = 86_400
MAX_TOKENS = 10_000_000  # tokens per request: a sanity bound
Arrival = Literal["poisson", "offline", "single-stream"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Workload(_Strict):
    """Traffic to serve. Give requests_per_day (volume), qps (design rate), or both."""

    # Upper bounds are sanity limits, far above any real service (a runaway value would print
    # dollar figures hundreds of digits long): 1e8 requests/s is ~1,000x the largest public
    # search traffic.
    requests_per_day: Optional[float] = Field(None, gt=0, le=MAX_QPS * SECONDS_PER_DAY,
                                              allow_inf_nan=False,
                                              description="Requests per day (all models).")
    qps: Optional[float] = Field(None, gt=0, le=MAX_QPS, allow_inf_nan=False,
                                 description="Design (peak) requests per second that sizing "
                                 "must absorb (all models).")
    peak_to_mean: float = Field(1.0, ge=1, le=1000, allow_inf_nan=False, description="Peak "
                                "over mean rate, used to derive qps from requests_per_day or "
                                "back.")
    tokens_in_per_request: int = Field(ge=1, le=MAX_TOKENS, description="Prompt tokens per "
                                       "request.")
    tokens_out_per_request: int = Field(ge=0, le=MAX_TOKENS, description="Generated tokens per "
                                        "request.")
    arrival: Arrival = Field(description="poisson: open-loop online traffic (MLPerf Server); "
                             "offline: a backlog sized by throughput (MLPerf Offline); "
                             "single-stream: one request at a time on a device.")
    models: int = Field(1, ge=1, le=10_000, description="Distinct models served; traffic "
                        "splits evenly.")
    batch_window_ms: Optional[float] = Field(
        None, ge=0, description="Dynamic batching: how long a server holds a batch open for "
        "more requests after taking its first (.inf: until it is full). Default: one batch's "
        "median service time, past which a longer window buys no throughput at the highest "
        "rate and costs latency at low ones.")

    @model_validator(mode="after")
    def _rate_given_once(self) -> "Workload":
        if self.requests_per_day is None and self.qps is None:
            raise ValueError("give requests_per_day or qps (or both)")
        if self.requests_per_day is not None and self.qps is not None:
            if self.peak_to_mean != 1.0:
                raise ValueError("peak_to_mean is derived when both requests_per_day and qps "
                                 "are given: leave it out")
            if self.qps * (1 + 1e-9) < self.requests_per_day / SECONDS_PER_DAY:
                raise ValueError(f"qps {self.qps:g} is below the mean rate of requests_per_day "
                                 f"({self.requests_per_day / SECONDS_PER_DAY:.6g}/s)")
        return self

    @property
    def mean_qps(self) -> float:
        if self.requests_per_day is not None:
            return self.requests_per_day / SECONDS_PER_DAY
        return self.qps / self.peak_to_mean

    @property
    def design_qps(self) -> float:
        return self.qps if self.qps is not None else self.mean_qps * self.peak_to_mean

    @property
    def daily_requests(self) -> float:
        return self.mean_qps * SECONDS_PER_DAY

    @property
    def tokens_per_request(self) -> int:
        return self.tokens_in_per_request + self.tokens_out_per_request


class SLA(_Strict):
    """End-to-end request latency (queueing + batching + service) at a percentile."""

    percentile: float = Field(gt=0, lt=100, description="e.g. 99 for p99.")
    latency_ms: float = Field(gt=0, allow_inf_nan=False, description="Bound in milliseconds.")


class Constraints(_Strict):
    memory_limit_gib: Optional[float] = Field(None, gt=0, allow_inf_nan=False, description=
                                              "RAM a model may use, runtime included; "
                                              "default: the hardware's memory.")
    offline: bool = Field(False, description="Runs with no network (on-device or edge).")
    data_locality: bool = Field(False, description="Data may not leave the premises/device.")
