"""What a call with a :class:`mlpckpt.Workspace` holds, in bytes.

With a workspace the executor takes every activation buffer (and every new
``da``) from the workspace and gives it back where it would otherwise die
(:mod:`mlpckpt.workspace`), so nothing is freed: a request is served by the
smallest free buffer that is large enough, else by a new one
(paper_notes/checkpointing.md, eqs. C27-C28). This replays a schedule with
exactly that rule on the tables of :func:`mlpckpt.memory.model`, twice (a
call that fills the workspace, then a later call on it), and gives

* ``peak_bytes``: the peak of the call that creates the workspace (its
  buffers count, as they are made);
* ``workspace_bytes``: what the workspace holds after a later call;
* ``warm_peak_bytes``: the peak of a later call above what the workspace
  held before it (views on its buffers, gradients, temporaries).

Time linear in the schedule's evaluations (a few Python steps each).
"""

from bisect import bisect_left, insort

from .actions import FORWARD, LOSS
from .costs import ARRAY_OVERHEAD, LIST_SLOT
from .memory import model

__all__ = ["WORKSPACE_FIXED", "FREE_LIST", "pool_figures"]

#: the Workspace object, its dicts and their headers
WORKSPACE_FIXED = 1024
#: one free list (a dict entry, its key, the list object and a sorted-size slot)
FREE_LIST = 256


class _Pool:
    """The workspace's free buffers, as sizes: the rule of Workspace.take/give."""

    def __init__(self, itemsize):
        self.itemsize = itemsize
        self.free = {}  # size -> count of free buffers of that many elements
        self.sizes = []  # sorted sizes with a free buffer
        self.seen = set()  # sizes that ever had a free list
        self.buffers = 0  # bytes of the buffers and their bookkeeping

    def bytes(self):
        return WORKSPACE_FIXED + FREE_LIST * len(self.seen) + self.buffers

    def take(self, need):
        i = bisect_left(self.sizes, need)
        if i < len(self.sizes):
            size = self.sizes[i]
            self.free[size] -= 1
            if not self.free[size]:
                del self.free[size], self.sizes[i]
            return size
        self.buffers += need * self.itemsize + ARRAY_OVERHEAD + LIST_SLOT
        return need

    def give(self, size):
        if size in self.free:
            self.free[size] += 1
        else:
            self.free[size] = 1
            insort(self.sizes, size)
            self.seen.add(size)


def _replay(actions, m, sizes, batch, pool):
    """One call on ``pool``: (peak including the pool, peak above the pool at entry)."""
    n = len(sizes) - 1
    held = {}  # k -> size of the buffer holding a[k]
    state = {"views": 0, "grads": 0}
    entry = pool.bytes()
    best = [0, 0]

    def take(rows):
        state["views"] += ARRAY_OVERHEAD
        return pool.take(rows * batch)

    def give(size):
        state["views"] -= ARRAY_OVERHEAD
        pool.give(size)

    def touch(transient):
        # + ARRAY_OVERHEAD: the slice a take makes on the way to its view
        above = m.base + state["views"] + state["grads"] + transient + ARRAY_OVERHEAD
        best[0] = max(best[0], pool.bytes() + above)
        best[1] = max(best[1], pool.bytes() - entry + above)

    da = None
    for action in actions:
        op = action[0]
        if op == FORWARD:
            _, start, stop, keep = action
            cur = None
            for k in range(start, stop):
                nxt = take(sizes[k + 1])
                touch(m.fwd[k] - m.act[k + 1])
                if keep or k + 1 == stop:
                    held[k + 1] = nxt
                if not keep and k > start:  # the unkept intermediate a[k] goes back
                    give(cur)
                cur = nxt
        elif op == LOSS:
            touch(m.loss)
            da = held.pop(n)  # a[n]'s buffer becomes dz
            state["grads"] = m.top[n] - m.top_acts[n]
        else:
            _, start, stop = action
            for k in range(stop - 1, start - 1, -1):
                a = held.pop(k + 1) if k + 1 < n else None
                reuse = a is not None and k > 0 and sizes[k] == sizes[k + 1]
                new = take(sizes[k]) if k > 0 and not reuse else None
                touch(m.back[k] - m.back_acts[k])
                give(da)
                if a is not None and not reuse:
                    give(a)
                da = a if reuse else new
                state["grads"] = m.top[k] - m.top_acts[k]
                if m.update is not None:
                    touch(m.update)
    return best


def pool_figures(actions, call, m=None):
    """Replay ``actions`` for ``call`` with a workspace (module docstring).

    Parameters
    ----------
    actions : sequence of tuple of int
        A checked schedule.
    call : mlpckpt.plan.Call
    m : mlpckpt.memory.Model, optional
        The call's tables, if not :func:`mlpckpt.memory.model` of it.

    Returns
    -------
    dict
        ``peak_bytes``, ``workspace_bytes``, ``warm_peak_bytes`` (ints).
    """
    m = model(call) if m is None else m
    pool = _Pool(call.itemsize)
    cold = _replay(actions, m, call.sizes, call.batch, pool)[0]
    warm = _replay(actions, m, call.sizes, call.batch, pool)[1]
    return {"peak_bytes": cold, "workspace_bytes": pool.bytes(), "warm_peak_bytes": warm}
