"""Activation buffers kept between calls: no allocation, no page faults.

Each call of the executor allocates its activations and lets them go;
NumPy's allocator hands large blocks back to the system, so the next call
faults every page in again (5,500 minor faults per step at n = 256 were
measured in issue 13). A :class:`Workspace` keeps them: the executor takes
every activation buffer from it and gives it back where it would have been
freed, so after the first call nothing is allocated. Its size is predicted
by :func:`mlpckpt.poolmem.pool_figures` (``plan(..., workspace=True)``).
"""

import numpy as np

__all__ = ["Workspace", "check_workspace"]


class Workspace:
    """Free buffers by row count and dtype, for ``loss_and_grad(..., workspace=)``.

    A buffer is a flat array of ``rows * batch`` elements; a request for
    ``(rows, cols)`` is served as a C-contiguous view of the first ``rows *
    cols`` elements of a free buffer of that row count (so a smaller last
    minibatch reuses the buffers of the full ones), or from a new buffer
    when none is free. A buffer too small for a larger batch is dropped.
    One workspace serves one net at a time; it holds no result.

    Attributes
    ----------
    nbytes : int
        Data bytes of the buffers it owns (free or lent).
    """

    def __init__(self):
        self._free = {}
        self.nbytes = 0

    def __repr__(self):
        free = sum(len(v) for v in self._free.values())
        return f"Workspace(nbytes={self.nbytes}, free_buffers={free})"

    def take(self, rows, cols, dtype):
        """A C-contiguous ``(rows, cols)`` array of ``dtype`` (uninitialised)."""
        free = self._free.get((rows, dtype))
        need = rows * cols
        while free:
            buf = free.pop()
            if buf.size >= need:
                return buf[:need].reshape(rows, cols)
            self.nbytes -= buf.nbytes  # made for a smaller batch: let it go
        buf = np.empty(need, dtype=dtype)
        self.nbytes += buf.nbytes
        return buf.reshape(rows, cols)

    def give(self, array):
        """Return an array :meth:`take` lent (the caller drops its references)."""
        base = array.base
        self._free.setdefault((array.shape[0], array.dtype), []).append(base)


def check_workspace(workspace):
    """None or a :class:`Workspace`; else a ValueError naming ``workspace``."""
    if workspace is not None and not isinstance(workspace, Workspace):
        raise ValueError(f"workspace: expected a mlpckpt.Workspace or None, got {type(workspace).__name__}")
    return workspace
