"""Byte accounting: the tracemalloc peak a schedule will reach.

The memory model is data: :func:`model` turns a call (a
:class:`mlpckpt.planning._plan.Call`) into a :class:`Model`, a few per-layer tables of
bytes, and both :func:`simulate` (the price of one schedule) and the
searches of :mod:`mlpckpt.planning._budget` read only those tables
(paper_notes/checkpointing.md, "Memory model", eqs. C10-C14). :func:`simulate`
sums the rows of buffer events the executor runs
(:func:`mlpckpt.planning._lowering.events`), priced by the call's cost table,
which also counts the hidden temporaries NumPy makes:

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
  :data:`LIST_SLOT` bytes per layer for the executor's list of held
  activations and for each list of gradients made in the call
  (:func:`fixed_bytes`).

Everything is integers; the only arrays are per-layer byte counts.
"""

import functools
from array import array
from dataclasses import dataclass

import numpy as np

from . import _costs as costs, _device_costs as devcosts
from ._actions import FORWARD, LOSS
from ._lowering import CONSUME, NEW_DA, backward_flags, events
from ._costs import (
    ARRAY_OVERHEAD,
    BACKWARD_TRANSIENT,
    BASE_OVERHEAD,
    LIST_SLOT,
    UFUNC_BUFSIZE,
    UFUNC_FIXED,
    UPDATE_TRANSIENT,
    fixed_bytes,
    forward_transient,
    grad_pair_bytes,
    loss_transient,
    shared_grad_bytes,
    ufunc_buffer,
)

__all__ = [
    "ARRAY_OVERHEAD", "BASE_OVERHEAD", "BACKWARD_TRANSIENT", "LIST_SLOT", "UPDATE_TRANSIENT",
    "UFUNC_BUFSIZE", "UFUNC_FIXED", "fixed_bytes", "ufunc_buffer", "forward_transient",
    "loss_transient", "grad_pair_bytes", "shared_grad_bytes", "Model", "cost_table", "model", "simulate",
]


@dataclass(frozen=True)
class Model:
    """The memory of one call as data (paper_notes/checkpointing.md, eq. C13).

    A schedule's peak is the largest of its events' bytes, and each event's
    bytes are ``base`` plus the held activations plus a term read off these
    tables. "State ``t``" is the moment the backward steps of layers
    ``>= t`` are done (``t = n``: just after the loss).

    Attributes
    ----------
    base : int
        Bytes alive for the whole call (:func:`fixed_bytes`, and a fused
        step's gradient buffers).
    act : array of int64, length n + 1
        Bytes of ``a[k]`` (``act[0] = 0``: ``X`` is the caller's).
    fwd : array of int64, length n
        Bytes the evaluation of layer ``k`` adds to what is held: its output
        ``a[k+1]`` and its temporary. Evaluated from an intermediate (an
        unkept ``a[k]``), ``act[k]`` comes on top.
    loss : int
        Temporary bytes of the loss, on top of ``a[n]`` and what is held.
    top : array of int64, length n + 1
        Bytes alive in state ``t`` besides the held ``a[k]``, ``k < t``:
        ``a[t]`` (``0 < t < n``), the gradient ``da`` of ``a[t]`` (``t > 0``)
        and the weight gradients (or optimiser scratch) made so far.
    top_acts : array of int64, length n + 1
        The activation part of ``top`` (``a[t]`` and ``da``).
    back : array of int64, length n
        Bytes backward step ``k`` adds to state ``k + 1`` (whose held ``a[k]``
        it reads): ``dW[k]``, ``db[k]`` unless given, a new ``da[k]`` unless
        it reuses the buffer of ``a[k+1]``, and its temporary.
    back_acts : array of int64, length n
        The activation part of ``back`` (the new ``da[k]``).
    update : int or None
        Fused step: bytes of the update that follows each backward step, on
        top of state ``k``; None without ``fuse_update``.
    sizes : tuple of int
        Layer widths ``n_0 .. n_n``.
    flags : array of int, length n
        Each backward step's buffer events (:func:`mlpckpt.planning._lowering.backward_flags`).
    """

    base: int
    act: tuple
    fwd: tuple
    loss: int
    top: tuple
    top_acts: tuple
    back: tuple
    back_acts: tuple
    update: object = None
    sizes: tuple = ()
    flags: tuple = ()

    @property
    def n_layers(self):
        return len(self.fwd)


def cost_table(call):
    """The :class:`~mlpckpt.planning._costs.CostTable` of ``call``'s allocator:
    tracemalloc's for NumPy, the device allocator's for other backends
    (``call.backend``; eqs. B4-B6)."""
    if devcosts.is_device(call.backend):
        return devcosts.DeviceAllocator(call.backend)
    return costs.Tracemalloc(call.kernels)


