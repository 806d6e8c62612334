"""The one executor: runs any schedule, lowered to its buffer events
(:mod:`mlpckpt.planning._lowering`).

Every strategy goes through :func:`execute`, and every layer is evaluated by
the same :func:`mlpckpt.execution._layers.layer_forward` on the same inputs, so a
recomputed activation is bitwise equal to the first one and all strategies
give bitwise-equal loss and gradients.

Which buffer is born, reused or dies where is not decided here: the program's
rows say it (the lowering writes the rule once; the memory model, the
workspace replay and the timeline read the same rows):

* each forward evaluation allocates its output ``(n_{k+1}, batch)``; an
  intermediate of a keep-none range is freed once its successor exists;
* the loss turns the buffer of ``a[n]`` into ``dz`` of the last layer;
* backward step ``k`` allocates ``dW[k]`` and ``db[k]`` (unless ``grads``
  gives buffers) and writes ``da[k]`` where its row says: into the buffer
  of the consumed ``a[k+1]`` (``REUSE``), a new array (``NEW_DA``) or
  nowhere (layer 0).

With a :class:`~mlpckpt.Workspace` the same points of birth and death take
activation buffers from it and give them back; ``dW`` and ``db`` are never
the workspace's.
"""

import functools
from typing import NamedTuple

import numpy as np

from ..core import _finite as finite, _losses as losses
from . import _layers as layers
from ..planning._actions import FORWARD, LOSS
from ..planning._lowering import CONSUME, NEW_DA, REUSE
from ..backends._backends import NUMPY

__all__ = ["Result", "Params", "Batch", "Options", "execute", "logits"]


class Result(NamedTuple):
    """What one run of a schedule returns."""

    loss: object  #: numpy scalar
    dW: list  #: gradients of the weights, shapes (n_{k+1}, n_k)
    db: list  #: gradients of the biases, shapes (n_{k+1}, 1)
    forward_evals: int  #: layer-forward evaluations this run performed


class Params(NamedTuple):
    """The net a schedule runs on."""

    weights: list  #: shapes (n_{k+1}, n_k)
    biases: list  #: shapes (n_{k+1}, 1)
    hidden: list  #: activation name of each hidden layer, length n - 1
    output: str  #: output map of the last layer


class Batch(NamedTuple):
    """One batch, validated and canonical (:mod:`mlpckpt.model._batch`)."""

    X: object  #: shape (n_0, batch)
    Y: object  #: targets in canonical form (:mod:`mlpckpt.core._losses`)
    loss: str


class Options(NamedTuple):
    """How a run delivers its results; the defaults allocate new gradients.

    Attributes
    ----------
    grads : tuple (list, list) or None
        ``(dW, db)`` buffers written in place; else new arrays.
    on_layer : callable or None
        ``on_layer(k, dW_k, db_k)`` as soon as layer ``k``'s gradient is
        complete (the fused update; buffers may then be reused).
    workspace : Workspace or None
        Activation buffers are taken from it and given back to it instead
        of allocated and freed (:mod:`mlpckpt.execution._workspace`; NumPy only).
    backend : Backend
        The array library of every array here (:mod:`mlpckpt.backends._backends`).
    record : mlpckpt.experiments._layerstats.Recorder or None
        Given each layer's pre-activation and output at its first forward
        evaluation and its gradients on the way back; it only reads them.
    """

    grads: object = None
    on_layer: object = None
    workspace: object = None
    backend: object = NUMPY
    record: object = None


def execute(program, params, batch, options=Options()):
    """Run a schedule: loss and gradients of one batch.

    Parameters
    ----------
    program : array of int
        The schedule lowered to its buffer events
        (:func:`mlpckpt.planning._lowering.lower` of checked actions;
        :func:`mlpckpt.planning._plan.compile_program` caches it).
    params : Params
    batch : Batch
    options : Options, optional

    Returns
    -------
    Result
        ``(loss, dW, db, forward_evals)``.

    Raises
    ------
    ValueError
        The loss is not finite (checked before any backward step, hence
        before any fused update), or a floating-point error on the way left
        a gradient non-finite; the message says what was non-finite
        (:mod:`mlpckpt.core._finite`). No NumPy RuntimeWarning escapes.
    """
    weights, biases = params.weights, params.biases
    X, Y = batch.X, batch.Y
    if not options.backend.is_numpy:  # no floating-point flags: the loss and the gradients are checked
        result = _execute(program, params, batch, options._replace(workspace=None))
        if options.on_layer is None:
            finite.check_grads(result.dW, result.db, weights, biases, X, Y)
        return result
    flagged = [False]  # set by NumPy's floating-point error reports, instead of warnings

    def report(kind, flag):
        flagged[0] = True

    with np.errstate(all="call", under="ignore", call=report):
        try:
            result = _execute(program, params, batch, options)
        except BaseException:
            if options.workspace is not None:  # its lent buffers are garbage now, not lost
                options.workspace.reclaim()
            raise
    if flagged[0] and options.on_layer is None:  # an overflow or invalid operation on the way
        finite.check_grads(result.dW, result.db, weights, biases, X, Y)
    return result


