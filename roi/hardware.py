"""The hardware catalog: cloud instances and devices, every figure with its source and date.

Shipped as data in roi/data/hardware.yaml; users extend or override it with their own files in
the same schema (a row whose name exists replaces that row whole). Cloud prices are kept per
instance as the provider lists them, with the number of accelerators in the instance; the
planner costs one accelerator (`usd_per_hour`), the unit a replica runs on.

A row's `runtimes` say which results (backend, dtype) pairs it is costed for: as measured (the
runtime runs there), or as the measured proxy of the runtime actually deployed there
(`proxy_for`: e.g. torch-eager/bf16 standing in for AWS Neuron on Inferentia2). A pair no entry
matches is never costed on that row (roi.service). Left out, a row takes the default of its
kind: every measured pair for CPU instances and devices, NVIDIA_GPU_RUNTIMES for cloud
accelerators.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Optional

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.config import iso_date, read_yaml, validate
from contracts.errors import InputError

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
DATE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$"
FIGURES = (
    "instance_usd_per_hour", "unit_usd", "peak_fp32_tflops", "peak_bf16_tflops",
    "peak_int8_tops", "memory_bandwidth_gb_s", "memory_gib", "power_w", "battery_wh",
)
ANY = "*"
BACKEND_PATTERN = r"^(\*|[a-z0-9][a-z0-9._-]*)$"
# the results' dtypes (roi.measurements.DTYPE_BYTES; a test keeps the two equal)
Dtype = Literal["fp32", "fp16", "bf16", "int8", "int4", "*"]


class Figure(BaseModel):
    """One published number with where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(gt=0, allow_inf_nan=False, description="The figure, in the unit "
                         "its field name says.")
    source: str = Field(min_length=1, description="Where the figure comes from (document, "
                        "page or URL).")
    source_date: str = Field(pattern=DATE_PATTERN, description="When the source was published "
                             "or read: YYYY-MM-DD or YYYY-MM.")
    verified: bool = Field(True, description="False where the figure was not checked against "
                           "the primary source (third-party, derived or conflicting).")
    note: Optional[str] = Field(None, description="Caveat: range, derivation, alternatives.")

    _date = field_validator("source_date", mode="before")(iso_date)


