"""Budget and pareto held to an independent exhaustive reference (issue 12).

The reference (tests/enumerate_schedules.py) enumerates schedules of the
action vocabulary and keeps the exact (peak, evaluations) frontier, priced
by the library's memory model; it never calls mlpckpt.planning._budget. ``Budget(b)``
must give the frontier's answer at every budget, and ``pareto`` the frontier.
"""

import functools
import itertools
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

import enumerate_schedules as es
import mlpckpt as mc
from mlpckpt.planning import _long_chains as chain, _memory as memory
from mlpckpt.planning._actions import BACKWARD, FORWARD, LOSS, check_actions
from mlpckpt.planning._plan import make_call

# (loss, output, targets): every loss with every output it accepts
LOSSES = [
    ("mse", "identity", "labels"), ("mse", "sigmoid", "labels"), ("mse", "softmax", "labels"),
    ("bce", "sigmoid", "labels"), ("cross_entropy", "softmax", "labels"),
    ("cross_entropy", "softmax", "onehot"),
]
HIDDEN = ["tanh", "relu", "leaky_relu", "sigmoid", "softplus", "identity"]


def spec(sizes, activations="tanh", output="identity", dtype="float64"):
    """What plan() reads of a net (no weights drawn)."""
    if isinstance(activations, str):
        activations = [activations] * (len(sizes) - 2)
    return SimpleNamespace(sizes=tuple(sizes), activations=list(activations), output=output,
                           dtype=np.dtype(dtype))


def random_case(seed, n=None):
    """A random chain and call: n <= 7 (n = 1 for one seed in 25), uniform
    widths for even seeds, uneven for odd ones, widths log-uniform in
    1..140 (narrow waists are where schedules differ), out=True three times
    in four (else the gradients, not the activations, set most peaks)."""
    rng = np.random.default_rng(seed)
    n = 1 if seed % 25 == 0 else int(rng.integers(2, 8)) if n is None else n
    widths = np.exp(rng.uniform(0, np.log(141), size=n + 1)).astype(int)
    sizes = [int(widths[0])] * (n + 1) if seed % 2 == 0 else [int(x) for x in widths]
    loss, output, targets = LOSSES[int(rng.integers(len(LOSSES)))]
    acts = [HIDDEN[int(i)] for i in rng.integers(len(HIDDEN), size=n - 1)]
    net = spec(sizes, acts, output, ("float64", "float32")[int(rng.integers(2))])
    kw = dict(loss=loss, out=bool(rng.random() < 0.75), fuse_update=bool(rng.random() < 0.25),
              targets=targets)
    return net, int(rng.integers(1, 33)), kw


def test_random_cases_cover_every_setting():
    cases = [random_case(s) for s in range(240)]
    seen = {(kw["loss"], net.output, kw["targets"]) for net, _, kw in cases}
    assert seen == set(LOSSES)
    for field, values in [("out", {True, False}), ("fuse_update", {True, False})]:
        assert {kw[field] for _, _, kw in cases} == values
    assert {str(net.dtype) for net, _, _ in cases} == {"float32", "float64"}
    assert {a for net, _, _ in cases for a in net.activations} == set(HIDDEN)
    assert {len(net.sizes) - 1 for net, _, _ in cases} == set(range(1, 8))
    widths = [w for net, _, _ in cases for w in net.sizes]
    assert min(widths) == 1 and max(widths) >= 130
    assert {b for _, b, _ in cases} == set(range(1, 33))
    assert 120 <= sum(len(set(net.sizes)) == 1 for net, _, _ in cases) <= 130