def model(call, table=None):
    """The :class:`Model` of ``call`` (a :class:`mlpckpt.planning._plan.Call`),
    priced by ``table`` (default :func:`cost_table` of the call)."""
    c = cost_table(call) if table is None else table
    sizes, batch, itemsize, n = call.sizes, call.batch, call.itemsize, call.n_layers
    act = [0] + [c.array_bytes(s * batch * itemsize) for s in sizes[1:]]
    hidden = list(call.activations) + [None]  # the last layer has no map
    fwd = [act[k + 1] + c.forward_transient(sizes[k + 1], batch, itemsize, hidden[k]) for k in range(n)]
    keep_grads = not call.out and not call.fuse_update
    pair = [c.grad_pair_bytes(sizes[k + 1], sizes[k], itemsize) for k in range(n)]
    base = c.fixed_bytes(call)
    if call.fuse_update:
        base += c.shared_grad_bytes(sizes, itemsize)
    grads, seen = [0] * (n + 1), set()  # grads[t]: made by steps >= t
    for k in range(n - 1, -1, -1):
        shape = (sizes[k + 1], sizes[k])
        grads[k] = grads[k + 1] + (pair[k] if keep_grads else 0)
        if call.fuse_update and shape not in seen:  # the optimiser's scratch
            seen.add(shape)
            grads[k] += pair[k]
    top_acts = [(act[t] if 0 < t < n else 0) + (act[t] if t > 0 else 0) for t in range(n + 1)]
    flags = backward_flags(sizes)
    back_acts = [act[k] if flags[k] & NEW_DA else 0 for k in range(n)]  # a new da[k]
    back = [back_acts[k] + (pair[k] if keep_grads else 0) + c.backward_transient for k in range(n)]
    loss = c.loss_transient(call.loss, call.output, sizes[n], batch, itemsize, call.targets)
    table = functools.partial(array, "q")  # 8 bytes an entry, Python ints when read
    return Model(
        base=base, act=table(act), fwd=table(fwd), loss=loss,
        top=table(a + g for a, g in zip(top_acts, grads)), top_acts=table(top_acts),
        back=table(back), back_acts=table(back_acts),
        update=c.update_transient if call.fuse_update else None, sizes=tuple(sizes), flags=flags,
    )


def simulate(actions, call_or_model):
    """Replay ``actions``; return the predicted memory figures.

    The schedule is taken as checked (:func:`mlpckpt.planning._actions.check_actions`).
    Time linear in the actions plus the backward steps; a keep-none forward
    range is priced by a vectorised maximum over its layers.

    Parameters
    ----------
    actions : sequence of tuple of int
    call_or_model : Call or Model
        The call (:class:`mlpckpt.planning._plan.Call`), or its :class:`Model`.

    Returns
    -------
    dict
        ``peak_bytes``, ``activation_bytes`` (activations and their
        gradients alive at the peak), ``max_stored`` (most ``a[k]``,
        ``k >= 1``, alive at once), ``forward_evals``.
    """
    m = call_or_model if isinstance(call_or_model, Model) else model(call_or_model)
    n, act, fwd = m.n_layers, m.act, m.fwd
    # an intermediate a[i] and the evaluation of layer i from it
    pair = np.array([0] + [act[i] + fwd[i] for i in range(1, n)], dtype=np.int64)
    pair_acts = np.array([0] + [act[i] + act[i + 1] for i in range(1, n)], dtype=np.int64)
    state = {"held": 0, "count": 0, "top": 0, "top_acts": 0}
    best = {"peak": -1, "acts": 0, "count": 0}
    evals = 0

    def touch(extra, extra_acts, extra_count=0):
        # a candidate peak: what is held and the backward state, plus the event's bytes
        total = m.base + state["held"] + state["top"] + extra
        if total > best["peak"]:
            best["peak"], best["acts"] = total, state["held"] + state["top_acts"] + extra_acts
        best["count"] = max(best["count"], state["count"] + extra_count)

    def hold(k):
        state["held"] += act[k]
        state["count"] += 1

    for op, a, b, c in events(actions, m.sizes, m.flags):
        if op == FORWARD:
            start, stop, keep = a, b, c
            evals += stop - start
            if keep:  # each step from the held a[k]
                for k in range(start, stop):
                    touch(fwd[k], act[k + 1], 1)
                    hold(k + 1)
                continue
            touch(fwd[start], act[start + 1], 1)  # from the held a[start] (or X)
            if stop - start >= 2:  # then from intermediates: the widest pair
                i = start + 1 + int(np.argmax(pair[start + 1 : stop]))
                touch(int(pair[i]), int(pair_acts[i]), 2)
            hold(stop)
        elif op == LOSS:
            touch(m.loss, 0)
            state["held"] -= act[n]
            state["count"] -= 1
            state["top"], state["top_acts"] = m.top[n], m.top_acts[n]
        else:  # BACKWARD: one layer's step
            k = a
            touch(m.back[k], m.back_acts[k])
            if b & CONSUME:  # a[k+1] is consumed (its buffer is da[k] or dies); a[k] now belongs to the state
                state["count"] -= 1
            if k > 0:
                state["held"] -= act[k]
            state["top"], state["top_acts"] = m.top[k], m.top_acts[k]
            if m.update is not None:
                touch(m.update, 0)
    return {
        "peak_bytes": best["peak"],
        "activation_bytes": best["acts"],
        "max_stored": best["count"],
        "forward_evals": evals,
    }
