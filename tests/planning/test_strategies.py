"""The fixed strategies and the binomial mathematics: closed forms,
recurrences and edges (paper_notes/checkpointing.md, eqs. C3-C9)."""

import math
from functools import lru_cache

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.planning._actions import count_forward_evals
from mlpckpt.planning._plan import Call, plan_call
from mlpckpt.planning._strategies import griewank_t, revolve_actions, segment_bounds


def call(n, width=4, batch=1):
    return Call(sizes=(width,) * (n + 1), batch=batch, dtype="float64", activations=("tanh",) * (n - 1))


def test_every_strategy_is_a_hashable_strategy():
    for strategy in (mc.StoreAll(), mc.Sqrt(), mc.Segments(3), mc.Revolve(2), mc.Budget("1MiB")):
        assert isinstance(strategy, mc.Strategy)
        assert hash(strategy) == hash(type(strategy)(*vars(strategy).values()))
    assert mc.Segments(3) == mc.Segments(3) != mc.Segments(4)
    with pytest.raises(NotImplementedError):
        mc.Strategy().actions(call(3))


def test_segment_lengths_longer_last():
    assert segment_bounds(10, 3) == [0, 3, 6, 10]
    assert segment_bounds(11, 3) == [0, 3, 7, 11]
    for n in range(1, 60):
        for k in range(1, n + 1):
            b = segment_bounds(n, k)
            lengths = np.diff(b)
            assert b[-1] == n and set(lengths) <= {n // k, -(-n // k)}
            assert list(lengths) == sorted(lengths)


@pytest.mark.parametrize("n", list(range(1, 120)) + [1000, 1024])
def test_segments_forward_evals_closed_form(n):
    for k in sorted({min(k, n) for k in (1, 2, 3, 5, math.isqrt(n), n - 1, n)} - {0}):
        m = math.ceil(n / k)
        actions = mc.Segments(k).actions(call(n))
        assert count_forward_evals(actions) == 2 * n - k - (m - 1)
    k = math.ceil(math.sqrt(n))
    assert count_forward_evals(mc.Sqrt().actions(call(n))) == 2 * n - k - (math.ceil(n / k) - 1)


def test_segments_more_than_layers_is_plain_backprop():
    assert mc.Segments(50).actions(call(7)) == mc.Segments(7).actions(call(7))
    assert count_forward_evals(mc.Segments(50).actions(call(7))) == 7


def test_griewank_examples_from_design():
    assert griewank_t(101, 10) == 225
    assert count_forward_evals(revolve_actions(100, 9)) == 225
    assert count_forward_evals(revolve_actions(1000, 9)) == 3640
    # the textbook taped Revolve spends n + t(n, slots + 1)
    assert 100 + griewank_t(100, 10) == 322


@lru_cache(maxsize=None)
def _G(length, s):
    if length == 1:
        return 0
    if s == 0:
        return length * (length - 1) // 2
    return min(j + _G(length - j, s - 1) + _G(j, s) for j in range(1, length))


@lru_cache(maxsize=None)
def _H(length, s):
    if length == 1:
        return 1
    if s == 0:
        return length * (length + 1) // 2
    return min(j + _H(length - j, s - 1) + _G(j, s) for j in range(1, length))


@pytest.mark.parametrize("s", range(0, 7))
def test_revolve_matches_the_recurrences(s):
    for n in range(1, 61):
        assert _H(n, s) == griewank_t(n + 1, s + 1)
        assert count_forward_evals(revolve_actions(n, s)) == _H(n, s)


@pytest.mark.parametrize("slots", [1] + [pytest.param(s, marks=pytest.mark.slow) for s in (2, 3, 5, 9, 25)])
def test_revolve_forward_evals_every_n_up_to_2000(slots):
    for n in range(1, 2001):
        assert count_forward_evals(revolve_actions(n, slots)) <= griewank_t(n + 1, slots + 1)


@pytest.mark.parametrize("slots", [0, 1, 2, 3, 5, 9])
def test_revolve_max_stored_bound(slots):
    for n in list(range(1, 150)) + [300, 511]:
        sched = plan_call(mc.Revolve(slots), call(n, batch=2))
        assert sched.max_stored <= slots + 3, (n, slots)
        assert sched.forward_evals == griewank_t(n + 1, slots + 1)


def test_revolve_edges():
    for n in (1, 2, 5, 40):
        assert count_forward_evals(revolve_actions(n, n - 1 if n > 1 else 0)) == n
        assert count_forward_evals(revolve_actions(n, n + 10)) == n
        assert count_forward_evals(revolve_actions(n, 0)) == n * (n + 1) // 2


@pytest.mark.parametrize("k", [0, -2, 1.5, "3", True])
def test_bad_segments_count(k):
    with pytest.raises(ValueError, match=r"^Segments\(k\): expected an int >= 1"):
        mc.Segments(k)


def test_strategy_counts_accept_numpy_integers():
    assert mc.Segments(np.int64(3)).k == 3 and type(mc.Segments(np.int64(3)).k) is int
    assert mc.Revolve(np.int32(2)).slots == 2
    with pytest.raises(ValueError, match=r"Revolve\(slots\)"):
        mc.Revolve(-1)
    with pytest.raises(ValueError, match=r"Segments\(k\)"):
        mc.Segments(0)
