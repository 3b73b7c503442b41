"""Sentence-embedding encoders (BERT family) as distill and bench share them: a Hugging Face
checkpoint directory read offline with its own pooling, embeddings of texts, the teacher shrunk
to fewer of its layers, and the docstrings of the standard library as labeled real text.

Pooling is the checkpoint's own: sentence-transformers' `1_Pooling/config.json` (mean or CLS);
a directory without it is pooled by mean, as sentence-transformers does for a plain model.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from contracts.errors import InputError
from contracts.io import usual_permissions, write_json_atomic

POOLING_DIR = "1_Pooling"
POOLINGS = ("mean", "cls")
_LAYER_KEY = re.compile(r"^(.*\blayers?\.)(\d+)(\..*)$")  # encoder.layer.N. (BERT, DistilBERT)


# ----------------------------------------------------------------------------------- pooling


def read_pooling(directory: str | Path) -> str:
    """The checkpoint's pooling: mean or cls from 1_Pooling/config.json, else mean."""
    path = Path(directory) / POOLING_DIR / "config.json"
    if not path.is_file():
        return "mean"
    conf = json.loads(path.read_text(encoding="utf-8"))
    if conf.get("pooling_mode_mean_tokens"):
        return "mean"
    if conf.get("pooling_mode_cls_token"):
        return "cls"
    used = sorted(k for k, v in conf.items() if k.startswith("pooling_mode") and v)
    raise InputError(f"{path}: pooling {', '.join(used) or 'none'} is not supported; "
                     f"expected one of {', '.join(POOLINGS)} (pooling_mode_mean_tokens or "
                     "pooling_mode_cls_token)")


def write_pooling(directory: str | Path, pooling: str, dim: int) -> None:
    """The pooling note sentence-transformers reads (modules.json + 1_Pooling/config.json)."""
    directory = Path(directory)
    write_json_atomic(directory / POOLING_DIR / "config.json", {
        "word_embedding_dimension": dim, "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False})
    write_json_atomic(directory / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": POOLING_DIR,
         "type": "sentence_transformers.models.Pooling"}])


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, T, C) hidden states and (B, T) attention mask -> (B, C) sentence embeddings."""
    if pooling == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def session_embed(sess, feeds: dict[str, np.ndarray], pooling: str) -> np.ndarray:
    """(N, C) float32 embeddings from an ONNX Runtime session of an encoder body (first output
    (N, T, C) hidden states): `feeds` holds input_ids and attention_mask (N, T); the session
    gets those of its inputs it declares (token_type_ids zeros)."""
    feeds = {**feeds, "token_type_ids": np.zeros_like(feeds["input_ids"])}
    hidden = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})[0]
    mask = torch.from_numpy(np.asarray(feeds["attention_mask"]))
    return pool(torch.from_numpy(hidden), mask, pooling).float().numpy()


# ----------------------------------------------------------------------------------- encoders


@dataclass
class Encoder:
    """A transformer body, its tokenizer and its pooling: texts -> embeddings."""

    module: torch.nn.Module
    tokenizer: object
    pooling: str
    max_len: int = 128

    def batch(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask of `texts` (padded, truncated to max_len)."""
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_len,
                             return_tensors="pt", return_token_type_ids=False)
        device = next(self.module.parameters()).device
        return {k: v.to(device) for k, v in enc.items()}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled embeddings (B, C) of a tokenized batch, with gradients where enabled."""
        hidden = self.module(**inputs).last_hidden_state  # (B, T, C)
        return pool(hidden, inputs["attention_mask"], self.pooling)

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """(N, C) float32 embeddings of `texts`, in eval mode, on the CPU."""
        self.module.eval()
        out = [self.forward(self.batch(texts[i:i + batch_size])).float().cpu()
               for i in range(0, len(texts), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, 0)


def quiet_transformers() -> None:
    """No loading reports or progress bars from transformers: library code logs, the CLI
    prints (a BERT without its unused pooler is no news to a user)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


