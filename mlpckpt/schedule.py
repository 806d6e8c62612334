"""Strategies compiled into schedules: plain integer data, no arrays.

A schedule is a tuple of actions, each a tuple of ints, run by the one loop in
:func:`mlpckpt.backprop.execute`:

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

Layer indices follow DESIGN.md: ``a[0] = X`` (the caller's, never counted),
``weights[k]`` maps ``a[k]`` to ``a[k+1]``, ``n = len(weights)``.
"""

import math
from dataclasses import dataclass, field

from . import _checks

__all__ = [
    "FORWARD",
    "LOSS",
    "BACKWARD",
    "ACTION_NAMES",
    "StoreAll",
    "Segments",
    "Sqrt",
    "Revolve",
    "Budget",
    "Schedule",
    "griewank_t",
    "binomial_split",
    "segment_bounds",
    "compile_actions",
    "call_actions",
    "is_call_dependent",
    "count_forward_evals",
    "format_action",
]

FORWARD, LOSS, BACKWARD = 0, 1, 2
ACTION_NAMES = {FORWARD: "forward", LOSS: "loss", BACKWARD: "backward"}


@dataclass(frozen=True)
class StoreAll:
    """Keep every activation: plain backprop, ``n`` forward evaluations."""

    def actions(self, n):
        return ((FORWARD, 0, n, 1), (LOSS,), (BACKWARD, 0, n))


@dataclass(frozen=True)
class Segments:
    """Keep ``k`` segment boundaries; recompute one segment at a time.

    Segment lengths are ``floor(n/k)`` or ``ceil(n/k)``, the longer ones
    last. The last segment is kept from the first pass and no segment's end
    is recomputed, so ``forward_evals = 2n - k - (m - 1)`` with
    ``m = ceil(n/k)`` (paper_notes/checkpointing.md, eq. C3). ``k > n`` is
    treated as ``k = n`` (every segment one layer long: plain backprop).
    """

    k: int

    def __post_init__(self):
        object.__setattr__(self, "k", _checks.check_int("Segments(k)", self.k, minimum=1))

    def actions(self, n):
        bounds = segment_bounds(n, min(self.k, n))
        acts = [(FORWARD, bounds[i], bounds[i + 1], 0) for i in range(len(bounds) - 2)]
        acts += [(FORWARD, bounds[-2], n, 1), (LOSS,), (BACKWARD, bounds[-2], n)]
        for i in range(len(bounds) - 3, -1, -1):
            start, stop = bounds[i], bounds[i + 1]
            if stop - 1 > start:  # the end a[stop] is still held
                acts.append((FORWARD, start, stop - 1, 1))
            acts.append((BACKWARD, start, stop))
        return tuple(acts)


@dataclass(frozen=True)
class Sqrt:
    """``Segments(ceil(sqrt(n)))``: O(sqrt n) memory, < 2n forward evaluations."""

    def actions(self, n):
        return Segments(math.isqrt(n - 1) + 1 if n > 1 else 1).actions(n)


@dataclass(frozen=True)
class Revolve:
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
        object.__setattr__(self, "slots", _checks.check_int("Revolve(slots)", self.slots, minimum=0))

    def actions(self, n):
        return revolve_actions(n, self.slots)


@dataclass(frozen=True)
class Budget:
    """The fewest forward evaluations whose predicted peak fits ``max_bytes``.

    ``max_bytes`` is an int or a string with a unit (``"50MiB"``, ``"1GB"``;
    KiB/MiB/GiB are powers of 2, KB/MB/GB of 10). The budget is checked
    against the same accounting as :func:`plan` (``mlpckpt.memory``), with
    the net's real layer widths, for the exact call (loss, ``out=``,
    ``fuse_update``), so the measured tracemalloc peak stays under it.

    The search (paper_notes/checkpointing.md, section 6) takes the cheapest
    of plain backprop, the binomial ``Revolve(s)`` with the most slots that
    fit and every ``Segments(k)`` that fits, each judged by the exact
    simulation; on uneven widths a dynamic program over the real sizes
    (:mod:`mlpckpt.budget`) may then place checkpoints at narrow layers. On
    uniform widths this is never worse than ``Revolve`` at the same bytes. A
    budget below the smallest schedule's peak raises ``ValueError`` naming
    the smallest budget that works.
    """

    max_bytes: int

    def __post_init__(self):
        object.__setattr__(self, "max_bytes", _checks.parse_bytes(self.max_bytes))

    def actions(self, n):
        raise ValueError(
            "strategy: Budget needs the layer sizes and the call; use plan(net, ...) "
            "or net.loss_and_grad(..., strategy=Budget(...))"
        )

    def plan_actions(self, sizes, batch, itemsize, hidden, loss, output, out, fuse_update, targets):
        """Actions of the cheapest schedule that fits (:func:`mlpckpt.budget.search`)."""
        from .budget import search

        return search(self.max_bytes, sizes, batch, itemsize, hidden, loss, output, out,
                      fuse_update, targets)


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


def segment_bounds(n, k):
    """Boundaries ``0 = s_0 < s_1 < ... < s_k = n`` of ``k`` near-equal segments.

    The ``n mod k`` longer segments (``ceil(n/k)``) come last.
    """
    q, r = divmod(n, k)
    bounds = [0]
    for i in range(k):
        bounds.append(bounds[-1] + q + (1 if i >= k - r else 0))
    return bounds


