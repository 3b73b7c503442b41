"""The teacher that runs here: a builtin, ckpt: or hf: model sampling continuations of each prompt
(temperature and nucleus sampling in torch, one seeded stream of uniforms per prompt, so a
sample is the same whatever the batch it was drawn in)."""

from __future__ import annotations

import logging

import numpy as np

from contracts.errors import InputError

from .generate_types import Completion, GenerateConfig, Prompt, sample_seed

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- sampling (torch)


def pick_tokens(logits, temperature: float, top_p: float, uniforms):
    """Next token per row: argmax at temperature 0, else inverse-CDF sampling from the top-p
    nucleus with one given uniform number per row, so a row's choice does not depend on the
    other rows of the batch. logits (B, V), uniforms (B,) in [0, 1) -> (B,) int64."""
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (B, V)
    p_sorted, order = probs.sort(dim=-1, descending=True)
    before = p_sorted.cumsum(-1) - p_sorted  # mass of the more likely tokens
    p_sorted = p_sorted * (before < top_p)  # the nucleus; the most likely token always stays
    cdf = p_sorted.cumsum(-1)  # (B, V)
    r = (uniforms.to(cdf) * cdf[:, -1]).unsqueeze(-1)  # (B, 1)
    j = torch.searchsorted(cdf, r, right=True).clamp(max=cdf.shape[-1] - 1)
    return order.gather(-1, j).squeeze(-1)


def generate_ids(model, prompt_ids, max_new_tokens: int, temperature: float, top_p: float,
                 uniforms, stop_id: int | None = None, use_cache: bool = True):
    """Continue equal-length prompts with the built-in GPT. prompt_ids (B, T), uniforms
    (B, max_new_tokens). With use_cache the prompt is run once and each step feeds one token
    through the KV cache; without it every step runs the whole sequence again (the reference
    that the KV cache is measured against). Returns (B, N) new ids; generation stops early
    once every row has written stop_id."""
    import torch

    idx = prompt_ids
    with torch.no_grad():
        if use_cache:
            logits, cache = model.forward_with_cache(idx, None)
        else:
            logits, cache = model(idx), None
        out, done = [], torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for t in range(max_new_tokens):
            nxt = pick_tokens(logits[:, -1, :], temperature, top_p, uniforms[:, t])  # (B,)
            out.append(nxt)
            if stop_id is not None:
                done |= nxt == stop_id
                if bool(done.all()):
                    break
            if t == max_new_tokens - 1:
                break
            if use_cache:
                logits, cache = model.forward_with_cache(nxt[:, None], cache)
            else:
                idx = torch.cat([idx, nxt[:, None]], dim=1)
                logits = model(idx)
    return torch.stack(out, dim=1)


# --------------------------------------------------------------------------- local teachers


class LocalTeacher:
    """A built-in or ckpt: GPT (bytes are tokens) or a Hugging Face causal LM, on one device."""

    def __init__(self, cfg: GenerateConfig):
        import torch

        from models.zoo import load_torch, parse_spec

        from .trainer import resolve_device

        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.cfg, self.device = cfg, resolve_device(cfg.device)
        tm = load_torch(parse_spec(cfg.teacher))
        self.hf = tm.family.startswith("hf-")
        self.model = tm.module.to(self.device).eval()
        if self.hf:
            from transformers import AutoTokenizer

            from .students import hf_dir

            self.tok = AutoTokenizer.from_pretrained(hf_dir(cfg.teacher), local_files_only=True)
            self.tok.padding_side = "left"
            if self.tok.pad_token is None:
                self.tok.pad_token = self.tok.eos_token
        elif tm.vocab_size != 256:
            raise InputError(f"teacher {cfg.teacher!r}: vocabulary {tm.vocab_size}; only "
                             "byte-level (256) built-in and ckpt: teachers generate here")
        self.context = tm.max_seq_len or 1 << 30
        if cfg.max_new_tokens >= self.context:
            raise InputError(f"max_new_tokens: must be below the teacher's context "
                             f"{self.context}; received {cfg.max_new_tokens}")

    def prompt_length(self, p: Prompt) -> int:
        if self.hf:
            return len(self.tok(p.text, add_special_tokens=False)["input_ids"])
        return min(len(p.text.encode("utf-8")), self.context - self.cfg.max_new_tokens)

    def batches(self, prompts: list[Prompt]) -> list[list[Prompt]]:
        """Fixed batches: prompts sorted by token length (stable), cut into batch_size; the
        built-in GPT has no padding mask, so its batches also hold one length only."""
        lengths = {p.id: self.prompt_length(p) for p in prompts}
        ordered = sorted(prompts, key=lambda p: lengths[p.id])
        out: list[list[Prompt]] = []
        for p in ordered:
            same = out and (self.hf or lengths[out[-1][0].id] == lengths[p.id])
            if same and len(out[-1]) < self.cfg.batch_size:
                out[-1].append(p)
            else:
                out.append([p])
        return out

    def complete(self, batch: list[Prompt], batch_index: int) -> list[Completion]:
        import torch

        amp = torch.autocast(self.device.type, dtype=torch.bfloat16,
                             enabled=self.cfg.dtype == "bf16")
        with amp:
            return self._hf(batch, batch_index) if self.hf else self._builtin(batch)

    def _builtin(self, batch: list[Prompt]) -> list[Completion]:
        import torch

        from models.corpus import DOC_SEPARATOR

        cfg = self.cfg
        keep = self.context - cfg.max_new_tokens
        raw = [p.text.encode("utf-8")[-keep:] for p in batch]  # the part that fits the context
        ids = torch.tensor([list(r) for r in raw], dtype=torch.long, device=self.device)
        uniforms = torch.tensor(np.stack([np.random.default_rng(sample_seed(cfg.seed, p.id))
                                          .random(cfg.max_new_tokens) for p in batch]),
                                dtype=torch.float64, device=self.device)
        new = generate_ids(self.model, ids, cfg.max_new_tokens, cfg.temperature, cfg.top_p,
                           uniforms, stop_id=DOC_SEPARATOR).tolist()
        out = []
        for p, r, row in zip(batch, raw, new):
            stop = row.index(DOC_SEPARATOR) if DOC_SEPARATOR in row else None
            row = row[:stop] if stop is not None else row
            out.append(Completion(p.id, r.decode("utf-8", errors="replace"),
                                  bytes(row).decode("utf-8", errors="replace"), len(r), len(row),
                                  "stop" if stop is not None else "length"))
        return out

    def _hf(self, batch: list[Prompt], batch_index: int) -> list[Completion]:
        import torch

        cfg = self.cfg
        enc = self.tok([p.text for p in batch], return_tensors="pt", padding=True,
                       add_special_tokens=False).to(self.device)
        sample = cfg.temperature > 0
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(sample_seed(cfg.seed, f"batch-{batch_index}"))
            gen = self.model.generate(
                **enc, max_new_tokens=cfg.max_new_tokens, do_sample=sample,
                temperature=cfg.temperature if sample else None,
                top_p=cfg.top_p if sample else None, top_k=0 if sample else None,
                pad_token_id=self.tok.pad_token_id)
        new = gen[:, enc["input_ids"].shape[1]:].tolist()
        eos = self.tok.eos_token_id
        out = []
        for p, mask, row in zip(batch, enc["attention_mask"].tolist(), new):
            stop = row.index(eos) if eos is not None and eos in row else None
            row = row[:stop] if stop is not None else row
            out.append(Completion(p.id, p.text, self.tok.decode(row), int(sum(mask)), len(row),
                                  "stop" if stop is not None else "length"))
        return out