GENERATIVE_HEADS = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def check_encoder_head(directory: Path) -> None:
    """Refuse a checkpoint saved from a generative head (a causal or seq2seq LM): its hidden
    states are no sentence embeddings; roi distill distills causal LMs."""
    path = directory / "config.json"
    try:
        arch = json.loads(path.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return  # no readable config: the loader below says so in its own line
    generative = [a for a in arch if str(a).endswith(GENERATIVE_HEADS)]
    if generative:
        raise InputError(f"{directory}: a {generative[0]} is a generative language model, not "
                         "a sentence encoder; expected a BERT-family encoder (a bare model, a "
                         "sentence-transformers directory or a classification head); "
                         "roi distill distills causal LMs")


def load_encoder(directory: str | Path, max_len: int = 128) -> Encoder:
    """The encoder saved in `directory` (config, safetensors, tokenizer, pooling), offline."""
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    directory = Path(directory)
    check_encoder_head(directory)
    pooling = read_pooling(directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        module = AutoModel.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise InputError(f"{directory}: not a Hugging Face encoder with its tokenizer ({why}); "
                         "expected config.json, model.safetensors and tokenizer files") from None
    limit = getattr(module.config, "max_position_embeddings", None) or max_len
    return Encoder(module.eval(), tokenizer, pooling, min(max_len, int(limit)))


def save_encoder(encoder: Encoder, directory: str | Path) -> Path:
    """Weights (safetensors), config, tokenizer and pooling note into `directory`."""
    directory = Path(directory)
    quiet_transformers()
    encoder.module.save_pretrained(directory)
    encoder.tokenizer.save_pretrained(directory)
    write_pooling(directory, encoder.pooling, int(encoder.module.config.hidden_size))
    usual_permissions(directory)
    return directory


def layer_picks(n_teacher: int, n_student: int) -> list[int]:
    """The teacher layers a shrunk student starts from, evenly spread from the first to the
    last (the rule the trainer's teacher-layers init uses for the GPT: 6 -> 3 gives [0, 2, 5])."""
    import numpy as np

    if not 0 < n_student <= n_teacher:
        raise InputError(f"student layers: must be between 1 and the teacher's {n_teacher}; "
                         f"got {n_student}")
    return np.linspace(0, n_teacher - 1, n_student).round().astype(int).tolist()


def shrink(teacher: torch.nn.Module, n_layers: int, init: str = "teacher-layers"
           ) -> tuple[torch.nn.Module, str]:
    """The teacher's architecture with `n_layers` layers: a copy of the teacher keeping its
    layer_picks (embeddings too) for init teacher-layers, or freshly initialised for random.
    Returns the student and a note of its init."""
    import copy

    n_teacher = int(teacher.config.num_hidden_layers)
    picks = layer_picks(n_teacher, n_layers)
    student = copy.deepcopy(teacher)
    stack = next((m for m in student.modules()
                  if isinstance(m, torch.nn.ModuleList) and len(m) == n_teacher), None)
    if stack is None:
        raise InputError(f"{type(teacher).__name__}: no stack of {n_teacher} layers found to "
                         "take the student's layers from (expected a BERT-family encoder)")
    kept = [stack[j] for j in picks]
    for i in range(n_teacher - 1, -1, -1):
        del stack[i]
    stack.extend(kept)
    student.config.num_hidden_layers = n_layers
    if init == "random":
        from transformers import AutoModel

        torch.manual_seed(0)
        return AutoModel.from_config(student.config), "random"
    return student, f"teacher layers {picks}"


# ----------------------------------------------------------------------------------- real text


def docstrings(files) -> list[tuple[str, str, str]]:
    """(name, label, text) of every module, class and function docstring in `files`, an
    iterable of (relative path, source bytes) such as models.corpus.stdlib_documents(): the
    label is the top-level module or package the file belongs to (a real label: which part of
    the library a docstring documents). Docstrings under 20 characters are left out."""
    found = []
    for rel, source in files:
        label = Path(rel).parts[0].removesuffix(".py")
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                text = ast.get_docstring(node, clean=True)
                if text and len(text) >= 20:
                    where = getattr(node, "name", "") + f":{getattr(node, 'lineno', 0)}"
                    found.append((f"{rel}:{where}", label, text))
    return found


def top_labels(docs: list[tuple[str, str, str]], n: int) -> list[str]:
    """The n most common labels of (name, label, text) docs (ties by name: deterministic)."""
    from collections import Counter

    counts = Counter(label for _, label, _ in docs)
    return sorted(counts, key=lambda label: (-counts[label], label))[:n]


def labeled(docs: list[tuple[str, str, str]], keep: list[str]) -> tuple[list[str], list[int]]:
    """Texts and label ids (positions in `keep`) of the docs whose label is in `keep`."""
    index = {label: i for i, label in enumerate(keep)}
    pairs = [(text, index[label]) for _, label, text in docs if label in index]
    return [t for t, _ in pairs], [y for _, y in pairs]


def stdlib_docstring_splits(split_seed: int = 0) -> dict[str, list[tuple[str, str, str]]]:
    """The standard library's docstrings (see docstrings) in train/val/test, each by a stable
    hash of its name (models.corpus.split_of: 5% validation, 5% test)."""
    from .corpus import DataConfig, split_of, stdlib_documents

    cfg = DataConfig(split_seed=split_seed)
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    for doc in docstrings(stdlib_documents()):
        splits[split_of(doc[0], cfg)].append(doc)
    return splits


def text_fingerprint(texts: list[str], labels: list[str] | None = None) -> str:
    """A short hash of texts (and labels) in order: what a run or a cache entry was made from."""
    import hashlib

    h = hashlib.sha256()
    for i, text in enumerate(texts):
        h.update(text.encode("utf-8") + b"\0" + (labels[i].encode() if labels else b"") + b"\1")
    return h.hexdigest()[:16]
