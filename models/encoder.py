"""Encoders (BERT family) as distill and bench share them: a Hugging Face checkpoint directory
read offline with its own head (sentence embeddings, a sequence classifier, or a cross-encoder
scoring text pairs), its outputs on texts, the teacher shrunk to fewer of its layers, and the
docstrings of the standard library as labeled real text.

Pooling is the checkpoint's own: sentence-transformers' `1_Pooling/config.json` (mean or CLS);
a directory without it is pooled by mean, as sentence-transformers does for a plain model.
The head is read from config.json (architectures, num_labels, id2label): see read_head.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from contracts.defaults import ENCODER_TASKS
from contracts.errors import InputError
from contracts.io import usual_permissions, write_json_atomic

from .zoo import SUPPORTED_HEADS

POOLING_DIR = "1_Pooling"
POOLINGS = ("mean", "cls")
TASKS = ENCODER_TASKS
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


def session_output(sess, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The first output of an ONNX Runtime session of an encoder: `feeds` holds input_ids and
    attention_mask (N, T), token_type_ids where the tokenizer gave them (a text pair's); the
    session gets those of its inputs it declares (token_type_ids zeros where not given)."""
    feeds = {"token_type_ids": np.zeros_like(feeds["input_ids"]), **feeds}
    return sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})[0]


def session_embed(sess, feeds: dict[str, np.ndarray], pooling: str) -> np.ndarray:
    """(N, C) float32 embeddings from an ONNX Runtime session of an encoder body (first output
    (N, T, C) hidden states), fed as session_output feeds it."""
    hidden = session_output(sess, feeds)
    mask = torch.from_numpy(np.asarray(feeds["attention_mask"]))
    return pool(torch.from_numpy(hidden), mask, pooling).float().numpy()


# ----------------------------------------------------------------------------------- encoders


@dataclass
class Encoder:
    """A transformer, its tokenizer, pooling and task: texts -> embeddings (task embedding:
    the body pooled) or a head's logits (classification: (B, num_labels); cross-encoder: one
    score (B, 1) per (text, pair) tuple, tokenized as [CLS] text [SEP] pair [SEP])."""

    module: torch.nn.Module
    tokenizer: object
    pooling: str
    max_len: int = 128
    task: str = "embedding"
    labels: list[str] = field(default_factory=list)  # the head's id2label, in id order

    def batch(self, texts: list) -> dict[str, torch.Tensor]:
        """Token ids and attention mask of `texts` (str, or (text, pair) tuples, which get
        token type ids too), padded, truncated to max_len."""
        pairs = bool(texts) and isinstance(texts[0], tuple)
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_len,
                             return_tensors="pt", return_token_type_ids=pairs)
        device = next(self.module.parameters()).device
        return {k: v.to(device) for k, v in enc.items()}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled embeddings (B, C) or the head's logits (B, L) of a tokenized batch, with
        gradients where enabled."""
        return self.forward_hidden(inputs, hidden=False)[0]

    def forward_hidden(self, inputs: dict[str, torch.Tensor], hidden: bool = True
                       ) -> tuple[torch.Tensor, tuple]:
        """forward's output and (hidden) each layer's (B, T, C) hidden states: the
        embeddings' first, then one per layer (empty without `hidden`)."""
        out = self.module(**inputs, output_hidden_states=hidden)
        states = tuple(out.hidden_states) if hidden else ()
        if self.task != "embedding":
            return out.logits, states
        return pool(out.last_hidden_state, inputs["attention_mask"], self.pooling), states

    @torch.no_grad()
    def embed(self, texts: list, batch_size: int = 64) -> torch.Tensor:
        """(N, C) float32 outputs of `texts` (see forward: embeddings, or logits for a head),
        in eval mode, on the CPU."""
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
BODY_HEADS = ("Model", "ForMaskedLM", "ForPreTraining")  # their body's hidden states: embedding


def read_head(directory: Path) -> tuple[str, list[str]]:
    """The checkpoint's task and its head's labels (id2label in id order; none for embedding),
    from config.json's architectures and num_labels. A head the trainer does not distill (a
    generative LM, token classification, QA...) is one InputError naming it."""
    path = directory / "config.json"
    try:
        conf = json.loads(path.read_text(encoding="utf-8"))
        arch = str((conf.get("architectures") or ["Model"])[0])
    except (OSError, ValueError, AttributeError, IndexError):
        return "embedding", []  # no readable config: the loader says so in its own line
    if arch.endswith(GENERATIVE_HEADS):
        raise InputError(f"{directory}: a {arch} is a generative language model, not an "
                         f"encoder; supported: {SUPPORTED_HEADS}; roi distill distills causal "
                         "LMs")
    if arch.endswith("ForSequenceClassification"):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(directory, local_files_only=True)
        if config.problem_type == "multi_label_classification" or (
                config.problem_type == "regression" and config.num_labels > 1):
            raise InputError(f"{directory}: a {arch} with problem_type {config.problem_type} "
                             f"and {config.num_labels} labels is not supported; supported: "
                             f"{SUPPORTED_HEADS} (single-label)")
        labels = [str(config.id2label[i]) for i in range(config.num_labels)]
        return ("cross-encoder" if config.num_labels == 1 else "classification"), labels
    if arch.endswith(BODY_HEADS):
        return "embedding", []
    raise InputError(f"{directory}: a {arch} head is not supported; supported: "
                     f"{SUPPORTED_HEADS}")


