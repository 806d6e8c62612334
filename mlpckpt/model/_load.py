"""Loading a saved :class:`~mlpckpt.MLP` (and its optimiser) onto any backend."""

from ..io import _records as io
from . import _across_backends as placement
from ..core._validate import check_bool
from ..backends._backends import get_backend
from ._mlp import MLP

__all__ = ["load"]


def load(path, with_optimizer=False, backend="numpy", device=None):
    """The :class:`MLP` saved at ``path`` (see :func:`mlpckpt.io._records.load`: a
    corrupt or inconsistent file raises ``ValueError`` starting "path:");
    with ``with_optimizer=True`` the pair ``(net, optimizer)``, the optimiser
    (SGD or Adam) restored from the file, or None if it holds none; ``backend``
    and ``device`` as for :class:`MLP` (the optimiser's state goes there too)."""
    with_optimizer = check_bool("with_optimizer", with_optimizer)
    target = get_backend(backend, device)
    rec = io.load(path)
    net = MLP.from_arrays(rec["weights"], rec["biases"], rec["activations"], rec["output"],
                          rec["init"], rec["dtype"], copy=False)  # io.load's arrays are fresh
    if not target.is_numpy:
        net = net.to(target.name, target.device)
    return (net, placement.moved_optimizer(rec.get("optimizer"), target)) if with_optimizer else net
