"""Byte accounting: the tracemalloc peak a schedule will reach.

:func:`simulate` replays a schedule's actions for a call (a
:class:`mlpckpt.plan.Call`: sizes, batch, dtype, activations, loss, output,
out, fuse_update, targets) with the allocation rules of the executor,
:func:`mlpckpt.backprop.execute` (its module docstring), and adds the hidden
temporaries NumPy makes (paper_notes/checkpointing.md, "Memory model",
eqs. C10-C12):

* every array costs its data plus :data:`ARRAY_OVERHEAD` (the ndarray object
  and its shape and strides, which tracemalloc also sees), taken from the
  running NumPy and CPython at import;
* a broadcast ufunc such as ``z += b`` allocates NumPy's iteration buffer of
  ``min(size, 8192)`` elements (:func:`ufunc_buffer`);
* the loss allocates at most one ``(n_out, batch)`` temporary plus a few
  ``(batch,)`` vectors and a ufunc buffer (:func:`loss_transient`);
* a backward step's reductions and matmuls allocate under
  :data:`BACKWARD_TRANSIENT` bytes;
* a fixed :data:`BASE_OVERHEAD` covers the call's Python objects, plus
  :data:`LIST_SLOT` bytes per layer for each list of gradients made in the
  call (:func:`fixed_bytes`; none with ``out=`` alone);
* the executor keeps the held activations in a dict keyed by layer index:
  its hash table grows by CPython's rule (:func:`dict_keys_bytes`; old and
  new tables alive during a resize, never shrunk by a pop), and each key
  above 256 is an int object of :data:`INT_KEY` bytes.

Everything is integers; the only arrays are per-layer byte counts.
"""

import struct
import sys

import numpy as np

from .actions import FORWARD, LOSS

__all__ = [
    "ARRAY_OVERHEAD", "BASE_OVERHEAD", "BACKWARD_TRANSIENT", "LIST_SLOT", "INT_KEY",
    "dict_keys_bytes", "fixed_bytes", "ufunc_buffer", "forward_transient", "loss_transient",
    "grad_pair_bytes", "shared_grad_bytes", "simulate",
]


