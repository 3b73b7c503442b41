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