class Runtime(BaseModel):
    """One results (backend, dtype) a hardware row is costed for. Written {backend, dtype,
    proxy_for?} or as the string "backend/dtype"; `*` matches any backend or dtype."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = Field(pattern=BACKEND_PATTERN, description="A results backend (torch-eager, "
                         "ort, ort-static, ort-fused, ort-wo, or a hand-written table's own), "
                         "or * for any.")
    dtype: Dtype = Field(description="A results dtype, or * for any.")
    proxy_for: Optional[str] = Field(None, min_length=1, description="The runtime deployed on "
                                     "this hardware when it is not the measured one (e.g. 'AWS "
                                     "Neuron (bf16)'): the measured backend/dtype is costed as "
                                     "its proxy, and the plan's note says so.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        backend, slash, dtype = data.partition("/")
        if not slash:
            raise ValueError("write a runtime as backend/dtype (e.g. torch-eager/bf16) or "
                             "{backend, dtype, proxy_for}")
        return {"backend": backend.strip(), "dtype": dtype.strip()}

    @model_validator(mode="after")
    def _a_proxy_is_one_measurement(self) -> "Runtime":
        if self.proxy_for is not None and ANY in (self.backend, self.dtype):
            raise ValueError("proxy_for needs one backend and one dtype, not *: the proxy is "
                             "one measured configuration")
        return self

    def matches(self, backend: str, dtype: str) -> bool:
        return self.backend in (ANY, backend) and self.dtype in (ANY, dtype)

    @property
    def label(self) -> str:
        what = "all measured" if self.backend == self.dtype == ANY else (
            f"{self.backend}/{self.dtype}")
        return what + (f" as {self.proxy_for}" if self.proxy_for else "")


def _runtimes(*entries: Any) -> tuple[Runtime, ...]:
    return tuple(Runtime.model_validate(e) for e in entries)


# CPU instances (and, by default, devices) run whatever was measured, as measured.
ALL_RUNTIMES = _runtimes("*/*")
# A cloud accelerator without `runtimes` is taken for an NVIDIA GPU (every shipped one is; the
# shipped rows spell this list out, a test keeps the two equal). Reasoning: roi/data/hardware.yaml.
NVIDIA_GPU_RUNTIMES = _runtimes(
    "torch-eager/fp32", "torch-eager/fp16", "torch-eager/bf16", "ort/fp32", "ort-fused/fp32",
    {"backend": "ort-static", "dtype": "int8", "proxy_for": "TensorRT (int8, from the QDQ "
     "model)"})


class Hardware(BaseModel):
    """One catalog row. Figures are per accelerator (GPU, chip, device) unless said otherwise.

    A figure is either {value, source, source_date, verified?, note?} or a bare number, which
    then takes the row's `source` and `source_date`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Catalog key used on the command line "
                      "and in scenarios: lowercase letters, digits, '.', '_', '-'.")
    kind: Literal["cloud", "device"] = Field(description="cloud: rented by the hour; "
                                             "device: bought (phone, laptop, edge board).")
    description: str = Field("", description="Human-readable name.")
    instance: Optional[str] = Field(None, description="Cloud instance type the price is for.")
    accelerators_per_instance: int = Field(1, ge=1, description="GPUs or chips in `instance`; "
                                           "usd_per_hour = instance price / this.")
    vcpus: Optional[int] = Field(None, ge=1, description="vCPUs of the instance, or the cores "
                                 "of a CPU-only board (CPU rows: projected from a CPU's "
                                 "calibration, never as an accelerator).")
    instance_usd_per_hour: Optional[Figure] = Field(None, description="On-demand price of the "
                                                    "whole instance, USD per hour (cloud).")
    unit_usd: Optional[Figure] = Field(None, description="Purchase price of one unit, USD "
                                       "(device).")
    peak_fp32_tflops: Optional[Figure] = Field(None, description="Peak dense fp32, TFLOP/s.")
    peak_bf16_tflops: Optional[Figure] = Field(None, description="Peak dense bf16/fp16 "
                                               "(tensor cores), TFLOP/s.")
    peak_int8_tops: Optional[Figure] = Field(None, description="Peak dense int8, TOP/s.")
    memory_bandwidth_gb_s: Optional[Figure] = Field(None, description="Memory bandwidth, GB/s.")
    memory_gib: Optional[Figure] = Field(None, description="Memory of one accelerator (device "
                                         "RAM for devices and CPU instances), GiB.")
    power_w: Optional[Figure] = Field(None, description="Board power (TDP or top power mode), W.")
    battery_wh: Optional[Figure] = Field(None, description="Battery capacity of a battery-"
                                         "powered device (a phone), Wh.")
    user_owned: bool = Field(False, description="A device its users already own (a phone): its "
                             "unit price is theirs, not the deployment's capital cost, so the "
                             "planner never amortizes it into a monthly bill (roi.edge says so).")
    runtimes: Optional[tuple[Runtime, ...]] = Field(
        None, min_length=1, description="The results backend/dtype pairs this row is costed "
        "for, as measured or as the proxy of the runtime deployed there (proxy_for); pairs not "
        "listed are never costed here. Left out: every measured pair for CPU instances and "
        "devices; torch-eager fp32/fp16/bf16, ort and ort-fused fp32 and ort-static int8 as "
        "TensorRT for cloud accelerators (NVIDIA GPUs).")
    source: Optional[str] = Field(None, min_length=1, description="Source taken by figures "
                                  "written as bare numbers.")
    source_date: Optional[str] = Field(None, pattern=DATE_PATTERN, description="Date taken by "
                                       "figures written as bare numbers.")

    @model_validator(mode="before")
    @classmethod
    def _bare_numbers_take_row_source(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        source, date = data.get("source"), iso_date(data.get("source_date"))
        data["source_date"] = date
        for key in FIGURES:
            value = data.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if not source or not date:
                    raise ValueError(f"{key} is a bare number: give the row a source and "
                                     f"source_date, or write {key}: {{value, source, "
                                     f"source_date}}")
                data[key] = {"value": value, "source": source, "source_date": date}
        return data

    @model_validator(mode="after")
    def _priced_as_its_kind(self) -> "Hardware":
        if self.kind == "cloud" and self.instance_usd_per_hour is None:
            raise ValueError("a cloud row needs instance_usd_per_hour (USD per hour)")
        if self.kind == "device" and self.instance_usd_per_hour is not None:
            raise ValueError("a device row is priced by unit_usd, not instance_usd_per_hour")
        return self

    @model_validator(mode="after")
    def _each_runtime_once(self) -> "Hardware":
        pairs = [(r.backend, r.dtype) for r in self.runtimes or ()]
        twice = sorted({f"{b}/{d}" for b, d in pairs if pairs.count((b, d)) > 1})
        if twice:
            raise ValueError(f"runtimes: {', '.join(twice)} listed more than once")
        return self

    @property
    def runs(self) -> tuple[Runtime, ...]:
        """`runtimes`, or the default of the row's kind where the row leaves them out."""
        if self.runtimes is not None:
            return self.runtimes
        return NVIDIA_GPU_RUNTIMES if self.kind == "cloud" and not self.vcpus else ALL_RUNTIMES

    def runtime_for(self, backend: str, dtype: str) -> Runtime | None:
        """The entry that costs a results (backend, dtype) here (one without * first), or None
        where this hardware does not run it."""
        hits = [r for r in self.runs if r.matches(backend, dtype)]
        return min(hits, key=lambda r: (r.backend == ANY) + (r.dtype == ANY), default=None)

    def runtimes_text(self) -> str:
        text = ", ".join(r.label for r in self.runs)
        return text if self.runtimes is not None else f"{text} (default)"

    @property
    def usd_per_hour(self) -> float | None:
        """Price of one accelerator for an hour: the unit one replica runs on."""
        if self.instance_usd_per_hour is None:
            return None
        return self.instance_usd_per_hour.value / self.accelerators_per_instance

    def figure(self, key: str) -> float | None:
        fig = getattr(self, key)
        return None if fig is None else fig.value

    def figures(self) -> Iterator[tuple[str, Figure]]:
        for key in FIGURES:
            fig = getattr(self, key)
            if fig is not None:
                yield key, fig


@dataclass(frozen=True)
class Catalog:
    """Hardware rows by name, in catalog order."""

    rows: dict[str, Hardware]

    def __iter__(self) -> Iterator[Hardware]:
        return iter(self.rows.values())

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, name: object) -> bool:
        return name in self.rows

    def names(self) -> list[str]:
        return list(self.rows)

    def get(self, name: str) -> Hardware:
        if name not in self.rows:
            raise InputError(f"unknown hardware {name!r}; known: {', '.join(self.rows)} "
                             f"(add rows with --hardware FILE)")
        return self.rows[name]

    def merged(self, other: "Catalog") -> "Catalog":
        """This catalog with `other`'s rows added; a row with an existing name replaces it."""
        replaced = [n for n in other.rows if n in self.rows]
        if replaced:
            log.info("hardware rows replaced by a user file: %s", ", ".join(replaced))
        return Catalog({**self.rows, **other.rows})

    def frame(self) -> pd.DataFrame:
        """One row per entry, figures as floats in base units (FLOP/s, bytes/s, bytes)."""
        return pd.DataFrame([_flat(h) for h in self])