def budgets(front):
    """Every frontier peak, one byte below it, midway to the next, and above the last."""
    peaks = [p for p, _, _ in front]
    out = set(peaks) | {p - 1 for p in peaks[1:]} | {peaks[-1] + 4096}
    out |= {(a + b) // 2 for a, b in zip(peaks, peaks[1:])}
    return sorted(out)


def check_case(net, batch, kw, front=None):
    """Failures of pareto and Budget against the reference, as strings
    tagged PARETO, ABOVE (more evaluations, or as many at a higher peak,
    than the optimum), WRONG (fewer, or a lower peak: over the budget or
    the reference is wrong), REFUSED, ACCEPTED (below the smallest
    budget), MESSAGE (the refusal does not name the smallest budget)."""
    front = es.frontier(net, batch, **kw) if front is None else front
    where = f"sizes={list(net.sizes)} acts={net.activations} {net.output} {net.dtype} batch={batch} {kw}"
    fails = []
    ref = [(p, e) for p, e, _ in front]
    try:
        front_got = mc.pareto(net, batch, **kw)
        got = [(s.peak_bytes, s.forward_evals) for s in front_got]
        for s in front_got:  # each point is its own schedule's price
            if es.price(net, batch, s.actions, **kw) != (s.peak_bytes, s.forward_evals):
                fails.append(f"PARETO {where}: {s} is not priced so through Actions")
    except Exception as e:  # noqa: BLE001 -- listed with the Budget failures, not first
        got = f"{type(e).__name__}: {e}"
    if got != ref:
        fails.append(f"PARETO {where}: pareto {got} != reference {ref}")
    for b in budgets(front):
        want = es.best_at(front, b)
        try:
            s = mc.plan(net, batch, mc.Budget(b), **kw)
        except ValueError as e:
            fails.append(f"REFUSED {where}: Budget({b}) refused ({e}); reference (evals, peak) {want}")
            continue
        if (s.forward_evals, s.peak_bytes) != want:
            kind = "ABOVE" if (s.forward_evals, s.peak_bytes) > want else "WRONG"
            fails.append(f"{kind} {where}: Budget({b}) -> (evals, peak) "
                         f"{(s.forward_evals, s.peak_bytes)}; reference {want}")
    low = es.smallest_peak(front)
    try:
        s = mc.plan(net, batch, mc.Budget(low - 1), **kw)
        fails.append(f"ACCEPTED {where}: Budget({low - 1}) accepted (peak {s.peak_bytes}); smallest is {low}")
    except ValueError as e:
        if not re.search(rf"smallest feasible budget.*(?<![0-9]){low} B\b", str(e)):
            fails.append(f"MESSAGE {where}: Budget({low - 1}) refusal does not name {low} B: {e}")
    return fails


@functools.lru_cache(maxsize=None)
def case_frontier(seed, n=None):
    """``random_case(seed, n)`` and its reference frontier (computed once)."""
    net, batch, kw = random_case(seed, n)
    return net, batch, kw, es.frontier(net, batch, **kw)


def run_cases(seeds, n=None):
    """Check every seed; one assertion listing all failures. Returns how
    many chains had a frontier of more than one point."""
    fails, rich = [], 0
    for seed in seeds:
        net, batch, kw, front = case_frontier(seed, n)
        rich += len(front) > 1
        fails += [f"{f.split(' ', 1)[0]} seed {seed}: {f.split(' ', 1)[1]}"
                  for f in check_case(net, batch, kw, front)]
    count = {k: sum(f.startswith(k) for f in fails)
             for k in ("PARETO", "ABOVE", "WRONG", "REFUSED", "ACCEPTED", "MESSAGE")}
    assert not fails, (f"{len(fails)} failures {count} (ABOVE: a Budget above the optimum, "
                       "WRONG: infeasible or below it, REFUSED: a false refusal):\n"
                       + "\n".join(fails))
    return rich


# --- the reference itself ----------------------------------------------------


def test_all_schedules_are_legal_distinct_and_counted():
    # 1, 3, 15 counted by hand for n = 1, 2, 3 (n = 2: F01 F12 L B B,
    # F02 F01 L B B, F02 L F01 B B); the reduced count is (2n - 1)!!
    for n in range(1, 6):
        scheds = list(es.all_schedules(n))
        for s in scheds:
            check_actions(s, n)
        assert len(set(scheds)) == len(scheds) == math.prod(range(1, 2 * n, 2))


def test_all_schedules_unreduced_equals_brute_force_for_two_layers():
    # every sequence of at most 2n + 1 actions of the whole vocabulary,
    # check_actions as the oracle; 18 = 10 (F01 F12 L B B, keeps and ranges) + 4 + 4
    n = 2
    vocab = [(FORWARD, s, t, k) for s in range(n) for t in range(s + 1, n + 1) for k in (0, 1)]
    vocab += [(LOSS,)] + [(BACKWARD, s, t) for s in range(n) for t in range(s + 1, n + 1)]
    legal = set()
    for length in range(1, 2 * n + 2):
        for seq in itertools.product(vocab, repeat=length):
            try:
                check_actions(seq, n)
            except ValueError:
                continue
            legal.add(seq)
    assert set(es.all_schedules(n, reduced=False)) == legal and len(legal) == 18


NETS = [
    (spec([5, 3, 7, 2, 6], "relu", "softmax"), 3, dict(loss="cross_entropy")),
    (spec([9, 40, 2, 40, 1], "leaky_relu", "sigmoid", "float32"), 7,
     dict(loss="bce", out=True)),
    (spec([120, 8, 130, 4, 100], "tanh"), 16, dict(loss="mse", fuse_update=True)),
    (spec([64] * 5, "tanh"), 32, dict(loss="mse", out=True)),
    (spec([3, 140, 140, 1, 2], "sigmoid", "softmax"), 5,
     dict(loss="cross_entropy", targets="onehot", out=True)),
    (spec([50, 3, 90, 90, 2, 60], "leaky_relu"), 9, dict(loss="mse")),
    (spec([17, 1, 130, 5, 77, 2], "softplus", "softmax", "float32"), 2,
     dict(loss="cross_entropy", fuse_update=True)),
]


@pytest.mark.parametrize("net,batch,kw", NETS)
def test_frontier_equals_every_schedule_priced_through_plan(net, batch, kw):
    n = len(net.sizes) - 1
    points = [(*es.price(net, batch, s, **kw), s) for s in es.all_schedules(n)]
    every = [(p, e) for p, e, _ in es.frontier_of(points)]
    assert every == [(p, e) for p, e, _ in es.frontier(net, batch, **kw)]


@pytest.mark.parametrize("seed", [s for s in range(80) if len(random_case(s)[0].sizes) <= 5])
def test_frontier_equals_every_schedule_on_random_small_chains(seed):
    net, batch, kw = random_case(seed)
    n = len(net.sizes) - 1
    points = [(*es.price(net, batch, s, **kw), s) for s in es.all_schedules(n)]
    assert [x[:2] for x in es.frontier_of(points)] == [
        x[:2] for x in es.frontier(net, batch, **kw)]


@pytest.mark.parametrize("net,batch,kw", [(spec(s.sizes[:4], "relu", s.output, s.dtype), b, k) for s, b, k in NETS])
def test_reduced_forms_lose_nothing(net, batch, kw):
    n = len(net.sizes) - 1
    full = [(*es.price(net, batch, s, **kw), s) for s in es.all_schedules(n, reduced=False)]
    red = [(*es.price(net, batch, s, **kw), s) for s in es.all_schedules(n)]
    assert [x[:2] for x in es.frontier_of(full)] == [x[:2] for x in es.frontier_of(red)]


def fixed_strategies(n):
    yield mc.StoreAll()
    for k in range(1, n + 1):
        yield mc.Segments(k)
    for s in range(n):
        yield mc.Revolve(s)


@pytest.mark.parametrize("seed", range(12))
def test_frontier_dominates_every_fixed_strategy(seed):
    net, batch, kw = random_case(seed)
    front = es.frontier(net, batch, **kw)
    assert all(a[0] < b[0] and a[1] > b[1] for a, b in zip(front, front[1:]))
    for strat in fixed_strategies(len(net.sizes) - 1):
        s = mc.plan(net, batch, strat, **kw)
        assert any(p <= s.peak_bytes and e <= s.forward_evals for p, e, _ in front), (strat, s)


def test_frontier_beats_fixed_strategies_on_an_uneven_chain():
    # a narrow waist: the reference finds points no fixed strategy reaches
    net, batch, kw = spec([100, 100, 2, 100, 100, 100, 2, 100], "tanh"), 32, dict(out=True)
    front = es.frontier(net, batch, **kw)
    fixed = {(mc.plan(net, batch, s, **kw).peak_bytes, mc.plan(net, batch, s, **kw).forward_evals)
             for s in fixed_strategies(7)}
    assert len(front) >= 3
    assert any(all(not (q <= p and f <= e) for q, f in fixed) for p, e, _ in front)


# --- Budget and pareto against the reference --------------------------------


@pytest.mark.slow
def test_budget_and_pareto_match_the_reference():
    assert run_cases(range(40)) >= 25


@pytest.mark.slow
def test_budget_and_pareto_match_the_reference_many():
    assert run_cases(range(40, 240)) >= 150  # most frontiers have several points


@pytest.mark.slow
def test_budget_and_pareto_match_the_reference_deeper():
    # 8 and 9 layers: the reference takes seconds each
    assert run_cases(range(1001, 1007), 8) + run_cases(range(2001, 2005), 9) >= 6


@pytest.mark.parametrize("batch", [16, 23, 24, 25, 26])
def test_issue_uniform_float32_out(batch):
    # the issue's uniform chain: [128] * 8 (7 layers), float32, out=True,
    # Budget(96160). At batch 16 plain backprop fits (peak 80960, 7
    # evaluations); from batch 23 on it does not, and 9 evaluations do.
    net = spec([128] * 8, "tanh", dtype="float32")
    front = es.frontier(net, batch, out=True)
    want = es.best_at(front, 96160)
    assert want == ((7, 80960) if batch == 16 else (9, want[1]))
    s = mc.plan(net, batch, mc.Budget(96160), out=True)
    assert (s.forward_evals, s.peak_bytes) == want


@pytest.mark.slow
def test_issue_uneven_bce_ten_layers():
    net = spec([87, 94, 100, 21, 93, 104, 12, 119, 99, 140, 120], "tanh", "sigmoid")
    kw = dict(loss="bce", out=True)
    front = es.frontier(net, 16, **kw)
    assert es.best_at(front, 90720)[0] <= 15
    s = mc.plan(net, 16, mc.Budget(90720), **kw)
    assert es.price(net, 16, s.actions, **kw) == (s.peak_bytes, s.forward_evals)
    assert s.peak_bytes <= 90720
    assert (s.forward_evals, s.peak_bytes) == es.best_at(front, 90720)
    assert not check_case(net, 16, kw, front)


# --- the long-chain search's claims, where the reference can check them ---


def check_chain(seeds):
    """mlpckpt.planning._long_chains.search on short chains: its schedule fits the budget
    and evaluates as it says, its lower bound is at most the optimum, and
    it offers nothing where nothing fits (budgets as in check_case, plus
    one byte under the smallest and half of it). A missing schedule where
    one fits is allowed (the search is not exact), a lower bound that does
    not prove infeasibility too."""
    fails = []
    for seed in seeds:
        net, batch, kw, front = case_frontier(seed)
        m = memory.model(make_call(net, batch, **kw))
        low = es.smallest_peak(front)
        for b in budgets(front) + [low - 1, low // 2]:
            r, want = chain.search(m, b), es.best_at(front, b)
            where = f"seed {seed}: chain.search(model, {b})"
            if r["actions"] is not None:
                got = memory.simulate(check_actions(r["actions"], m.n_layers), m)
                if got["peak_bytes"] > b or got["forward_evals"] != r["evals"]:
                    fails.append(f"{where}: {r['actions']} peaks at {got['peak_bytes']} B, "
                                 f"{got['forward_evals']} evaluations (said {r['evals']})")
            if want is not None and (r["lower_bound"] is None or r["lower_bound"] > want[0]):
                fails.append(f"{where}: lower bound {r['lower_bound']} > optimum {want[0]}")
            if want is None and r["actions"] is not None:
                fails.append(f"{where}: offers a schedule below the smallest budget {low}")
    assert not fails, f"{len(fails)} failures:\n" + "\n".join(fails)


def test_chain_search_fits_and_its_bound_holds():
    check_chain(range(4))


@pytest.mark.slow
def test_chain_search_fits_and_its_bound_holds_many():
    check_chain(range(4, 240))
