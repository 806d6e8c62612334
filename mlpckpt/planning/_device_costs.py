"""What each thing a call allocates costs a device allocator, in bytes.

The :class:`~mlpckpt.planning._costs.CostTable` of nets on PyTorch or CuPy
(paper_notes/backends.md, eqs. B4-B6): :class:`DeviceAllocator`, bound to
the allocator's kind, so that :func:`mlpckpt.planning._memory.model` reads
it exactly as it reads tracemalloc's. A device allocator counts
tensor storage only: no Python object, no ufunc buffer, no bookkeeping of
the interpreter. What it does count:

* every tensor its storage rounded up to :data:`ROUNDING` bytes -- 512 on
  CUDA (PyTorch's caching allocator and CuPy's memory pool both round each
  block to 512 B), 64 on the CPU (c10's alignment);
* the in-place layer maps and derivatives make no temporary; PyTorch turns a
  Python scalar operand into a 0-d tensor, a few of which are alive at once
  (:data:`SCALARS`);
* the loss: the NumPy path's temporaries, each rounded, the column index
  vectors made on the device.

Library workspaces are *not* counted: cuBLAS allocates its workspace (through
PyTorch's caching allocator, sized by ``CUBLAS_WORKSPACE_CONFIG``) on the
first matmul of a stream and keeps it, so it is part of what is allocated
before a call, never of the call's peak above it. Imports nothing of the
package.
"""

__all__ = ["DeviceAllocator", "ROUNDING", "SCALARS", "rounding", "is_device", "array_bytes", "fixed_bytes",
           "forward_transient", "loss_transient", "grad_pair_bytes", "shared_grad_bytes",
           "BACKWARD_TRANSIENT", "UPDATE_TRANSIENT"]

#: bytes each block is rounded up to, by :attr:`mlpckpt.backends._backends.Backend.kind`
ROUNDING = {"torch:cuda": 512, "cupy:cuda": 512, "torch:cpu": 64}
#: the 0-d tensors of scalar operands alive at once inside one step
SCALARS = 4


def is_device(kind):
    """Whether the memory model of ``kind`` is this module's (not tracemalloc's)."""
    return kind != "numpy"


def rounding(kind):
    """The block size of ``kind``'s allocator (64 where it is not known)."""
    return ROUNDING.get(kind, 64)


def array_bytes(nbytes, kind):
    """The allocator's bytes for a tensor of ``nbytes`` bytes of data."""
    r = rounding(kind)
    return -(-nbytes // r) * r if nbytes else 0


def _scalars(kind):
    return SCALARS * array_bytes(8, kind)


def fixed_bytes(call):
    """Nothing the device allocator sees lives for the whole call (the lists
    and records are Python objects on the host)."""
    return 0


def forward_transient(rows, batch, itemsize, activation, kind):
    """In-place maps (leaky_relu too: PyTorch's own, in place): scalars only."""
    return _scalars(kind)


def loss_transient(loss, output, n_out, batch, itemsize, targets, kind):
    """Peak temporary bytes of the loss (eq. B6): one ``(n_out, batch)``
    tensor unless the loss works in place, and the ``(batch,)`` vectors alive
    at its peak (as for NumPy, :func:`mlpckpt.planning._costs.loss_transient`), each
    rounded."""
    small = _scalars(kind)
    if loss == "mse" and output == "identity":
        return small
    full = array_bytes(n_out * batch * itemsize, kind)
    fvec = array_bytes(batch * itemsize, kind)
    ivec = array_bytes(batch * 8, kind)  # int64 indices: top entries, column numbers
    if loss == "cross_entropy" and targets == "labels":
        vectors = 2 * ivec + 3 * fvec + array_bytes(batch, kind)  # sums, logs, totals; the label mask
        return full + vectors + small
    if loss == "cross_entropy":
        return max(full + ivec + 3 * fvec, 2 * ivec + 4 * fvec) + small
    if output == "softmax":
        return full + 2 * fvec + small
    return full + small  # bce's heaviside, or mse's o - y after its sigmoid


def grad_pair_bytes(rows, cols, itemsize, kind):
    """A layer's ``(dW, db)``: two tensors."""
    return array_bytes(rows * cols * itemsize, kind) + array_bytes(rows * itemsize, kind)


def shared_grad_bytes(sizes, itemsize, kind):
    """A fused step's gradient buffers: one pair per distinct layer shape."""
    shapes = {(sizes[k + 1], sizes[k]) for k in range(len(sizes) - 1)}
    return sum(grad_pair_bytes(rows, cols, itemsize, kind) for rows, cols in shapes)


#: a backward step's sums and matmuls write into their outputs: scalars only
BACKWARD_TRANSIENT = 4 * 512
#: a fused update's scalars
UPDATE_TRANSIENT = 4 * 512


class DeviceAllocator:
    """A device allocator's :class:`~mlpckpt.planning._costs.CostTable`;
    ``kind`` as :attr:`mlpckpt.backends._backends.Backend.kind` names it
    (``"torch:cuda"``, ``"cupy:cuda"``, ``"torch:cpu"``, ...)."""

    backward_transient = BACKWARD_TRANSIENT
    update_transient = UPDATE_TRANSIENT

    def __init__(self, kind):
        self.kind = kind

    def array_bytes(self, nbytes):
        return array_bytes(nbytes, self.kind)

    fixed_bytes = staticmethod(fixed_bytes)

    def forward_transient(self, rows, batch, itemsize, activation):
        return forward_transient(rows, batch, itemsize, activation, self.kind)

    def loss_transient(self, loss, output, n_out, batch, itemsize, targets):
        return loss_transient(loss, output, n_out, batch, itemsize, targets, self.kind)

    def grad_pair_bytes(self, rows, cols, itemsize):
        return grad_pair_bytes(rows, cols, itemsize, self.kind)

    def shared_grad_bytes(self, sizes, itemsize):
        return shared_grad_bytes(sizes, itemsize, self.kind)
