"""FLOP counting with torch's own FlopCounterMode (no hand formulas in the measured path)."""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils import flop_counter

aten = torch.ops.aten


def _register_cpu_attention() -> None:
    """torch counts the CUDA attention kernels but not the CPU ones; count them the same way
    (forward, and the backward of training steps).

    Like torch's own formula for the CUDA kernels, every (query, key) pair is counted, causal or
    not, so CPU and GPU rows stay comparable."""
    op = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None and op not in flop_counter.flop_registry:

        @flop_counter.register_flop_formula(op)
        def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
            return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)

    op = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    if op is not None and op not in flop_counter.flop_registry:

        @flop_counter.register_flop_formula(op)
        def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args,
                                    out_shape=None, **kwargs):
            return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                                         value_shape)


_register_cpu_attention()


def count_flops(fn: Callable[[], object]) -> int:
    """Total forward FLOPs of one call of `fn` (a multiply-add counts 2)."""
    with flop_counter.FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())