def _flat(h: Hardware) -> dict[str, Any]:
    tera, giga = 1e12, 1e9
    scaled = {"peak_fp32_flop_s": ("peak_fp32_tflops", tera),
              "peak_bf16_flop_s": ("peak_bf16_tflops", tera),
              "peak_int8_op_s": ("peak_int8_tops", tera),
              "memory_bandwidth_bytes_s": ("memory_bandwidth_gb_s", giga),
              "memory_bytes": ("memory_gib", 2**30)}
    row: dict[str, Any] = {"name": h.name, "kind": h.kind, "usd_per_hour": h.usd_per_hour,
                           "unit_usd": h.figure("unit_usd"), "power_w": h.figure("power_w"),
                           "accelerators_per_instance": h.accelerators_per_instance}
    for col, (key, scale) in scaled.items():
        value = h.figure(key)
        row[col] = None if value is None else value * scale
    return {k: (float("nan") if v is None else v) for k, v in row.items()}


def parse_catalog(data: Any, where: str) -> Catalog:
    """A catalog from parsed YAML: {hardware: [rows]} or a bare list of rows."""
    rows = data.get("hardware") if isinstance(data, dict) else data
    if isinstance(data, dict) and set(data) - {"hardware"}:
        extra = sorted(set(data) - {"hardware"})
        raise InputError(f"{where}: unknown top-level key(s) {', '.join(map(str, extra))}; "
                         f"allowed: hardware")
    if not isinstance(rows, list) or not rows:
        raise InputError(f"{where}: must hold a non-empty list of rows under 'hardware:'; "
                         f"got {type(rows).__name__ if rows is not None else 'nothing'}")
    out: dict[str, Hardware] = {}
    for i, raw in enumerate(rows):
        label = raw.get("name") if isinstance(raw, dict) else None
        row = validate(Hardware, raw, f"{where}: hardware[{i}]"
                       + (f" ({label!r})" if label else "") + ": ")
        if row.name in out:
            raise InputError(f"{where}: hardware[{i}]: name {row.name!r} appears twice")
        out[row.name] = row
    return Catalog(out)


def shipped_catalog() -> Catalog:
    """The catalog shipped in roi/data (a fresh Catalog; its rows are frozen)."""
    return Catalog(dict(_shipped_rows()))


@functools.cache
def _shipped_rows() -> dict[str, Hardware]:
    """The shipped catalog parsed once a process: package data does not change under it, and
    every plan, scenario file and sizing call reads it (~0.4 s of YAML and validation each)."""
    path = resources.files("roi") / "data" / "hardware.yaml"
    with resources.as_file(path) as p:
        return parse_catalog(read_yaml(p, "hardware"), str(p)).rows


def load_catalog(extra: str | Path | Iterable[str | Path] | None = None) -> Catalog:
    """The shipped catalog merged with the user's files (later files win)."""
    if extra is None:
        extra = []
    elif isinstance(extra, (str, Path)):
        extra = [extra]
    catalog = shipped_catalog()
    for path in extra:
        catalog = catalog.merged(parse_catalog(read_yaml(path, "hardware"), str(path)))
    return catalog
