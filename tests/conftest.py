import os

import pytest

TINY = "builtin:n_layer=2,n_embd=32,n_head=2,block_size=64"
TINY_B = "builtin:n_layer=1,n_embd=16,n_head=2,block_size=64"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Export cache in a temp dir so tests neither read nor pollute ~/.cache/roi."""
    path = tmp_path_factory.mktemp("roi-cache")
    old = os.environ.get("ROI_CACHE_DIR")
    os.environ["ROI_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("ROI_CACHE_DIR", None)
    else:
        os.environ["ROI_CACHE_DIR"] = old
