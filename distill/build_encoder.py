"""Build the reference sentence-embedding teacher offline (issue 19): no BERT checkpoint can be
downloaded here, so one is made from real text that ships with Python.

    python -m distill.build_encoder [--task embedding|classification|cross-encoder]
                                    [--steps 600] [--max-len 64] [--threads N] [--root DIR]

1. a WordPiece tokenizer (`tokenizers`, lower-cased, 8k tokens) trained on the training split of
   the standard library's docstrings (models.encoder.stdlib_docstring_splits);
2. a 6-layer BERT (transformers BertModel from a config, mean pooling) trained to tell which
   top-level module or package a docstring documents (the `LABELS` most common ones), through a
   linear head on its mean-pooled embedding: a supervised sentence-embedding model;
3. saved as a Hugging Face directory (save_pretrained + tokenizer + sentence-transformers
   pooling note) in the `encoders` cache (contracts.caches), under a key hashed from the recipe
   and the docstrings, with build.json holding the recipe, the weights' sha256 and held-out
   nearest-centroid accuracy. An entry already built is reused, never rebuilt.

With --task classification or cross-encoder (build_head), that encoder is then fine-tuned with
a *ForSequenceClassification head (HEAD_RECIPES) and cached beside it the same way.

Deterministic for a given machine, thread count and Python (the docstrings are this Python's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from contracts.caches import cache_root, use, write_lock
from contracts.io import write_json_atomic

from models.encoder import RANKING_QUERIES

from .encoder_data import TRAIN_NEGATIVES

# small enough to train on 2 CPU cores in minutes (docstrings average 45 tokens; 64 keeps most)
RECIPE = dict(vocab_size=8192, hidden=128, layers=6, heads=2, intermediate=512, max_len=64,
              labels=32, steps=600, batch_size=32, lr=1e-3, seed=0, version=2)
CACHE = "encoders"  # contracts.caches.CACHES
BUILD_FILE = "build.json"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_tokenizer(texts: list[str], vocab_size: int, max_len: int):
    """A lower-cased BERT WordPiece tokenizer trained on `texts`, as a transformers fast
    tokenizer ([CLS] text [SEP], padding with [PAD]).

    Deterministic: the trainer numbers the continuation pieces (##c) in the order of its own
    hash map, and merges with equal counts go to the lower ids, so two runs chose different
    pieces (10 of 8,192 on the docstrings) until every character and its ##form are fixed up
    front, in sorted order, as the trainer's first tokens."""
    from tokenizers import Tokenizer, models
    from tokenizers.trainers import WordPieceTrainer

    tok = _bert_pipeline(Tokenizer(models.WordPiece(unk_token="[UNK]")))
    chars = sorted({c for t in texts for c in tok.normalizer.normalize_str(t) if not c.isspace()})
    fixed = SPECIALS + chars + ["##" + c for c in chars]
    tok.train_from_iterator(texts, WordPieceTrainer(vocab_size=vocab_size, special_tokens=fixed,
                                                    show_progress=False))
    # the trainer's "special" characters become plain vocabulary: only SPECIALS stay special
    clean = _bert_pipeline(Tokenizer(models.WordPiece(tok.get_vocab(), unk_token="[UNK]")))
    clean.add_special_tokens(SPECIALS)
    return _as_transformers(clean, max_len)


def _bert_pipeline(tok):
    """BERT's lower-casing normalizer, pre-tokenizer and WordPiece decoder on `tok`."""
    from tokenizers import decoders, normalizers, pre_tokenizers

    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    return tok


def _as_transformers(tok, max_len: int):
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=max_len)


def new_bert(recipe: dict, vocab_size: int):
    """A freshly initialised BertModel of the recipe's shape (no pooler: mean pooling)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(recipe["seed"])
    config = BertConfig(vocab_size=vocab_size, hidden_size=recipe["hidden"],
                        num_hidden_layers=recipe["layers"], num_attention_heads=recipe["heads"],
                        intermediate_size=recipe["intermediate"],
                        max_position_embeddings=recipe["max_len"])
    return BertModel(config, add_pooling_layer=False)


def entry_key(recipe: dict, data_fp: str) -> str:
    return hashlib.sha256(json.dumps([recipe, data_fp], sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def build(recipe: dict | None = None, root: str | Path | None = None, threads: int | None = 1,
          progress=None) -> Path:
    """The teacher's directory in the encoders cache, built first when it is not there."""
    from models.encoder import labeled, stdlib_docstring_splits, text_fingerprint, top_labels

    recipe = {**RECIPE, **(recipe or {})}
    splits = stdlib_docstring_splits()
    keep = top_labels(splits["train"], recipe["labels"])
    texts, ys = labeled(splits["train"], keep)
    data_fp = text_fingerprint([t for _, _, t in splits["train"]], [lb for _, lb, _ in
                                                                    splits["train"]])
    entry = (Path(root) if root else cache_root()) / CACHE / entry_key(recipe, data_fp)
    return _cached(entry, lambda tmp: _build_into(tmp, recipe, splits, keep, texts, ys, data_fp,
                                                  threads, progress))


