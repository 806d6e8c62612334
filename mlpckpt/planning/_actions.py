"""The action vocabulary: a schedule is a tuple of integer tuples.

``(FORWARD, start, stop, keep)``
    from the held ``a[start]``, compute ``a[start+1] .. a[stop]``
    (``stop - start`` layer-forward evaluations). ``keep=1`` holds every one
    of them; ``keep=0`` holds only ``a[stop]`` and frees each intermediate as
    soon as its successor exists. ``a[n]`` is the last pre-activation.
``(LOSS,)``
    loss from ``a[n]``; its buffer becomes ``dz`` of the last layer.
``(BACKWARD, start, stop)``
    backward steps of layers ``stop-1, ..., start`` (descending). Step ``k``
    needs ``a[k]`` held and consumes ``a[k+1]`` (paper_notes/checkpointing.md,
    eq. C1), so a held activation is freed exactly when the backward pass
    has used it for the last time; no FREE action is ever needed.

Layer indices follow docs/architecture.md: ``a[0] = X`` (the caller's, always held,
never counted), ``weights[k]`` maps ``a[k]`` to ``a[k+1]``,
``n = len(weights)``. This module knows nothing of arrays or bytes: it
checks, counts, formats and lays out schedules as data.
"""

import bisect

__all__ = [
    "FORWARD",
    "LOSS",
    "BACKWARD",
    "check_actions",
    "count_forward_evals",
    "format_action",
]

FORWARD, LOSS, BACKWARD = 0, 1, 2

#: the length of each kind of action tuple
_ARITY = {FORWARD: 4, LOSS: 1, BACKWARD: 3}


def _check_shape(i, action):
    """The structure of one action: a tuple of ints of a known kind and length."""
    if not isinstance(action, tuple) or not action or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in action
    ):
        raise ValueError(f"actions[{i}]: expected a tuple of ints, got {action!r}")
    op = action[0]
    if op not in _ARITY or len(action) != _ARITY[op]:
        raise ValueError(
            f"actions[{i}]: {action!r} is not (0, start, stop, keep), (1,) or (2, start, stop)"
        )
    if op == FORWARD and not (0 <= action[1] < action[2] and action[3] in (0, 1)):
        raise ValueError(f"actions[{i}]: {action!r} needs 0 <= start < stop and keep 0 or 1")
    if op == BACKWARD and not 0 <= action[1] < action[2]:
        raise ValueError(f"actions[{i}]: {action!r} needs 0 <= start < stop")


def check_actions(actions, n):
    """Check that ``actions`` is a complete, runnable schedule for ``n`` layers.

    Walks the schedule with the held activations only (no arrays): time
    linear in its actions plus its backward steps, no recursion.

    Raises
    ------
    ValueError
        Naming the first bad action and why: malformed, beyond layer ``n``,
        starting from an activation not held, recomputing a held one,
        loss without ``a[n]`` or twice, backward out of order or without
        its input, or activations left over at the end.
    """
    held = []  # sorted indices k >= 1 of held a[k]
    loss_done = False
    next_backward = n - 1  # the only layer whose backward step may run next
    for i, action in enumerate(actions):
        _check_shape(i, action)
        op = action[0]
        if op == FORWARD:
            _, start, stop, keep = action
            if stop > n:
                raise ValueError(f"actions[{i}]: {action!r} goes beyond a[{n}]")
            if start and not _has(held, start):
                raise ValueError(f"actions[{i}]: {action!r} starts from a[{start}], which is not held")
            j = bisect.bisect_right(held, start)
            if j < len(held) and held[j] <= stop:
                raise ValueError(f"actions[{i}]: {action!r} recomputes the held a[{held[j]}]")
            if stop == n and loss_done:
                raise ValueError(f"actions[{i}]: {action!r} recomputes a[{n}] after the loss")
            new = range(start + 1, stop + 1) if keep else (stop,)
            held[j:j] = new
        elif op == LOSS:
            if loss_done or not _has(held, n):
                why = "a second loss" if loss_done else f"the loss needs a[{n}], which is not held"
                raise ValueError(f"actions[{i}]: {why}")
            held.pop()  # a[n], the largest index held
            loss_done = True
        else:
            _, start, stop = action
            if not loss_done:
                raise ValueError(f"actions[{i}]: {action!r} comes before the loss")
            if stop - 1 != next_backward:
                raise ValueError(
                    f"actions[{i}]: {action!r} is out of order: the next backward step is "
                    f"layer {next_backward}"
                )
            for k in range(stop - 1, start - 1, -1):
                for need in (k + 1, k):  # consumes a[k+1] (a[n] is dz by now), reads a[k]
                    if 0 < need < n and not _has(held, need):
                        raise ValueError(
                            f"actions[{i}]: {action!r}: the backward step of layer {k} needs "
                            f"a[{need}], which is not held"
                        )
                if k + 1 < n:
                    del held[bisect.bisect_left(held, k + 1)]
            next_backward = start - 1
    if not loss_done:
        raise ValueError("actions: the schedule has no loss")
    if next_backward != -1:
        raise ValueError(f"actions: the backward pass stops at layer {next_backward + 1}, not 0")
    if held:
        raise ValueError(f"actions: activations {held[:5]} are left over")
    return actions


def _has(held, k):
    j = bisect.bisect_left(held, k)
    return j < len(held) and held[j] == k


def count_forward_evals(actions):
    """Layer-forward evaluations a schedule performs (the first pass included)."""
    return sum(a[2] - a[1] for a in actions if a[0] == FORWARD)


def format_action(action):
    """One action as a readable line, e.g. ``forward layers 40..63 -> ...``."""
    op = action[0]
    if op == FORWARD:
        _, start, stop, keep = action
        what = "keep all" if keep else f"keep a[{stop}]"
        return f"forward layers {start}..{stop - 1} -> a[{start + 1}..{stop}], {what}"
    if op == LOSS:
        return "loss -> dz of the last layer"
    if op == BACKWARD:
        _, start, stop = action
        return f"backward layers {stop - 1}..{start}"
    raise ValueError(f"action: unknown operation {action!r}")
