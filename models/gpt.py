"""The built-in decoder-only transformer (GPT-style), readable top to bottom.

Shapes in comments: B batch, T sequence length, C width (n_embd), H heads, D head size,
S cached sequence length, V vocabulary.

The forward pass takes an optional KV cache so the torch backends can measure prefill (time to
first token) and decode (time per output token) separately.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # one (k, v) per layer, each (B, H, S, D)


@dataclass(frozen=True)
class GPTConfig:
    n_layer: int = 8  # transformer blocks
    n_embd: int = 384  # model width C
    n_head: int = 6  # attention heads; n_embd must divide evenly
    vocab_size: int = 256  # byte-level by default
    block_size: int = 256  # maximum context length
    bias: bool = True  # biases in Linear and LayerNorm layers

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_embd", "n_head", "vocab_size", "block_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPTConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v at once
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 × (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        mask = None
        if cache is not None:  # decode: append this step's keys and values
            S = cache[0].shape[2]
            k = torch.cat([cache[0], k], dim=2)  # (B, H, S+T, D)
            v = torch.cat([cache[1], v], dim=2)
            if T > 1:  # a prompt after a cache (S may be 0): query i sees keys 0..S+i
                mask = causal_mask(S, T, x.device)
        # A single new token may attend to everything cached; a prompt alone needs the causal
        # mask, which scaled_dot_product_attention builds itself.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           is_causal=cache is None)  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y), (k, v)


def causal_mask(cached: int, new: int, device=None) -> torch.Tensor:
    """(new, cached + new) boolean mask: the new token at position cached + i attends to the
    keys at positions 0 .. cached + i. Written with tensor ops on the sizes so an exported graph
    keeps both lengths dynamic."""
    keys = torch.arange(cached + new, device=device)
    queries = torch.arange(new, device=device) + cached
    return keys.unsqueeze(0) <= queries.unsqueeze(1)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cache=None):
        a, new_cache = self.attn(self.ln_1(x), cache)  # pre-norm residual blocks
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, new_cache


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)  # token embeddings
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)  # learned positions
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying, as GPT-2
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # tied weights counted once

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits for every position of a prompt: (B, T) int64 -> (B, T, V)."""
        logits, _ = self.forward_with_cache(idx, None)
        return logits

    def forward_with_cache(
        self, idx: torch.Tensor, cache: KVCache | None
    ) -> tuple[torch.Tensor, KVCache]:
        B, T = idx.shape
        start = 0 if cache is None else cache[0][0].shape[2]
        if start + T > self.config.block_size:
            raise ValueError(
                f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}"
            )
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.wte(idx) + self.wpe(pos)  # (B, T, C)
        new_cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, layer_cache = block(x, None if cache is None else cache[i])
            new_cache.append(layer_cache)
        return self.lm_head(self.ln_f(x)), new_cache  # (B, T, V)


def closed_form_params(cfg: GPTConfig) -> int:
    """Parameter count from the architecture alone (tied head), used to size presets."""
    C, L, V = cfg.n_embd, cfg.n_layer, cfg.vocab_size
    b = 1 if cfg.bias else 0
    per_block = (3 * C * C + 3 * C * b) + (C * C + C * b)  # attention
    per_block += (4 * C * C + 4 * C * b) + (4 * C * C + C * b)  # MLP
    per_block += 2 * (C + C * b)  # two LayerNorms
    return V * C + cfg.block_size * C + L * per_block + (C + C * b)


def closed_form_flops(cfg: GPTConfig, batch: int, seq: int) -> int:
    """Forward FLOPs (multiply-add = 2) of a full prompt, counting attention over all T×T pairs

    as torch's FlopCounterMode does for scaled_dot_product_attention."""
    C, L, V = cfg.n_embd, cfg.n_layer, cfg.vocab_size
    tokens = batch * seq
    matmul = 2 * tokens * (L * 12 * C * C + V * C)  # Linear layers and the LM head
    attention = L * 2 * (2 * batch * seq * seq * C)  # Q·Kᵀ and attention·V
    return matmul + attention
