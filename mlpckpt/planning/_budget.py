"""``Budget(max_bytes)``: the fewest forward evaluations
whose predicted peak fits a byte budget (paper_notes/checkpointing.md,
sections 6-8).

* Chains of up to :data:`mlpckpt.planning._exact.EXACT_LAYERS` layers: the exact
  search over schedule states (:mod:`mlpckpt.planning._exact`) -- optimal among all
  schedules of the vocabulary, ties broken by the lowest peak, on exact byte
  values; a refusal names the true smallest budget.
* Longer chains: the best that fits of plain backprop, the binomial and
  segment schedules, segments cut at the activations that can be held
  (:func:`held_actions`) and the checkpoint search of :mod:`mlpckpt.planning._long_chains`,
  each priced by :func:`mlpckpt.planning._memory.simulate`; ``Schedule.details``
  carries the proved lower bound on any schedule's evaluations and the gap
  to it (``exact`` when the gap is zero).
* The frontier (:func:`frontier`, behind :func:`mlpckpt.pareto`): the
  budgets at which the answer changes, each the answer at its own peak.

Every figure comes from the memory model's tables (:func:`memory.model`).
"""

import functools
import itertools
from dataclasses import dataclass, replace

import numpy as np

from . import _long_chains as chain, _exact as exact, _memory as memory, _workspace_replay as poolmem
from ._costs import TUPLE_FREELISTS, schedule_bytes  # re-exported: what planning leaves
from ..core._validate import parse_bytes
from ._held import held_actions, held_bound, held_set
from ._strategies import (
    Revolve, Segments, Sqrt, StoreAll, Strategy, revolve_actions, segment_bounds, segments_actions,
)

__all__ = [
    "Budget", "SEARCH_LAYERS", "TUPLE_FREELISTS", "solve", "min_budget_bounds", "schedule_bytes", "frontier",
]

#: the checkpoint search (a Python loop over the layers) runs up to this depth
SEARCH_LAYERS = 20000


@dataclass(frozen=True)
class Budget(Strategy):
    """The fewest forward evaluations whose predicted peak fits ``max_bytes``.

    ``max_bytes`` is an int or a string with a unit (``"50MiB"``, ``"1GB"``;
    KiB/MiB/GiB are powers of 2, KB/MB/GB of 10), checked against the same
    accounting as :func:`mlpckpt.plan` for the exact call (widths, loss,
    ``out=``, ``fuse_update``), so the measured tracemalloc peak of a call
    with the schedule compiled stays under it. Planning's tables are sized
    within the budget and freed; the first call also holds the schedule
    itself and CPython's tuple free lists (:data:`TUPLE_FREELISTS`), and the
    executor's cache keeps the program it is lowered to
    (:func:`mlpckpt.planning._lowering.program_bytes`).

    Exact (the optimum over every schedule of the action vocabulary, ties:
    the lowest peak) for chains of up to 12 layers; beyond, the answer fits
    and ``Schedule.details`` gives ``lower_bound``, evaluations no schedule
    within the budget can beat, and ``gap``. A budget nothing fits raises
    ``ValueError`` naming the smallest budget that works.
    """

    max_bytes: int

    def __post_init__(self):
        object.__setattr__(self, "max_bytes", parse_bytes(self.max_bytes, "max_bytes"))

    def actions(self, call):
        return _solve_call(self.max_bytes, call)["actions"]

    def describe(self, call):
        found = _solve_call(self.max_bytes, call)
        return {key: found[key] for key in ("exact", "lower_bound", "gap")}


#: tries at a budget tightened by the excess, then fractions of the budget
POOL_TRIES = 4
POOL_FRACTIONS = (0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05)


