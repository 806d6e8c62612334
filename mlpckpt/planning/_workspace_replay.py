"""What a call with a :class:`mlpckpt.Workspace` holds, in bytes.

With a workspace the executor takes every activation buffer (and every new
``da``) from the workspace and gives it back where it would otherwise die
(:mod:`mlpckpt.execution._workspace`), so nothing is freed: a request is served by the
smallest free buffer that is large enough, else by a new one
(paper_notes/checkpointing.md, eqs. C27-C28). This replays a schedule with
exactly that rule on the tables of :func:`mlpckpt.planning._memory.model`, call after
call until the workspace stops growing (best fit from a fuller set of free
buffers can lend a large one to a small request, so a second call may still
add a buffer; in practice the third never does), and gives

* ``peak_bytes``: the highest peak of any call on the workspace, from the
  one that creates it on (its buffers count, as they are made);
* ``workspace_bytes``: what the workspace holds once it stops growing;
* ``warm_peak_bytes``: the peak of a call on that workspace, above what it
  holds (views on its buffers, gradients, temporaries).

Time linear in the schedule's evaluations (a few Python steps each).
"""

from bisect import bisect_left, insort

from ._actions import FORWARD, LOSS, count_forward_evals
from ._lowering import CONSUME, NEW_DA, REUSE, events
from ._costs import ARRAY_OVERHEAD, LIST_SLOT
from ._memory import model
from ._strategies import Revolve, Sqrt, StoreAll

__all__ = ["WORKSPACE_FIXED", "FREE_LIST", "pool_figures", "best_fixed"]

#: the Workspace object, its dicts and their headers
WORKSPACE_FIXED = 1024
#: one free list (a dict entry, its key, the list object and a sorted-size slot)
FREE_LIST = 256
#: a buffer's entry in the workspace's dict of lent buffers (kept at its largest)
LENT_SLOT = 64
#: calls replayed at most before giving up on a fixed point (never reached in tests)
MAX_REPLAYS = 16


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
        self.buffers += need * self.itemsize + ARRAY_OVERHEAD + LIST_SLOT + LENT_SLOT
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
    for op, a, b, c in events(actions, sizes, m.flags):
        if op == FORWARD:
            start, stop, keep = a, b, c
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
        else:  # BACKWARD: one layer's step
            k, flags, rows = a, b, c
            consumed = held.pop(k + 1) if flags & CONSUME else None
            new = take(rows) if flags & NEW_DA else None
            touch(m.back[k] - m.back_acts[k])
            give(da)
            if consumed is not None and not flags & REUSE:
                give(consumed)
            da = consumed if flags & REUSE else new
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
    call : mlpckpt.planning._plan.Call
    m : mlpckpt.planning._memory.Model, optional
        The call's tables, if not :func:`mlpckpt.planning._memory.model` of it.

    Returns
    -------
    dict
        ``peak_bytes``, ``workspace_bytes``, ``warm_peak_bytes`` (ints).
    """
    m = model(call) if m is None else m
    pool = _Pool(call.itemsize)
    peak = 0
    for _ in range(MAX_REPLAYS):  # eq. C28: until a call adds nothing
        before = pool.bytes()
        cold, warm = _replay(actions, m, call.sizes, call.batch, pool)
        peak = max(peak, cold)
        if pool.bytes() == before:
            break
    return {"peak_bytes": peak, "workspace_bytes": pool.bytes(), "warm_peak_bytes": warm}


def best_fixed(budget, call):
    """Of StoreAll, Sqrt and Revolve(s), s = 0, 1, 2, 4, ..., the one with the
    fewest evaluations whose pooled peak fits ``budget`` (or None)."""
    slots, s = [0], 1
    while s < call.n_layers:
        slots.append(s)
        s *= 2
    best = None
    for strategy in [StoreAll(), Sqrt()] + [Revolve(k) for k in slots]:
        actions = tuple(strategy.actions(call))
        pooled = pool_figures(actions, call)["peak_bytes"]
        evals = count_forward_evals(actions)
        if pooled <= budget and (best is None or evals < best[0]):
            best = (evals, pooled, actions)
    if best is None:
        return None
    return {"actions": best[2], "evals": best[0], "peak": best[1], "exact": False,
            "lower_bound": None, "gap": None}
