"""Deployment scenarios: the seed's ROI matrix as five presets, or the user's own YAML.

A scenario says where the model runs (deployment: cloud or device, required), what traffic to
serve (workload), how fast (SLA), under which limits (constraints), on which hardware (names in
the catalog), and keeps the seed's expected ranges verbatim so a report can show them beside
our own figures.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.config import read_yaml, validate
from contracts.errors import InputError
# the scenario's parts are the contract's (the plan records them: contracts.plan.ScenarioDetail)
from contracts.scenario import SLA, Constraints, Workload

from .hardware import NAME_PATTERN, Catalog, load_catalog

MAX_DEVICES = 10_000_000_000  # units deployed: a sanity bound (more than the phones on Earth)
Deployment = Literal["cloud", "device"]
DEPLOYMENTS = get_args(Deployment)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_PCT = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)%")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([MB])-(\d+(?:\.\d+)?)([MB])")
_SCALE = {"M": 1e6, "B": 1e9}


class SeedRanges(_Strict):
    """The seed's ROI-matrix row, verbatim; the parsed ranges are properties."""

    scenario: str = Field(min_length=1)
    inference_cost_reduction: str = Field(description="e.g. '50-70%'.")
    latency_improvement: str = Field(description="e.g. '30-50%'.")
    data_transfer: str = Field(description="e.g. '10-30% less' or 'Offline'.")
    best_fit_model_size: str = Field(description="e.g. '7B-13B distilled'.")

    @field_validator("inference_cost_reduction", "latency_improvement")
    @classmethod
    def _a_percent_range(cls, text: str) -> str:
        if not _PCT.match(text):
            raise ValueError("must be a percent range like '50-70%'")
        return text

    @field_validator("data_transfer")
    @classmethod
    def _transfer(cls, text: str) -> str:
        if text != "Offline" and not _PCT.match(text):
            raise ValueError("must be a percent range like '10-30% less' or 'Offline'")
        return text

    @field_validator("best_fit_model_size")
    @classmethod
    def _size(cls, text: str) -> str:
        if not _SIZE.search(text):
            raise ValueError("must hold a size range like '7B-13B' or '500M-1B'")
        return text

    @property
    def cost_reduction(self) -> tuple[float, float]:
        return _fractions(self.inference_cost_reduction)

    @property
    def latency_reduction(self) -> tuple[float, float]:
        return _fractions(self.latency_improvement)

    @property
    def data_transfer_reduction(self) -> tuple[float, float] | None:
        """None when the scenario sends nothing at all (offline)."""
        return None if self.data_transfer == "Offline" else _fractions(self.data_transfer)

    @property
    def best_fit_params(self) -> tuple[float, float]:
        lo, lo_unit, hi, hi_unit = _SIZE.search(self.best_fit_model_size).groups()
        return float(lo) * _SCALE[lo_unit], float(hi) * _SCALE[hi_unit]


def _fractions(text: str) -> tuple[float, float]:
    lo, hi = _PCT.match(text).groups()
    return float(lo) / 100, float(hi) / 100