@functools.lru_cache(maxsize=16)
def _solve_call(budget, call):
    """:func:`solve`, counting a workspace's buffers where ``call`` keeps one
    (eq. C29): the schedule found for a tighter budget whose pooled peak
    (every call on the workspace, :func:`mlpckpt.planning._workspace_replay.pool_figures`)
    fits: first tightened by the excess (:data:`POOL_TRIES` times), then at
    falling fractions of the budget, the first that fits."""
    if not call.workspace:
        return solve(budget, call)
    plain = replace(call, workspace=False)
    targets = [budget]
    tried = []
    while targets:
        target = targets.pop(0)
        try:
            found = solve(target, plain)
        except ValueError:  # below what any schedule needs: smaller targets fail too
            break
        peak = poolmem.pool_figures(found["actions"], call)["peak_bytes"]
        tried.append((target, peak))
        if peak <= budget:
            return found
        if len(tried) < POOL_TRIES:
            targets = [target - (peak - budget)]
        elif len(tried) == POOL_TRIES:
            targets = [int(budget * f) for f in POOL_FRACTIONS if budget * f < target]
    fallback = poolmem.best_fixed(budget, call)  # the fixed schedules, priced with the workspace
    if fallback is not None:
        return fallback
    smallest = min(p for _, p in tried) if tried else None
    raise ValueError(
        f"strategy: Budget({budget} B = {budget / 2**20:.3f} MiB) with a workspace: no schedule found whose "
        f"buffers fit (the leanest tried peaks at {smallest} B with its workspace); give more, or call "
        f"without the workspace"
    )


@functools.lru_cache(maxsize=16)
def solve(budget, call):
    """The best schedule within ``budget`` bytes for ``call``.

    Returns
    -------
    dict
        ``actions``, ``evals``, ``peak``, ``exact`` (proved optimal),
        ``lower_bound`` (no schedule within the budget evaluates fewer
        layers) and ``gap`` (``evals / lower_bound - 1``).

    Raises
    ------
    ValueError
        When nothing fits, naming the smallest budget that works.
    """
    m = memory.model(call)
    if m.n_layers <= exact.EXACT_LAYERS:
        best = exact.solve(m, budget)
        if best is None:
            _refuse(budget, exact.solve(m, float("inf"), by="peak")[1])
        evals, peak, actions = best
        return _found(actions, evals, peak, evals)
    low, high = min_budget_bounds(m)
    if budget < low:  # proved infeasible without a search
        _refuse(budget, high, low)
    best, lower = _search(budget, call, m, (low, high))
    held = schedule_bytes(best[2]) if call.backend == "numpy" else 0  # host memory: not a device's
    if best[1] + held > budget:
        # the first call holds the schedule too: where a leaner answer costs
        # no more evaluations, take it, so that the first call fits as well
        try:
            leaner = _search(budget - held, call, m, (low, high))[0]
            best = leaner if leaner[0] <= best[0] else best
        except ValueError:
            pass
    evals, peak, actions = best
    return _found(actions, evals, peak, min(lower, evals))


def _search(budget, call, m, bounds):
    """The best candidate within ``budget`` and the lower bound; refuses
    when there is none (``bounds``: :func:`min_budget_bounds` of ``m``)."""
    best, smallest = _candidates(budget, call, m)
    searched = {"actions": None, "lower_bound": None}
    if m.n_layers <= SEARCH_LAYERS:  # beyond, the held-throughout bound alone (eq. C24)
        searched = chain.search(m, budget, cells=_cells(m.n_layers, budget))
    if searched["actions"] is not None:
        best = _better(best, _priced(searched["actions"], m, budget))
    if best is None:  # between the bounds: the search found nothing, which proves nothing
        low, high = bounds
        raise ValueError(
            f"strategy: Budget({budget} B = {budget / 2**20:.3f} MiB): no schedule found within it "
            f"for this net and call (the search is not exact beyond {exact.EXACT_LAYERS} layers); "
            f"{min(smallest, high)} B works, and none fits below {low} B"
        )
    return best, max(searched["lower_bound"] or 0, held_bound(m, budget), m.n_layers)


