"""The built-in GPT with each attention block exported as one ONNX Runtime `Attention` op.

onnxruntime.transformers.optimizer fuses attention only where the graph matches the patterns of
the models it knows (Hugging Face GPT-2, BERT...); on this project's own GPT it finds none (it
fuses bias+GELU and skip+LayerNorm, which ONNX Runtime's session optimizer does anyway). So the
fused variant writes the op at export instead: `com.microsoft.Attention` with
`unidirectional=1` (causal) takes the block input and the packed QKV weight and bias, and does
projection, attention and head merge in one kernel, the op the optimizer emits for GPT-2. On
the CPU it replaces ~30 nodes per block (MatMul, Split, Reshape, Transpose, Trilu, Where,
Softmax...), and quantize_dynamic turns it into QAttention (int8 QKV projection).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


class _CausalAttention(torch.autograd.Function):
    """Torch computes what the op computes (so tracing sees real shapes); export emits the op."""

    @staticmethod
    def forward(ctx, x, w, b, n_head: int):
        B, T, C = x.shape
        q, k, v = (x @ w + b).split(C, dim=2)  # 3 × (B, T, C)
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        return y.transpose(1, 2).reshape(B, T, C)

    @staticmethod
    def symbolic(g, x, w, b, n_head: int):
        return g.op("com.microsoft::Attention", x, w, b, num_heads_i=n_head, unidirectional_i=1)


class FusedSelfAttention(nn.Module):
    """A drop-in for models.gpt.CausalSelfAttention (prompt only: no KV cache)."""

    def __init__(self, attn):
        super().__init__()
        self.n_head, self.c_proj = attn.n_head, attn.c_proj
        self.w_qkv = nn.Parameter(attn.c_attn.weight.detach().t().contiguous())  # (C, 3C)
        bias = attn.c_attn.bias
        self.b_qkv = nn.Parameter(bias.detach().clone() if bias is not None
                                  else torch.zeros(self.w_qkv.shape[1]))

    def forward(self, x, cache=None):
        y = _CausalAttention.apply(x, self.w_qkv, self.b_qkv, self.n_head)
        return self.c_proj(y), None


def export_fused(tm, path: Path) -> None:
    """Export a built-in GPT (or trainer checkpoint) with fused attention; TorchScript exporter,
    since it is the one that calls an autograd.Function's `symbolic`."""
    from models.runtime import first_output_module

    model = copy.deepcopy(tm.module)
    for block in model.blocks:
        block.attn = FusedSelfAttention(block.attn)
    inputs = tm.make_inputs(2, min(16, tm.max_seq_len or 16), "cpu")
    names = list(inputs)
    axes = {n: {0: "batch", 1: "seq"} for n in names} | {"output": {0: "batch", 1: "seq"}}
    with torch.no_grad(), warnings.catch_warnings():
        # the block_size check in GPT.forward_with_cache traces as a constant: intended
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(first_output_module(model, names, {}), tuple(inputs.values()),
                          str(path), input_names=names, output_names=["output"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
