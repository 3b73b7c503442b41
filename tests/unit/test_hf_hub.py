"""hf:ORG/NAME[@REVISION]: resolved from the local Hugging Face cache (HF_HUB_CACHE, HF_HOME),
never downloaded; a model not there is one line saying how to fetch it; hf:DIR unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.hf_hub import hub_cache
from models.zoo import parse_spec
from app.cli import main
from contracts.errors import InputError

pytest.importorskip("huggingface_hub")
MAIN, V1 = "a" * 40, "b" * 40  # commit hashes


def _cached(hub: Path, repo: str = "org/tiny", refs: dict | None = None,
            files: dict | None = None) -> Path:
    """A model in the hub cache's layout: refs/<name> -> commit, snapshots/<commit>/files."""
    root = hub / f"models--{repo.replace('/', '--')}"
    for ref, commit in (refs or {"main": MAIN}).items():
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / ref).write_text(commit)
        snap = root / "snapshots" / commit
        snap.mkdir(parents=True, exist_ok=True)
        default = {"config.json": json.dumps({"model_type": "gpt2"}), "model.safetensors": ""}
        for name, data in (default if files is None else files).items():
            (snap / name).write_text(data)
    return root / "snapshots"


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf-home" / "hub"


def test_a_model_id_resolves_to_its_snapshot_at_a_revision(hub):
    snapshots = _cached(hub, refs={"main": MAIN, "v1": V1})
    spec = parse_spec("hf:org/tiny")
    assert spec.spec == "hf:org/tiny" and Path(spec.target) == snapshots / MAIN
    assert Path(parse_spec("hf:org/tiny@v1").target) == snapshots / V1
    assert Path(parse_spec(f"hf:org/tiny@{V1}").target) == snapshots / V1


def test_hf_hub_cache_wins_over_hf_home(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "other"))
    assert hub_cache() == tmp_path / "other"
    snapshots = _cached(tmp_path / "other")
    assert Path(parse_spec("hf:org/tiny").target) == snapshots / MAIN


@pytest.mark.parametrize("spec, fetch", [("hf:org/missing", "hf download org/missing"),
                                         ("hf:org/tiny@v9", "hf download org/tiny --revision v9")])
def test_a_model_not_in_the_cache_says_how_to_fetch_it(hub, spec, fetch):
    _cached(hub)
    repo, _, rev = spec[3:].partition("@")
    at = f" at revision {rev}" if rev else ""
    with pytest.raises(InputError) as e:
        parse_spec(spec)
    assert str(e.value) == (f"{spec}: {repo}{at} is not in the local Hugging Face cache ({hub}) "
                            f"and nothing is downloaded: fetch it with `{fetch}` (HF_HOME or "
                            "HF_HUB_CACHE choose the cache), or give hf:DIR")


def test_an_existing_directory_stays_a_directory(hub, tmp_path, monkeypatch):
    _cached(hub)
    local = tmp_path / "org" / "tiny"
    local.mkdir(parents=True)
    (local / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (local / "model.safetensors").write_text("")
    monkeypatch.chdir(tmp_path)
    assert parse_spec("hf:org/tiny").target == "org/tiny"


def test_bench_refuses_a_model_id_not_in_the_cache_in_one_line(hub, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "--teacher", "hf:org/missing", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: hf:org/missing: org/missing is not in the local Hugging Face "
                          "cache") and err.count("\n") == 1
    assert not out.exists()


def test_a_cached_model_loads_by_its_id(hub):
    transformers = pytest.importorskip("transformers")
    from models.zoo import load_torch

    snap = _cached(hub, files={}) / MAIN
    transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=32)).save_pretrained(snap)
    tm = load_torch(parse_spec("hf:org/tiny@main"))
    assert tm.vocab_size == 64 and tm.family == "hf-gpt2"
