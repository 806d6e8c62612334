"""The one lowering: the death rule written once (backward_flags), the rows
every consumer reads (events / lower), their size and what tracemalloc sees
of them, and that the rows account for every buffer: each activation born is
consumed or dies exactly once, and nothing is left."""

import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from mlpckpt.planning._actions import BACKWARD, FORWARD, LOSS, count_forward_evals
from mlpckpt.planning._lowering import (
    CONSUME, NEW_DA, REUSE, ROW, backward_flags, events, forward_evals, lower, program_bytes,
)
from mlpckpt.planning._plan import make_call

STRATEGIES = [mc.StoreAll(), mc.Sqrt(), mc.Segments(3), mc.Revolve(0), mc.Revolve(2), mc.Revolve(5)]


def test_backward_flags_closed_form():
    sizes = [3, 5, 5, 2, 2, 7, 7, 7, 1]
    n = len(sizes) - 1
    got = list(backward_flags(sizes))
    for k in range(n):
        reuse = 0 < k < n - 1 and sizes[k] == sizes[k + 1]
        want = (CONSUME if k + 1 < n else 0) | (REUSE if reuse else 0) | (NEW_DA if k > 0 and not reuse else 0)
        assert got[k] == want, k
    assert got[0] == CONSUME  # layer 0 makes no da[0]: X is the caller's
    assert got[n - 1] == NEW_DA  # a[n] was consumed by the loss: a new da
    assert got[1] == CONSUME | REUSE and got[3] == CONSUME | REUSE and got[2] == CONSUME | NEW_DA


def _account(actions, sizes):
    """Replay the rows' births and deaths of activation buffers; return what is
    left alive and the number of da buffers born."""
    n = len(sizes) - 1
    alive = set()
    das = 0
    for op, a, b, c in events(actions, sizes):
        if op == FORWARD:
            start, stop, keep = a, b, c
            for k in range(start, stop):
                assert k + 1 not in alive, f"a[{k + 1}] born twice"
                alive.add(k + 1)
                if not keep and k > start:
                    alive.remove(k)  # the unkept intermediate dies after its successor exists
        elif op == LOSS:
            assert a == n and n in alive
            alive.remove(n)  # becomes dz
        else:
            k, flags, rows = a, b, c
            assert op == BACKWARD
            if flags & CONSUME:
                alive.remove(k + 1)  # read for the last time: reused as da[k] or dead
            if flags & NEW_DA:
                assert rows == sizes[k]
                das += 1
            else:
                assert rows == 0
    return alive, das


@settings(max_examples=60, deadline=None)
@given(widths=st.lists(st.integers(1, 4), min_size=2, max_size=14), which=st.integers(0, len(STRATEGIES) - 1))
def test_rows_account_for_every_buffer(widths, which):
    sizes = tuple(widths)
    net = mc.NetSpec(list(sizes))
    call = make_call(net, 3)
    actions = mc.plan(net, 3, STRATEGIES[which]).actions
    alive, das = _account(actions, sizes)
    assert alive == set()  # nothing left over
    n = len(sizes) - 1
    assert das == sum(1 for k in range(1, n) if not (k + 1 < n and sizes[k] == sizes[k + 1]))
    program = lower(actions, sizes)
    rows = [tuple(program[i: i + ROW]) for i in range(0, len(program), ROW)]
    assert rows == [tuple(r) for r in events(actions, sizes)]
    assert len(rows) == sum(1 for a in actions if a[0] != BACKWARD) + n  # actions and depth, not evaluations
    assert forward_evals(program) == count_forward_evals(actions) == mc.plan(net, 3, STRATEGIES[which]).forward_evals
    assert call.n_layers == n


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_program_bytes_is_what_tracemalloc_sees(strategy):
    sizes = tuple([4] + [7, 7, 3] * 20 + [2])
    actions = mc.plan(mc.NetSpec(list(sizes)), 5, strategy).actions
    keep = []
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        keep.append(lower(actions, sizes))
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert sys.getsizeof(keep[0]) == program_bytes(actions, len(sizes) - 1)
    assert program_bytes(actions, len(sizes) - 1) <= held <= program_bytes(actions, len(sizes) - 1) + 64


def test_the_executor_runs_the_rows():
    # the executor decides nothing: a row that says NEW_DA instead of REUSE makes
    # it take one more buffer (and gives the same values)
    from mlpckpt.execution import _executor as ex

    class Counting(mc.Workspace):
        def take(self, rows, cols, dtype):
            self.taken = getattr(self, "taken", []) + [rows]
            return super().take(rows, cols, dtype)

    net = mc.MLP([3, 4, 4, 2], seed=0)
    X = np.random.default_rng(0).standard_normal((3, 5))
    Y = np.random.default_rng(1).standard_normal((2, 5))
    program = lower(mc.plan(net, 5).actions, net.sizes)
    params = ex.Params(net.weights, net.biases, net.activations, net.output)
    batch = ex.Batch(X, Y, "mse")

    def run(program):
        ws = Counting()
        return ex.execute(program, params, batch, ex.Options(workspace=ws)), ws.taken

    ref, taken = run(program)
    loss, grads = net.loss_and_grad(X, Y)
    assert ref.loss == loss
    for got, want in zip(ref.dW + ref.db, grads.weights + grads.biases):
        assert np.array_equal(got, want)
    assert taken == [4, 4, 2, 4]  # a[1], a[2], a[3]; da[2] new (a[3] is 2 wide); da[1] reuses a[2]
    i = next(i for i in range(0, len(program), ROW) if program[i] == BACKWARD and program[i + 1] == 1)
    assert program[i + 2] == CONSUME | REUSE
    program[i + 2], program[i + 3] = CONSUME | NEW_DA, 4
    again, taken = run(program)
    assert taken == [4, 4, 2, 4, 4]  # da[1] in a new buffer now
    for got, want in zip(again.dW + again.db, ref.dW + ref.db):
        assert np.array_equal(got, want)
