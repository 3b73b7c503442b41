"""Knowledge-distillation losses: small functions and modules with the formula in each docstring.

Shapes: student logits (B, T, V_s), teacher logits (B, T, V_t) or a `TopKTeacher` cache, labels
(B, T) already aligned with the logits (position t predicts labels[t]; the caller shifts), with
`ignore_index` (-100) marking padding. Any leading shape works as long as the three agree.

Normalization contract
----------------------
Every loss returns a `LossSum`: the SUM of the per-token loss over valid tokens and the COUNT of
valid tokens, never a mean. The caller divides by the number of valid tokens of the whole
optimizer step, over all micro-batches and all DDP ranks (`global_num_valid_tokens`), with
`normalize`. Averaging per-micro-batch means instead weights a token in a short micro-batch more
than one in a long micro-batch; dividing by the global count makes gradient accumulation and DDP
give exactly the gradient of one big batch. DDP averages gradients over ranks, so each rank
multiplies by the world size (`normalize(..., world_size=W)`) to cancel that average.

Conventions
-----------
- Every KD term (forward KL, reverse KL, JSD, top-k) is multiplied by T², as in Hinton et al.
  (2015), so that its gradient keeps the same magnitude as T changes and α keeps its meaning.
- The teacher is a target: its tensors are detached.
- Half-precision inputs are computed in float32; float32/float64 inputs keep their dtype.
- Log-probabilities come from `log_softmax`, never `log(softmax)`. Terms with p = 0 count as
  0 (0·log 0 = 0), with a zero gradient rather than NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_INDEX = -100
KDKind = Literal["forward_kl", "reverse_kl", "jsd"]
KD_KINDS: tuple[str, ...] = ("forward_kl", "reverse_kl", "jsd")

__all__ = [
    "IGNORE_INDEX",
    "KD_KINDS",
    "DistillationLoss",
    "DistillationOutput",
    "HiddenStateMSE",
    "LossSum",
    "TopKTeacher",
    "align_vocab",
    "count_valid_tokens",
    "cross_entropy",
    "global_num_valid_tokens",
    "kd_loss",
    "normalize",
    "topk_teacher",
]


# --------------------------------------------------------------------------- normalization


class LossSum(NamedTuple):
    """A loss summed over valid tokens, with the number of those tokens (int64 scalar)."""

    total: Tensor  # () sum over valid tokens
    num_tokens: Tensor  # () int64 count of valid tokens

    def mean(self) -> Tensor:
        """Local mean, total / max(num_tokens, 1): right only when this is the whole batch."""
        return normalize(self.total, self.num_tokens)


def normalize(total: Tensor, num_valid_tokens: Tensor | int, *, world_size: int = 1) -> Tensor:
    """total · world_size / max(num_valid_tokens, 1).

    Pass the GLOBAL count of valid tokens of the optimizer step (all micro-batches, all ranks;
    see `global_num_valid_tokens`) and, under DDP, the world size, because DDP divides the summed
    gradients by it. With zero valid tokens the total is an all-masked sum, 0 with a gradient
    path, and the clamp keeps the result 0 instead of 0/0.
    """
    n = torch.as_tensor(num_valid_tokens, device=total.device).clamp(min=1).to(total.dtype)
    return total * world_size / n


def count_valid_tokens(labels: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Number of positions whose label is not `ignore_index` (int64 scalar)."""
    return (labels != ignore_index).sum()


def global_num_valid_tokens(
    labels: Tensor | Sequence[Tensor],
    *,
    ignore_index: int = IGNORE_INDEX,
    group: object | None = None,
) -> Tensor:
    """Valid tokens over all micro-batches of one optimizer step, summed over DDP ranks.

    Pass the labels of every micro-batch of the step (count them before the first backward:
    labels are cheap). When torch.distributed is initialized the count is all-reduced (SUM) over
    `group`, one collective per optimizer step; otherwise it is the local count.
    """
    batches = [labels] if isinstance(labels, Tensor) else list(labels)
    device = batches[0].device if batches else None
    count = torch.zeros((), dtype=torch.int64, device=device)
    for b in batches:
        count = count + count_valid_tokens(b, ignore_index)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(count, op=torch.distributed.ReduceOp.SUM, group=group)
    return count


# --------------------------------------------------------------------------- validation


def _check_temperature(temperature: float) -> None:
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"temperature must be a finite number > 0 (range (0, inf)), got {temperature!r}"
        )


def _check_unit_interval(name: str, value: float) -> None:
    if not (0.0 <= value <= 1.0):  # also refuses NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def _check_kind(kind: str) -> None:
    if kind not in KD_KINDS:
        raise ValueError(f"kind must be one of {', '.join(KD_KINDS)}, got {kind!r}")


