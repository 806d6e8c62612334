"""Non-finite values: which one, as a ``ValueError``.

Model-free (arrays in, an exception out). The executor checks its loss
scalar (:func:`check_loss`), :meth:`mlpckpt.MLP.forward` its logits and the
training step its gradients (:func:`check_grads`); these only run an array
check where a cheap one failed, and then say what was non-finite: the first
weight or bias block holding NaN or inf, else X or Y, else an overflow in
the computation from finite values. The checks are sums (no array-sized
temporary) unless a sum overflows or they are about to raise.
"""

import math

import numpy as np

from . import _validate


def _namespace(arr):
    import array_api_compat

    return array_api_compat.array_namespace(arr)


def all_finite(arr):
    """True when no entry of ``arr`` (an array of any backend) is NaN or infinite."""
    if isinstance(arr, np.ndarray):
        return _validate.all_finite(arr)
    xp = _namespace(arr)
    if not xp.isdtype(arr.dtype, ("real floating", "complex floating")):
        return True
    return bool(xp.all(xp.isfinite(arr)))

__all__ = ["cause", "check_loss", "check_logits", "first_nonfinite", "check_grads", "layer_grads"]


def _kind(arr):
    # Error path only: the isnan temporary is fine here.
    if isinstance(arr, np.ndarray):
        return "NaN" if np.isnan(arr).any() else "inf"
    xp = _namespace(arr)
    return "NaN" if bool(xp.any(xp.isnan(arr))) else "inf"


def first_nonfinite(name, blocks):
    """``"name[k] holds NaN"`` (or ``inf``) for the first non-finite block, else None."""
    for k, x in enumerate(blocks):
        if not all_finite(x):
            return f"{name}[{k}] holds {_kind(x)}"
    return None


def cause(weights, biases, X=None, Y=None, where="the computation"):
    """Why a value computed from these arrays is not finite (a phrase)."""
    found = first_nonfinite("weights", weights) or first_nonfinite("biases", biases)
    if found:
        return found
    for name, x in (("X", X), ("Y", Y)):
        if x is not None and not all_finite(x):
            return f"{name} holds {_kind(x)}"
    return f"overflow in {where} (the weights, biases and inputs are finite)"


def check_loss(value, weights, biases, X, Y):
    """Refuse a non-finite loss scalar (a NumPy or Python number; the check is one ``np.isfinite``)."""
    if not np.isfinite(value):
        raise ValueError(f"loss is {value}: {cause(weights, biases, X, Y)}")
    return value


def check_logits(z, weights, biases, X):
    """Refuse logits (the last pre-activation) holding NaN or inf.

    Checked before the output map: a sigmoid would squash an inf to 1, and
    the loss of the same logits is not finite.
    """
    if not all_finite(z):
        raise ValueError(f"logits hold {_kind(z)}: {cause(weights, biases, X)}")
    return z


def check_grads(dW, db, weights, biases, X=None, Y=None):
    """Refuse gradients holding NaN or inf.

    One sum per block, added up (on the blocks' device: one sync): a NaN or
    inf in any block makes the total non-finite; only then (or when the
    total overflowed) is each block checked, to name it.
    """
    total = 0.0
    add = (lambda x: x.sum()) if isinstance(dW[0], np.ndarray) else _namespace(dW[0]).sum
    with np.errstate(all="ignore"):
        for x in dW:
            total += add(x)
        for x in db:
            total += add(x)
        if math.isfinite(float(total)):
            return
    for k in range(len(dW)):
        if not (all_finite(dW[k]) and all_finite(db[k])):
            _raise_grad(k, dW[k], db[k], weights, biases, X, Y)


def layer_grads(k, dW_k, db_k, weights, biases):
    """Refuse layer ``k``'s gradient before the fused update writes layer ``k``.

    Backward runs from the last layer down, so layers ``k+1 .. n-1`` were
    already updated by this step; the error names them.
    """
    if all_finite(dW_k) and all_finite(db_k):
        return
    n = len(weights)
    done = ("no layer was updated yet" if k == n - 1
            else f"layers {n - 1}..{k + 1} were already updated by this step and keep their update")
    _raise_grad(k, dW_k, db_k, weights, biases, None, None,
                f"; layers {k}..0 were not updated, {done}")


def _raise_grad(k, dW_k, db_k, weights, biases, X, Y, tail=""):
    name, x = (f"dW[{k}]", dW_k) if not all_finite(dW_k) else (f"db[{k}]", db_k)
    why = cause(weights, biases, X, Y, where="the backward pass")
    raise ValueError(f"gradient {name} holds {_kind(x)}: {why}{tail}")
