"""Optimisers, the minibatch fit loop and the scipy L-BFGS bridge.

Optimisers follow PyTorch's update rules (``torch.optim.SGD``, ``Adam``) and
update parameter blocks in place, one block at a time, so the same object
serves a whole-model step and a fused per-layer step (identical arithmetic,
hence identical results). Block ``2k`` is ``weights[k]``, ``2k + 1`` is
``biases[k]``. Optimiser state (momentum, Adam moments) is model-sized and
allocated on the first step; so is one scratch array per distinct block
shape, which keeps every update free of temporaries.
"""

import numbers
import sys

import numpy as np

from ._validate import check_bool, check_choice, check_int, check_positive_float, make_rng
from .params import flatten, unflatten

__all__ = ["SGD", "Adam", "make_optimizer", "fit", "fit_lbfgs"]


class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``buf = momentum * buf + g`` (``buf = g`` on the first step);
    ``p -= lr * (g + momentum * buf)`` with Nesterov, else ``p -= lr * buf``
    (``p -= lr * g`` without momentum) -- as ``torch.optim.SGD``.

    Parameters
    ----------
    lr : float, default 0.01
    momentum : float in [0, 1), default 0
    nesterov : bool, default False
        Needs ``momentum > 0``.
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        self.lr = check_positive_float("lr", lr)
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, numbers.Real)
            or not (0.0 <= float(momentum) < 1.0)
        ):
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov: got True with momentum=0, expected momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.state = {}
        self.scratch = {}

    def __repr__(self):
        return f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov})"

    def start_step(self):
        """Called once before the blocks of one step are updated."""

    def update(self, i, param, grad):
        """Update block ``i`` in place from its gradient (no temporaries: the
        products go into a scratch array kept per shape)."""
        tmp = _scratch(self.scratch, grad)
        if self.momentum == 0.0:
            np.multiply(grad, self.lr, out=tmp)
            param -= tmp
            return
        buf = self.state.get(i)
        if buf is None:
            buf = self.state[i] = grad.copy()
        else:
            buf *= self.momentum
            buf += grad
        if self.nesterov:
            np.multiply(buf, self.momentum, out=tmp)  # lr * (g + momentum * buf)
            tmp += grad
            tmp *= self.lr
        else:
            np.multiply(buf, self.lr, out=tmp)
        param -= tmp


