"""The frontier's budgets: every ``Budget`` that matters for one call
(paper_notes/checkpointing.md, eq. C17 and section 8)."""

import itertools

import numpy as np

from . import _exact as exact, _memory as memory
from ._budget import solve
from ._strategies import Revolve, Segments, Sqrt, StoreAll

__all__ = ["frontier"]


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
