"""The exact search: the best schedule of a short chain, as a shortest path
over the states a schedule passes through (paper_notes/checkpointing.md,
section 7, eqs. C15-C17).

A state is what is held and how far the backward pass has come: before the
loss, the set ``H`` of held ``a[k]`` (``k >= 1``); after it, the layer ``t``
whose state the backward pass is in (the steps of layers ``>= t`` done,
``a[t]`` held when ``t < n``) and the held ``a[k]``, ``k < t``. Every
action moves to a later state (a forward range adds its end to ``H``; the
loss and each backward step move ``t`` down), so the states form a DAG,
visited once in a fixed topological order: masks ascending, then ``t``
descending. What an action costs depends on the state only (the model's
tables, :class:`mlpckpt.planning._memory.Model`), so the best prefix into each state
(fewest evaluations, then lowest peak, among those within the budget) is
all that needs keeping: the search is exact, on exact byte values, over
every schedule of the vocabulary. Two reductions lose nothing: a keep-all
range is the same as keep-none single steps (same evaluations, same
events), and so is a backward range as single steps; the answer is merged
back into ranges.

Cost: ``2^(n+1)`` states, at most ``n + 2`` actions out of each, tables of
``2^(n+1)`` machine integers (about 200 KB at ``n = 12``).
"""

from array import array

from ._actions import BACKWARD, FORWARD, LOSS

__all__ = ["EXACT_LAYERS", "solve", "frontier"]

#: chains up to this depth are searched exactly
EXACT_LAYERS = 12

_INF = 2**62


def solve(m, budget, by="evals"):
    """The best schedule for the model ``m`` whose peak is at most ``budget``.

    Parameters
    ----------
    m : Model
        :func:`mlpckpt.planning._memory.model` of the call; ``m.n_layers <= EXACT_LAYERS``
        keeps it fast.
    budget : int
        Bytes (the peak includes ``m.base``).
    by : {"evals", "peak"}
        Fewest evaluations, ties the lowest peak; or the lowest peak (its
        evaluations are not minimised among equal peaks: only the best prefix
        into each state is kept).

    Returns
    -------
    tuple (evals, peak, actions) or None
        None when no schedule fits.
    """
    n, act, fwd, top, back = m.n_layers, m.act, m.fwd, m.top, m.back
    full = 1 << n  # pre-loss masks: bit k - 1 for a[k], k = 1..n
    offset = [0] * (n + 1)  # post-loss block of state t: masks of a[1..t-1]
    offset[n] = full
    for t in range(n, 0, -1):
        offset[t - 1] = offset[t] + (1 << (t - 1))
    size = offset[0] + 1
    held = array("q", [0]) * full  # bytes of the held set, by mask
    for mask in range(1, full):
        low = mask & -mask
        held[mask] = held[mask ^ low] + act[low.bit_length()]
    evals = array("q", [_INF]) * size
    peak = array("q", [_INF]) * size
    pred = array("q", [-1]) * size
    how = array("q", [0]) * size  # the action into a state: see _decode
    evals[0], peak[0] = 0, m.base
    first = by == "evals"

    def relax(src, dst, cost, event, code):
        e = evals[src] + cost
        p = max(peak[src], event)
        if p > budget:
            return
        better = (e, p) < (evals[dst], peak[dst]) if first else (p, e) < (peak[dst], evals[dst])
        if better:
            evals[dst], peak[dst], pred[dst], how[dst] = e, p, src, code

    for mask in range(full):  # before the loss: masks ascending
        if evals[mask] >= _INF:
            continue
        resident = m.base + held[mask]
        _forwards(relax, mask, mask, n, resident, 0, n, act, fwd)
        if mask >> (n - 1) & 1:  # a[n] held: the loss
            relax(mask, offset[n] + (mask ^ 1 << (n - 1)), 0, resident + m.loss, -1)
    for t in range(n, 0, -1):  # after it: t descending, masks ascending
        base_t = offset[t]
        for mask in range(1 << (t - 1)):
            src = base_t + mask
            if evals[src] >= _INF:
                continue
            resident = m.base + held[mask] + top[t]
            _forwards(relax, src, mask, t - 1, resident, base_t, n, act, fwd)
            if t == 1 or mask >> (t - 2) & 1:  # a[t-1] held (or X): backward step t - 1
                rest = mask & ~(1 << (t - 2)) if t >= 2 else 0
                event = resident + back[t - 1]
                if m.update is not None:
                    event = max(event, m.base + held[rest] + top[t - 1] + m.update)
                relax(src, offset[t - 1] + rest, 0, event, -2)
    end = offset[0]
    if evals[end] >= _INF:
        return None
    return evals[end], peak[end], _rebuild(end, pred, how, n)


def _forwards(relax, src, mask, limit, resident, block, n, act, fwd):
    """Keep-none forward ranges out of state ``src`` (held set ``mask``):
    from X or a held ``a[start]`` to any ``a[stop]``, ``stop <= limit``,
    short of the next held one; the target is ``block + new mask``."""
    start = 0
    while start < limit:
        rest = mask >> start  # bit i: a[start + 1 + i]
        step = (rest & -rest).bit_length()  # the next held a[start + step]
        stop_max = min(limit, start + step - 1) if rest else limit
        f = fwd[start]
        for stop in range(start + 1, stop_max + 1):
            if stop > start + 1:  # then from the intermediate a[stop - 1]
                f = max(f, act[stop - 1] + fwd[stop - 1])
            relax(src, block + (mask | 1 << (stop - 1)), stop - start, resident + f,
                  start * (n + 1) + stop)
        if not rest:
            return
        start += step


def _rebuild(end, pred, how, n):
    """The actions along the best path into ``end``, merged into ranges."""
    codes = []
    while pred[end] >= 0:
        codes.append(how[end])
        end = pred[end]
    out = []
    step = n  # the next backward step is layer step - 1
    for code in reversed(codes):
        if code == -1:
            out.append((LOSS,))
        elif code == -2:
            step -= 1
            if out and out[-1][0] == BACKWARD and out[-1][1] == step + 1:
                out[-1] = (BACKWARD, step, out[-1][2])
            else:
                out.append((BACKWARD, step, step + 1))
        else:
            start, stop = divmod(code, n + 1)
            last = out[-1] if out else None
            if (last and last[0] == FORWARD and last[2] == start and stop == start + 1
                    and (last[3] == 1 or last[2] - last[1] == 1)):
                out[-1] = (FORWARD, last[1], stop, 1)  # consecutive single steps: keep all
            else:
                out.append((FORWARD, start, stop, 0))
    return tuple(out)


def frontier(m):
    """Every non-dominated ``(peak, evals, actions)``, peak ascending and
    evaluations strictly descending: each is :func:`solve` at its own peak."""
    points = []
    budget = _INF
    while True:
        best = solve(m, budget)
        if best is None:
            break
        evals, peak, actions = best
        points.append((peak, evals, actions))
        budget = peak - 1
    return points[::-1]
