"""Gradient checks of an MLP: its loss and analytic gradient as pure functions
of an explicit parameter list ``[W0, b0, W1, b1, ...]``, handed to the
model-free checker :func:`mlpckpt.verification._checker.check_gradients`.

The net is only read (sizes, activations, output, dtype, and its parameters
copied once): ``fun`` runs the plain forward (:func:`mlpckpt.execution._executor.logits`)
and the loss on the parameters it is given, ``grad`` runs the executor
(:func:`mlpckpt.execution._executor.execute`) on them with the strategy's compiled
schedule. ``net.weights`` and ``net.biases`` are never assigned.
"""

import numpy as np

from ..execution import _executor as backprop
from ..model import _batch as inputs, _across_backends as placement
from ..core import _losses as losses
from ..core._validate import check_choice
from ..core._activations import SMOOTH
from ..planning._plan import check_net, check_strategy, compile_program, make_call
from ._checker import DEFAULT_RTOL, METHODS, check_gradients

__all__ = ["gradcheck", "loss_functions"]

#: what the checks read of a net (an MLP has them all)
_NET_FIELDS = ("sizes", "activations", "output", "dtype", "weights", "biases")

_KINKED = {
    "relu": "relu(z) = max(z, 0)",
    "leaky_relu": "leaky_relu(z) = max(z, 0.01 z)",
}


def loss_functions(net, X, Y, loss="mse", strategy=None):
    """``fun``, ``grad``, ``params`` and block names for an MLP's loss.

    ``X`` and ``Y`` are validated and cast to the net's dtype once, as
    ``net.loss_and_grad`` does. The parameters are ``[W0, b0, W1, b1, ...]``
    (the flatten order of :mod:`mlpckpt.core._params`) as float64 copies. ``fun``
    runs the plain layer-by-layer forward and the loss in the dtype of the
    arrays it is given, complex included; ``grad`` runs the schedule of
    ``strategy`` (compiled for the net's call, as ``loss_and_grad`` would)
    on the given parameters. Neither reads nor writes ``net.weights``. On a
    net of another backend (``net.backend``) ``X`` and ``Y`` must live there,
    and both functions run there: the float64 (or complex128) NumPy
    parameters the checker hands them are copied onto the device, the loss
    comes back as a Python scalar and the gradient as NumPy arrays.

    Parameters
    ----------
    net, X, Y, loss, strategy
        As for :func:`gradcheck`.

    Returns
    -------
    fun : callable
        ``fun(params) -> numpy scalar``, the loss.
    grad : callable
        ``grad(params) -> [dW0, db0, dW1, db1, ...]``, shapes of ``params``.
    params : list of ndarray, float64
        Shapes ``(sizes[k+1], sizes[k])`` and ``(sizes[k+1], 1)``, interleaved.
    names : list of str
        ``["W0", "b0", "W1", "b1", ...]``.
    """
    X, Y = placement.check_batch(check_net(net, _NET_FIELDS), X, Y, loss)
    call = make_call(net, X.shape[1], loss, targets=inputs.target_form(Y))
    program = compile_program(check_strategy(strategy), call)
    hidden, output = list(net.activations), net.output
    b = placement.backend_of_net(net)
    on = (lambda p: p) if b.is_numpy else (lambda p: [b.from_numpy(x) for x in p])  # params to the device
    X64 = np.asarray(X, dtype=np.float64) if b.is_numpy else b.xp.astype(X, b.dtype(np.float64))
    cast = {np.dtype(np.float64): X64}

    def fun(params):
        dtype = np.result_type(*params)  # complex if any block is perturbed
        Xd = cast.get(dtype)
        if Xd is None:  # complex step: one complex128 copy of X, reused
            Xd = cast[dtype] = b.xp.astype(X64, b.dtype(dtype))
        p = on(params)
        z = backprop.logits(p[0::2], p[1::2], hidden, Xd, b.dtype(dtype), backend=b)
        return b.item(losses.loss_and_dz(loss, output, z, Y, b.ops))  # overwrites z only

    def grad(params):
        # X in the net's dtype, as loss_and_grad would see it (a float32 net's
        # X meets float64 weights exactly as it did when they were swapped in)
        p = on(params)
        result = backprop.execute(program, backprop.Params(list(p[0::2]), list(p[1::2]), hidden, output),
                                  backprop.Batch(X, Y, loss), backprop.Options(backend=b))
        return [b.to_numpy(x) if not b.is_numpy else x for pair in zip(result.dW, result.db) for x in pair]

    params = [np.array(p, dtype=np.float64) for pair in zip(*placement.numpy_params(net)) for p in pair]
    names = [f"{c}{k}" for k in range(len(net.weights)) for c in ("W", "b")]
    return fun, grad, params, names


def gradcheck(net, X, Y, loss="mse", *, strategy=None, method="central", eps=None, rtol=DEFAULT_RTOL,
              atol=None, n_directions=10, seed=0, max_entries=None):
    """Check ``net.loss_and_grad`` against numerical derivatives of the loss.

    Parameters
    ----------
    net : MLP
        Only read: its parameters are checked through float64 copies.
    X : array_like, shape (sizes[0], batch)
    Y : array_like
        Targets (see ``MLP.loss_and_grad``).
    loss : {"mse", "bce", "cross_entropy"}
    strategy : checkpoint strategy or None
        Used for the analytic gradient (every strategy must agree).
    method : {"central", "complex", "directional"}
    eps, rtol, atol, n_directions, seed, max_entries
        As for :func:`mlpckpt.check_gradients`.

    Returns
    -------
    GradcheckReport
        One row per parameter block ``W0, b0, W1, b1, ...`` (per direction
        for ``"directional"``).

    Notes
    -----
    The check runs in float64 (complex128 for the complex step) on copies
    of the parameters; a float32 net is checked through float64 copies,
    which verifies its code, not its float32 rounding. ``method="complex"``
    refuses nets with relu / leaky_relu layers: those functions are not
    analytic (eq. G5 needs a complex extension), and the complex step
    would silently return the one-sided derivative at a kink.
    """
    check_choice("method", method, METHODS)
    check_net(net, _NET_FIELDS)
    kinked = [(k, h) for k, h in enumerate(net.activations) if h not in SMOOTH]
    if method == "complex" and kinked:
        k, h = kinked[0]
        raise ValueError(
            f"method: 'complex' needs every activation to be smooth (analytic), got "
            f"{h!r} at hidden layer {k}: {_KINKED.get(h, h)} has no complex-analytic "
            f"extension and a kink at 0, so the complex step is not a derivative there; "
            f"expected method='central' or 'directional', or activations from {sorted(SMOOTH)}"
        )
    fun, grad, params, names = loss_functions(net, X, Y, loss, strategy)
    report = check_gradients(fun, grad, params, method=method, eps=eps, rtol=rtol, atol=atol,
                             n_directions=n_directions, seed=seed, max_entries=max_entries, names=names)
    if kinked:
        report.notes.append(
            f"the net has kinks ({', '.join(sorted({h for _, h in kinked}))}): an entry can fail "
            "legitimately when a +-h step crosses a kink; re-check at another point before "
            "blaming the gradient"
        )
    if net.dtype != np.float64:
        report.notes.append(
            f"{net.dtype.name} net: checked through float64 copies (verifies the code, "
            "not float32 rounding)"
        )
    return report
