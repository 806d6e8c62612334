"""What each thing a call allocates costs an allocator, in bytes: the one
interface every cost table implements (:class:`CostTable`), and
tracemalloc's table (:class:`Tracemalloc`).

The per-object costs behind the memory model of :mod:`mlpckpt.planning._memory`
(paper_notes/checkpointing.md, "Memory model", eqs. C10-C12): the ndarray
overhead measured on the running interpreter, NumPy's ufunc buffer, the
temporaries of a layer's forward map and of each loss, gradient pairs and
the call's fixed Python objects. A device allocator's table is
:class:`mlpckpt.planning._device_costs.DeviceAllocator`. Imports nothing of the package.
"""

import struct
import sys
from typing import Protocol, runtime_checkable

import numpy as np


__all__ = [
    "CostTable", "Tracemalloc", "ARRAY_OVERHEAD", "BASE_OVERHEAD", "BACKWARD_TRANSIENT", "LIST_SLOT", "UPDATE_TRANSIENT",
    "KERNEL_TRANSIENT", "UFUNC_BUFSIZE", "UFUNC_FIXED", "fixed_bytes", "ufunc_buffer", "forward_transient",
    "loss_transient", "grad_pair_bytes", "shared_grad_bytes", "TUPLE_FREELISTS", "schedule_bytes",
    "LIST_HEADER", "list_bytes", "n_params", "param_bytes",
]


# -- the interface ------------------------------------------------------------


@runtime_checkable
class CostTable(Protocol):
    """What one allocator counts for each thing a call allocates, in bytes.

    :func:`mlpckpt.planning._memory.model` reads a call's tables through
    this interface only; one implementation per allocator, each bound to
    what it depends on besides the call (tracemalloc: the elementwise
    kernels; a device allocator: its kind).
    """

    #: bytes of a backward step's reductions and matmul bookkeeping
    backward_transient: int
    #: bytes of a fused update's bookkeeping (beside its scratch)
    update_transient: int

    def array_bytes(self, nbytes):
        """An array of ``nbytes`` bytes of data."""

    def fixed_bytes(self, call):
        """What lives for the whole call besides arrays (lists, records)."""

    def forward_transient(self, rows, batch, itemsize, activation):
        """Peak temporary bytes inside one layer's forward map (eq. C11)."""

    def loss_transient(self, loss, output, n_out, batch, itemsize, targets):
        """Peak temporary bytes of the loss (eq. C12)."""

    def grad_pair_bytes(self, rows, cols, itemsize):
        """One layer's ``(dW, db)``."""

    def shared_grad_bytes(self, sizes, itemsize):
        """A fused step's gradient buffers: one pair per distinct layer shape."""


# -- tracemalloc's costs ---------------------------------------------------------


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
#: reductions / matmul bookkeeping inside one backward step
BACKWARD_TRANSIENT = 2048
#: a fused update allocates nothing but its scratch (and this much bookkeeping)
UPDATE_TRANSIENT = 1024
#: NumPy's default ufunc buffer, in elements (numpy.getbufsize())
UFUNC_BUFSIZE = 8192
#: fixed part of one buffered ufunc call
UFUNC_FIXED = 1152


def fixed_bytes(call):
    """The call's Python objects: :data:`BASE_OVERHEAD`, the executor's list
    of held activations (``[None] * (n + 1)``) and the gradient lists made
    in the measured call (none with ``out=`` alone)."""
    n = call.n_layers
    held = LIST_SLOT * (n + 1)
    if call.fuse_update:  # two list comprehensions: CPython's over-allocation
        return BASE_OVERHEAD + held + 2 * LIST_SLOT * (n + (n >> 3) + 8)
    return BASE_OVERHEAD + held + (0 if call.out else 2 * LIST_SLOT * n)  # [None] * n twice


