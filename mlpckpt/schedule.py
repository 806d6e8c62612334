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

__all__ = [
    "FORWARD",
    "LOSS",
    "BACKWARD",
    "ACTION_NAMES",
    "StoreAll",
    "Segments",
    "Sqrt",
    "Schedule",
    "segment_bounds",
    "compile_actions",
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
        _check_count("Segments(k)", self.k, minimum=1)

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


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")


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
