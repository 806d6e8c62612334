"""What a call with a :class:`mlpckpt.Workspace` holds, in bytes.

With a workspace the executor takes every activation buffer (and every new
``da``) from the workspace and gives it back where it would otherwise die
(:mod:`mlpckpt.workspace`), so nothing is freed: the workspace holds, per
row count ``r``, as many ``(r, batch)`` buffers as were ever alive at once
(paper_notes/checkpointing.md, eqs. C27-C29). This replays a schedule with
that rule on the tables of :func:`mlpckpt.memory.model` and gives

* ``workspace_bytes``: what the workspace holds after the call;
* ``peak_bytes``: the peak of the call that creates it (its buffers count,
  as they are made);
* ``warm_peak_bytes``: the peak of a later call, above what the workspace
  already holds (views on its buffers, gradients, temporaries).

Time linear in the schedule's evaluations (one Python step each).
"""

from .actions import FORWARD, LOSS
from .costs import ARRAY_OVERHEAD, LIST_SLOT
from .memory import model

__all__ = ["WORKSPACE_FIXED", "pool_figures"]

#: the Workspace object, its dict of free lists and their headers
WORKSPACE_FIXED = 1024
#: one free list (a dict entry, its key and the list object)
FREE_LIST = 256


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
    sizes, n = call.sizes, call.n_layers
    unit = {r: r * call.batch * call.itemsize + ARRAY_OVERHEAD + LIST_SLOT for r in set(sizes[1:])}
    live = dict.fromkeys(unit, 0)
    high = dict.fromkeys(unit, 0)
    state = {"pool": WORKSPACE_FIXED + FREE_LIST * len(unit), "views": 0, "grads": 0}
    best = {"cold": 0, "warm": 0}

    def take(r):
        live[r] += 1
        state["views"] += ARRAY_OVERHEAD
        if live[r] > high[r]:
            high[r] = live[r]
            state["pool"] += unit[r]

    def give(r):
        live[r] -= 1
        state["views"] -= ARRAY_OVERHEAD

    def touch(transient):
        # the slice a take makes on the way to its view: one more header
        above = m.base + state["views"] + state["grads"] + transient + ARRAY_OVERHEAD
        best["cold"] = max(best["cold"], state["pool"] + above)
        best["warm"] = max(best["warm"], above)

    for action in actions:
        op = action[0]
        if op == FORWARD:
            _, start, stop, keep = action
            for k in range(start, stop):
                take(sizes[k + 1])
                touch(m.fwd[k] - m.act[k + 1])
                if not keep and k > start:  # the unkept intermediate a[k] goes back
                    give(sizes[k])
        elif op == LOSS:
            touch(m.loss)  # a[n]'s buffer becomes dz
            state["grads"] = m.top[n] - m.top_acts[n]
        else:
            _, start, stop = action
            for k in range(stop - 1, start - 1, -1):
                new_da = k > 0 and (k + 1 == n or sizes[k] != sizes[k + 1])
                if new_da:
                    take(sizes[k])
                touch(m.back[k] - m.back_acts[k])
                give(sizes[k + 1])  # the old da; a[k+1] too unless it became da[k]
                if k + 1 < n and (new_da or k == 0):
                    give(sizes[k + 1])
                state["grads"] = m.top[k] - m.top_acts[k]
                if m.update is not None:
                    touch(m.update)
    pool = state["pool"]
    return {"peak_bytes": best["cold"], "workspace_bytes": pool, "warm_peak_bytes": best["warm"]}
