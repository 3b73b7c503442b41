import os
import signal

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


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_reaches_children():
    """The Ctrl-C tests send SIGINT to the commands they start. A shell without job control
    starts a background job (`cmd &`, nohup) with SIGINT ignored, and an ignored signal stays
    ignored across exec: those commands would never see it. A handler does not survive exec, so
    giving this process one hands each child SIGINT's default, as a terminal would."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
