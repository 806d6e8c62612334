"""The bounds behind Budget on long chains, held to the exact search where it
reaches: the held-throughout bound (eq. C24) and its schedule (C25), the
smallest-budget bounds (C26), the certificate in Schedule.details, and the
first call's memory (planning included)."""


import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.planning import _exact as exact, _held as held, _memory as memory
from mlpckpt.planning._actions import check_actions, count_forward_evals

from mlpckpt.planning import _budget as budget_mod, _plan as plan_mod
from mlpckpt.planning._lowering import program_bytes


def _model(sizes, batch, out, fuse=False, loss="mse", output="identity"):
    spec = mc.NetSpec(list(sizes), "tanh", output, "float64")
    call = plan_mod.make_call(spec, batch, loss, out=out, fuse_update=fuse)
    return spec, call, memory.model(call)


def _chains(count, seed, max_layers=9):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(2, max_layers + 1))
        widths = rng.integers(1, 140, n + 1) if rng.random() < 0.7 else [int(rng.integers(1, 140))] * (n + 1)
        out = bool(rng.random() < 0.7)
        yield [int(w) for w in widths], int(rng.integers(1, 40)), out, bool(not out and rng.random() < 0.3)


def test_bounds_hold_against_the_exact_search():
    """held_bound <= the optimum at every frontier budget; the smallest
    budget lies in [low, high]; held_actions fits where it says."""
    for sizes, batch, out, fuse in _chains(60, 0):
        _, call, m = _model(sizes, batch, out, fuse)
        n = m.n_layers
        front = exact.frontier(m)
        low, high = budget_mod.min_budget_bounds(m)
        smallest = front[0][0]
        assert low <= smallest <= high, (sizes, low, smallest, high)
        for peak, evals, _ in front:
            assert held.held_bound(m, peak) <= evals, (sizes, peak)
            chosen = held.held_set(m, peak)
            acts = check_actions(held.held_actions(chosen, n), n)
            assert count_forward_evals(acts) == n + (n - 1 - len(chosen))


def test_held_actions_are_segments():
    n = 10
    for bounds in ([], [3], [1, 2, 3], [2, 5, 9], list(range(1, n))):
        acts = check_actions(held.held_actions(bounds, n), n)
        assert count_forward_evals(acts) == n + (n - 1 - len(bounds))
    # every activation held: plain backprop's count
    assert count_forward_evals(held.held_actions(list(range(1, n)), n)) == n


@pytest.mark.slow
@pytest.mark.parametrize("uniform", [True, False])
def test_long_chain_answers_fit_and_carry_their_certificate(uniform):
    rng = np.random.default_rng(3)
    sizes = [48] * 61 if uniform else [int(w) for w in rng.integers(8, 96, 61)]
    spec, call, m = _model(sizes, 32, True)
    store = mc.plan(spec, 32, mc.StoreAll(), out=True).peak_bytes
    evals = []
    for frac in (0.03, 0.1, 0.3, 1.0):
        b = int(budget_mod.min_budget_bounds(m)[1] + frac * (store - budget_mod.min_budget_bounds(m)[1]))
        s = mc.plan(spec, 32, mc.Budget(b), out=True)
        again = mc.plan(spec, 32, mc.Actions(s.actions), out=True)
        assert s.peak_bytes == again.peak_bytes <= b
        assert s.forward_evals == again.forward_evals >= s.details["lower_bound"] >= 60
        assert s.details["gap"] == pytest.approx(s.forward_evals / s.details["lower_bound"] - 1)
        assert s.details["exact"] == (s.forward_evals == s.details["lower_bound"])
        for k in range(60):  # and never more than any Revolve that fits
            r = mc.plan(spec, 32, mc.Revolve(k), out=True)
            if r.peak_bytes <= b:
                assert s.forward_evals <= r.forward_evals, (frac, k)
        evals.append(s.forward_evals)
    assert evals[-1] == 60 and mc.plan(spec, 32, mc.Budget(store), out=True).details["exact"]


def test_refusals_name_both_bounds_and_plan_nothing_large():
    spec = mc.NetSpec([64] * 100001, "tanh", "identity", "float64")
    m = memory.model(plan_mod.make_call(spec, 256, "mse", out=True))
    low, high = budget_mod.min_budget_bounds(m)
    with pytest.raises(ValueError, match=rf"smallest feasible budget .*{high} B .*none fits below {low} B"):
        mc.plan(spec, 256, mc.Budget(low - 1), out=True)


def _first_call(sizes, frac, out, batch=64):
    import tracemalloc

    net = mc.MLP(sizes, seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((sizes[0], batch))
    Y = rng.standard_normal((sizes[-1], batch))
    grads = net.zeros_like_grads() if out else None
    call = plan_mod.make_call(net, batch, "mse", out=out)
    store = mc.plan(net, batch, mc.StoreAll(), out=out).peak_bytes
    high = budget_mod.min_budget_bounds(memory.model(call))[1]
    budget = mc.Budget(int(high + frac * (store - high)))
    plan_mod.compile_actions.cache_clear()
    budget_mod.solve.cache_clear()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        net.loss_and_grad(X, Y, strategy=budget, out=grads)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    sched = mc.plan(net, batch, budget, out=out)
    return peak, budget.max_bytes, sched


@pytest.mark.slow
@pytest.mark.parametrize("n, uniform", [(300, False), (1000, True)])
def test_first_call_planning_included_stays_within_budget_and_schedule(n, uniform):
    """The first call's traced peak, planning included, stays under the budget
    plus what planning leaves: the schedule it keeps and the interpreter's
    free lists of small tuples (README: budget.schedule_bytes), and the
    program the executor's cache keeps (planning._lowering.program_bytes)."""
    rng = np.random.default_rng(n)
    sizes = [64] * (n + 1) if uniform else [int(w) for w in rng.integers(16, 129, n + 1)]
    peak, budget, sched = _first_call(sizes, 0.3, True)
    assert sched.peak_bytes <= budget
    left = budget_mod.schedule_bytes(sched.actions) + budget_mod.TUPLE_FREELISTS + program_bytes(sched.actions, n)
    assert peak <= budget + left, (peak, budget, left)


def test_long_chain_refusal_between_the_bounds_says_the_search_is_not_exact():
    # a 13-layer chain where a schedule fits (the exact search finds 23
    # evaluations at 39296 B) but the long-chain search finds none
    sizes = [1, 200, 2, 1000, 1000, 200, 4, 2, 4, 200, 1000, 512, 4, 1000]
    spec, call, m = _model(sizes, 1, True)
    assert exact.solve(m, 39296)[:2] == (23, 39296)
    low, high = budget_mod.min_budget_bounds(m)
    with pytest.raises(ValueError, match=rf"no schedule found within it .* none fits below {low} B"):
        mc.plan(spec, 1, mc.Budget(39296), out=True)


def test_min_budget_bounds_of_one_layer():
    _, _, m = _model([5, 3], 4, False)
    low, high = budget_mod.min_budget_bounds(m)
    assert low == high == exact.solve(m, float("inf"), by="peak")[1]
