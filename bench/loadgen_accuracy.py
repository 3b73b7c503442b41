"""LoadGen's accuracy mode (`roi loadtest --mode accuracy`, TestMode AccuracyOnly): LoadGen
issues every sample of the QSL once and logs each response's bytes to
mlperf_log_accuracy.json; each response here is the model's next-token prediction for its sample
(one int64, bench.loadgen_backends). The run's row records how often those predictions agree
with a reference backend's on the same samples: the PyTorch model (torch-eager, fp32) where the
model spec has one, else ONNX Runtime fp32. So an ort-int8 run says how much the int8 export
changes the model's answers, measured through the same SUT the load tests time; the quality
gate's top-1 tolerance for the backend (bench.gate: 95% for int8, 99.9% for an fp32 export)
gives the verdict, `accuracy_gate` pass / fail ("reference" where the backend is the reference).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from contracts.errors import InputError

from .gate import EXACT, TOLERANCES
from .loadgen_backends import load_backend

ACCURACY_LOG = "mlperf_log_accuracy.json"
REFERENCE_BATCH = 16
# what result_row reads from a summary: LoadGen gives no verdict and no latencies in this mode
ACCURACY_SUMMARY = {"latency_ms": {}, "invalid_reasons": [], "valid": True,
                    "result": "n/a (accuracy mode)"}


def read_accuracy_log(log_dir: Path) -> dict[int, int]:
    """{QSL index: the int64 prediction its response carried} from mlperf_log_accuracy.json."""
    path = Path(log_dir) / ACCURACY_LOG
    try:
        records = json.loads(path.read_text())
        return {int(r["qsl_idx"]): int(np.frombuffer(bytes.fromhex(r["data"]), "<i8")[0])
                for r in records}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise InputError(f"{path}: not a LoadGen accuracy log with one int64 per response "
                         f"({type(e).__name__}: {e})") from None


def reference_variant(model: str) -> str:
    from models.zoo import parse_spec

    return "torch-eager" if parse_spec(model).torch_capable else "ort-fp32"


def agreement(logged: dict[int, int], reference: np.ndarray) -> float:
    """Share of the logged samples whose prediction equals the reference's for that index."""
    idx = np.fromiter(logged, dtype=np.int64)
    got = np.fromiter(logged.values(), dtype=np.int64)
    return float((got == reference[idx]).mean()) if idx.size else float("nan")


def accuracy_fields(s, log_dir: Path, samples: np.ndarray, out: Path) -> dict:
    """The accuracy columns of a run's row: samples logged, reference, agreement, the log."""
    logged = read_accuracy_log(log_dir)
    variant = reference_variant(s.model)
    ref = load_backend(s.model, variant, s.threads, s.device, s.seq_len)
    reference = np.concatenate([ref.run(samples[i:i + REFERENCE_BATCH])
                                for i in range(0, len(samples), REFERENCE_BATCH)])
    log = Path(log_dir) / ACCURACY_LOG
    share = agreement(logged, reference)
    floor = TOLERANCES.get(s.variant, EXACT).min_top1
    return {"accuracy_samples": len(logged), "accuracy_reference": variant,
            "accuracy_agreement": share, "accuracy_min_agreement": floor,
            "accuracy_gate": ("reference" if s.variant == variant
                              else "pass" if share >= floor else "fail"),
            "accuracy_log": str(log.relative_to(out)) if log.is_relative_to(out) else str(log)}