def _cached(entry: Path, fill) -> Path:
    """`entry` of the cache, filled first by `fill(tmp)` in a temporary directory beside it
    (then moved into place) when it holds no build.json yet. An entry already built is used
    without waiting on the cache's write lock (another entry's build may hold it for
    minutes)."""
    if (entry / BUILD_FILE).is_file():
        return use(entry)
    with write_lock(entry.parent):
        if not (entry / BUILD_FILE).is_file():
            tmp = entry.with_name(f".{entry.name}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            fill(tmp)
            shutil.rmtree(entry, ignore_errors=True)
            tmp.rename(entry)
    return use(entry)


def _train_config(recipe: dict, threads: int | None, layers: int):
    from .encoder import make_encoder_config

    return make_encoder_config(dict(mode="labels", init="random", layers=layers,
                                    steps=recipe["steps"], batch_size=recipe["batch_size"],
                                    lr=recipe["lr"], seed=recipe["seed"], threads=threads,
                                    device="cpu", ckpt_every=recipe["steps"]))


def _finish(tmp: Path, run: dict, note: dict) -> None:
    """build.json (the note, the training time and loss, the weights' hash); the optimizer
    state is not shipped."""
    (tmp / "train_state.pt").unlink(missing_ok=True)
    write_json_atomic(tmp / BUILD_FILE, {
        **note, "train_s": run["train_s"], "final_train_loss": run["history"][-1]["train_loss"],
        "weights_sha256": file_sha256(tmp / "model.safetensors")})


def _build_into(tmp: Path, recipe: dict, splits, keep, texts, ys, data_fp, threads,
                progress) -> None:
    """Train the teacher into the temporary directory `tmp`."""
    import torch

    from models.encoder import Encoder

    from .encoder import train_encoder

    tokenizer = train_tokenizer([t for _, _, t in splits["train"]], recipe["vocab_size"],
                                recipe["max_len"])
    enc = Encoder(new_bert(recipe, len(tokenizer)), tokenizer, "mean", recipe["max_len"])
    cfg = _train_config(recipe, threads, recipe["layers"])
    run = train_encoder(cfg, enc, texts, torch.tensor(ys), tmp, data_fp, progress=progress)
    _finish(tmp, run, {"built_by": "python -m distill.build_encoder", "recipe": recipe,
                       "labels": keep, "data_fingerprint": data_fp, "pooling": "mean"})


# ------------------------------------------------------------------ classifier, cross-encoder

# the built encoder fine-tuned with a head: which of the `labels` most common top-level modules
# a docstring documents (classification), or how relevant a docstring is to a module's name
# (cross-encoder: the name of one of the `labels` most common modules as the query, a docstring
# as the candidate, relevant where it documents that module, each training docstring under its
# own module and `negatives` random others; models.encoder.module_queries)
HEAD_RECIPES = {"classification": dict(labels=16, steps=300, batch_size=32, lr=5e-4, seed=0,
                                       version=1),
                "cross-encoder": dict(labels=RANKING_QUERIES, negatives=TRAIN_NEGATIVES,
                                      steps=600, batch_size=32, lr=5e-4, seed=0, version=4)}
# Cross-encoder versions 1-3 did not learn (BENCHMARKS.md, issue 19): a function's name -> its
# docstring, and a docstring's first line -> the rest of it, stayed at chance (binary
# cross-entropy 0.69) for up to 1,050 steps; the body (trained to tell modules apart) had no
# way to match two free texts. Version 4 asks what the body knows: a docstring's module.


def build_head(task: str, recipe: dict | None = None, root: str | Path | None = None,
               threads: int | None = 1, progress=None) -> Path:
    """A classification or cross-encoder teacher (a *ForSequenceClassification directory) in
    the encoders cache: the built sentence encoder (build) fine-tuned with the task's head on
    the standard library's docstrings; built first when it is not there."""
    base = build(root=root, threads=threads, progress=progress)
    recipe = {**HEAD_RECIPES[task], **(recipe or {})}
    entry = base.parent / entry_key({"task": task, **recipe}, base.name)
    return _cached(entry, lambda tmp: _build_head_into(tmp, task, recipe, base, threads,
                                                       progress))


def head_data(task: str, recipe: dict, split: str = "train") -> tuple[list, list, list[str]]:
    """The head's training items (texts, or (module name, docstring) pairs), targets (class ids or
    relevances) and class names (none for a cross-encoder), from the stdlib docstrings."""
    from models.encoder import labeled, module_queries, stdlib_docstring_splits, top_labels

    docs = stdlib_docstring_splits()
    keep = top_labels(docs["train"], recipe["labels"])
    if task == "classification":
        return (*labeled(docs[split], keep), keep)
    queries, candidates, relevance = module_queries(docs[split], keep, recipe["negatives"],
                                                    recipe["seed"])
    return list(zip(queries, candidates)), relevance, []


def with_head(body, task: str, labels: list[str]):
    """A *ForSequenceClassification of `body`'s architecture holding `body`'s weights and a
    fresh head: len(labels) classes named by `labels`, or one score (no labels)."""
    import copy

    import torch
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(body.config)
    config.num_labels = len(labels) or 1
    config.id2label = dict(enumerate(labels or ["score"]))
    config.label2id = {v: k for k, v in config.id2label.items()}
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    got = model.base_model.load_state_dict(body.state_dict(), strict=False)
    if got.unexpected_keys or any(not k.startswith("pooler.") for k in got.missing_keys):
        raise ValueError(f"the body does not fit the head's model: {got}")
    return model  # a body without a pooler (mean pooling) gets a fresh one


def _build_head_into(tmp: Path, task: str, recipe: dict, base: Path, threads, progress) -> None:
    import torch

    from models.encoder import Encoder, load_encoder, text_fingerprint

    from .encoder import train_encoder

    torch.manual_seed(recipe["seed"])  # the body's pooler is not in the base: initialised
    body = load_encoder(base, task="embedding")
    items, ys, labels = head_data(task, recipe)
    enc = Encoder(with_head(body.module, task, labels), body.tokenizer, "cls", body.max_len,
                  task, labels)
    data_fp = text_fingerprint([str(x) for x in items])
    run = train_encoder(_train_config(recipe, threads, body.module.config.num_hidden_layers),
                        enc, items, torch.tensor(ys), tmp, data_fp, progress=progress)
    _finish(tmp, run, {"built_by": f"python -m distill.build_encoder --task {task}",
                       "recipe": recipe, "base": base.name, "labels": labels, "task": task,
                       "data_fingerprint": data_fp, "train_items": len(items)})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=RECIPE["steps"])
    ap.add_argument("--max-len", type=int, default=RECIPE["max_len"], help="context (tokens) "
                    "[default: %(default)s; 128 for the batch-1, sequence-128 speed goal]")
    ap.add_argument("--threads", type=int, default=1, help="torch threads [default: 1: on a "
                    "shared 2-core machine one thread ran a step ~3x faster than two]")
    ap.add_argument("--root", default=None, help="cache root [default: contracts.caches]")
    head_steps = ", ".join(f"{task} {r['steps']}" for task, r in HEAD_RECIPES.items())
    ap.add_argument("--task", default="embedding", choices=["embedding", *HEAD_RECIPES],
                    help="embedding: the sentence encoder; classification / cross-encoder: "
                    f"it fine-tuned with that head (its --steps: {head_steps})")
    args = ap.parse_args(argv)

    def progress(step: int, total: int, loss: float) -> None:
        if step % 50 == 0 or step == total:
            print(f"step {step}/{total} loss {loss:.4f}", flush=True)

    if args.task == "embedding":
        entry = build({"steps": args.steps, "max_len": args.max_len}, args.root, args.threads,
                      progress)
    else:
        steps = {"steps": args.steps} if args.steps != RECIPE["steps"] else {}
        entry = build_head(args.task, steps, args.root, args.threads, progress)
    print(json.dumps(json.loads((entry / BUILD_FILE).read_text()), indent=2))
    print(f"teacher: hf:{entry}")


if __name__ == "__main__":
    main()
