"""One lowering: a schedule's actions, for one net's widths, as the integer
rows of buffer events that every consumer reads — the executor runs them,
the memory model sums them, the workspace replay assigns them and the
timeline draws them (docs/architecture.md, "Buffer events").

The rule for when an array dies is written here once (:func:`backward_flags`
and :func:`events`); nothing downstream decides it again.

A row is four integers ``(op, a, b, c)``:

``(FORWARD, start, stop, keep)``
    Births ``a[start+1] .. a[stop]``, each a ``(sizes[k+1], batch)`` buffer
    written by layer ``k``'s forward map, which reads ``a[k]``. With
    ``keep=0`` each intermediate ``a[k]`` (``start < k < stop``) dies right
    after ``a[k+1]`` is born; ``a[stop]`` is held, and with ``keep=1`` every
    one of them is.
``(LOSS, n, 0, 0)``
    Reads the held ``a[n]`` and overwrites it in place: its buffer becomes
    ``dz`` of the last layer (no birth, no death).
``(BACKWARD, k, flags, rows)``
    Layer ``k``'s backward step: reads ``a[k]`` (held, or ``X``) and the
    incoming gradient ``da`` (``dz`` of layer ``k``); with
    :data:`CONSUME` it reads the held ``a[k+1]``, whose buffer then either
    receives ``da[k]`` in place (:data:`REUSE`) or dies; with :data:`NEW_DA`
    a buffer of ``rows`` rows is born for ``da[k]``. The incoming ``da``
    dies after the step. (``dW[k]`` and ``db[k]`` are the call's: born here
    unless ``out=`` gives them.)

A program of a whole schedule is the rows in order, flat in an
``array("i")`` (8 bytes an integer): its length is four times the forward
actions plus one loss row plus one backward row per layer — proportional to
the schedule's actions and the depth, never to its evaluations. A consumer
that walks a schedule once (the memory model inside a budget search) reads
:func:`events` without materialising it; the executor runs the cached
:func:`lower` of its (strategy, call).
"""

import sys
from array import array

from ._actions import BACKWARD, FORWARD, LOSS

__all__ = ["CONSUME", "REUSE", "NEW_DA", "ROW", "backward_flags", "events", "lower", "forward_evals",
           "program_bytes", "timeline"]

#: a backward step reads the held a[k+1] (k + 1 < n; a[n] became dz at the loss)
CONSUME = 1
#: da[k] is written into the buffer of the consumed a[k+1] (same shape)
REUSE = 2
#: a new buffer is born for da[k] (k > 0 and no buffer to reuse)
NEW_DA = 4
#: integers per row
ROW = 4


def backward_flags(sizes):
    """The buffer events of each layer's backward step: the rule for when
    an activation dies and when its buffer lives on as a gradient.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``n_0 .. n_n``.

    Returns
    -------
    array of int, length n
        ``flags[k]``: :data:`CONSUME` where ``k + 1 < n`` (``a[n]`` is
        consumed by the loss), :data:`REUSE` where, besides, ``k > 0`` and
        ``sizes[k] == sizes[k+1]`` (``da[k]`` has the shape of ``a[k+1]``),
        :data:`NEW_DA` where ``k > 0`` and the step cannot reuse (layer 0
        makes no ``da[0]``: ``X`` is the caller's).
    """
    n = len(sizes) - 1
    flags = array("i", bytes(4 * n))
    for k in range(n):
        consume = k + 1 < n
        reuse = consume and k > 0 and sizes[k] == sizes[k + 1]
        flags[k] = (CONSUME if consume else 0) | (REUSE if reuse else 0) | (NEW_DA if k > 0 and not reuse else 0)
    return flags


def events(actions, sizes, flags=None):
    """The rows of a checked schedule, one at a time (the module docstring).

    Parameters
    ----------
    actions : sequence of tuple of int
        Checked (:func:`mlpckpt.planning._actions.check_actions`).
    sizes : sequence of int
        Layer widths ``n_0 .. n_n``.
    flags : array of int, optional
        :func:`backward_flags` of ``sizes``, when the caller has it.

    Yields
    ------
    tuple of 4 int
    """
    n = len(sizes) - 1
    if flags is None:
        flags = backward_flags(sizes)
    for action in actions:
        op = action[0]
        if op == FORWARD:
            yield action
        elif op == LOSS:
            yield (LOSS, n, 0, 0)
        else:
            _, start, stop = action
            for k in range(stop - 1, start - 1, -1):
                f = flags[k]
                yield (BACKWARD, k, f, sizes[k] if f & NEW_DA else 0)


def lower(actions, sizes):
    """The program of a checked schedule: its :func:`events`, flat.

    Returns
    -------
    array of int (typecode "i"), length ``ROW * rows``
        Built at its exact size (:func:`program_bytes`), without a temporary
        list.
    """
    program = array("i", (0,)) * (ROW * _rows(actions, len(sizes) - 1))
    i = 0
    for op, a, b, c in events(actions, sizes):
        program[i], program[i + 1], program[i + 2], program[i + 3] = op, a, b, c
        i += ROW
    return program


def forward_evals(program):
    """Layer-forward evaluations of a program (its forward rows' lengths)."""
    return sum(program[i + 2] - program[i + 1] for i in range(0, len(program), ROW) if program[i] == FORWARD)


def program_bytes(actions, n):
    """What tracemalloc sees of :func:`lower`'s program for ``actions`` on
    ``n`` layers (the array object and its integers)."""
    return sys.getsizeof(array("i")) + 4 * ROW * _rows(actions, n)


def _rows(actions, n):
    # one per forward action, one for the loss, one per layer on the way back
    return sum(1 for a in actions if a[0] != BACKWARD) + n


def timeline(actions, n):
    """The steps of a schedule, for drawing: its :func:`events` as times.

    Parameters
    ----------
    actions : sequence of tuple of int
    n : int
        Number of layers.

    Returns
    -------
    dict
        ``forward``: list of ``(step, k, first, kept)`` — step at which
        ``a[k]`` is computed, whether for the first time, whether kept;
        ``restore``: ``(step, k)`` — a forward range restarted from the held
        ``a[k]``; ``loss``: ``(step, n)``; ``backward``: ``(step, k)`` —
        backward step of layer ``k``; ``held``: ``(k, t0, t1)`` — ``a[k]``
        alive from step ``t0`` to ``t1``; ``steps``: the number of steps.
    """
    ev = {"forward": [], "restore": [], "loss": [], "backward": [], "held": []}
    born = {}
    seen = set()
    step = 0
    last_stop = 0
    for op, a, b, c in events(actions, (1,) * (n + 1)):  # the widths matter to da only, not drawn
        if op == FORWARD:
            start, stop, keep = a, b, c
            if start != last_stop:
                ev["restore"].append((step, start))
            for k in range(start + 1, stop + 1):
                kept = bool(keep) or k == stop
                ev["forward"].append((step, k, k not in seen, kept))
                seen.add(k)
                if kept:
                    born[k] = step
                step += 1
            last_stop = stop
        elif op == LOSS:
            ev["loss"].append((step, n))
            if n in born:  # a[n] becomes dz
                ev["held"].append((n, born.pop(n), step))
            step += 1
            last_stop = -1
        else:
            k, flags = a, b
            ev["backward"].append((step, k))
            if flags & CONSUME and k + 1 in born:  # a[k+1] read for the last time
                ev["held"].append((k + 1, born.pop(k + 1), step))
            step += 1
            last_stop = -1
    ev["steps"] = step
    return ev