def _execute(program, params, batch, options):
    weights, biases, hidden, output = params
    X, Y, loss = batch
    grads, on_layer, workspace, backend, rec = options
    n = len(weights)
    batch = X.shape[1]
    ops = backend.ops
    dtype = backend.xp.result_type(weights[0], X)
    empty = np.empty if backend.is_numpy else backend.empty  # no frame of ours per layer on NumPy
    if workspace is None:
        def new(rows):
            return empty((rows, batch), dtype)

        def give(array):  # the last reference goes with the caller's
            pass
    else:  # the same points of birth and death, served by the workspace
        def new(rows):
            return workspace.take(rows, batch, dtype)

        give = workspace.give
    dW = grads[0] if grads is not None else [None] * n
    db = grads[1] if grads is not None else [None] * n
    acts = [None] * (n + 1)  # acts[k]: the held a[k], else None (memory.fixed_bytes)
    acts[0] = X
    da = None
    value = None
    evals = 0
    it = iter(program)
    for op, i, j, m in zip(it, it, it, it):  # one row: four ints (planning._lowering)
        if op == FORWARD:
            start, stop, keep = i, j, m
            cur = acts[start]
            nxt = None
            for k in range(start, stop):
                nxt = new(weights[k].shape[0])
                fn = hidden[k] if k + 1 < n else None  # logits: no map
                on_z = None if rec is None or rec.seen[k] else functools.partial(rec.z, k)
                layers.layer_forward(weights[k], biases[k], cur, fn, nxt, ops, on_z)
                if on_z is not None:  # the first evaluation of layer k: its statistics
                    rec.a(k, nxt, output if fn is None else None)
                evals += 1  # counted where it happens, not read off the action
                if keep or k + 1 == stop:
                    acts[k + 1] = nxt
                if not keep and k > start:
                    give(cur)
                cur = nxt  # an unkept intermediate dies here, after its successor exists
            cur = nxt = None
        elif op == LOSS:
            value = backend.item(losses.loss_and_dz(loss, output, acts[n], Y, ops))
            finite.check_loss(value, weights, biases, X, Y)  # before any backward step
            da, acts[n] = acts[n], None
        else:  # BACKWARD: layer k's step; its flags say where da[k] goes
            k, flags = i, j
            a = None
            if flags & CONSUME:  # a[k+1]: read, then scratch
                a, acts[k + 1] = acts[k + 1], None
            if grads is None:
                dW[k] = empty(weights[k].shape, dtype)
                db[k] = empty(biases[k].shape, dtype)
            if flags & REUSE:
                da_prev = a  # a[k+1] is scratch once dz exists
            elif flags & NEW_DA:
                da_prev = new(m)
            else:  # layer 0: no da[0]
                da_prev = None
            if rec is not None:
                rec.da(k, da)
            layers.layer_backward(
                weights[k],
                acts[k],
                a,
                da,
                hidden[k] if k + 1 < n else None,
                dW[k],
                db[k],
                da_prev,
                ops,
            )
            give(da)
            if a is not None and a is not da_prev:
                give(a)
            del a
            da = da_prev
            if rec is not None:
                rec.grads(k, dW[k], db[k])
            if on_layer is not None:
                on_layer(k, dW[k], db[k])
    return Result(value, dW, db, evals)


def logits(weights, biases, hidden, X, dtype=None, backend=NUMPY):
    """The last pre-activation ``a[n]`` of a plain forward pass.

    Only the current layer's input and output are alive at any time (no
    schedule, no gradients): what :meth:`mlpckpt.MLP.forward` and the
    gradient checker's loss evaluations run.

    Parameters
    ----------
    weights, biases : lists of ndarray
        Shapes ``(n_{k+1}, n_k)`` and ``(n_{k+1}, 1)``.
    hidden : list of str, length n - 1
    X : ndarray, shape (n_0, batch)
    dtype : numpy dtype, optional
        Of the computed arrays; default that of ``weights[0]`` and ``X``.
    backend : Backend, default NumPy

    Returns
    -------
    ndarray, shape (n_n, batch)
    """
    n = len(weights)
    if dtype is None:
        dtype = backend.xp.result_type(weights[0], X)
    cur = X
    for k in range(n):
        nxt = backend.empty((weights[k].shape[0], X.shape[1]), dtype)
        fn = hidden[k] if k + 1 < n else None  # logits: no map
        cur = layers.layer_forward(weights[k], biases[k], cur, fn, nxt, backend.ops)
    return cur
