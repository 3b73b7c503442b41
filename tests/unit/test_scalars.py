"""distill/scalars.py: the scalars a person watches a distillation by (TensorBoard event files,
or scalars.jsonl without tensorboardX), and what a resumed run keeps of them."""

import json
import struct

import pytest

from contracts.errors import InputError
from distill import scalars
from distill.scalars import JsonlWriter, Scalars, TensorBoardWriter, check_logger, open_writer


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_interval_writes_loss_lr_and_tokens_per_second_of_its_steps(tmp_path):
    log = Scalars(JsonlWriter(tmp_path / "s.jsonl"), every=2, tokens_per_step=100)
    for step, seconds in ((1, 0.1), (2, 0.3), (3, 0.5)):
        log.step(step, loss=float(step), lr=0.01 * step, seconds=seconds, last=step == 3)
    log.evaluation(3, {"loss": 1.5, "bits_per_byte": 2.0, "perplexity": 4.5, "accuracy": 0.25,
                       "tokens": 10})
    log.close()
    got = _lines(tmp_path / "s.jsonl")
    assert [r["step"] for r in got] == [2, 3, 3]
    assert got[0]["train/tokens_per_s"] == pytest.approx(200 / 0.4)  # steps 1-2
    assert got[1]["train/tokens_per_s"] == pytest.approx(100 / 0.5)  # the last step alone
    assert (got[1]["train/loss"], got[1]["train/lr"]) == (3.0, 0.03)
    assert got[2] == {"step": 3, "eval/loss": 1.5, "eval/bits_per_byte": 2.0,
                      "eval/perplexity": 4.5, "eval/accuracy": 0.25}


def test_resuming_drops_what_was_logged_after_the_checkpoint_and_a_torn_line(tmp_path):
    path = tmp_path / "scalars.jsonl"
    path.write_text("".join(json.dumps({"step": s, "train/loss": 1.0}) + "\n"
                            for s in (2, 4, 6)) + '{"step": 8, "train/lo')
    writer = JsonlWriter(path, start_step=4)
    writer.write(6, {"train/loss": 0.5})
    writer.close()
    assert _lines(path) == [{"step": 2, "train/loss": 1.0}, {"step": 4, "train/loss": 1.0},
                            {"step": 6, "train/loss": 0.5}]


def _events(logdir) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in the TFRecord event files under logdir."""
    from tensorboardX.proto import event_pb2

    found = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4  # length, its crc, the record, its crc
            found += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    return found


def test_tensorboard_event_files_hold_the_scalars(tmp_path):
    writer = open_writer("tensorboard", tmp_path)
    assert isinstance(writer, TensorBoardWriter)
    writer.write(10, {"train/loss": 2.5, "train/lr": 0.001})
    writer.close()
    assert _events(tmp_path / "tb") == [("train/loss", 10, 2.5),
                                        ("train/lr", 10, pytest.approx(0.001))]


def test_auto_falls_back_to_jsonl_and_tensorboard_without_the_package_names_the_extra(
        tmp_path, monkeypatch):
    monkeypatch.setattr(scalars, "has_tensorboard", lambda: False)
    assert check_logger("auto") == "jsonl"
    assert isinstance(open_writer("auto", tmp_path), JsonlWriter)
    with pytest.raises(InputError, match=r"distill-roi\[tensorboard\]"):
        check_logger("tensorboard")
    assert open_writer("none", tmp_path) is None
    monkeypatch.setattr(scalars, "has_tensorboard", lambda: True)
    assert check_logger("auto") == "tensorboard"
