"""What one training step of :meth:`mlpckpt.MLP.fit` holds in all, in bytes:
the ``total_bytes`` of :func:`mlpckpt.plan` with ``optimizer=``.

The accounting mirrors the code of :mod:`mlpckpt.training._loop` (``make_step``,
``grad_buffers``, ``fit``) and :mod:`mlpckpt.training._optimizers`; from the second step on
everything below is alive at once (the optimiser's state and scratch exist
from the first), so their sum is reached, and it bounds the first step too:

* the weights and biases (:attr:`mlpckpt.NetSpec.param_bytes`);
* the net's configuration: ``sizes``, ``activations`` and the planner's
  tuple of them, one slot (and an int object above 256) per layer, plus
  the MLP object (:data:`NET_FIXED`);
* the optimiser's state: none for plain SGD, one buffer per parameter
  array for SGD with momentum (``buf``), two for Adam (``m``, ``v``, kept
  as a tuple), in a dict keyed by block index (:func:`dict_bytes`, plus an
  int object per key above CPython's small-int cache);
* the optimiser's scratch: one array per distinct block shape (every
  optimiser keeps one), counted as one ``(dW, db)`` pair per distinct
  layer shape (with ``fuse_update`` inside ``step_peak_bytes``, where the
  memory model puts it);
* the gradient buffers fit keeps between steps: one pair per layer
  (unfused), one pair per layer shape (``fuse_update``), and their lists;
* the peak of the call the step makes, with fit's workspace (what it
  holds plus a later call's peak, :mod:`mlpckpt.planning._workspace_replay`): ``loss_and_grad`` with ``out=``
  given (fit always passes its buffers) and ``fuse_update`` as given --
  with ``fuse_update`` the memory model already counts the shared buffers,
  and the scratch is moved to its base (it exists before the call);
* fit's own data for one batch, shuffled (the default): the copies ``Xb``
  and ``Yb`` that fancy indexing makes and the permutation, taken as one
  batch of samples (a data set of ``N`` samples adds ``8 (N - batch)``
  bytes; with ``shuffle=False`` the batches are views and this part is an
  over-count);
* :data:`FIT_FIXED` for fit's Python objects (generator, closures, lists);
"""

from dataclasses import replace

from . import _memory as memory, _workspace_replay as poolmem
from ._costs import ARRAY_OVERHEAD, LIST_SLOT, grad_pair_bytes, list_bytes, param_bytes
from ..training._optimizers import SGD, Adam, make_optimizer

__all__ = ["FIT_FIXED", "NET_FIXED", "OPTIMIZER_NAMES", "dict_bytes", "check_optimizer",
           "state_arrays", "step_bytes"]

#: fit's fixed Python objects: the shuffling Generator, the step closures,
#: the optimiser object and its dicts' headers, history, batch views (20.6 KB
#: measured on a one-layer momentum fit once the compiled kernels removed the
#: forward's ufunc buffer, which had covered it)
FIT_FIXED = 24576
#: the MLP object, its attribute dict, its dtype and headers of its tuples and lists
NET_FIXED = 2048
#: an int object above the small-int cache (28 B, rounded up)
INT_BYTES = 32
#: a 2-tuple (Adam's (m, v)); a scratch dict entry's key ((shape), dtype)
TUPLE2_BYTES = 64
SCRATCH_KEY_BYTES = 256
_SMALL_INTS = 257  # CPython caches -5 .. 256
#: the names ``plan(optimizer=)`` and ``fit(optimizer=)`` take
OPTIMIZER_NAMES = ("sgd", "momentum", "adam")


