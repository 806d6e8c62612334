"""The minibatch loop over a step function, and the SciPy L-BFGS bridge.

Neither knows the model. :func:`fit` slices batches and calls a ``step``
that the model supplies (one update on one batch, returning its loss);
:func:`make_step` builds one from the model's gradient function and an
optimiser, whole-model or fused per layer. :func:`fit_lbfgs` minimises a
loss over parameter blocks and writes the result into them.
:meth:`mlpckpt.MLP.fit` and :meth:`mlpckpt.MLP.fit_lbfgs` wire a net in.
"""

import sys

import numpy as np

from ..core import _finite as finite
from ..core._validate import check_bool, check_int, check_positive_float, make_rng
from ..backends._backends import ops_for
from ._optimizers import apply_step, layer_update
from ..core._params import flatten, unflatten

__all__ = ["make_step", "grad_buffers", "batches", "fit", "fit_lbfgs"]


def make_step(opt, gradient, weights, biases, fuse_update=False):
    """One training step, ``step(Xb, Yb) -> loss``, for :func:`fit`.

    Parameters
    ----------
    opt : Optimizer
    gradient : callable
        ``gradient(Xb, Yb, grads, on_layer) -> loss``: the batch's loss, its
        gradient written into ``grads = (dW, db)``; ``on_layer``, when not
        None, is called as ``on_layer(k, dW_k, db_k)`` as soon as layer
        ``k``'s gradient is complete (the fused update).
    weights, biases : lists of ndarray, shapes (n_{k+1}, n_k) and (n_{k+1}, 1)
        Updated in place.
    fuse_update : bool, default False
        Update each layer from ``on_layer`` with gradient buffers shared per
        shape (:func:`grad_buffers`), else all layers after ``gradient``;
        the arithmetic, hence the result, is the same.

    Returns
    -------
    callable
        Raises ``ValueError`` (:mod:`mlpckpt.core._finite`) before writing a block
        whose gradient holds NaN or inf: unfused, before any block (the
        model and the optimiser are as before the step); fused, before
        layer ``k``, naming the layers ``n-1 .. k+1`` this step already
        updated. ``opt.start_step()`` runs just before the first write.
    """
    grads = grad_buffers(weights, biases, shared=fuse_update)
    update = layer_update(opt, weights, biases)
    n = len(weights)

    # opt.start_step() runs just before the first block is written, so a step
    # refused for a non-finite loss or gradient leaves the optimiser as it was.
    def on_layer(k, dW_k, db_k):
        finite.layer_grads(k, dW_k, db_k, weights, biases)  # before layer k is written
        if k == n - 1:  # backward runs from the last layer down
            opt.start_step()
        update(k, dW_k, db_k)

    def step(Xb, Yb):
        with np.errstate(all="ignore"):  # the gradients are checked instead
            if fuse_update:
                return gradient(Xb, Yb, grads, on_layer)
            value = gradient(Xb, Yb, grads, None)
            finite.check_grads(*grads, weights, biases)  # a finite loss, an overflowed gradient
            opt.start_step()
            apply_step(opt, weights, biases, *grads)
        return value

    return step


def grad_buffers(weights, biases, shared=False):
    """Gradient buffers ``(dW, db)`` for a training step.

    Parameters
    ----------
    weights, biases : lists of ndarray, shapes (n_{k+1}, n_k) and (n_{k+1}, 1)
    shared : bool, default False
        One ``(dW, db)`` pair per distinct layer shape, for the fused step
        (each layer's gradient is consumed by its update before the next
        one is written); else one pair per layer.

    Returns
    -------
    dW, db : lists of ndarray, the shapes of ``weights`` and ``biases``
    """
    o = ops_for(weights[0])
    if not shared:
        return [o.empty_like(W) for W in weights], [o.empty_like(b) for b in biases]
    pairs = {}
    for W, b in zip(weights, biases):
        if tuple(W.shape) not in pairs:
            pairs[tuple(W.shape)] = (o.empty_like(W), o.empty_like(b))
    return [pairs[tuple(W.shape)][0] for W in weights], [pairs[tuple(W.shape)][1] for W in weights]


def batches(n_samples, batch_size, order=None):
    """Column indices of consecutive batches; the last one may be smaller.

    Parameters
    ----------
    n_samples, batch_size : int
    order : ndarray of int, shape (n_samples,), optional
        A permutation to draw the batches from; else slices in order.

    Yields
    ------
    slice or ndarray of int
    """
    for start in range(0, n_samples, batch_size):
        stop = start + batch_size
        yield slice(start, stop) if order is None else order[start:stop]


