import numpy as np
import pytest

from contracts.errors import InputError
from roi.simulation import (
    batch_response_ms,
    simulate_batching_ms,
    simulate_response_ms,
    simulated_max_qps,
)


def test_batch_size_one_is_the_mg1_simulation():
    s = np.random.default_rng(3).exponential(10.0, 50_000)
    one = simulate_response_ms(s, 80.0, seed=4)
    for window in (0.0, 5.0, np.inf):
        np.testing.assert_allclose(simulate_batching_ms(s, 80.0, batch_size=1,
                                                        window_ms=window, seed=4), one,
                                   rtol=1e-9, atol=1e-9)


def test_hand_checked_batches():
    # b = 3, 5 ms window, 4 ms service. The first three fill a batch at t = 2 (ends 6); 10
    # finds the server idle, its window closes at 15 with nobody else (ends 19); 30 and 31
    # wait for the window to close at 35 (ends 39)
    t, sizes = batch_response_ms([0, 1, 2, 10, 30, 31], np.full(6, 4.0), 3, 5.0)
    assert t.tolist() == [6, 5, 4, 9, 9, 8] and sizes.tolist() == [3, 1, 2]
    # no window, 10 ms service: 0 goes alone; at 10 the worker takes 1 and 2 (queued), at 20
    # 3 and 4
    t, sizes = batch_response_ms([0, 1, 2, 3, 4], np.full(5, 10.0), 2, 0.0)
    assert t.tolist() == [10, 19, 18, 27, 26] and sizes.tolist() == [1, 2, 2]
    # infinite window: the last batch is flushed when the stream ends
    t, sizes = batch_response_ms([0, 1, 2], np.full(3, 1.0), 2, np.inf)
    assert t.tolist() == [2, 1, 1] and sizes.tolist() == [2, 1]


def test_service_can_depend_on_the_batch_size():
    per_size = np.array([[3.0, 7.0], [4.0, 8.0]])  # row j: batch j, column k - 1: size k
    t, sizes = batch_response_ms([0, 100], per_size, 2, 1.0)
    assert t.tolist() == [4, 5] and sizes.tolist() == [1, 1]
    t, _ = batch_response_ms([0, 0.5], per_size, 2, 1.0)
    assert t.tolist() == [7.5, 7]  # full at 0.5, a batch of 2 takes 7


@pytest.mark.parametrize("b,window", [(4, 0.0), (8, 3.0), (16, np.inf)])
def test_every_request_is_answered_once(b, window):
    rng = np.random.default_rng(b)
    arrivals = np.cumsum(rng.exponential(1.0, 20_000))
    service = rng.uniform(5, 15, 20_000)
    t, sizes = batch_response_ms(arrivals, service, b, window)
    assert sizes.sum() == arrivals.size and t.size == arrivals.size
    assert sizes.min() >= 1 and sizes.max() <= b
    assert np.all(t >= 5.0)  # nobody leaves before a service


def test_simulated_max_qps_of_a_deterministic_server():
    # M/D/1 with 10 ms service and a 10.5 ms p50 bound: a request that waits at all ... the
    # rate is where half the requests find the server idle, rho ~ 0.5 (P(wait) = rho)
    qps = simulated_max_qps(np.full(100_000, 10.0), 50, 10.0 + 1e-9, batch_size=1)
    assert qps == pytest.approx(50.0, rel=0.05)
    assert simulated_max_qps(np.full(1000, 10.0), 99, 5.0) == 0.0


def test_refuses_bad_input():
    with pytest.raises(InputError, match="batch simulation needs"):
        batch_response_ms([0.0, 1.0], [1.0, 1.0], 0)
    with pytest.raises(InputError, match="2-D with 4 columns"):
        batch_response_ms([0.0, 1.0], np.ones((2, 2)), 4)
    with pytest.raises(InputError, match="ran out"):
        batch_response_ms([0.0, 100.0], [1.0], 1)