def _found(actions, evals, peak, lower):  # what solve returns
    return {"actions": actions, "evals": evals, "peak": peak, "exact": evals == lower,
            "lower_bound": lower, "gap": evals / lower - 1}


def _refuse(budget, smallest, proved=None):
    where = f"{smallest} B = {smallest / 2**20:.3f} MiB"
    if proved is not None and proved < smallest:
        where += f" (none fits below {proved} B, and {smallest} B does)"
    raise ValueError(
        f"strategy: Budget({budget} B = {budget / 2**20:.3f} MiB) is below the smallest "
        f"feasible budget for this net and call, {where}"
    )


def _cells(n, budget):
    """Size of the checkpoint search's table: at most 2**21 cells, and at
    most an eighth of the budget at 3 bytes a cell (its own memory counts)."""
    return int(max(8 * n, min(2**21, budget // 24)))


def _figures(actions, m):
    """``(evals, peak, actions)`` of a schedule, as simulated."""
    figures = memory.simulate(actions, m)
    return figures["forward_evals"], figures["peak_bytes"], actions


def _fitting(candidate, budget):
    """The candidate if it fits the budget, else None."""
    return candidate if candidate[1] <= budget else None


def _priced(actions, m, budget):  # the schedule's candidate if it fits, else None
    return _fitting(_figures(actions, m), budget)


def _better(a, b):
    """The better of two candidates: fewer evaluations, then lower peak."""
    if a is None or (b is not None and b[:2] < a[:2]):
        return b
    return a


def _candidates(budget, call, m):
    """The best fixed-form schedule within ``budget`` (or None) and the
    smallest peak seen: the first slot counts of the binomial schedule (with
    uneven widths the peak need not grow with the slots), then the most that
    fit by bisection; segments cheapest first; segments cut at held ones."""
    n = m.n_layers
    best, smallest = _priced(StoreAll().actions(call), m, budget), float("inf")
    if best is not None:
        return best, best[1]
    dense = min(n - 1, 48 if n <= 2000 else 8)
    for slots in range(dense + 1):  # each simulated once, for its peak and its fit
        candidate = _figures(revolve_actions(n, slots), m)
        smallest = min(smallest, candidate[1])
        best = _better(best, _fitting(candidate, budget))
    lo, hi = dense + 1, n - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        got = _priced(revolve_actions(n, mid), m, budget)
        best = _better(best, got)
        lo, hi = (mid + 1, hi) if got is not None else (lo, mid - 1)
    # Segments(k) cost 2n - k - (m - 1) (eq. C3): cheapest first, skipping
    # those whose loss alone (boundaries and the kept last segment) breaks
    # the budget, at most 32 simulated
    act = np.array(m.act, dtype=np.int64)
    prefix = np.concatenate([[0], np.cumsum(act)])
    tried = 0
    for evals, k in sorted((2 * n - k - (-(-n // k) - 1), k) for k in range(1, n + 1)):
        if (best is not None and evals >= best[0]) or tried >= 32:
            break
        bounds = np.array(segment_bounds(n, k)[1:-1], dtype=np.int64)
        last = int(bounds[-1]) if bounds.size else 0
        held = int(act[bounds].sum()) + int(prefix[n + 1] - prefix[last + 1])
        if m.base + held + m.loss > budget:
            continue
        tried += 1
        got = _priced(segments_actions(n, k), m, budget)
        if got is not None:
            best = _better(best, got)
            break
    return _better(best, _held_candidate(budget, m)), smallest


def _held_candidate(budget, m):
    """Segments cut at a greedy set of held activations (eq. C25): the
    largest set whose schedule fits, by bisection on the room reserved for
    recomputing one segment."""
    lo, hi, best = 0, budget - m.base, None
    for _ in range(24):
        if lo > hi:
            break
        reserve = (lo + hi) // 2
        held = held_set(m, budget - reserve)
        got = _priced(held_actions(held, m.n_layers), m, budget) if held is not None else None
        best = _better(best, got)
        lo, hi = (lo, reserve - 1) if got is not None else (reserve + 1, hi)
    return best


def min_budget_bounds(m):
    """``(low, high)``: no schedule fits below ``low`` bytes, and
    ``Revolve(0)`` fits in ``high`` (eq. C26). ``O(n)``.

    ``low`` is the largest event every schedule has: each layer evaluated
    from its input once, the loss, each backward step with its own inputs
    and state, each fused update."""
    n, act, fwd, top = m.n_layers, m.act, m.fwd, m.top
    low = max(act[k] + fwd[k] for k in range(n))  # a[k] alive when a[k+1] is made
    low = max(low, act[n] + m.loss, *(act[k] + top[k + 1] + m.back[k] for k in range(n)))
    if m.update is not None:
        low = max(low, *(top[k] + m.update for k in range(n)))
    # Revolve(0): every a[k] recomputed from X while state k + 1 is held
    high = max([low, fwd[0]] + [act[i] + fwd[i] for i in range(1, n)])
    reach = fwd[0]
    for k in range(1, n):
        high = max(high, top[k + 1] + reach)
        reach = max(reach, act[k] + fwd[k])
    return m.base + low, m.base + high


# -- the frontier: every Budget that matters (paper_notes/checkpointing.md, eq. C17 and section 8) --


def frontier(call):
    """The frontier's budgets for ``call``: peaks ascending, evaluations
    strictly descending, each the answer of :func:`solve` at its own peak.

    Exact for chains of up to 12 layers; beyond, the non-dominated answers
    of :func:`solve` at 48 budgets spread in log scale over the peaks of
    StoreAll, every ``Revolve(s)`` and every ``Segments(k)``, then at the
    peaks of up to 24 of those schedules that still lie below the step;
    each answer re-solved at its own peak until it is that peak's answer.
    """
    m = memory.model(call)
    if m.n_layers <= exact.EXACT_LAYERS:
        return [peak for peak, _, _ in exact.frontier(m)]
    n = m.n_layers
    # every fixed schedule simulated once, one at a time (memory O(n))
    strategies = itertools.chain([StoreAll(), Sqrt()], map(Revolve, range(n)), map(Segments, range(1, n + 1)))
    figures = {st: _evals_peak(memory.simulate(st.actions(call), m)) for st in strategies}
    fixed = set(figures.values())
    tries = sorted({peak for _, peak in fixed})
    if len(tries) > 48:  # 48 budgets evenly spread in log scale, each the nearest peak above
        grid = np.geomspace(tries[0], tries[-1], 48)
        tries = sorted({tries[min(len(tries) - 1, int(np.searchsorted(tries, g)))] for g in grid})
    points = _settled(tries, call)
    below = sorted(p for e, p in fixed if e < min((v for q, v in points.items() if q <= p), default=e + 1))
    if len(below) > 24:
        below = [below[round(i * (len(below) - 1) / 23)] for i in range(24)]
    marks = [Sqrt()] + [Revolve(2**k) for k in range(n.bit_length()) if 2**k < n]  # the usual marks
    below += [figures[st][1] for st in marks]
    points.update(_settled(sorted(set(below)), call))
    out, best = [], None
    for peak in sorted(points):
        if best is None or points[peak] < best:
            out.append(peak)
            best = points[peak]
    return out


def _settled(budgets, call):
    """``{peak: evals}`` of :func:`solve` at each budget, each re-solved at
    its own peak until it is that peak's answer (peaks fall, so this ends)."""
    points = {}
    for budget in budgets:
        try:
            found = solve(budget, call)
        except ValueError:
            continue
        while True:
            again = solve(found["peak"], call)
            settled = again["peak"] == found["peak"]
            found = again
            if settled:
                break
        points[found["peak"]] = found["evals"]
    return points


def _evals_peak(figures):
    return figures["forward_evals"], figures["peak_bytes"]
