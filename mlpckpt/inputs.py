"""A batch for a net: ``X``, ``Y`` and ``out=`` buffers validated, and
``X`` and ``Y`` canonicalised, once per call.

``X`` becomes an array of the net's dtype and shape ``(n_in, batch)``;
``Y`` the canonical target form of :mod:`mlpckpt.losses`
(a C-contiguous ``(n_out, batch)`` array of the net's dtype, or int64
labels ``(batch,)`` for cross-entropy).
"""

from dataclasses import dataclass

import numpy as np

from ._validate import as_real_array, check_finite
from .losses import check_loss

__all__ = ["Grads", "check_batch", "check_input", "check_targets", "check_out", "target_form"]


@dataclass
class Grads:
    """Gradients with the shapes of ``net.weights`` and ``net.biases``.

    Attributes
    ----------
    weights : list of ndarray, shapes (n_{k+1}, n_k)
    biases : list of ndarray, shapes (n_{k+1}, 1)
    """

    weights: list
    biases: list


def check_batch(net, X, Y, loss):
    """``(X, Y)`` for a ``loss`` of ``net`` (anything with ``sizes``,
    ``output`` and ``dtype``): the loss checked against the output, then
    :func:`check_input` and :func:`check_targets`."""
    check_loss(loss, net.output)
    X = check_input(X, net.sizes[0], net.dtype)
    return X, check_targets(Y, loss, net.sizes[-1], X.shape[1], net.dtype)


def check_input(X, n_in, dtype):
    """``X`` as an array of ``dtype`` and shape ``(n_in, batch)``."""
    X = as_real_array("X", X)
    if X.ndim != 2 or X.shape[0] != n_in or X.shape[1] < 1:
        hint = ""
        if X.ndim == 2 and X.shape[1] == n_in:
            hint = " (samples go in columns: pass X.T)"
        raise ValueError(f"X: expected shape ({n_in}, batch) with batch >= 1, got {X.shape}{hint}")
    if X.dtype != dtype:
        X = X.astype(dtype)
    return check_finite("X", X)


def check_targets(Y, loss, n_out, batch, dtype):
    """``Y`` in the canonical form of :mod:`mlpckpt.losses` for this loss."""
    Y = as_real_array("Y", Y)
    if loss == "cross_entropy" and Y.ndim == 1:
        if Y.shape != (batch,):
            raise ValueError(f"Y: expected labels of shape ({batch},), got {Y.shape}")
        check_finite("Y", Y)
        if Y.dtype.kind == "f" and not np.array_equal(Y, np.round(Y)):
            raise ValueError("Y: expected integer class labels, got non-integer values")
        # Range check before the cast: uint64 or huge float labels would wrap.
        lo, hi = Y.min(), Y.max()
        if lo < 0 or hi >= n_out:
            lo, hi = (int(v) if Y.dtype.kind != "f" else float(v) for v in (lo, hi))
            raise ValueError(
                f"Y: labels out of range: got values in [{lo}, {hi}], expected 0..{n_out - 1}"
            )
        return Y.astype(np.int64, copy=False)  # int64 labels are used as given
    if Y.ndim == 1 and n_out == 1 and loss != "cross_entropy":
        Y = Y.reshape(1, -1)
    if Y.shape != (n_out, batch):
        extra = f" or labels ({batch},)" if loss == "cross_entropy" else ""
        extra += f" or ({batch},)" if n_out == 1 and loss != "cross_entropy" else ""
        raise ValueError(f"Y: expected shape ({n_out}, {batch}){extra}, got {Y.shape}")
    # One explicit cast to the net's dtype and C order (a one-hot built as
    # np.eye(k)[:, labels] is F-ordered), so the loss never copies it again.
    Y = check_finite("Y", np.ascontiguousarray(Y, dtype=dtype))
    if loss == "bce" and (Y.min() < 0 or Y.max() > 1):
        raise ValueError(
            f"Y: bce targets must lie in [0, 1], got values in [{Y.min()}, {Y.max()}]"
        )
    if loss == "cross_entropy" and Y.min() < 0:
        raise ValueError(f"Y: class probabilities must be >= 0, got a minimum of {Y.min()}")
    return Y


def target_form(Y):
    """How a plan names canonical targets: ``"labels"`` (int) or ``"onehot"``."""
    return "labels" if Y.ndim == 1 else "onehot"


def check_out(out, weights, biases):
    """``out=`` buffers as ``(dW, db)`` lists: a :class:`Grads` whose arrays
    have the shapes and dtypes of ``weights`` and ``biases``."""
    if not isinstance(out, Grads):
        raise ValueError(f"out: expected a Grads object, got {type(out).__name__}")
    for name, have, want in (("weights", out.weights, weights), ("biases", out.biases, biases)):
        if len(have) != len(want):
            raise ValueError(f"out.{name}: expected {len(want)} arrays, got {len(have)}")
        for k, (h, w) in enumerate(zip(have, want)):
            if not isinstance(h, np.ndarray) or h.shape != w.shape or h.dtype != w.dtype:
                got = (h.shape, h.dtype) if isinstance(h, np.ndarray) else type(h).__name__
                raise ValueError(
                    f"out.{name}[{k}]: expected an array of shape {w.shape} "
                    f"and dtype {w.dtype}, got {got}"
                )
    return out.weights, out.biases
