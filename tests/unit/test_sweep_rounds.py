"""Resuming a multi-round bench (issue 18): a round is two writes, its pooled raw samples and
then its row; a kill between them leaves samples that are not the row's, and the resumed sweep
must measure that configuration again rather than pool a round twice."""

import numpy as np

from bench.sweep import rounds_kept
from contracts.results import KEY_COLUMNS, RAW_DIR, ResultsStore

KEY = ("builtin:tiny", "teacher", "torch-eager", "cpu", "fp32", 1, 16, 1)


def _store(tmp_path, rounds: int = 1, calls: int = 4) -> ResultsStore:
    store = ResultsStore(tmp_path)
    row = {**dict(zip(KEY_COLUMNS, KEY)), "status": "ok", "n_calls": calls, "rounds": rounds,
           "source": "measured"}
    store.append(row, {"latency_ns": np.arange(1, calls + 1, dtype=np.int64)})
    return store


def test_a_row_whose_samples_are_its_own_keeps_its_rounds(tmp_path):
    assert rounds_kept(_store(tmp_path, rounds=2), KEY) == 2
    assert rounds_kept(_store(tmp_path), ("other",) * 8) == 0  # never measured


def test_samples_of_a_round_whose_row_was_never_written_send_it_back_to_round_one(tmp_path,
                                                                                     caplog):
    store = _store(tmp_path)  # round 1: 4 calls
    rid = store.rows[0]["row_id"]
    np.savez(tmp_path / RAW_DIR / f"{rid}.npz", latency_ns=np.arange(9, dtype=np.int64))
    assert rounds_kept(ResultsStore(tmp_path), KEY) == 0  # round 2's 9 pooled samples, 4 rows
    assert "raw samples (9) do not match its row (4 calls)" in caplog.text
    (tmp_path / RAW_DIR / f"{rid}.npz").unlink()
    assert rounds_kept(ResultsStore(tmp_path), KEY) == 0


def test_failed_and_skipped_rows_are_judged_by_status_alone(tmp_path):
    store = ResultsStore(tmp_path)
    store.append({**dict(zip(KEY_COLUMNS, KEY)), "status": "skipped", "source": "measured"})
    assert rounds_kept(store, KEY) == 1 << 30  # complete: another round would end the same