def dict_bytes(n):
    """An upper bound on the bytes of a dict of ``n`` non-string keys grown
    by insertion (CPython 3.11: a table of ``2**k`` index slots, 2/3 of it
    usable 24-byte entries, resized to ``3 * used`` when full).

    Parameters
    ----------
    n : int >= 0

    Returns
    -------
    int
    """
    if n == 0:  # an empty dict shares CPython's empty table
        return 64
    size = 8
    while size * 2 // 3 < n:  # the table after the resize that made room for n
        size *= 2
    index = 1 if size <= 128 else 2 if size <= 2**16 else 4 if size <= 2**32 else 8
    return 64 + 32 + size * index + (size * 2 // 3) * 24


def check_optimizer(optimizer):
    """The optimiser ``fit(optimizer=...)`` would use: a name (``"sgd"``,
    ``"momentum"``, ``"adam"``) or an :class:`SGD` / :class:`Adam`.

    Raises
    ------
    ValueError
        Naming ``optimizer``.
    """
    if (isinstance(optimizer, str) and optimizer in OPTIMIZER_NAMES) or isinstance(optimizer, (SGD, Adam)):
        return make_optimizer(optimizer, None)
    raise ValueError(f"optimizer: got {optimizer!r}, expected 'sgd', 'momentum', 'adam', "
                     "an SGD(...) or an Adam(...)")


def state_arrays(opt):
    """Model-sized state arrays the optimiser keeps per parameter block."""
    if isinstance(opt, Adam):
        return 2
    return 1 if opt.momentum > 0 else 0


def step_bytes(call, actions, opt):
    """``total_bytes`` of one ``fit`` step (see the module docstring).

    Parameters
    ----------
    call : mlpckpt.planning._plan.Call
        The call the step makes (``out=True``, the step's ``fuse_update``,
        its batch and target form).
    actions : tuple of tuple of int
        Its compiled schedule.
    opt : SGD or Adam

    Returns
    -------
    dict
        ``total_bytes`` and its parts: ``param_bytes``, ``net_bytes``, ``state_bytes``,
        ``scratch_bytes``, ``grad_bytes``, ``step_peak_bytes``, ``data_bytes``.
    """
    sizes, batch, itemsize, n = call.sizes, call.batch, call.itemsize, call.n_layers
    pairs = [grad_pair_bytes(sizes[k + 1], sizes[k], itemsize) for k in range(n)]
    shapes = {(sizes[k + 1], sizes[k]) for k in range(n)}
    scratch_arrays = sum(grad_pair_bytes(r, c, itemsize) for r, c in shapes)
    scratch = dict_bytes(2 * len(shapes)) + 2 * len(shapes) * SCRATCH_KEY_BYTES  # its dict and keys
    per_block = state_arrays(opt)
    state = 0
    if per_block:
        blocks = 2 * n
        state = per_block * sum(pairs) + dict_bytes(blocks) + max(0, blocks - _SMALL_INTS) * INT_BYTES
        state += blocks * TUPLE2_BYTES if per_block == 2 else 0
    m = memory.model(call)
    if call.fuse_update:
        # the model counts the shared buffers in its base and the scratch as
        # the backward pass first meets each shape; from the second step on
        # the scratch exists before the call, so it moves to the base
        grads = 0
        m = replace(m, base=m.base + m.top[0] - m.top_acts[0], top=m.top_acts)
    else:
        grads = sum(pairs) + 2 * list_bytes(n)
        scratch += scratch_arrays
    if call.workspace:  # fit's workspace: from the second step on it holds its buffers
        pooled = poolmem.pool_figures(actions, call, m)
        peak = pooled["workspace_bytes"] + pooled["warm_peak_bytes"]
    else:
        peak = memory.simulate(actions, m)["peak_bytes"]
    big = sum(1 for s in sizes if s >= _SMALL_INTS)  # int objects of their own
    config = NET_FIXED + LIST_SLOT * (n + 1) + 2 * LIST_SLOT * (n - 1) + big * INT_BYTES
    labels = call.loss == "cross_entropy" and call.targets == "labels"
    y_bytes = batch * 8 if labels else sizes[-1] * batch * itemsize
    data = sizes[0] * batch * itemsize + y_bytes + 8 * batch + 3 * ARRAY_OVERHEAD  # Xb, Yb, permutation
    parts = {"param_bytes": param_bytes(sizes, itemsize), "net_bytes": config, "state_bytes": state,
             "scratch_bytes": scratch, "grad_bytes": grads, "step_peak_bytes": peak,
             "data_bytes": data + FIT_FIXED}
    return {"total_bytes": sum(parts.values()), **parts}
