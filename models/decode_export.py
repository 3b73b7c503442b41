"""The decoding artifact of a causal LM: one ONNX graph with a KV cache, and how to run it.

bench/export.py's model.onnx is a plain forward (logits for a whole window): the right file for
throughput and for the quality gate, but a generator built on it recomputes the whole sequence
for every new token. What ships for generation is this graph:

    inputs   idx (B, T) int64, past_key_<i>, past_value_<i> (B, H, S, D) per layer
    outputs  logits (B, T, V), present_key_<i>, present_value_<i> (B, H, S+T, D)

A prompt is a call with S = 0 (empty past tensors): time to first token. Each further token is a
call with T = 1 and the previous call's presents as its pasts: time per output token. One graph
does both (the attention masks a prompt that follows a cache, models/gpt.py causal_mask), so
the artifact holds one copy of the weights, and its int8 twin is quantized like model.int8.onnx.

Built for the project's own GPT (families builtin and ckpt); other causal LMs (transformers
models) have no cache graph here, their ORT rows decode by recomputing the forward for every
token (decode_mode "recompute"), measured as such and costed as such by roi/service.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from contracts.io import atomic_path

DECODE_FP32_FILE, DECODE_INT8_FILE = "decode.onnx", "decode.int8.onnx"
KV_CACHE, RECOMPUTE = "kv-cache", "recompute"  # the results table's decode_mode values
DECODE_RTOL = 1e-3  # as bench/export.py's EXPORT_RTOL
KV_FAMILIES = ("builtin", "ckpt")


def past_names(n_layer: int) -> list[str]:
    return [f"past_{kind}_{i}" for i in range(n_layer) for kind in ("key", "value")]


def present_names(n_layer: int) -> list[str]:
    return [f"present_{kind}_{i}" for i in range(n_layer) for kind in ("key", "value")]


def build(tm, entry: Path, file: str = DECODE_FP32_FILE) -> dict:
    """Export and verify the decoding graph of a loaded model into entry/`file`; the
    record for info.json: {"mode": "kv-cache", "file", "rel_err", "layout"} or {"mode":
    "recompute", "reason"} for a causal LM this project cannot export with a cache ("" for a
    model that does not generate). bench/export.py quantizes the file."""
    if tm.family not in KV_FAMILIES or not tm.is_causal_lm:
        why = ("not a causal LM" if not tm.is_causal_lm else
               f"no KV-cache export for {tm.family} models (the project's own GPT only)")
        return {"mode": RECOMPUTE if tm.is_causal_lm else "", "reason": why}
    cfg = tm.module.config
    layout = {"n_layer": cfg.n_layer, "n_head": cfg.n_head, "head_dim": cfg.n_embd // cfg.n_head}
    with atomic_path(entry / file) as tmp:
        _export(tm.module, tmp)
        err = verify(tm.module, tmp, layout)
    return {"mode": KV_CACHE, "file": file, "rel_err": err, "layout": layout}


def _wrapper(module):
    import torch

    class CachedDecoder(torch.nn.Module):
        """(idx, k0, v0, k1, v1, ...) -> (logits, k0', v0', ...): flat tensors for export."""

        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, idx, *past):
            cache = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)]
            logits, new = self.inner.forward_with_cache(idx, cache)
            return (logits, *[t for kv in new for t in kv])

    return CachedDecoder().eval()


def _empty_past(layout: dict, batch: int, length: int, rng=None) -> list:
    import torch

    shape = (batch, layout["n_head"], length, layout["head_dim"])
    make = (lambda: torch.zeros(shape)) if rng is None else (
        lambda: torch.from_numpy(rng.standard_normal(shape).astype(np.float32)))
    return [make() for _ in range(2 * layout["n_layer"])]


def _export(module, path: Path) -> None:
    """TorchScript export: the past length must be free to be 0 at run time, which the dynamo
    exporter's symbolic shapes do not allow (it specializes sizes 0 and 1)."""
    import torch

    cfg = module.config
    layout = {"n_layer": cfg.n_layer, "n_head": cfg.n_head, "head_dim": cfg.n_embd // cfg.n_head}
    # traced with a prompt following a cache (T = 3, S = 2): the path that masks, which is also
    # right for T = 1 and for S = 0
    idx = torch.randint(0, cfg.vocab_size, (2, 3))
    past = _empty_past(layout, 2, 2, np.random.default_rng(0))
    n = cfg.n_layer
    axes = {"idx": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    axes |= {name: {0: "batch", 2: "past"} for name in past_names(n)}
    axes |= {name: {0: "batch", 2: "total"} for name in present_names(n)}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on the sizes it records as graph ops
        torch.onnx.export(_wrapper(module), (idx, *past), str(path),
                          input_names=["idx", *past_names(n)],
                          output_names=["logits", *present_names(n)], dynamic_axes=axes,
                          opset_version=17, dynamo=False)


def verify(module, path: Path, layout: dict) -> float:
    """Greedy-free check of the whole protocol: a 5-token prompt on an empty cache, a 3-token
    continuation, then 2 single tokens, against torch's full forward over the same 10 tokens
    (relative max error over all logits); raise when it is off."""
    import torch

    rng = np.random.default_rng(1)
    ids = rng.integers(0, module.config.vocab_size, size=(2, 10)).astype(np.int64)
    with torch.no_grad():
        ref = module(torch.from_numpy(ids)).float().numpy()
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    run = session_runner(sess, layout)
    got, past = [], None
    for lo, hi in ((0, 5), (5, 8), (8, 9), (9, 10)):
        logits, past = run(ids[:, lo:hi], past)
        got.append(logits)
    got = np.concatenate(got, axis=1)
    rel = float(np.abs(got - ref).max()) / (float(np.abs(ref).max()) or 1.0)
    if not np.isfinite(rel) or rel > DECODE_RTOL:
        raise RuntimeError(f"the KV-cache graph differs from torch: relative max error {rel:.2e}")
    return rel


def session_runner(sess, layout: dict):
    """run(ids (B, T), past or None) -> (logits (B, T, V), presents): None is the empty cache."""
    n = layout["n_layer"]
    names = past_names(n)

    def run(ids: np.ndarray, past: list | None):
        if past is None:
            shape = (ids.shape[0], layout["n_head"], 0, layout["head_dim"])
            past = [np.zeros(shape, np.float32) for _ in names]
        out = sess.run(None, {"idx": ids, **dict(zip(names, past))})
        return out[0], out[1:]

    return run
