"""Activations held throughout: the most a budget allows, the lower bound
on evaluations they give, and the schedule that recomputes every other one
once (paper_notes/checkpointing.md, section 8, eqs. C24-C25)."""

import heapq

from ._actions import BACKWARD, FORWARD, LOSS

__all__ = ["held_set", "held_bound", "held_actions"]


def held_set(m, budget):
    """The most ``a[k]`` that can be held from their first evaluation to
    their last use within ``budget`` (sorted indices), or None if even the
    empty set breaks a limit (eq. C24).

    An ``a[k]`` held throughout adds its bytes to the loss and to every
    backward step from ``n - 1`` down to ``k``: nested limits on prefixes,
    for which taking each in turn and dropping the widest while a limit is
    broken (Moore and Hodgson's rule) holds the most. Time ``O(n log n)``.
    """
    n, act = m.n_layers, m.act
    room = budget - m.base
    # limit[j]: bytes for held a[k], k < j, at backward step j (which holds
    # a[j] and state j + 1 anyway); the loss limits all of them
    limit = [room - act[j] - m.top[j + 1] - m.back[j] for j in range(n)]
    limit.append(room - act[n] - m.loss)
    for j in range(n - 1, -1, -1):  # a limit binds every shorter prefix too
        limit[j] = min(limit[j], limit[j + 1])
    if limit[0] < 0:
        return None
    heap, total = [], 0
    for k in range(1, n):
        heapq.heappush(heap, (-act[k], k))
        total += act[k]
        while heap and total > limit[k + 1]:
            total += heapq.heappop(heap)[0]
    return sorted(k for _, k in heap)


def held_bound(m, budget):
    """Evaluations no schedule within ``budget`` can beat: ``n``, plus one
    for every ``a[k]``, ``0 < k < n``, not held throughout (eq. C24);
    ``2n - 1`` (all recomputed) when not even the empty set fits the limits."""
    held = held_set(m, budget)
    n = m.n_layers
    return n + (n - 1 - len(held)) if held is not None else 2 * n - 1


def held_actions(bounds, n):
    """Segments with the given boundaries (sorted ``a[k]``, ``0 < k < n``):
    the first pass keeps them, then each segment, the top one first, is
    recomputed from its start keeping everything and reversed. Evaluations
    ``n + sum(len - 1)`` over the segments (eq. C25)."""
    cuts = [0, *bounds, n]
    out = [(FORWARD, cuts[i], cuts[i + 1], 0) for i in range(len(cuts) - 1)]
    out.append((LOSS,))
    for i in range(len(cuts) - 2, -1, -1):
        start, stop = cuts[i], cuts[i + 1]
        if stop - 1 > start:
            out.append((FORWARD, start, stop - 1, 1))
        if out[-1][0] == BACKWARD and out[-1][1] == stop:
            out[-1] = (BACKWARD, start, out[-1][2])
        else:
            out.append((BACKWARD, start, stop))
    return tuple(out)