def ufunc_buffer(rows, cols, itemsize):
    """Bytes of NumPy's buffer for a broadcast ``(rows, cols) op= (rows, 1)``."""
    if cols == 1:  # same shapes: no broadcasting, no buffer
        return 0
    if rows == 1:
        return UFUNC_FIXED
    return min(rows * cols, UFUNC_BUFSIZE) * itemsize + UFUNC_FIXED


#: a compiled kernel's call (numba's dispatch): no array, this much bookkeeping
KERNEL_TRANSIENT = 512


def forward_transient(rows, batch, itemsize, activation, kernels="numpy"):
    """Peak temporary bytes inside one ``layer_forward`` (eq. C11); a
    compiled kernel (``kernels="numba"``, :mod:`mlpckpt.execution._kernels`) adds the
    bias in its own pass and makes no temporary."""
    if kernels == "numba":
        return KERNEL_TRANSIENT
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
        # each column's top entry and, at the peak, either the exp temporary
        # with sums, logs and target masses, or (after it is freed) sums,
        # totals, the target mass off the top entry, the top targets and a
        # column index array
        top = batch * 8 + ARRAY_OVERHEAD
        peak = max(full + top + 3 * fvec, 2 * top + 4 * fvec)
        return peak + ufunc_buffer(n_out, batch, itemsize) + 4096
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


class Tracemalloc:
    """tracemalloc's :class:`CostTable` for a NumPy call running ``kernels``
    (``"numpy"`` or ``"numba"``: a compiled kernel makes no temporary)."""

    backward_transient = BACKWARD_TRANSIENT
    update_transient = UPDATE_TRANSIENT

    def __init__(self, kernels="numpy"):
        self.kernels = kernels

    def array_bytes(self, nbytes):
        return nbytes + ARRAY_OVERHEAD

    fixed_bytes = staticmethod(fixed_bytes)

    def forward_transient(self, rows, batch, itemsize, activation):
        return forward_transient(rows, batch, itemsize, activation, self.kernels)

    loss_transient = staticmethod(loss_transient)
    grad_pair_bytes = staticmethod(grad_pair_bytes)
    shared_grad_bytes = staticmethod(shared_grad_bytes)


# -- the schedule itself ----------------------------------------------------------

#: CPython keeps up to 2000 freed tuples of each small length for reuse, and
#: tracemalloc still counts them: after planning, up to this much of the
#: candidates' 3- and 4-tuples stays allocated (an interpreter effect)
TUPLE_FREELISTS = 2000 * (sys.getsizeof((0, 1, 2)) + sys.getsizeof((0, 1, 2, 3)))


def schedule_bytes(actions):
    """What tracemalloc sees of a compiled schedule (the tuple of action
    tuples, and the ints above CPython's cached small ones)."""
    size = sys.getsizeof(actions)
    for action in actions:
        size += sys.getsizeof(action) + sum(sys.getsizeof(x) for x in action if x > 256)
    return size


# -- a net's own arrays ---------------------------------------------------------

#: bytes of an empty list object (the header tracemalloc sees, GC header included)
LIST_HEADER = 56


def list_bytes(n):
    """An upper bound on the bytes of a list of ``n`` items built by appends
    or a comprehension: CPython over-allocates by ``n >> 3`` plus a few slots."""
    return LIST_HEADER + LIST_SLOT * (n + (n >> 3) + 8)


def n_params(sizes):
    """Scalars in the weights and biases: ``sum n_{k+1} (n_k + 1)`` (exact int)."""
    return sum(sizes[k + 1] * (sizes[k] + 1) for k in range(len(sizes) - 1))


def param_bytes(sizes, itemsize):
    """What an MLP of these sizes holds in weights and biases as tracemalloc
    sees it: their data, :data:`ARRAY_OVERHEAD` per array, and the two
    lists (:func:`list_bytes`, an upper bound)."""
    n = len(sizes) - 1
    return n_params(sizes) * itemsize + 2 * n * ARRAY_OVERHEAD + 2 * list_bytes(n)
