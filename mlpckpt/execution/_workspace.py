"""Activation buffers kept between calls: no allocation, no page faults.

Each call of the executor allocates its activations and lets them go;
NumPy's allocator hands large blocks back to the system, so the next call
faults every page in again (5,500 minor faults per step at n = 256 were
measured in issue 13). A :class:`Workspace` keeps them: the executor takes
every activation buffer from it and gives it back where it would have been
freed, so once it has stopped growing (the first call, at most the second)
nothing is allocated. Its size is predicted
by :func:`mlpckpt.planning._workspace_replay.pool_figures` (``plan(..., workspace=True)``).
"""

from bisect import bisect_left, insort

import numpy as np

__all__ = ["Workspace", "check_workspace"]


class Workspace:
    """Free buffers by size and dtype, for ``loss_and_grad(..., workspace=)``.

    A buffer is a flat array; a request for ``(rows, cols)`` is served as a
    C-contiguous view of the first ``rows * cols`` elements of the smallest
    free buffer that is large enough (so a smaller last minibatch, or a
    narrower layer, reuses what is there), or of a new buffer when none is.
    Nothing is ever freed: :attr:`nbytes` only grows, to what
    ``plan(..., workspace=True).details["workspace_bytes"]`` predicts (best
    fit can still add a buffer on the second call; see
    :mod:`mlpckpt.planning._workspace_replay`). A call that raises gives its buffers back. One
    workspace serves one call at a time; it holds no result.

    Attributes
    ----------
    nbytes : int
        Data bytes of the buffers it owns (free or lent).
    """

    def __init__(self):
        self._free = {}  # dtype -> {size: [flat buffers]}
        self._sizes = {}  # dtype -> sorted sizes that have a free buffer
        self._lent = {}  # id -> buffer, for reclaim()
        self.nbytes = 0

    def __repr__(self):
        free = sum(len(b) for d in self._free.values() for b in d.values())
        return f"Workspace(nbytes={self.nbytes}, free_buffers={free})"

    def take(self, rows, cols, dtype):
        """A C-contiguous ``(rows, cols)`` array of ``dtype`` (uninitialised)."""
        dtype = np.dtype(dtype)
        need = rows * cols
        sizes = self._sizes.setdefault(dtype, [])
        i = bisect_left(sizes, need)
        if i < len(sizes):  # the smallest free buffer that is large enough
            size = sizes[i]
            bucket = self._free[dtype][size]
            buf = bucket.pop()
            if not bucket:
                del self._free[dtype][size], sizes[i]
        else:
            buf = np.empty(need, dtype=dtype)
            self.nbytes += buf.nbytes
        self._lent[id(buf)] = buf
        return buf[:need].reshape(rows, cols)

    def give(self, array):
        """Take back an array :meth:`take` lent (the caller drops its references)."""
        base = self._lent.pop(id(array if array.base is None else array.base))
        free = self._free.setdefault(base.dtype, {})
        bucket = free.get(base.size)
        if bucket is None:
            free[base.size] = [base]
            insort(self._sizes.setdefault(base.dtype, []), base.size)
        else:
            bucket.append(base)

    def reclaim(self):
        """Take back every lent buffer (after a call that raised: its
        arrays are garbage, the buffers are not lost)."""
        for buf in list(self._lent.values()):
            self.give(buf)


def check_workspace(workspace):
    """None or a :class:`Workspace`; else a ValueError naming ``workspace``."""
    if workspace is not None and not isinstance(workspace, Workspace):
        raise ValueError(f"workspace: expected a mlpckpt.Workspace or None, got {type(workspace).__name__}")
    return workspace
