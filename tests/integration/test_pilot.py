"""Pilots measure whole runs: a pilot's point at N steps is what `train` ends at after N steps
(the wsd schedule's prefix property), KD and baseline alike; pilot.csv resumes by curve."""

import json
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from distill.config import make_config
from distill.pilot import curve, default_points, pilot, setup
from distill.trainer import lr_at, train
from contracts.curves import read_curves
from contracts.errors import InputError

STUDENT = "builtin:n_layer=1,n_embd=32,n_head=2,block_size=32"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    root = Path(sysconfig.get_paths()["stdlib"])
    text = "\n".join((root / m).read_text() for m in ("json/decoder.py", "textwrap.py",
                                                       "string.py", "shlex.py"))
    lines = text.splitlines()
    docs = ["\n".join(lines[i : i + 40]) for i in range(0, len(lines), 40)]
    path = tmp_path_factory.mktemp("corpus") / "code.jsonl"
    path.write_text("\n".join(json.dumps({"text": d}) for d in docs))
    return str(path)


def _cfg(corpus: str, tmp_path: Path, **kw):
    base = dict(teacher="builtin:teacher", student=STUDENT, mode="kd", temperature=1.0,
                alpha=0.9, lr=3e-3, min_lr=3e-4, warmup_steps=2, steps=12, batch_size=4,
                block_size=32, eval_every=100, ckpt_every=100, eval_windows=8, threads=1,
                data_source=corpus, val_fraction=0.2, test_fraction=0.2,
                teacher_cache_dir=str(tmp_path / "logits"))
    return make_config({**base, **kw})


def test_wsd_rates_do_not_depend_on_the_length_before_the_decay(tmp_path, corpus):
    short, long = (_cfg(corpus, tmp_path, steps=n) for n in (10, 40))
    assert [lr_at(short, s) for s in range(8)] == [lr_at(long, s) for s in range(8)]
    assert lr_at(short, 9) == pytest.approx(3e-4)  # the last step runs at min_lr
    assert lr_at(short, 8) == pytest.approx(3e-3 - (3e-3 - 3e-4) / 2)  # 2 decay steps
    assert lr_at(long, 8) == pytest.approx(3e-3)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kd", "ce"])
def test_a_pilot_point_is_the_result_of_a_whole_run(tmp_path, corpus, mode):
    cfg = _cfg(corpus, tmp_path, mode=mode)
    rows = {r["step"]: r for r in curve(cfg, [6, 12], setup(cfg))}
    for steps in (6, 12):
        whole = train(cfg.model_copy(update={"steps": steps}), tmp_path / f"{mode}{steps}")
        m = whole.metrics["student"]
        assert rows[steps]["loss"] == pytest.approx(m["loss"], rel=1e-6, abs=1e-7)
        assert rows[steps]["accuracy"] == m["accuracy"]
        assert rows[steps]["teacher_accuracy"] == pytest.approx(
            whole.metrics["teacher"]["accuracy"]) if mode == "kd" else True


@pytest.mark.slow
def test_pilot_writes_the_contract_and_resumes_by_curve(tmp_path, corpus):
    cfg = _cfg(corpus, tmp_path, logger="jsonl", log_every=4)
    df = pilot(cfg, [STUDENT], tmp_path / "p", steps=12, points=[4, 8, 12])
    logs = sorted((tmp_path / "p" / "scalars").glob("*/scalars.jsonl"))
    assert [p.parent.name[-2:] for p in logs] == ["ce", "kd"]
    records = [json.loads(line) for line in logs[1].read_text().splitlines()]
    assert [r["step"] for r in records if "train/loss" in r] == [4, 8]  # the stable run
    assert [r["step"] for r in records if "eval/loss" in r] == [4, 8, 12]  # every point
    assert set(df["mode"]) == {"kd", "ce"} and sorted(df["step"].unique()) == [4, 8, 12]
    assert (df["tokens"] == df["step"] * 4 * 32).all()
    assert df["teacher_hash"].nunique() == 1 and df["recipe"].nunique() == 1
    first = pd.read_csv(tmp_path / "p" / "pilot.csv")
    again = pilot(cfg, [STUDENT], tmp_path / "p", steps=12, points=[4, 8, 12])
    assert len(again) == len(first)  # nothing re-run, nothing duplicated
    assert read_curves(tmp_path / "p")["loss"].tolist() == first["loss"].tolist()


def test_cosine_pilots_are_refused(tmp_path, corpus):
    cfg = _cfg(corpus, tmp_path, schedule="cosine")
    with pytest.raises(InputError, match="wsd"):
        curve(cfg, [6, 12], None)


def test_default_points_stay_out_of_the_warmup():
    assert default_points(96, 20) == [24, 34, 48, 68, 96]
    assert default_points(24, 4) == [6, 8, 12, 17, 24]
    assert default_points(10, 20) == [10]
