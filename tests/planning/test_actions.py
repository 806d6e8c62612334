"""The action vocabulary: what a schedule may say, checked before any array."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from mlpckpt.planning._actions import (
    BACKWARD,
    FORWARD,
    LOSS,
    check_actions,
    count_forward_evals,
    format_action,
)
from mlpckpt.planning._lowering import timeline
from mlpckpt.planning._plan import Call, compile_actions, plan_call


def call(n):
    return Call(sizes=(4,) * (n + 1), batch=1, dtype="float64", activations=("tanh",) * (n - 1))


F, L, B = FORWARD, LOSS, BACKWARD

BAD = [
    # (schedule, n, the message names ...)
    ([(F, 0, 1, 1), (L,), (9, 0)], 1, r"actions\[2\]: \(9, 0\) is not"),
    ([[F, 0, 1, 1], (L,), (B, 0, 1)], 1, r"actions\[0\]: expected a tuple of ints"),
    ([(F, 0, 1.0, 1), (L,), (B, 0, 1)], 1, r"actions\[0\]: expected a tuple of ints"),
    ([(F, 0, True, 1), (L,), (B, 0, 1)], 1, r"actions\[0\]: expected a tuple of ints"),
    ([(F, 1, 1, 1), (L,), (B, 0, 1)], 1, r"actions\[0\].*start < stop"),
    ([(F, 0, 1, 2), (L,), (B, 0, 1)], 1, r"actions\[0\].*keep 0 or 1"),
    ([(F, 0, 3, 1), (L,), (B, 0, 2)], 2, r"actions\[0\].*beyond a\[2\]"),
    ([(F, 1, 2, 1), (L,), (B, 0, 2)], 2, r"actions\[0\].*starts from a\[1\], which is not held"),
    ([(F, 0, 2, 1), (F, 0, 1, 1), (L,), (B, 0, 2)], 2, r"actions\[1\].*recomputes the held a\[1\]"),
    ([(F, 0, 2, 0), (F, 0, 2, 0), (L,), (B, 0, 2)], 2, r"actions\[1\].*recomputes the held a\[2\]"),
    ([(L,), (F, 0, 1, 1), (B, 0, 1)], 1, r"actions\[0\]: the loss needs a\[1\]"),
    ([(F, 0, 1, 1), (L,), (L,), (B, 0, 1)], 1, r"actions\[2\]: a second loss"),
    ([(F, 0, 2, 1), (B, 1, 2), (L,)], 2, r"actions\[1\].*before the loss"),
    ([(F, 0, 2, 1), (L,), (B, 0, 1)], 2, r"actions\[2\].*out of order: the next backward step is layer 1"),
    ([(F, 0, 2, 1), (L,), (B, 1, 2), (B, 1, 2)], 2, r"actions\[3\].*out of order"),
    ([(F, 0, 3, 0), (L,), (B, 2, 3), (B, 0, 2)], 3, r"actions\[2\].*layer 2 needs a\[2\], which is not held"),
    ([(F, 0, 2, 0), (L,), (B, 1, 2), (B, 0, 1)], 2, r"actions\[2\].*layer 1 needs a\[1\]"),
    ([(F, 0, 1, 1), (B, 0, 1)], 1, r"actions\[1\].*before the loss"),
    ([(F, 0, 2, 1)], 2, r"no loss"),
    ([(F, 0, 2, 1), (L,), (B, 1, 2)], 2, r"backward pass stops at layer 1, not 0"),
    ([(F, 0, 2, 1), (L,), (B, 0, 2), (F, 0, 1, 1)], 2, r"activations \[1\] are left over"),
    ([(F, 0, 1, 1), (L,), (B, 0, 1), (F, 0, 1, 1)], 1, r"actions\[3\].*recomputes a\[1\] after the loss"),
]


@pytest.mark.parametrize("actions,n,message", BAD)
def test_bad_schedules_name_the_first_bad_action(actions, n, message):
    with pytest.raises(ValueError, match=message):
        check_actions(tuple(actions), n)


def test_a_bad_strategy_is_refused_when_compiled():
    class Broken(mc.Strategy):
        def actions(self, call):
            return ((F, 0, call.n_layers, 0), (L,), (B, 0, call.n_layers))

    with pytest.raises(ValueError, match=r"actions\[2\].*needs a\[2\]"):
        compile_actions(Broken(), call(3))


STRATEGIES = st.one_of(
    st.just(mc.StoreAll()),
    st.just(mc.Sqrt()),
    st.integers(1, 70).map(mc.Segments),
    st.integers(0, 70).map(mc.Revolve),
)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 70), strategy=STRATEGIES)
def test_every_compiled_schedule_is_a_valid_one(n, strategy):
    actions = strategy.actions(call(n))
    assert check_actions(actions, n) is actions
    assert all(isinstance(a, tuple) and all(type(x) is int for x in a) for a in actions)
    assert count_forward_evals(actions) == plan_call(strategy, call(n)).forward_evals


def test_format_action_reads_the_tuple():
    assert format_action((F, 40, 64, 0)) == "forward layers 40..63 -> a[41..64], keep a[64]"
    assert format_action((F, 0, 3, 1)) == "forward layers 0..2 -> a[1..3], keep all"
    assert format_action((L,)) == "loss -> dz of the last layer"
    assert format_action((B, 2, 5)) == "backward layers 4..2"
    with pytest.raises(ValueError, match="unknown operation"):
        format_action((7,))
    lines = plan_call(mc.StoreAll(), call(3)).format_actions().splitlines()
    assert [line.split(None, 1)[1] for line in lines] == [
        "forward layers 0..2 -> a[1..3], keep all",
        "loss -> dz of the last layer",
        "backward layers 2..0",
    ]


def test_schedule_timeline_matches_the_plan():
    net = mc.MLP([4] * 33, seed=0)
    for strategy in (mc.StoreAll(), mc.Sqrt(), mc.Revolve(3)):
        sched = mc.plan(net, 8, strategy)
        ev = timeline(sched.actions, 32)
        assert len(ev["forward"]) == sched.forward_evals
        assert sorted(k for _, k in ev["backward"]) == list(range(32))
        assert len(ev["loss"]) == 1
        assert sorted(k for k, _, _ in ev["held"]) == sorted({k for k, _, _ in ev["held"]})
