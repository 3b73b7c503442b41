"""`hf:ORG/NAME[@REVISION]`: a model id resolved to its snapshot directory in the local Hugging
Face cache, through huggingface_hub (installed with transformers: the hf extra), never
downloading: the cache is `HF_HUB_CACHE`, else `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/
hub`, else `~/.cache/huggingface/hub` (huggingface_hub's own order, read when the spec is
resolved), so `HF_HUB_OFFLINE=1` machines work. A model not in the cache is one line saying so
and how to fetch it. A `hf:` target that is an existing directory stays a directory (`hf:DIR`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from contracts.errors import InputError

# ORG/NAME as the Hub spells repository ids, then an optional @REVISION (branch, tag, commit)
HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


def hub_cache() -> Path:
    """The Hugging Face hub cache directory, from the environment as huggingface_hub reads it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("HF_HOME") or Path(xdg) / "huggingface") / "hub"


def is_hub_id(target: str) -> bool:
    """Whether a hf: target names a model id rather than an existing directory."""
    return not Path(target).exists() and HUB_ID.match(target) is not None


def resolve(spec: str, target: str) -> str:
    """The snapshot directory of model id `target` (ORG/NAME[@REVISION]) in the local cache;
    InputError naming the model, the cache and the command that fetches it when it is not
    there."""
    m = HUB_ID.match(target)
    repo, revision = m["repo"], m["revision"]
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ModuleNotFoundError:
        raise InputError(f"{spec}: a model id needs huggingface_hub: pip install "
                         "'distill-roi[hf]' (or give hf:DIR, a local checkpoint directory)"
                         ) from None
    try:
        return snapshot_download(repo, revision=revision, cache_dir=hub_cache(),
                                 local_files_only=True)
    except LocalEntryNotFoundError:
        fetch = f"hf download {repo}" + (f" --revision {revision}" if revision else "")
        at = f" at revision {revision}" if revision else ""
        raise InputError(f"{spec}: {repo}{at} is not in the local Hugging Face cache "
                         f"({hub_cache()}) and nothing is downloaded: fetch it with `{fetch}` "
                         "(HF_HOME or HF_HUB_CACHE choose the cache), or give hf:DIR") from None
