"""Strategies: what the backward pass keeps, compiled into action schedules.

Every strategy is an instance of :class:`Strategy` (frozen, hashable) and
answers one method, ``actions(call)``, with a schedule in the vocabulary of
:mod:`mlpckpt.planning._actions` for the call described by ``call`` (a
:class:`mlpckpt.planning._plan.Call`; the fixed strategies here read only
``call.n_layers``). ``Budget``, which needs the call's memory, lives in
:mod:`mlpckpt.planning._budget`. The binomial mathematics (Griewank's ``t(l, s)``
and its optimal splits) is here too: paper_notes/checkpointing.md, eqs.
C3-C9.
"""

import math
import operator
from dataclasses import dataclass

from ..core._validate import check_int
from ._actions import BACKWARD, FORWARD, LOSS, check_actions

__all__ = [
    "Strategy",
    "StoreAll",
    "Segments",
    "Sqrt",
    "Revolve",
    "Actions",
    "griewank_t",
    "binomial_reps",
    "binomial_split",
    "binomial_actions",
    "revolve_actions",
    "segment_bounds",
]


class Strategy:
    """Base of every strategy: ``actions(call)`` returns the schedule.

    Subclasses are frozen dataclasses, so equal strategies hash alike and a
    compiled schedule can be cached by ``(strategy, call)``.
    """

    def actions(self, call):
        """The schedule (a tuple of action tuples) for ``call``."""
        raise NotImplementedError

    def describe(self, call):
        """What the plan should say besides the figures (``Schedule.details``)."""
        return {}


@dataclass(frozen=True)
class StoreAll(Strategy):
    """Keep every activation: plain backprop, ``n`` forward evaluations."""

    def actions(self, call):
        n = call.n_layers
        return ((FORWARD, 0, n, 1), (LOSS,), (BACKWARD, 0, n))


@dataclass(frozen=True)
class Segments(Strategy):
    """Keep ``k`` segment boundaries; recompute one segment at a time.

    Segment lengths are ``floor(n/k)`` or ``ceil(n/k)``, the longer ones
    last. The last segment is kept from the first pass and no segment's end
    is recomputed, so ``forward_evals = 2n - k - (m - 1)`` with
    ``m = ceil(n/k)`` (paper_notes/checkpointing.md, eq. C3). ``k > n`` is
    treated as ``k = n`` (every segment one layer long: plain backprop).
    """

    k: int

    def __post_init__(self):
        object.__setattr__(self, "k", check_int("Segments(k)", self.k, minimum=1))

    def actions(self, call):
        return segments_actions(call.n_layers, self.k)


@dataclass(frozen=True)
class Sqrt(Strategy):
    """``Segments(ceil(sqrt(n)))``: O(sqrt n) memory, < 2n forward evaluations."""

    def actions(self, call):
        n = call.n_layers
        return segments_actions(n, math.isqrt(n - 1) + 1 if n > 1 else 1)


@dataclass(frozen=True)
class Revolve(Strategy):
    """Griewank's binomial schedule with at most ``slots`` checkpoints at once.

    Adapted to derivatives taken from outputs: the loss acts as step
    ``n + 1``, so ``forward_evals = t(n + 1, slots + 1)`` (eq. C6), and at
    most ``slots + 3`` activation arrays are alive (checkpoints, the output
    whose layer is differentiated next, the two buffers of the layer being
    computed). ``slots >= n - 1`` is plain backprop (``n`` evaluations);
    ``slots = 0`` recomputes every activation from the input.
    """

    slots: int

    def __post_init__(self):
        object.__setattr__(self, "slots", check_int("Revolve(slots)", self.slots, minimum=0))

    def actions(self, call):
        return revolve_actions(call.n_layers, self.slots)


@dataclass(frozen=True)
class Actions(Strategy):
    """An explicit schedule in the action vocabulary (:mod:`mlpckpt.planning._actions`).

    ``Actions(steps)`` takes a sequence of actions (tuples or lists of
    ints) and checks its structure at once; that it fits the net (its
    depth) is checked when it is planned or run, before any array is
    touched. Either check raises ``ValueError`` naming the first bad action
    and why. ``plan`` prices it and ``loss_and_grad``/``fit`` run it like
    any other strategy, e.g. a schedule from another planner, or
    ``plan(net, b, s).actions`` of any strategy.

    Attributes
    ----------
    steps : tuple of tuple of int
    n_layers : int
        The depth the schedule is for (the last layer its forward actions
        reach).
    """

    steps: tuple

    def __post_init__(self):
        steps = _as_actions(self.steps)
        n = max((a[2] for a in steps if a and a[0] == FORWARD and len(a) == 4), default=0)
        object.__setattr__(self, "steps", check_actions(steps, n))

    @property
    def n_layers(self):
        return max(a[2] for a in self.steps if a[0] == FORWARD)

    def actions(self, call):
        if call.n_layers != self.n_layers:
            raise ValueError(
                f"strategy: Actions is a schedule for {self.n_layers} layers, "
                f"the net has {call.n_layers}"
            )
        return self.steps

    def __repr__(self):
        return f"Actions(<{len(self.steps)} actions for {self.n_layers} layers>)"