def _check_leading_shape(what: str, tensor: Tensor, labels: Tensor, trailing: int) -> None:
    lead = tensor.shape[: tensor.dim() - trailing]
    if lead != labels.shape:
        raise ValueError(
            f"{what} has leading shape {tuple(lead)} but labels have shape {tuple(labels.shape)}"
        )


# --------------------------------------------------------------------------- vocabulary


def _truncate_vocab(logits: Tensor, vocab_size: int | None, who: str) -> Tensor:
    if vocab_size is None:
        return logits
    if vocab_size < 1 or logits.size(-1) < vocab_size:
        raise ValueError(
            f"{who} vocabulary size is {logits.size(-1)}, smaller than vocab_size={vocab_size}"
        )
    return logits[..., :vocab_size]


def align_vocab(
    student_logits: Tensor, teacher_logits: Tensor, vocab_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """Make the last dimensions agree, cutting only padding rows.

    Without `vocab_size` the sizes must be equal. With it (the true vocabulary size), both sides
    must have at least `vocab_size` rows and both are cut to the first `vocab_size`: rows past it
    are padding (e.g. an embedding padded to a multiple of 64), never a real token. Any other
    mismatch raises ValueError naming both sizes.
    """
    v_s, v_t = student_logits.size(-1), teacher_logits.size(-1)
    if vocab_size is None:
        if v_s != v_t:
            raise ValueError(
                f"student vocabulary size {v_s} != teacher vocabulary size {v_t}; if one is only "
                f"padded, pass vocab_size=<true vocabulary size> (<= both) to cut the padding rows"
            )
        return student_logits, teacher_logits
    if vocab_size < 1 or min(v_s, v_t) < vocab_size:
        raise ValueError(
            f"student vocabulary size {v_s} and teacher vocabulary size {v_t} cannot be aligned "
            f"to vocab_size={vocab_size}: both must be >= it (only padding rows may differ)"
        )
    return student_logits[..., :vocab_size], teacher_logits[..., :vocab_size]


# --------------------------------------------------------------------------- per-token kernels


def _upcast(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _log_probs(logits: Tensor, temperature: float) -> Tensor:
    """log softmax(z / T) over the last dimension."""
    return F.log_softmax(_upcast(logits) / temperature, dim=-1)


def _kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p || q) = Σ_v p_v (log p_v − log q_v) over the last dim, from log-probabilities.

    Entries with p_v = 0 (log p_v = −inf) contribute 0 and pass a zero gradient: the masked
    fill happens before the product, so no 0·inf ever reaches autograd.
    """
    off = torch.isneginf(log_p)
    log_p0 = log_p.masked_fill(off, 0.0)
    log_q0 = log_q.masked_fill(off, 0.0)
    return (log_p0.exp() * (log_p0 - log_q0)).masked_fill(off, 0.0).sum(-1)


def _logsumexp_or_neg_inf(x: Tensor) -> Tensor:
    """logsumexp over the last dim; −inf, with a zero (not NaN) gradient, if every entry is −inf."""
    empty = torch.isneginf(x).all(-1, keepdim=True)
    lse = torch.logsumexp(x.masked_fill(empty, 0.0), dim=-1, keepdim=True)
    return lse.masked_fill(empty, float("-inf")).squeeze(-1)


def _log_mixture(log_p: Tensor, log_q: Tensor, beta: float) -> Tensor:
    """log m with m = β·p + (1 − β)·q, for 0 < β < 1."""
    stacked = torch.stack([log_p + math.log(beta), log_q + math.log1p(-beta)], dim=-1)
    return _logsumexp_or_neg_inf(stacked)


def _divergence(kind: str, log_q_student: Tensor, log_p_teacher: Tensor, beta: float) -> Tensor:
    """Per-position divergence between teacher p and student q (no T² factor).

    forward_kl: KL(p || q).  reverse_kl: KL(q || p).
    jsd: β·KL(p || m) + (1 − β)·KL(q || m), m = β·p + (1 − β)·q. At β = 0 and β = 1 this is
    identically 0, so (as TRL's GKD does) those ends are defined as the limits of
    JSD_β / (β(1 − β)): forward KL at β = 0, reverse KL at β = 1.
    """
    if kind == "forward_kl" or (kind == "jsd" and beta == 0.0):
        return _kl(log_p_teacher, log_q_student)
    if kind == "reverse_kl" or (kind == "jsd" and beta == 1.0):
        return _kl(log_q_student, log_p_teacher)
    log_m = _log_mixture(log_p_teacher, log_q_student, beta)
    return beta * _kl(log_p_teacher, log_m) + (1.0 - beta) * _kl(log_q_student, log_m)


def _masked_sum(per_token: Tensor, labels: Tensor, ignore_index: int) -> LossSum:
    """Sum of per_token where labels != ignore_index; `where` (not a product) so that values
    at padding positions never leak in, and an all-padding batch gives 0 with a gradient path."""
    valid = labels != ignore_index
    total = torch.where(valid, per_token, per_token.new_zeros(())).sum()
    return LossSum(total, valid.sum())


# --------------------------------------------------------------------------- top-k teacher cache


class TopKTeacher(NamedTuple):
    """A teacher stored as its k most likely classes per position plus the mass left over.

    The residual mass depends on the temperature, so a cache is valid only for the temperature it
    was built at; the losses refuse any other (rebuild the cache, or key it by T).
    """

    logits: Tensor  # (B, T, k) raw teacher logits (not divided by T) of the top-k classes
    indices: Tensor  # (B, T, k) int64 class ids of those logits, all distinct per position
    residual_mass: Tensor  # (B, T) teacher probability at `temperature` outside the top k
    temperature: float = 1.0


@torch.no_grad()
def topk_teacher(
    teacher_logits: Tensor, k: int, *, temperature: float = 1.0, vocab_size: int | None = None
) -> TopKTeacher:
    """Compress dense teacher logits (B, T, V_t) to a `TopKTeacher` for the cache.

    residual = Σ_{j ∉ top-k} softmax(z / T)_j, summed from the tail's own log-probabilities
    (not 1 − Σ top-k, which rounds a residual below ~1e-16 to 0); 0 when k = V. Padding rows
    past `vocab_size` are cut first. Store residual_mass in float32 or wider: in fp16/bf16 a
    small residual underflows to 0, which makes the "other" bucket infinitely unlikely.
    """
    _check_temperature(temperature)
    logits = _truncate_vocab(teacher_logits, vocab_size, "teacher")
    if not 1 <= k <= logits.size(-1):
        raise ValueError(f"k must be in [1, {logits.size(-1)}] (the vocabulary size), got {k!r}")
    top, idx = logits.topk(k, dim=-1)  # (B, T, k)
    tail_log_p = _log_probs(logits, temperature).scatter(-1, idx, float("-inf"))  # (B, T, V)
    residual = _logsumexp_or_neg_inf(tail_log_p).exp()  # (B, T)
    return TopKTeacher(top, idx, residual, float(temperature))


def _check_topk(teacher: TopKTeacher, student_logits: Tensor, temperature: float) -> None:
    k, v = teacher.indices.size(-1), student_logits.size(-1)
    if teacher.logits.shape != teacher.indices.shape:
        raise ValueError(
            f"top-k logits shape {tuple(teacher.logits.shape)} != indices shape "
            f"{tuple(teacher.indices.shape)}"
        )
    if teacher.residual_mass.shape != teacher.indices.shape[:-1]:
        raise ValueError(
            f"residual_mass shape {tuple(teacher.residual_mass.shape)} != top-k leading shape "
            f"{tuple(teacher.indices.shape[:-1])}"
        )
    if k > v:
        raise ValueError(f"top-k cache has k={k} but the student vocabulary size is {v}")
    if not math.isclose(teacher.temperature, temperature, rel_tol=1e-9):
        raise ValueError(
            f"top-k cache was built at temperature={teacher.temperature!r} but the loss uses "
            f"temperature={temperature!r}; the residual mass is only valid at its own temperature"
        )


def _coarsened_log_probs(
    student_logits: Tensor, teacher: TopKTeacher, temperature: float
) -> tuple[Tensor, Tensor]:
    """Student and teacher log-probabilities over k + 1 buckets: the top-k classes, then "other".

    Teacher: p_i = (1 − r)·softmax(z_topk / T)_i for the k classes and r for "other" — exact,
    because the top-k classes hold 1 − r of the mass in the ratios of their logits. Student: its
    own tempered probabilities of the k classes and, for "other", its total probability of every
    remaining class (a logsumexp, so small values keep their precision). A divergence of these
    coarsened distributions is exact for them and, by the data-processing inequality, a lower
    bound on the dense one. With k = V there is no "other" class and no bucket.
    """
    log_q = _log_probs(student_logits, temperature)  # (B, T, V)
    idx = teacher.indices.long()
    r = teacher.residual_mass.detach().to(log_q.dtype).clamp(0.0, 1.0)  # (B, T)
    log_q_top = log_q.gather(-1, idx)  # (B, T, k)
    log_p_top = _log_probs(teacher.logits.detach(), temperature).to(log_q.dtype)
    log_p_top = log_p_top + torch.log1p(-r).unsqueeze(-1)  # (B, T, k)
    if idx.size(-1) == log_q.size(-1):
        return log_q_top, log_p_top
    log_q_other = _logsumexp_or_neg_inf(log_q.scatter(-1, idx, float("-inf")))  # (B, T)
    log_q = torch.cat([log_q_top, log_q_other.unsqueeze(-1)], dim=-1)  # (B, T, k + 1)
    log_p = torch.cat([log_p_top, torch.log(r).unsqueeze(-1)], dim=-1)  # (B, T, k + 1)
    return log_q, log_p


# --------------------------------------------------------------------------- public losses


def kd_loss(
    student_logits: Tensor,
    teacher: Tensor | TopKTeacher,
    labels: Tensor,
    *,
    kind: KDKind = "forward_kl",
    temperature: float = 1.0,
    beta: float = 0.5,
    ignore_index: int = IGNORE_INDEX,
    vocab_size: int | None = None,
) -> LossSum:
    """Σ_valid T² · D(p_t^T, p_s^T), D chosen by `kind`; p^T = softmax(z / T), t teacher, s student.

    forward_kl  KL(p_t || p_s) = Σ_v p_t,v (log p_t,v − log p_s,v): mass-covering, the student is
                pushed to cover every class the teacher gives mass to.
    reverse_kl  KL(p_s || p_t): mode-seeking.
    jsd         JSD_β (Agarwal et al. 2024, TRL GKD), β = `beta` ∈ [0, 1]:
                β·KL(p_t || m) + (1 − β)·KL(p_s || m),  m = β·p_t + (1 − β)·p_s. JSD_β → 0 at
                both ends, so β = 0 is defined as forward KL and β = 1 as reverse KL: the limits
                of JSD_β / (β(1 − β)). The interior is not rescaled (TRL's convention), so the
                value jumps at the ends; β = 0.5 is the usual symmetric JSD.
    `teacher` is dense logits (B, T, V_t) or a `TopKTeacher`, in which case D is taken over the
    k + 1 coarsened buckets (see `_coarsened_log_probs`); for forward KL that is
    T² [ Σ_{i ∈ top-k} p_i (log p_i − log q_i) + r (log r − log q_other) ],
    p_i = (1 − r)·softmax(z_topk / T)_i, q = softmax(s / T), q_other = Σ_{j ∉ top-k} q_j:
    exact for the coarsened distributions, ≤ the dense KL, and equal to it when k = V.
    """
    _check_kind(kind)
    _check_temperature(temperature)
    _check_unit_interval("beta", beta)
    _check_leading_shape("student_logits", student_logits, labels, 1)
    if isinstance(teacher, TopKTeacher):
        student_logits = _truncate_vocab(student_logits, vocab_size, "student")
        _check_leading_shape("top-k teacher indices", teacher.indices, labels, 1)
        _check_topk(teacher, student_logits, temperature)
        log_q, log_p = _coarsened_log_probs(student_logits, teacher, temperature)
    else:
        _check_leading_shape("teacher_logits", teacher, labels, 1)
        student_logits, teacher = align_vocab(student_logits, teacher, vocab_size)
        log_q = _log_probs(student_logits, temperature)  # (B, T, V)
        log_p = _log_probs(teacher.detach(), temperature).to(log_q.dtype)  # (B, T, V)
    per_token = temperature**2 * _divergence(kind, log_q, log_p, beta)  # (B, T)
    return _masked_sum(per_token, labels, ignore_index)


def cross_entropy(
    student_logits: Tensor,
    labels: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    vocab_size: int | None = None,
) -> LossSum:
    """Σ_valid −log softmax(s)_{label}: hard-label cross-entropy at T = 1.

    With `vocab_size` the student's padding rows are cut first, so they take no probability.
    """
    _check_leading_shape("student_logits", student_logits, labels, 1)
    logits = _upcast(_truncate_vocab(student_logits, vocab_size, "student"))
    total = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
        ignore_index=ignore_index, reduction="sum",
    )
    return LossSum(total, count_valid_tokens(labels, ignore_index))


class HiddenStateMSE(nn.Module):
    """Σ_valid mean_d (W h_s − h_t)_d²: hidden-state MSE through a learned projection W.

    W (student_dim → teacher_dim, no bias) is a parameter of this module: put it in the
    optimizer. The mean over the teacher width keeps the scale independent of that width.
    """

    def __init__(self, student_dim: int, teacher_dim: int, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim, bias=False)
        self.ignore_index = ignore_index

    def forward(self, student_hidden: Tensor, teacher_hidden: Tensor, labels: Tensor) -> LossSum:
        _check_leading_shape("student_hidden", student_hidden, labels, 1)
        _check_leading_shape("teacher_hidden", teacher_hidden, labels, 1)
        diff = _upcast(self.proj(student_hidden)) - _upcast(teacher_hidden.detach())  # (B, T, D_t)
        return _masked_sum(diff.pow(2).mean(-1), labels, self.ignore_index)


class DistillationOutput(NamedTuple):
    """Sums over valid tokens; divide `total` by the global count with `normalize`."""

    total: Tensor  # α·kd + (1 − α)·ce + hidden_weight·hidden
    num_tokens: Tensor  # () int64 valid tokens in this (micro-)batch
    kd: Tensor
    ce: Tensor
    hidden: Tensor

    def mean(self) -> Tensor:
        """Local mean of `total`: right only when this is the whole batch (see `normalize`)."""
        return normalize(self.total, self.num_tokens)


class DistillationLoss(nn.Module):
    """α · T²·D(teacher, student) + (1 − α) · CE(student, labels) [+ γ · hidden-state MSE].

    kind: forward_kl | reverse_kl | jsd (with beta). α = 0 is plain cross-entropy (the no-KD
    baseline; the teacher may then be None and is not used); α = 1 is pure distillation.
    `hidden_dims=(student_dim, teacher_dim)` adds `HiddenStateMSE` weighted by `hidden_weight`;
    its projection is a parameter of this module. All parameters are validated here, once.
    """

    def __init__(
        self,
        *,
        kind: KDKind = "forward_kl",
        temperature: float = 1.0,
        alpha: float = 0.5,
        beta: float = 0.5,
        ignore_index: int = IGNORE_INDEX,
        vocab_size: int | None = None,
        hidden_dims: tuple[int, int] | None = None,
        hidden_weight: float = 1.0,
    ):
        super().__init__()
        _check_kind(kind)
        _check_temperature(temperature)
        _check_unit_interval("alpha", alpha)
        _check_unit_interval("beta", beta)
        if not (math.isfinite(hidden_weight) and hidden_weight >= 0):
            raise ValueError(f"hidden_weight must be a finite number >= 0, got {hidden_weight!r}")
        self.kind, self.temperature, self.alpha, self.beta = kind, temperature, alpha, beta
        self.ignore_index, self.vocab_size = ignore_index, vocab_size
        self.hidden_weight = hidden_weight
        self.hidden = HiddenStateMSE(*hidden_dims, ignore_index) if hidden_dims else None

    def forward(
        self,
        student_logits: Tensor,
        teacher: Tensor | TopKTeacher | None,
        labels: Tensor,
        student_hidden: Tensor | None = None,
        teacher_hidden: Tensor | None = None,
    ) -> DistillationOutput:
        ce = self._ce(student_logits, labels)
        kd = self._kd(student_logits, teacher, labels, ce.total)
        hidden = self._hidden(student_hidden, teacher_hidden, labels, ce.total)
        total = self.alpha * kd + (1.0 - self.alpha) * ce.total + self.hidden_weight * hidden
        return DistillationOutput(total, ce.num_tokens, kd, ce.total, hidden)

    def _ce(self, student_logits: Tensor, labels: Tensor) -> LossSum:
        return cross_entropy(
            student_logits, labels, ignore_index=self.ignore_index, vocab_size=self.vocab_size
        )

    def _kd(self, student_logits: Tensor, teacher, labels: Tensor, like: Tensor) -> Tensor:
        if self.alpha == 0.0:
            return like.new_zeros(())
        if teacher is None:
            raise ValueError(f"a teacher is required when alpha > 0 (alpha={self.alpha!r})")
        return kd_loss(
            student_logits, teacher, labels, kind=self.kind, temperature=self.temperature,
            beta=self.beta, ignore_index=self.ignore_index, vocab_size=self.vocab_size,
        ).total

    def _hidden(
        self, h_s: Tensor | None, h_t: Tensor | None, labels: Tensor, like: Tensor
    ) -> Tensor:
        if self.hidden is None:
            if h_s is not None or h_t is not None:
                raise ValueError("hidden states were given but the loss has no hidden_dims")
            return like.new_zeros(())
        if h_s is None or h_t is None:
            raise ValueError("hidden_dims is set: pass both student_hidden and teacher_hidden")
        return self.hidden(h_s, h_t, labels).total
