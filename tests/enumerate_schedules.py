"""An independent reference for exact byte budgets: every schedule, and the
exact (peak, evaluations) Pareto frontier over all of them.

Not a test module (no ``test_`` prefix); the tests import it as a sibling
(pytest puts ``tests/`` on ``sys.path``). Nothing here uses
:mod:`mlpckpt.planning._budget`: schedules are enumerated from the action vocabulary
(docs/architecture.md, the action vocabulary) and priced by the library's own memory
model, :func:`mlpckpt.planning._memory.simulate` (and, for the final answers,
``mc.plan(..., mc.Actions(schedule))``).

Reduced forms. Under :func:`mlpckpt.planning._memory.simulate` two rewritings of a
schedule change neither its events' bytes nor its evaluations, so the
searches below only use the reduced vocabulary:

* a keep=1 forward range ``(0, s, t, 1)`` is the same sequence of events as
  the keep-0 single steps ``(0, k, k+1, 0)``, ``k = s .. t-1`` (each
  touches ``fwd[k]`` on top of what is held, then holds ``a[k+1]``), so
  keep=1 is written as single steps (a single step's keep does not matter);
* a backward range ``(2, s, t)`` is the same events as the single steps
  ``(2, k, k+1)``, ``k = t-1 .. s``.

A keep-0 range of length >= 2 is NOT reducible (its intermediates are
never held), so forward ranges of every length are searched.
:func:`all_schedules` with ``reduced=False`` yields the unreduced forms too,
and the tests check on small chains that the reduction loses nothing.
"""

import mlpckpt as mc
from mlpckpt.planning import _memory as memory
from mlpckpt.planning._actions import BACKWARD, FORWARD, LOSS
from mlpckpt.planning._plan import make_call

__all__ = ["all_schedules", "frontier", "frontier_of", "best_at", "smallest_peak", "price"]


def _moves(n, held, loss_done, t, reduced=True):
    """The legal next actions from a state, and the state each leads to.

    State: ``held`` (sorted tuple of the held ``a[k]``, ``k >= 1``),
    ``loss_done``, and ``t`` (backward steps of layers ``>= t`` are done;
    ``t = n`` until the backward pass starts). Actions that can only lead to
    activations left over are not offered (after the loss, anything computed
    at or above ``a[t]`` can never be consumed).
    """
    hs = set(held)
    starts = [0] + list(held)
    for s in starts:
        # forward from a[s]: stops before the next held activation above s
        above = [h for h in held if h > s]
        limit = above[0] - 1 if above else n
        if loss_done:
            limit = min(limit, t - 1)  # a[t] is held; a[>= t] could never be consumed
        for stop in range(s + 1, limit + 1):
            new = tuple(sorted(hs | {stop}))
            yield (FORWARD, s, stop, 0), (new, loss_done, t)
            if not reduced:  # keep=1 (for one layer, the same state as keep=0)
                new1 = tuple(sorted(hs | set(range(s + 1, stop + 1))))
                yield (FORWARD, s, stop, 1), (new1, loss_done, t)
    if not loss_done:
        if n in hs:
            yield (LOSS,), (tuple(h for h in held if h != n), True, n)
        return
    # backward steps of layers t-1 .. lo (one, or a range when not reduced)
    cur = set(hs)
    for k in range(t - 1, -1, -1):
        if k > 0 and k not in cur:
            return
        if k + 1 < n:
            if k + 1 not in cur:
                return
            cur.discard(k + 1)
        if reduced and k < t - 1:
            return
        yield (BACKWARD, k, t), (tuple(sorted(cur)), True, k)