class Scenario(_Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Preset or user name.")
    title: str = Field("", description="One-line human title.")
    description: str = Field("", description="What is deployed and why it matters.")
    basis: str = Field("", description="Where the workload and SLA figures come from.")
    deployment: Deployment = Field(description="Where the model runs: cloud (servers, rented "
                                   "or owned) or device (a phone, an edge or IoT board).")
    workload: Workload
    sla: SLA
    constraints: Constraints = Constraints()
    candidate_hardware: list[str] = Field(min_length=1, description="Catalog names to cost.")
    devices: Optional[int] = Field(None, ge=1, le=MAX_DEVICES, strict=True, description=
                                   "Units deployed (deployment: device): the edge economics "
                                   "(roi.edge) price the device fleet for this many; the "
                                   "workload is per device.")
    seed: Optional[SeedRanges] = Field(None, description="The seed's expected ranges.")

    @model_validator(mode="before")
    @classmethod
    def _deployment_given(cls, data: Any) -> Any:
        if isinstance(data, dict) and "deployment" not in data:
            raise ValueError("deployment: required field is missing; allowed: "
                             + " or ".join(repr(d) for d in DEPLOYMENTS))
        return data

    @model_validator(mode="after")
    def _devices_on_devices(self) -> "Scenario":
        if self.devices is not None and self.deployment != "device":
            raise ValueError(f"devices: a unit count is for deployment: device; this scenario's "
                             f"deployment is {self.deployment!r} (size cloud fleets by workload)")
        return self

    @model_validator(mode="after")
    def _distinct_candidates(self) -> "Scenario":
        dupes = sorted({h for h in self.candidate_hardware if self.candidate_hardware.count(h) > 1})
        if dupes:
            raise ValueError(f"candidate_hardware lists {', '.join(dupes)} more than once")
        return self

    def check_hardware(self, catalog: Catalog, where: str = "") -> None:
        """InputError naming the first candidate that is not in the catalog."""
        for i, name in enumerate(self.candidate_hardware):
            if name not in catalog:
                raise InputError(f"{where}scenario {self.name!r}: candidate_hardware[{i}]: "
                                 f"unknown hardware {name!r}; known: {', '.join(catalog.names())}"
                                 f" (add rows with --hardware FILE)")


def parse_scenarios(data: Any, where: str) -> list[Scenario]:
    """Scenarios from parsed YAML: one scenario mapping, or {scenarios: [mappings]}."""
    if isinstance(data, dict) and "scenarios" in data:
        if set(data) != {"scenarios"}:
            extra = ", ".join(sorted(str(k) for k in data if k != "scenarios"))
            raise InputError(f"{where}: unknown top-level key(s) {extra} beside 'scenarios'")
        rows = data["scenarios"]
        if not isinstance(rows, list) or not rows:
            raise InputError(f"{where}: 'scenarios' must be a non-empty list of scenarios")
    elif isinstance(data, dict):
        rows = [data]
    else:
        raise InputError(f"{where}: must hold a scenario (a mapping) or 'scenarios: [...]'; "
                         f"got {type(data).__name__ if data is not None else 'nothing'}")
    out = []
    for i, raw in enumerate(rows):
        label = raw.get("name") if isinstance(raw, dict) else None
        prefix = f"{where}: " + (f"scenarios[{i}]" if len(rows) > 1 else "scenario")
        out.append(validate(Scenario, raw, prefix + (f" ({label!r})" if label else "") + ": "))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{where}: scenario name(s) {', '.join(dupes)} appear more than once")
    return out


def presets() -> dict[str, Scenario]:
    """The shipped presets by name, in the seed's order (a fresh dict; the scenarios are
    frozen)."""
    return dict(_shipped_presets())


@functools.cache
def _shipped_presets() -> dict[str, Scenario]:
    """The shipped presets parsed once a process (package data does not change under it)."""
    path = resources.files("roi") / "data" / "scenarios.yaml"
    with resources.as_file(path) as p:
        return {s.name: s for s in parse_scenarios(read_yaml(p, "scenarios"), str(p))}


def load_scenarios(spec: str | Path, catalog: Catalog | None = None) -> list[Scenario]:
    """A preset by name, or the scenarios in a user YAML file; candidates checked in `catalog`
    (default: the shipped catalog)."""
    catalog = catalog if catalog is not None else load_catalog()
    shipped = presets()
    if str(spec) in shipped:
        found, where = [shipped[str(spec)]], ""
    elif Path(spec).is_file() or Path(spec).suffix in (".yaml", ".yml"):
        found, where = parse_scenarios(read_yaml(spec, "scenario"), str(spec)), f"{spec}: "
    else:
        raise InputError(f"unknown scenario {str(spec)!r}: not a preset "
                         f"({', '.join(shipped)}) nor a YAML file")
    for s in found:
        s.check_hardware(catalog, where)
    return found


def load_scenario(spec: str | Path, catalog: Catalog | None = None) -> Scenario:
    """Exactly one scenario: a preset name, or a file holding one."""
    found = load_scenarios(spec, catalog)
    if len(found) != 1:
        raise InputError(f"{spec}: holds {len(found)} scenarios where one is expected; "
                         f"pass the file to load_scenarios")
    return found[0]