class Adam:
    """Adam (Kingma & Ba), bias-corrected as ``torch.optim.Adam``.

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr = check_positive_float("lr", lr)
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}") from None
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        self.betas = (b1, b2)
        self.eps = check_positive_float("eps", eps)
        self.t = 0
        self.state = {}
        self.scratch = {}

    def __repr__(self):
        return f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps})"

    def start_step(self):
        self.t += 1

    def update(self, i, param, grad):
        b1, b2 = self.betas
        if i not in self.state:
            self.state[i] = (np.zeros_like(param), np.zeros_like(param))
        m, v = self.state[i]
        tmp = _scratch(self.scratch, grad)  # one layer-sized scratch, reused
        m *= b1
        np.multiply(grad, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(grad, 1.0 - b2, out=tmp)
        tmp *= grad
        v += tmp
        corr1 = 1.0 - b1**self.t
        corr2 = 1.0 - b2**self.t
        np.sqrt(v, out=tmp)  # denominator: sqrt(v) / sqrt(corr2) + eps
        tmp /= np.sqrt(corr2)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / corr1
        param -= tmp


def _scratch(store, like):
    """A scratch array shaped like ``like``, one per (shape, dtype), kept."""
    key = (like.shape, like.dtype)
    tmp = store.get(key)
    if tmp is None:
        tmp = store[key] = np.empty_like(like)
    return tmp


OPTIMIZERS = {"sgd": SGD, "momentum": SGD, "adam": Adam}


def make_optimizer(optimizer, lr):
    """An optimiser object from a name (with ``lr``) or an object (without)."""
    if isinstance(optimizer, str):
        check_choice("optimizer", optimizer, OPTIMIZERS)
        kwargs = {} if lr is None else {"lr": lr}
        if optimizer == "momentum":
            kwargs["momentum"] = 0.9
        return OPTIMIZERS[optimizer](**kwargs)
    if isinstance(optimizer, (SGD, Adam)) or (
        not isinstance(optimizer, type)
        and hasattr(optimizer, "update")
        and hasattr(optimizer, "start_step")
    ):
        if lr is not None:
            raise ValueError(
                f"lr: got {lr!r} together with the optimiser object {optimizer!r}; "
                "expected lr=None (set the rate on the object)"
            )
        return optimizer
    raise ValueError(
        f"optimizer: got {optimizer!r}, expected 'sgd', 'momentum', 'adam' or an optimiser object"
    )


def apply_step(opt, weights, biases, dW, db):
    """One whole-model update (blocks in layer order)."""
    for k in range(len(weights)):
        opt.update(2 * k, weights[k], dW[k])
        opt.update(2 * k + 1, biases[k], db[k])


def _batches(n_samples, batch_size, order):
    for start in range(0, n_samples, batch_size):
        yield order[start : start + batch_size] if order is not None else slice(
            start, start + batch_size
        )


def fit(
    net,
    X,
    Y,
    loss="mse",
    epochs=10,
    batch_size=32,
    optimizer="sgd",
    lr=None,
    shuffle=True,
    seed=0,
    strategy=None,
    fuse_update=False,
    callback=None,
    progress=False,
):
    """Minibatch training; see :meth:`mlpckpt.MLP.fit`."""
    epochs = check_int("epochs", epochs, minimum=0)
    shuffle = check_bool("shuffle", shuffle)
    fuse_update = check_bool("fuse_update", fuse_update)
    progress = check_bool("progress", progress)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback: expected a callable or None, got {callback!r}")
    X, Y = net._check_batch(X, Y, loss)
    n_samples = X.shape[1]
    batch_size = n_samples if batch_size is None else check_int("batch_size", batch_size)
    opt = make_optimizer(optimizer, lr)
    rng = make_rng(seed)
    weights, biases = net.weights, net.biases
    if fuse_update:
        # One gradient buffer per distinct layer shape: each layer's
        # gradient is consumed by the update before the next one is written.
        shared = {}
        for W in weights:
            if W.shape not in shared:
                shared[W.shape] = (np.empty_like(W), np.empty((W.shape[0], 1), dtype=W.dtype))
        grads = ([shared[W.shape][0] for W in weights], [shared[W.shape][1] for W in weights])

        def on_layer(k, dW_k, db_k):
            opt.update(2 * k, weights[k], dW_k)
            opt.update(2 * k + 1, biases[k], db_k)

    else:
        grads = ([np.empty_like(W) for W in weights], [np.empty_like(b) for b in biases])
        on_layer = None
    history = []
    for epoch in range(epochs):
        order = rng.permutation(n_samples) if shuffle else None
        total = 0.0
        for idx in _batches(n_samples, batch_size, order):
            Xb = X[:, idx]
            Yb = Y[idx] if Y.ndim == 1 else Y[:, idx]
            opt.start_step()
            value = net._run(Xb, Yb, loss, strategy, grads, on_layer)[0]
            if not fuse_update:
                apply_step(opt, weights, biases, *grads)
            total += float(value.real) * Xb.shape[1]
        history.append(total / n_samples)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}  loss {history[-1]:.6g}", file=sys.stderr, flush=True)
        if callback is not None and callback(epoch, history[-1]) is True:
            break
    return history


def fit_lbfgs(net, X, Y, loss="mse", maxiter=200, strategy=None, tol=None):
    """Full-batch L-BFGS-B through ``scipy.optimize.minimize(jac=True)``."""
    from scipy.optimize import minimize

    maxiter = check_int("maxiter", maxiter)
    X, Y = net._check_batch(X, Y, loss)
    theta = flatten(net.weights, net.biases)  # the net's parameters, flat
    grad = np.empty_like(theta)
    net.weights, net.biases = unflatten(theta, net.sizes)  # views into theta
    gviews = unflatten(grad, net.sizes)

    def fun(x):
        theta[:] = x
        value = net._run(X, Y, loss, strategy, gviews, None)[0]
        return float(value), grad.astype(np.float64)

    try:
        result = minimize(
            fun,
            theta.astype(np.float64),
            jac=True,
            method="L-BFGS-B",
            tol=tol,
            options={"maxiter": maxiter},
        )
        theta[:] = result.x
    finally:
        weights, biases = unflatten(theta, net.sizes)
        net.weights = [w.copy() for w in weights]
        net.biases = [b.copy() for b in biases]
    return result
