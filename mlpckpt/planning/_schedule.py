"""The Schedule record a plan returns: the actions and what running them costs."""

from dataclasses import dataclass, field

from ._actions import format_action

__all__ = ["Schedule", "short_sizes"]

MIB = 2.0**20


@dataclass
class Schedule:
    """A compiled strategy and what running it costs (see :func:`mlpckpt.plan`).

    Attributes
    ----------
    strategy : Strategy
        The strategy it was compiled from.
    sizes : tuple of int
        Layer sizes of the net.
    batch_size : int
    actions : tuple of tuple of int
        The schedule as data (:mod:`mlpckpt.planning._actions`).
    forward_evals : int
        Layer-forward evaluations of one ``loss_and_grad``.
    max_stored : int
        Most activation arrays ``a[k]``, ``k >= 1``, alive at once.
    peak_bytes : int
        Predicted tracemalloc peak of one ``loss_and_grad``.
    activation_bytes : int
        The activation part of ``peak_bytes`` at that peak.
    details : dict
        The call's settings (``loss``, ``out``, ``fuse_update``, ``targets``).
    total_bytes : int or None
        With ``plan(..., optimizer=)``: what one training step of ``fit``
        holds in all (weights, optimiser state, gradient buffers, the call's
        peak); else None.
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
    total_bytes: object = None

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    def __str__(self):
        n = self.n_layers
        lines = [
            f"strategy          {self.strategy!r}",
            f"layers            {n} (sizes {short_sizes(self.sizes)}), batch {self.batch_size}",
            f"forward evals     {self.forward_evals} ({self.forward_evals / n:.3f} x n)",
            f"arrays stored     {self.max_stored} at most (a[k], k >= 1)",
            f"peak bytes        {self.peak_bytes / MIB:.3f} MiB ({self.peak_bytes} B)",
            f"activation bytes  {self.activation_bytes / MIB:.3f} MiB ({self.activation_bytes} B)",
            f"actions           {len(self.actions)}",
        ]
        if self.total_bytes is not None:
            lines.append(f"total bytes       {self.total_bytes / MIB:.3f} MiB ({self.total_bytes} B), "
                         "one training step in all")
        return "\n".join(lines)

    def format_actions(self):
        """All actions, one numbered line each."""
        return "\n".join(f"{i:6d}  {format_action(a)}" for i, a in enumerate(self.actions))


def short_sizes(sizes, head=3, tail=2):
    """Layer sizes for a title: all of them when short, else the ends."""
    sizes = list(sizes)
    if len(sizes) <= head + tail + 3:
        return ",".join(map(str, sizes))
    return ",".join(map(str, sizes[:head])) + ",...," + ",".join(map(str, sizes[-tail:]))
