"""A tiny BERT sentence encoder built offline for the encoder tests: a WordPiece tokenizer
trained on real docstrings of 60 standard-library files, 4 layers of width 32."""

TINY = dict(vocab_size=400, hidden=32, layers=4, heads=2, intermediate=64, max_len=32, seed=0)
TEXTS = ["Return the absolute value of the argument.", "Open a file and return a stream.",
         "Create a new socket using the given address family.", "Parse an e-mail message.",
         "Return True if the path exists.", "Join two or more pathname components."]


def tiny_encoder_of():
    """The encoder (a pytest fixture where a test module wraps it)."""
    from itertools import islice

    from distill.build_encoder import new_bert, train_tokenizer
    from models.corpus import stdlib_documents
    from models.encoder import Encoder, docstrings

    texts = [t for _, _, t in docstrings(islice(stdlib_documents(), 60))]
    tok = train_tokenizer(texts, TINY["vocab_size"], TINY["max_len"])
    return Encoder(new_bert(TINY, len(tok)), tok, "mean", TINY["max_len"])


def tiny_head_dir(tiny, task: str, root, steps: int = 60):
    """`tiny` with a head that has opinions, saved into `root`: fine-tuned `steps` steps to
    tell the standard library's three commonest modules apart by a docstring (at BERT's init
    the [CLS] state a head reads barely depends on the text: logits agree to 1e-4 across
    texts). A cross-encoder is that body under a fresh one-score head scaled x50 (trained on
    pairs for as long, its score stays a constant guess: build_encoder's HEAD_RECIPES)."""
    import torch

    from distill.build_encoder import head_data, with_head
    from distill.encoder import EncoderConfig, train_encoder
    from models.encoder import Encoder, save_encoder

    items, ys, labels = head_data("classification", dict(labels=3, seed=0))
    enc = Encoder(with_head(tiny.module, "classification", labels), tiny.tokenizer, "cls",
                  tiny.max_len, "classification", labels)
    cfg = EncoderConfig(mode="labels", init="random", steps=steps, batch_size=16, lr=3e-3,
                        warmup_steps=5, ckpt_every=steps, device="cpu", threads=1)
    train_encoder(cfg, enc, items, torch.tensor(ys), root, "tiny-head")
    (root / "train_state.pt").unlink()
    if task == "cross-encoder":
        enc = Encoder(with_head(enc.module.bert, task, []), tiny.tokenizer, "cls",
                      tiny.max_len, task, [])
        with torch.no_grad():
            enc.module.classifier.weight.mul_(50)
        save_encoder(enc, root)
    return root
