"""A narrower, shallower student cut out of the teacher (init: teacher-pruned), Minitron-style.

Rank the teacher's residual channels, attention heads and MLP neurons by how strongly they fire
on real training windows (mean |activation|; Muralidharan et al. 2024, "Compact Language Models
via Pruning and Knowledge Distillation"), keep the strongest that fit the student's shape, and
copy those slices of the weights. Layers are kept evenly spaced, first and last included (as
DistilBERT picks them). Where the student's heads are narrower than the teacher's, each kept
head keeps its dimensions with the largest query·key and value weight norms, and queries and
keys are scaled so that attention logits keep their size.

The cut model starts far from the teacher (its layer norms see fewer channels), but it keeps
what the teacher learned: on the shipped teacher and its code corpus the 10x student reaches
after 400 KD steps what a randomly initialised one reaches after about 1,300 (BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def fits(student_cfg, teacher_cfg) -> str:
    """Why the student cannot be cut from the teacher ("" when it can)."""
    s, t = student_cfg, teacher_cfg
    checks = (("vocab_size", s.vocab_size == t.vocab_size), ("bias", s.bias == t.bias),
              ("n_embd", s.n_embd <= t.n_embd), ("n_layer", s.n_layer <= t.n_layer),
              ("n_head", s.n_head <= t.n_head), ("block_size", s.block_size <= t.block_size),
              ("head size", s.n_embd // s.n_head <= t.n_embd // t.n_head))
    bad = [name for name, ok in checks if not ok]
    return f"the student's {', '.join(bad)} exceed(s) or differ(s) from the teacher's" if bad \
        else ""


@torch.no_grad()
def importance(teacher, idx: torch.Tensor) -> tuple[torch.Tensor, list, list]:
    """Mean |activation| on the windows `idx` (B, T): per residual channel (every layer norm's
    output, summed), per head of each layer (its output's norm) and per MLP neuron of each
    layer (after GELU)."""
    cfg = teacher.config
    B, T = idx.shape
    C, H = cfg.n_embd, cfg.n_head
    x = teacher.wte(idx) + teacher.wpe(torch.arange(T, device=idx.device))  # (B, T, C)
    channels = torch.zeros(C, device=idx.device)
    heads, neurons = [], []
    for block in teacher.blocks:
        a = block.ln_1(x)
        channels += a.abs().mean((0, 1))
        q, k, v = (z.view(B, T, H, C // H).transpose(1, 2) for z in block.attn.c_attn(a).split(C, 2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        heads.append(y.norm(dim=-1).mean((0, 2)))  # (H,)
        x = x + block.attn.c_proj(y.transpose(1, 2).reshape(B, T, C))
        m = block.ln_2(x)
        channels += m.abs().mean((0, 1))
        act = F.gelu(block.mlp.c_fc(m))  # (B, T, 4C)
        neurons.append(act.abs().mean((0, 1)))
        x = x + block.mlp.c_proj(act)
    channels += teacher.ln_f(x).abs().mean((0, 1))
    return channels, heads, neurons


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest scores, in their original order."""
    return torch.sort(torch.topk(scores, k).indices).values


@torch.no_grad()
def cut(student, teacher, idx: torch.Tensor) -> str:
    """Copy the teacher's most active slices into `student` (whose shape fits(): checked by the
    caller); returns what was kept, for metrics.json's `init`."""
    s, t = student.config, teacher.config
    channels, heads, neurons = importance(teacher, idx)
    keep = _top(channels, s.n_embd)
    layers = np.linspace(0, t.n_layer - 1, s.n_layer).round().astype(int).tolist()
    student.wte.weight.copy_(teacher.wte.weight[:, keep])  # tied with lm_head
    student.wpe.weight.copy_(teacher.wpe.weight[: s.block_size][:, keep])
    _norm(student.ln_f, teacher.ln_f, keep)
    for i, j in enumerate(layers):
        _cut_block(student.blocks[i], teacher.blocks[j], keep, heads[j], neurons[j], s, t)
    return (f"teacher-pruned: layers {layers}, {s.n_embd}/{t.n_embd} channels, "
            f"{s.n_head}/{t.n_head} heads, {4 * s.n_embd}/{4 * t.n_embd} MLP neurons")


def _norm(dst, src, keep: torch.Tensor) -> None:
    dst.weight.copy_(src.weight[keep])
    if dst.bias is not None:
        dst.bias.copy_(src.bias[keep])


def _linear(dst, src, rows: torch.Tensor, cols: torch.Tensor, scale: float = 1.0) -> None:
    dst.weight.copy_(src.weight[rows][:, cols] * scale)
    if dst.bias is not None:
        dst.bias.copy_(src.bias[rows] * scale)


def _cut_block(sb, tb, keep, head_scores, neuron_scores, s, t) -> None:
    _norm(sb.ln_1, tb.ln_1, keep)
    _norm(sb.ln_2, tb.ln_2, keep)
    rows = _head_rows(tb.attn.c_attn.weight, _top(head_scores, s.n_head), s, t)
    # q·k summed over fewer dimensions, divided by sqrt(D_s) not sqrt(D_t): scale q and k by
    # (D_t / D_s)^(1/4) each so the attention logits keep their size
    scale = ((t.n_embd // t.n_head) / (s.n_embd // s.n_head)) ** 0.25
    Cs, Ct = s.n_embd, t.n_embd
    for part, mult in ((0, scale), (1, scale), (2, 1.0)):  # q, k, v blocks of c_attn
        dst = slice(part * Cs, (part + 1) * Cs)
        sb.attn.c_attn.weight[dst] = tb.attn.c_attn.weight[part * Ct + rows][:, keep] * mult
        if sb.attn.c_attn.bias is not None:
            sb.attn.c_attn.bias[dst] = tb.attn.c_attn.bias[part * Ct + rows] * mult
    _linear(sb.attn.c_proj, tb.attn.c_proj, keep, rows)
    hidden = _top(neuron_scores, 4 * s.n_embd)
    _linear(sb.mlp.c_fc, tb.mlp.c_fc, hidden, keep)
    _linear(sb.mlp.c_proj, tb.mlp.c_proj, keep, hidden)


def _head_rows(c_attn_weight: torch.Tensor, kept_heads: torch.Tensor, s, t) -> torch.Tensor:
    """Teacher rows (within the q, k or v block) of the kept heads, each cut to the student's
    head size by its dimensions' query·key and value weight norms."""
    Ct, Dt, Ds = t.n_embd, t.n_embd // t.n_head, s.n_embd // s.n_head
    wq, wk, wv = c_attn_weight[:Ct], c_attn_weight[Ct:2 * Ct], c_attn_weight[2 * Ct:]
    rows = []
    for h in kept_heads.tolist():
        dims = torch.arange(h * Dt, (h + 1) * Dt, device=c_attn_weight.device)
        if Ds < Dt:
            score = wq[dims].norm(dim=1) * wk[dims].norm(dim=1) + wv[dims].norm(dim=1)
            dims = dims[_top(score, Ds)]
        rows.append(dims)
    return torch.cat(rows)
