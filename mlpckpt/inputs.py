"""A batch for a net: ``X`` and ``Y`` validated and canonicalised once per call.

``X`` becomes a C-contiguous array of the net's dtype and shape
``(n_in, batch)``; ``Y`` the canonical target form of :mod:`mlpckpt.losses`
(a C-contiguous ``(n_out, batch)`` array of the net's dtype, or int64
labels ``(batch,)`` for cross-entropy).
"""

import numpy as np

from ._validate import as_real_array, check_finite

__all__ = ["check_input", "check_targets", "target_form"]


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
