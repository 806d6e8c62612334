"""Losses: name -> (value, gradient w.r.t. the last pre-activation).

All losses are mean-reduced and defined as PyTorch defines them
(paper_notes/backprop.md, eqs. 13-16):

``mse``
    ``mean((o - y)**2)`` over all ``n_out * batch`` elements (``MSELoss``),
    for any output map ``o = out(z)``.
``bce``
    binary cross-entropy from the logits ``z`` (``BCEWithLogitsLoss``);
    needs ``output="sigmoid"``.
``cross_entropy``
    softmax cross-entropy from the logits (``CrossEntropyLoss``), with
    integer labels ``(batch,)`` or class probabilities ``(n_out, batch)``;
    needs ``output="softmax"``.

Each function takes the last pre-activation ``z`` of shape
``(n_out, batch)``, *overwrites it* with ``dz = dL/dz`` (so the backward pass
needs no extra array for it) and returns the loss as a NumPy scalar (complex
under the complex-step check). Targets arrive validated and canonical
(``mlp.py`` does that): float ``(n_out, batch)`` arrays, or int64 labels.
"""

import numpy as np

from ._validate import check_choice
from .activations import _sigmoid, _sigmoid_mul_derivative, output_forward

__all__ = ["LOSSES", "REQUIRED_OUTPUT", "output_for", "check_loss", "loss_and_dz", "loss_value"]


def _sum_of_products(u, v):
    # sum(u * v) without a temporary; np.dot never conjugates (complex step).
    return np.dot(u.reshape(-1), v.reshape(-1))


def _mse(output, z, y):
    n = z.size
    if output == "identity":
        np.subtract(z, y, out=z)  # z now holds o - y
        loss = _sum_of_products(z, z) / n  # eq. 13
        z *= 2.0 / n
        return loss
    o = output_forward(output, z)  # z now holds the output o
    g = np.subtract(o, y)  # the one temporary of the loss
    loss = _sum_of_products(g, g) / n
    g *= 2.0 / n  # dL/do
    if output == "sigmoid":  # eq. 14: dz = g * o (1 - o)
        _sigmoid_mul_derivative(o, g)
    else:  # softmax, eq. 14: dz = o * (g - sum_c g_c o_c)
        g -= np.einsum("ij,ij->j", g, o)
        g *= o
    np.copyto(z, g)
    return loss


def _real_sign_abs(z):
    # |z| for real z; for complex z, z or -z by the sign of the real part
    # (analytic, unlike abs, so the complex step stays exact).
    if np.iscomplexobj(z):
        return np.where(z.real >= 0, z, -z)
    return np.abs(z)


def _bce(output, z, y):
    n = z.size
    # eq. 15: max(z, 0) - z y + log(1 + exp(-|z|))
    t = _real_sign_abs(z)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    loss = t.sum()
    if np.iscomplexobj(z):
        t = np.where(z.real > 0, z, 0)
    else:
        np.maximum(z, 0.0, out=t)
    loss = (loss + t.sum() - _sum_of_products(z, y)) / n
    del t
    _sigmoid(z)  # dz = (sigmoid(z) - y) / n
    z -= y
    z *= 1.0 / n
    return loss


def _cross_entropy(output, z, y):
    batch = z.shape[1]
    # eq. 16, shifted by the column maximum of the real part (exact identity)
    z -= z.real.max(axis=0, keepdims=True)
    e = np.exp(z)  # the one temporary of the loss
    s = e.sum(axis=0)
    log_s = np.log(s)
    if y.ndim == 1:  # integer labels
        cols = np.arange(batch)
        loss = (log_s.sum() - z[y, cols].sum()) / batch
        np.divide(e, s, out=z)
        z[y, cols] -= 1.0
    else:  # class probabilities (one-hot included)
        mass = y.sum(axis=0)
        loss = (np.dot(log_s, mass) - _sum_of_products(z, y)) / batch
        np.divide(e, s, out=z)
        z *= mass
        z -= y
    z /= batch
    return loss


LOSSES = {"mse": _mse, "bce": _bce, "cross_entropy": _cross_entropy}

#: the output map a loss needs (None: any) -- the one loss -> output table
REQUIRED_OUTPUT = {"mse": None, "bce": "sigmoid", "cross_entropy": "softmax"}


def output_for(loss):
    """The output map to build a net with for ``loss`` (identity for mse)."""
    check_choice("loss", loss, LOSSES)
    return REQUIRED_OUTPUT[loss] or "identity"


def check_loss(loss, output):
    """``loss`` must be a known name that works with the net's ``output``."""
    check_choice("loss", loss, LOSSES)
    need = REQUIRED_OUTPUT[loss]
    if need is not None and output != need:
        raise ValueError(
            f"loss: {loss!r} needs output={need!r}, got output={output!r} "
            f"(use loss='mse', or build the net with output={need!r})"
        )
    return loss


def loss_and_dz(name, output, z, y):
    """Loss value; ``z`` is overwritten with ``dL/dz``.

    Parameters
    ----------
    name : {"mse", "bce", "cross_entropy"}
    output : {"identity", "sigmoid", "softmax"}
        Output map of the last layer.
    z : ndarray, shape (n_out, batch)
        Last pre-activation (logits), overwritten with the gradient.
    y : ndarray, shape (n_out, batch), or int64 shape (batch,)
        Targets, already validated.

    Returns
    -------
    loss : numpy scalar
    """
    return LOSSES[name](output, z, y)


def loss_value(name, output, z, y):
    """Loss value for logits ``z`` (not modified)."""
    return loss_and_dz(name, output, np.array(z, copy=True), y)