def compile_actions(strategy, n):
    """Actions of ``strategy`` for a chain of ``n`` layers (a tuple of tuples)."""
    if strategy is None:
        strategy = StoreAll()
    if not hasattr(strategy, "actions"):
        raise ValueError(
            f"strategy: got {strategy!r}, expected StoreAll(), Segments(k), Sqrt(), "
            "Revolve(slots), Budget(max_bytes) or None"
        )
    if n < 1:
        raise ValueError(f"n: expected at least one layer, got {n}")
    return strategy.actions(n)


def call_actions(strategy, sizes, batch, itemsize, hidden, loss, output, out, fuse_update, targets):
    """The actions one ``loss_and_grad`` call runs: a ``Budget`` is planned
    against that call's memory (every argument counts), any other strategy
    depends on the number of layers only."""
    if hasattr(strategy, "plan_actions"):
        return strategy.plan_actions(
            sizes, batch, itemsize, hidden, loss, output, out, fuse_update, targets
        )
    return compile_actions(strategy, len(sizes) - 1)


def is_call_dependent(strategy):
    """Whether :func:`call_actions` depends on more than the layer count."""
    return hasattr(strategy, "plan_actions")


def count_forward_evals(actions):
    """Layer-forward evaluations a schedule performs (the first pass included)."""
    return sum(a[2] - a[1] for a in actions if a[0] == FORWARD)


def format_action(action):
    """One action as a readable line, e.g. ``forward 40..63 keep none``."""
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


@dataclass
class Schedule:
    """A compiled strategy and what running it costs (see :func:`mlpckpt.plan`).

    Attributes
    ----------
    strategy : object
        The strategy it was compiled from.
    sizes : tuple of int
        Layer sizes of the net.
    batch_size : int
    actions : tuple of tuple of int
        The schedule as data (module docstring).
    forward_evals : int
        Layer-forward evaluations of one ``loss_and_grad``.
    max_stored : int
        Most activation arrays ``a[k]``, ``k >= 1``, alive at once.
    peak_bytes : int
        Predicted tracemalloc peak of one ``loss_and_grad``.
    activation_bytes : int
        The activation part of ``peak_bytes`` at that peak.
    """

    strategy: object
    sizes: tuple
    batch_size: int
    actions: tuple
    forward_evals: int
    max_stored: int
    peak_bytes: int
    activation_bytes: int
    details: dict = field(default_factory=dict, repr=False)

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    def __str__(self):
        mib = 2.0**20
        n = self.n_layers
        lines = [
            f"strategy          {self.strategy!r}",
            f"layers            {n} (sizes {_short_sizes(self.sizes)}), batch {self.batch_size}",
            f"forward evals     {self.forward_evals} ({self.forward_evals / n:.3f} x n)",
            f"arrays stored     {self.max_stored} at most (a[k], k >= 1)",
            f"peak bytes        {self.peak_bytes / mib:.3f} MiB ({self.peak_bytes} B)",
            f"activation bytes  {self.activation_bytes / mib:.3f} MiB ({self.activation_bytes} B)",
            f"actions           {len(self.actions)}",
        ]
        return "\n".join(lines)

    def format_actions(self):
        """All actions, one numbered line each."""
        return "\n".join(f"{i:6d}  {format_action(a)}" for i, a in enumerate(self.actions))


def _short_sizes(sizes):
    if len(sizes) <= 8:
        return ",".join(map(str, sizes))
    return ",".join(map(str, sizes[:3])) + ",...," + ",".join(map(str, sizes[-2:]))


def plan(net, batch_size, strategy=None, loss="mse", *, out=False, fuse_update=False, targets="labels"):
    """Dry run: what one ``loss_and_grad`` with these arguments will do.

    Allocates no arrays. The arguments describe the call being predicted:
    ``out=True`` when gradient buffers are passed in, ``fuse_update=True``
    for a fused training step, ``targets`` ``"labels"`` or ``"onehot"`` for
    cross-entropy. X and Y are assumed already in the net's dtype (labels as
    int64); casts are extra.

    Parameters
    ----------
    net : MLP
    batch_size : int
    strategy : StoreAll, Segments, Sqrt, Revolve, Budget or None
    loss : {"mse", "bce", "cross_entropy"}

    Returns
    -------
    Schedule
    """
    from . import memory  # memory imports this module

    batch_size = _checks.check_int("batch_size", batch_size)
    _checks.check_strategy(strategy)
    out = _checks.check_bool("out", out)
    fuse_update = _checks.check_bool("fuse_update", fuse_update)
    _checks.check_loss(loss, net.output)
    _checks.check_choice("targets", targets, {"labels", "onehot"})
    if strategy is None:
        strategy = StoreAll()
    sizes = tuple(net.sizes)
    itemsize = net.dtype.itemsize
    actions = call_actions(
        strategy, sizes, batch_size, itemsize, net.activations, loss, net.output,
        out, fuse_update, targets,
    )
    figures = memory.simulate(
        actions, sizes, batch_size, itemsize, net.activations, loss, net.output,
        out=out, fuse_update=fuse_update, targets=targets,
    )
    return Schedule(
        strategy=strategy,
        sizes=sizes,
        batch_size=batch_size,
        actions=actions,
        forward_evals=figures["forward_evals"],
        max_stored=figures["max_stored"],
        peak_bytes=figures["peak_bytes"],
        activation_bytes=figures["activation_bytes"],
        details={"loss": loss, "out": out, "fuse_update": fuse_update, "targets": targets},
    )