def _check_task(directory: Path, task: str, found: str) -> None:
    """A head's checkpoint can be distilled as its head or as embeddings of its body; a bare
    body has no head to distill."""
    if task not in ("auto", "embedding", found):
        raise InputError(f"--task {task}: {directory} has no {task} head (its config.json "
                         f"says: {found}); use --task auto, embedding or {found}")


def load_encoder(directory: str | Path, max_len: int = 128, task: str = "auto") -> Encoder:
    """The encoder saved in `directory` (config, safetensors, tokenizer, pooling), offline, as
    `task` (auto: the checkpoint's own head, see read_head)."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    directory = Path(directory)
    found, labels = read_head(directory)
    _check_task(directory, task, found)
    task = found if task == "auto" else task
    pooling = read_pooling(directory)
    auto = AutoModel if task == "embedding" else AutoModelForSequenceClassification
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        module = auto.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise InputError(f"{directory}: not a Hugging Face encoder with its tokenizer ({why}); "
                         "expected config.json, model.safetensors and tokenizer files") from None
    limit = getattr(module.config, "max_position_embeddings", None) or max_len
    return Encoder(module.eval(), tokenizer, pooling, min(max_len, int(limit)), task,
                   labels if task != "embedding" else [])


def save_encoder(encoder: Encoder, directory: str | Path) -> Path:
    """Weights (safetensors), config, tokenizer and (embedding only) pooling note into
    `directory`."""
    directory = Path(directory)
    quiet_transformers()
    encoder.module.save_pretrained(directory)
    encoder.tokenizer.save_pretrained(directory)
    if encoder.task == "embedding":
        write_pooling(directory, encoder.pooling, int(encoder.module.config.hidden_size))
    usual_permissions(directory)
    return directory


def vocab_fingerprint(tokenizer) -> str:
    """A short hash of a tokenizer's vocabulary (token -> id): students share their teacher's."""
    import hashlib

    items = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:12]


def layer_picks(n_teacher: int, n_student: int) -> list[int]:
    """The teacher layers a shrunk student starts from, evenly spread from the first to the
    last (the rule the trainer's teacher-layers init uses for the GPT: 6 -> 3 gives [0, 2, 5])."""
    import numpy as np

    if not 0 < n_student <= n_teacher:
        raise InputError(f"student layers: must be between 1 and the teacher's {n_teacher}; "
                         f"got {n_student}")
    return np.linspace(0, n_teacher - 1, n_student).round().astype(int).tolist()


def narrow_config(config, hidden_size: int | None):
    """A copy of an encoder's config at width `hidden_size` (None: the same width): the same
    attention head count (each head hidden_size / heads wide) and the feed-forward width scaled
    alike. A width the head count does not divide is one InputError."""
    import copy

    width, heads = int(config.hidden_size), int(config.num_attention_heads)
    config = copy.deepcopy(config)
    if hidden_size is None or hidden_size == width:
        return config
    if hidden_size % heads:
        raise InputError(f"--set hidden_size={hidden_size}: the student keeps the teacher's "
                         f"{heads} attention heads, which must divide its width; use a "
                         f"multiple of {heads} (the teacher's width: {width})")
    config.hidden_size = hidden_size
    config.intermediate_size = max(1, round(int(config.intermediate_size) * hidden_size / width))
    return config


def shrink(teacher: torch.nn.Module, n_layers: int, init: str = "teacher-layers",
           hidden_size: int | None = None) -> tuple[torch.nn.Module, str]:
    """The teacher's architecture with `n_layers` layers: a copy of the teacher keeping its
    layer_picks (embeddings too) for init teacher-layers, or freshly initialised for random.
    At another width (`hidden_size`, see narrow_config) the student is that architecture
    freshly initialised: no teacher weight fits it. Returns the student and a note of its
    init."""
    import copy

    n_teacher = int(teacher.config.num_hidden_layers)
    picks = layer_picks(n_teacher, n_layers)
    config = narrow_config(teacher.config, hidden_size)
    if config.hidden_size != teacher.config.hidden_size:
        config.num_hidden_layers = n_layers
        torch.manual_seed(0)
        return type(teacher)(config), f"random (width {config.hidden_size})"
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
        return reinit(student), "random"
    return student, f"teacher layers {picks}"


def reinit(module: torch.nn.Module) -> torch.nn.Module:
    """A fresh, seeded initialisation of `module`'s architecture (its class and config)."""
    torch.manual_seed(0)
    return type(module)(module.config)


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


RANKING_QUERIES = 16  # module_queries' queries: the most common top-level modules


def module_queries(docs: list[tuple[str, str, str]], keep: list[str],
                   negatives: int | None, seed: int = 0) -> tuple[list[str], list[str], list[float]]:
    """A real ranking task from (name, label, text) docs: the name of a top-level module in
    `keep` is a query, and a docstring of one of them a candidate, relevant (1.0) where it
    documents that module. Training (`negatives` k): each such docstring under its own module
    and under k other modules drawn at random (0.0); evaluation (None): every query beside
    every docstring, so each module ranks all of them. One row per (query, candidate) pair."""
    import numpy as np

    texts, ids = labeled(docs, keep)
    rng = np.random.default_rng(seed)
    queries, candidates, relevance = [], [], []
    for text, own in zip(texts, ids):
        if negatives is None:
            rows = range(len(keep))
        else:
            others = rng.choice(len(keep) - 1, size=min(negatives, len(keep) - 1), replace=False)
            rows = [own] + [int(k) + (k >= own) for k in others]
        for q in rows:
            queries.append(keep[q])
            candidates.append(text)
            relevance.append(1.0 if q == own else 0.0)
    return queries, candidates, relevance


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