def _as_actions(steps):
    """``steps`` as a tuple of int tuples, or a ValueError naming the first
    entry that is not a sequence of ints."""
    if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
        raise ValueError(f"actions: expected a sequence of action tuples, got {steps!r:.80}")
    out = []
    for i, action in enumerate(steps):
        if not isinstance(action, (tuple, list)):
            raise ValueError(f"actions[{i}]: expected a tuple of ints, got {action!r:.80}")
        try:
            if any(isinstance(x, bool) for x in action):
                raise TypeError
            out.append(tuple(operator.index(x) for x in action))
        except TypeError:
            raise ValueError(f"actions[{i}]: expected a tuple of ints, got {action!r:.80}") from None
    return tuple(out)


def segment_bounds(n, k):
    """Boundaries ``0 = s_0 < s_1 < ... < s_k = n`` of ``k`` near-equal segments.

    The ``n mod k`` longer segments (``ceil(n/k)``) come last.
    """
    q, r = divmod(n, k)
    bounds = [0]
    for i in range(k):
        bounds.append(bounds[-1] + q + (1 if i >= k - r else 0))
    return bounds


def segments_actions(n, k):
    """The schedule of ``Segments(k)`` on ``n`` layers (eqs. C2-C3)."""
    bounds = segment_bounds(n, min(k, n))
    acts = [(FORWARD, bounds[i], bounds[i + 1], 0) for i in range(len(bounds) - 2)]
    acts += [(FORWARD, bounds[-2], n, 1), (LOSS,), (BACKWARD, bounds[-2], n)]
    for i in range(len(bounds) - 3, -1, -1):
        start, stop = bounds[i], bounds[i + 1]
        if stop - 1 > start:  # the end a[stop] is still held
            acts.append((FORWARD, start, stop - 1, 1))
        acts.append((BACKWARD, start, stop))
    return tuple(acts)


def binomial_reps(length, snaps):
    """Smallest ``r`` with ``C(snaps + r, snaps) >= length`` (eq. C5)."""
    r = 0
    while math.comb(snaps + r, snaps) < length:
        r += 1
    return r


def griewank_t(length, snaps):
    """``t(l, s)``: fewest forward steps reversing ``l`` steps with ``s``
    snapshots (taped, the initial state in a snapshot); eq. C5."""
    if length <= 1:
        return 0
    r = binomial_reps(length, snaps)
    return r * length - math.comb(snaps + r, snaps + 1)


def binomial_split(length, snaps):
    """An optimal first checkpoint ``j`` for the classical recurrence
    ``T(L, S) = min_j [j + T(L - j, S - 1) + T(j, S)]`` (eq. C7): the largest
    of the optimal range ``[max(b(S, r-2), L - b(S-1, r)),
    min(b(S, r-1), L - b(S-1, r-1))]`` with ``b(s, r) = C(s + r, s)``.
    Needs ``L >= 2`` and ``S >= 2``."""
    r = binomial_reps(length, snaps)
    j = min(math.comb(snaps + r - 1, snaps), length - math.comb(snaps + r - 2, snaps - 1))
    return max(1, min(j, length - 1))


def revolve_actions(n, slots):
    """The binomial schedule as actions, built with an explicit task stack.

    Tasks: ``H`` reverses layers ``[start, start + l)`` and the loss above
    them from the held ``a[start]`` (cost ``H(l, s) = t(l + 1, s + 1)``);
    ``G`` reverses ``[start, start + l)`` when ``a[start + l]`` and its
    gradient are held (cost ``G(l, s) = t(l, s + 1)``); eqs. C8-C9.
    """
    return binomial_actions([("H", 0, n, slots)])


def binomial_actions(tasks, out=None):
    """Run a stack of binomial tasks (``("H"|"G", start, length, slots)``,
    the last one first) and return the actions; ``out`` is a list of actions
    to append to (e.g. a first forward pass)."""
    out = [] if out is None else list(out)

    def emit_backward(start, stop):
        # merge with a contiguous backward range just emitted
        if out and out[-1][0] == BACKWARD and out[-1][1] == stop:
            out[-1] = (BACKWARD, start, out[-1][2])
        else:
            out.append((BACKWARD, start, stop))

    stack = list(tasks)
    while stack:
        kind, start, length, s = stack.pop()
        top = start + length
        if kind == "H":
            if length == 1 or s >= length - 1:
                out += [(FORWARD, start, top, 1), (LOSS,)]
                emit_backward(start, top)
            elif s == 0:
                out += [(FORWARD, start, top, 0), (LOSS,)]
                stack.append(("G", start, length, 0))
            else:
                j = binomial_split(length + 1, s + 1)
                out.append((FORWARD, start, start + j, 0))
                stack.append(("G", start, j, s))  # runs second
                stack.append(("H", start + j, length - j, s - 1))
        else:  # G
            if length == 1:
                emit_backward(start, top)
            elif s >= length - 1:
                out.append((FORWARD, start, top - 1, 1))
                emit_backward(start, top)
            elif s == 0:
                for i in range(length - 1, 0, -1):
                    out.append((FORWARD, start, start + i, 0))
                    emit_backward(start + i, start + i + 1)
                emit_backward(start, start + 1)
            else:
                j = binomial_split(length, s + 1)
                out.append((FORWARD, start, start + j, 0))
                stack.append(("G", start, j, s))
                stack.append(("G", start + j, length - j, s - 1))
    return tuple(out)