def fit(step, X, Y, *, epochs=10, batch_size=32, shuffle=True, seed=0, callback=None,
        progress=False):
    """Minibatch training: ``step`` on every batch of every epoch.

    Parameters
    ----------
    step : callable
        ``step(Xb, Yb) -> loss``: one update on a batch; ``loss`` (a float or
        NumPy scalar) is the batch's mean loss.
    X : ndarray, shape (n_in, n_samples)
        One sample per column.
    Y : ndarray, shape (n_samples,) or (n_out, n_samples)
        Targets; sliced along the last axis together with ``X``.
    epochs : int >= 0, default 10
    batch_size : int or None, default 32
        ``None`` means full batch; the last batch may be smaller.
    shuffle : bool, default True
        Draw each epoch's batches from a fresh permutation.
    seed : int or numpy.random.Generator, default 0
        Drives the shuffling only (the global NumPy state is never used).
    callback : callable, optional
        ``callback(epoch, mean_loss)`` after each epoch; returning ``True``
        stops training.
    progress : bool, default False
        Print one line per epoch to stderr.

    Returns
    -------
    list of float
        Per-epoch mean losses, weighted by batch size.

    Raises
    ------
    ValueError
        ``step`` raised one (a non-finite loss or gradient): the same
        message after ``"epoch E/epochs, batch B/batches: "``, 1-based.
    """
    epochs = check_int("epochs", epochs, minimum=0)
    shuffle = check_bool("shuffle", shuffle)
    progress = check_bool("progress", progress)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback: expected a callable or None, got {callback!r}")
    if not callable(step):
        raise ValueError(f"step: expected a callable, got {step!r}")
    n_samples = X.shape[-1]
    if Y.shape[-1] != n_samples:
        raise ValueError(f"Y: expected {n_samples} samples (last axis), got shape {Y.shape}")
    batch_size = n_samples if batch_size is None else check_int("batch_size", batch_size)
    rng = make_rng(seed)
    cols = ops_for(X).cols  # X[..., idx] on any backend
    history = []
    for epoch in range(epochs):
        order = rng.permutation(n_samples) if shuffle else None
        total = 0.0
        for b, idx in enumerate(batches(n_samples, batch_size, order)):
            Xb = cols(X, idx)
            try:
                value = step(Xb, cols(Y, idx))
            except ValueError as e:  # the model is as after the last good step
                n_batches = -(-n_samples // batch_size)
                raise ValueError(f"epoch {epoch + 1}/{epochs}, batch {b + 1}/{n_batches}: {e}") from e
            total += float(value) * Xb.shape[-1]
        history.append(total / n_samples)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}  loss {history[-1]:.6g}", file=sys.stderr, flush=True)
        if callback is not None and callback(epoch, history[-1]) is True:
            break
    return history


def fit_lbfgs(loss_and_grad, weights, biases, *, maxiter=200, tol=None):
    """L-BFGS-B over parameter blocks through ``scipy.optimize.minimize(jac=True)``.

    The blocks are written in place: the result when ``minimize`` returns,
    the last iterate it accepted when an evaluation raises ValueError (e.g.
    a loss that overflowed at a trial point of the line search), the last
    point evaluated on an interrupt; references to them stay valid. The optimiser works on one flat float64 vector ``W0, b0, W1,
    b1, ...``; the evaluations run on views of a copy of it in the blocks'
    dtype.

    Parameters
    ----------
    loss_and_grad : callable
        ``loss_and_grad(weights, biases, dW, db) -> loss``: the loss at the
        given blocks (of the shapes and dtype of the ones passed here),
        writing its gradient into ``dW`` and ``db``.
    weights : list of ndarray, shapes (n_{k+1}, n_k)
    biases : list of ndarray, shapes (n_{k+1}, 1)
        The starting point, overwritten with the result.
    maxiter : int >= 1, default 200
    tol : float > 0, optional
        ``minimize``'s tolerance (None: SciPy's default).

    Returns
    -------
    scipy.optimize.OptimizeResult
    """
    from scipy.optimize import minimize

    maxiter = check_int("maxiter", maxiter)
    if tol is not None:
        try:
            tol = check_positive_float("tol", tol)
        except ValueError:
            raise ValueError(f"tol: expected None or a finite number > 0, got {tol!r}") from None
    sizes = [weights[0].shape[1]] + [W.shape[0] for W in weights]
    theta = flatten(weights, biases)
    grad = np.empty_like(theta)
    at, grads = unflatten(theta, sizes), unflatten(grad, sizes)  # views

    def fun(x):
        theta[:] = x
        value = loss_and_grad(*at, *grads)
        return float(value), grad.astype(np.float64)

    accepted = [theta.astype(np.float64)]  # the last iterate minimize accepted

    def keep(xk):
        accepted[0] = np.array(xk, copy=True)

    try:
        result = minimize(
            fun,
            accepted[0].copy(),
            jac=True,
            method="L-BFGS-B",
            tol=tol,
            callback=keep,
            options={"maxiter": maxiter},
        )
        theta[:] = result.x
    except ValueError:  # an evaluation failed (non-finite): not that trial point
        theta[:] = accepted[0]
        raise
    finally:
        for mine, view in zip([*weights, *biases], [*at[0], *at[1]]):
            mine[...] = view
    return result