def _traced_bytes(make, count=64):
    """Bytes tracemalloc sees per object ``make(i)`` makes, measured once on
    the running interpreter (a running trace is read, not stopped)."""
    import tracemalloc

    keep, tracing = [None] * count, tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            keep[i] = make(i)
        return -(-(tracemalloc.get_traced_memory()[0] - before) // count)
    finally:
        if not tracing:
            tracemalloc.stop()


#: bytes tracemalloc sees per ndarray beyond its data: the object and its
#: shape and strides, allocated apart (NumPy's small cache of those can only
#: lower it), as sys.getsizeof counts them and as traced (128 B with
#: CPython 3.11 and NumPy 2.4)
ARRAY_OVERHEAD = max(sys.getsizeof(np.empty((1, 1), dtype=np.uint8)) - 1,
                     _traced_bytes(lambda i: np.empty((1, 1), dtype=np.uint8)) - 1)
#: Python objects of one loss_and_grad call (Call, Result, Grads, the
#: headers of the dict and lists, scalars): a fixed bound
BASE_OVERHEAD = 12288
#: one pointer in a Python list (the dW / db lists hold one per layer)
LIST_SLOT = struct.calcsize("P")
#: an int object above CPython's cached small ints (a dict key k > 256), as
#: traced (32 B with CPython 3.11, where sys.getsizeof says 28)
INT_KEY = max(sys.getsizeof(2**20), _traced_bytes(lambda i: i + 2**20))
#: one entry of a dict's table (hash, key, value); the fixed part of a key
#: table (the 5-entry one of ``{0: X}`` less its index and entries)
DICT_ENTRY = 3 * LIST_SLOT
DICT_KEYS_HEADER = max(0, sys.getsizeof({0: None}) - sys.getsizeof({}) - 8 - 5 * DICT_ENTRY)
#: reductions / matmul bookkeeping inside one backward step
BACKWARD_TRANSIENT = 2048
#: NumPy's default ufunc buffer, in elements (numpy.getbufsize())
UFUNC_BUFSIZE = 8192
#: fixed part of one buffered ufunc call
UFUNC_FIXED = 1152


def dict_keys_bytes(log2_size):
    """Bytes of a dict's key table of ``2 ** log2_size`` slots (CPython's
    dictobject.c: index bytes by size, two thirds of the slots usable)."""
    index = 1 if log2_size < 8 else 2 if log2_size < 16 else 4 if log2_size < 32 else 8
    return DICT_KEYS_HEADER + (index << log2_size) + DICT_ENTRY * ((2 << log2_size) // 3)


def fixed_bytes(call):
    """The call's Python objects: :data:`BASE_OVERHEAD` and the gradient
    lists made in the measured call (none with ``out=`` alone)."""
    n = call.n_layers
    if call.fuse_update:  # two list comprehensions: CPython's over-allocation
        return BASE_OVERHEAD + 2 * LIST_SLOT * (n + (n >> 3) + 8)
    return BASE_OVERHEAD + (0 if call.out else 2 * LIST_SLOT * n)  # [None] * n twice


def ufunc_buffer(rows, cols, itemsize):
    """Bytes of NumPy's buffer for a broadcast ``(rows, cols) op= (rows, 1)``."""
    if cols == 1:  # same shapes: no broadcasting, no buffer
        return 0
    if rows == 1:
        return UFUNC_FIXED
    return min(rows * cols, UFUNC_BUFSIZE) * itemsize + UFUNC_FIXED


def forward_transient(rows, batch, itemsize, activation):
    """Peak temporary bytes inside one ``layer_forward`` (eq. C11)."""
    bias = ufunc_buffer(rows, batch, itemsize)
    if activation == "leaky_relu":  # chunked temporary 0.01 * z
        return max(bias, min(rows * batch, UFUNC_BUFSIZE) * itemsize + ARRAY_OVERHEAD)
    return bias


def loss_transient(loss, output, n_out, batch, itemsize, targets):
    """Peak temporary bytes of the loss (eq. C12): one ``(n_out, batch)``
    array unless the loss works in place (mse with identity output), the
    ``(batch,)`` vectors alive at its peak (column maxima, sums, logs, label
    indices), a ufunc buffer where a column vector is broadcast, and
    Python-level bookkeeping."""
    if loss == "mse" and output == "identity":
        return 2048
    full = n_out * batch * itemsize + ARRAY_OVERHEAD
    fvec = batch * itemsize + ARRAY_OVERHEAD  # a (batch,) vector of the dtype
    index = 2 * (batch * 8 + ARRAY_OVERHEAD)  # int64 columns and each column's top entry
    if loss == "cross_entropy" and targets == "labels":
        vectors = index + 2 * fvec + batch + ARRAY_OVERHEAD  # sums, totals; the label mask
    elif loss == "cross_entropy":
        vectors = index + 3 * fvec  # sums, totals, the target mass off the top entry
    elif output == "softmax":  # mse through the softmax Jacobian
        vectors = fvec
    else:  # bce, or mse through a sigmoid: elementwise only
        return full + 4096
    return full + vectors + ufunc_buffer(n_out, batch, itemsize) + 4096


def grad_pair_bytes(rows, cols, itemsize):
    """Bytes of one layer's ``(dW, db)``: a ``(rows, cols)`` array and a
    ``(rows, 1)`` one (also the size of a fused step's optimiser scratch)."""
    return rows * (cols + 1) * itemsize + 2 * ARRAY_OVERHEAD


def shared_grad_bytes(sizes, itemsize):
    """Bytes of a fused step's gradient buffers.

    ``fit(..., fuse_update=True)`` keeps one ``(dW, db)`` pair per distinct
    layer shape; a fresh SGD optimiser adds one scratch pair of the same
    size per shape as its update first meets it (momentum and Adam state,
    which is model-sized, comes on top and is not predicted)."""
    shapes = {(sizes[k + 1], sizes[k]) for k in range(len(sizes) - 1)}
    return sum(grad_pair_bytes(rows, cols, itemsize) for rows, cols in shapes)


def simulate(actions, call):
    """Replay ``actions`` for ``call``; return the predicted memory figures.

    The schedule is taken as checked (:func:`mlpckpt.actions.check_actions`).

    Parameters
    ----------
    actions : sequence of tuple of int
    call : Call
        What the run does (:class:`mlpckpt.plan.Call`): ``sizes`` (length
        n + 1), ``batch``, ``itemsize``, ``activations`` (leaky_relu has a
        chunked temporary), ``loss``, ``output``, ``out`` (gradient buffers
        given, not allocated by the call), ``fuse_update`` (gradients live
        in one buffer per distinct layer shape, allocated by the caller, see
        :func:`mlpckpt.train.grad_buffers`) and ``targets`` (``"labels"`` or
        ``"onehot"``, the form of cross-entropy targets).

    Returns
    -------
    dict
        ``peak_bytes``, ``activation_bytes`` (activations and their
        gradients alive at the peak), ``max_stored`` (most ``a[k]``,
        ``k >= 1``, alive at once), ``forward_evals``.
    """
    sizes, batch, itemsize = call.sizes, call.batch, call.itemsize
    loss, output, targets = call.loss, call.output, call.targets
    out, fuse_update = call.out, call.fuse_update
    n = call.n_layers
    act = [s * batch * itemsize + ARRAY_OVERHEAD for s in sizes]
    hidden = list(call.activations) + ["identity"]
    keep_grads = not out and not fuse_update
    # temporary of the forward step that produces a[k] (k >= 1)
    ftr = [0] + [
        forward_transient(sizes[k + 1], batch, itemsize, hidden[k] if k + 1 < n else None)
        for k in range(n)
    ]
    # pair[k]: a[k] (an intermediate) and a[k+1] alive while a[k+1] is computed
    pair = np.zeros(n + 1, dtype=np.int64)
    for k in range(1, n):
        pair[k] = act[k] + act[k + 1] + ftr[k + 1]
    held = {}  # k -> bytes of a[k] held (k >= 1)
    state = {"acts": 0, "count": 0, "grads": 0, "da": 0, "dict": dict_keys_bytes(3)}
    # the executor's dict of held activations, {0: X} to start: slots in
    # use, insertions left before a resize, log2 of its table's size
    table = {"used": 1, "usable": 4, "log2": 3}
    best = {"peak": 0, "acts": 0, "count": 0}
    evals = 0

    base = fixed_bytes(call)

    def touch(transient, extra_acts=0):
        # a candidate peak: what is held, plus arrays in flight and a temporary
        acts = state["acts"] + state["da"] + extra_acts
        total = base + acts + state["grads"] + state["dict"] + transient
        if total > best["peak"]:
            best["peak"] = total
            best["acts"] = acts

    def hold(k, extra_acts=0):
        # acts[k] = a[k]: its key, and a resize (CPython's GROWTH_RATE, used
        # * 3) when the table is full, the old table alive until it is copied
        held[k] = act[k]
        state["dict"] += INT_KEY if k > 256 else 0
        if table["usable"] <= 0:
            log2 = max(3, (3 * table["used"] - 1).bit_length())
            old, state["dict"] = dict_keys_bytes(table["log2"]), state["dict"] + (
                dict_keys_bytes(log2) - dict_keys_bytes(table["log2"]))
            table["log2"], table["usable"] = log2, (2 << log2) // 3 - table["used"]
            touch(old, extra_acts)
        table["usable"] -= 1
        table["used"] += 1

    def release(k):
        # acts.pop(k): the slot becomes a dummy (no shrinking), the key dies
        table["used"] -= 1
        state["dict"] -= INT_KEY if k > 256 else 0
        return held.pop(k)

    update_transient = 1024  # a fused update allocates nothing but its scratch
    seen = set()  # layer shapes whose optimiser scratch exists
    if fuse_update:
        state["grads"] = shared_grad_bytes(sizes, itemsize)

    for action in actions:
        op = action[0]
        if op == FORWARD:
            _, start, stop, keep = action
            evals += stop - start
            if not keep and stop - start >= 2:
                # Fast path (a range kept nowhere but at its end): the peak is
                # the largest pair of consecutive buffers plus that step's
                # temporary, found by a vectorised max, not a Python loop.
                touch(ftr[start + 1], act[start + 1])  # a[start] is held already
                i = start + 1 + int(np.argmax(pair[start + 1 : stop]))
                touch(ftr[i + 1], act[i] + act[i + 1])
                best["count"] = max(best["count"], state["count"] + 2)
                state["acts"] += act[stop]
                hold(stop, act[stop - 1] if stop - 1 > start else 0)
                state["count"] += 1
                continue
            for k in range(start, stop):
                state["acts"] += act[k + 1]
                state["count"] += 1
                best["count"] = max(best["count"], state["count"])
                touch(ftr[k + 1])
                if keep or k + 1 == stop:
                    hold(k + 1)
                if k > start and k not in held:  # the unkept intermediate a[k] dies
                    state["acts"] -= act[k]
                    state["count"] -= 1
        elif op == LOSS:
            touch(loss_transient(loss, output, sizes[n], batch, itemsize, targets))
            state["acts"] -= release(n)
            state["count"] -= 1
            state["da"] = act[n]  # the logits' buffer now holds dz
        else:  # BACKWARD
            _, start, stop = action
            for k in range(stop - 1, start - 1, -1):
                consumed = release(k + 1) if k + 1 < n else 0
                reuse = k > 0 and consumed and sizes[k] == sizes[k + 1]
                if keep_grads:
                    state["grads"] += grad_pair_bytes(sizes[k + 1], sizes[k], itemsize)
                new_da = act[k] if k > 0 and not reuse else 0
                state["da"] += new_da  # old da, new da and a[k+1] all alive here
                touch(BACKWARD_TRANSIENT)
                if consumed:
                    state["acts"] -= consumed
                    state["count"] -= 1
                state["da"] = act[k] if k > 0 else 0
                if fuse_update:  # the update runs now; a new shape gets its scratch
                    shape = (sizes[k + 1], sizes[k])
                    if shape not in seen:
                        seen.add(shape)
                        state["grads"] += grad_pair_bytes(*shape, itemsize)
                    touch(update_transient)
    return {
        "peak_bytes": best["peak"],
        "activation_bytes": best["acts"],
        "max_stored": best["count"],
        "forward_evals": evals,
    }