def all_schedules(n, reduced=True):
    """Every legal complete schedule for ``n`` layers (a generator).

    With ``reduced=True`` (default), only the reduced forms of the module
    docstring (keep-0 forward ranges of any length, single backward steps);
    with ``reduced=False``, keep=1 ranges and backward ranges as well (many
    more: n <= 3). Depth-first, with an explicit stack.
    """
    stack = [((), ((), False, n))]
    while stack:
        prefix, (held, loss_done, t) = stack.pop()
        if loss_done and t == 0:
            if not held:
                yield prefix
            continue
        for action, state in _moves(n, held, loss_done, t, reduced):
            stack.append((prefix + (action,), state))


def price(net, batch, schedule, loss="mse", out=False, fuse_update=False, targets="labels"):
    """``(peak_bytes, forward_evals)`` of ``schedule`` as ``mc.plan`` prices it."""
    s = mc.plan(net, batch, mc.Actions(schedule), loss, out=out, fuse_update=fuse_update,
                targets=targets)
    return s.peak_bytes, s.forward_evals


def frontier_of(points):
    """The Pareto frontier of ``(peak, evals, schedule)`` points: peak
    ascending, evals strictly descending (the first schedule seen for a
    point is kept)."""
    out = []
    for p, e, s in sorted(points, key=lambda x: (x[0], x[1])):
        if not out or e < out[-1][1]:
            if out and out[-1][0] == p:
                continue
            out.append((p, e, s))
    return out


def frontier(net, batch, loss="mse", out=False, fuse_update=False, targets="labels", check=True):
    """The exact (peak, evaluations) frontier over all schedules for ``n <= 7``
    (about ``n = 10`` still runs, in seconds).

    A search over states (held set, loss done, next backward layer) that
    keeps, per state, the Pareto set of (peak so far, evaluations so far) of
    the prefixes reaching it, each prefix priced by
    :func:`mlpckpt.planning._memory.simulate`. Exhaustive up to dominance: every later
    event's bytes are ``base + held + top[t] + its own term``, read off the
    state alone, and later evaluations do not depend on the past either, so
    whatever follows a state costs the same whatever led there; a prefix
    dominated at its state (peak and evaluations both no smaller) can never
    end better than the one dominating it.

    Returns
    -------
    list of (int, int, tuple)
        ``(peak_bytes, forward_evals, schedule)``, peak ascending, evals
        strictly descending. With ``check``, each is confirmed by
        ``mc.plan(..., mc.Actions(schedule))``.
    """
    call = make_call(net, batch, loss, out=out, fuse_update=fuse_update, targets=targets)
    mdl = memory.model(call)
    n = call.n_layers
    start = ((), False, n)
    labels = {start: [(-1, 0, ())]}  # state -> [(peak, evals, prefix)]
    work = [(start, labels[start][0])]
    while work:
        state, label = work.pop()
        if label not in labels[state]:
            continue  # dominated since it was queued
        _, evals, prefix = label
        held, loss_done, t = state
        for action, nxt in _moves(n, held, loss_done, t):
            acts = prefix + (action,)
            e = evals + (action[2] - action[1] if action[0] == FORWARD else 0)
            p = memory.simulate(acts, mdl)["peak_bytes"]
            here = labels.setdefault(nxt, [])
            if any(q <= p and f <= e for q, f, _ in here):
                continue
            here[:] = [x for x in here if not (p <= x[0] and e <= x[1])]
            new = (p, e, acts)
            here.append(new)
            work.append((nxt, new))
    done = labels.get(((), True, 0), [])
    front = frontier_of(done)
    if check:
        for p, e, s in front:
            got = price(net, batch, s, loss, out, fuse_update, targets)
            assert got == (p, e), (s, got, (p, e))
    return front


def best_at(front, budget):
    """The reference answer of ``Budget(budget)``: ``(evals, peak)`` of the
    fewest evaluations among schedules with peak <= budget, ties the lowest
    peak (a frontier point), or None when nothing fits."""
    fits = [(e, p) for p, e, _ in front if p <= budget]
    return min(fits) if fits else None


def smallest_peak(front):
    """The smallest feasible budget (the frontier's first peak)."""
    return front[0][0]
