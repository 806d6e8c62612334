"""One dense layer, forward and backward, written into caller-given buffers.

Column-major: ``a_prev`` has shape ``(n_in, batch)``, ``W`` ``(n_out, n_in)``,
``b`` ``(n_out, 1)``. Equations: paper_notes/backprop.md, eqs. 1-6.
"""

from ..core._activations import ACTIVATIONS, NP
from ._kernels import fused_derivative, fused_forward

__all__ = ["layer_forward", "layer_backward"]


def layer_forward(W, b, a_prev, activation, out, o=NP, on_z=None):
    """Compute ``out = f(W @ a_prev + b)`` in place (eqs. 1-2).

    Parameters
    ----------
    W : ndarray, shape (n_out, n_in)
    b : ndarray, shape (n_out, 1)
    a_prev : ndarray, shape (n_in, batch)
    activation : str or None
        Key of :data:`mlpckpt.core._activations.ACTIVATIONS`; ``None`` leaves the
        pre-activation (the last layer's logits).
    out : ndarray, shape (n_out, batch)
        Written with the result; must not overlap ``a_prev``.
    o : ops of :mod:`mlpckpt.core._ops`, default NumPy's
        The array library's operations (the compiled kernels are NumPy's only).
    on_z : callable, optional
        ``on_z(out, b)`` with ``out = W @ a_prev`` before the bias and the map
        (a reader: :class:`mlpckpt.experiments._layerstats.Recorder` takes ``z``'s moments).

    Returns
    -------
    out : ndarray, shape (n_out, batch)
    """
    o.matmul(W, a_prev, out=out)
    if on_z is not None:
        on_z(out, b)
    if o is NP:
        kernel = fused_forward(activation or "identity", out, b)
        if kernel is not None:  # bias and map in one compiled pass (mlpckpt.execution._kernels)
            kernel(out, b)
            return out
    # The broadcast add allocates NumPy's ufunc buffer (<= 8192 elements);
    # memory.py counts it (paper_notes/checkpointing.md, memory model).
    out += b
    if activation is not None:
        ACTIVATIONS[activation][0](out, o)
    return out


def layer_backward(W, a_prev, a, da, activation, dW, db, da_prev, o=NP):
    """Backward step of one layer from its input and output (eqs. 3-6).

    Parameters
    ----------
    W : ndarray, shape (n_out, n_in)
    a_prev : ndarray, shape (n_in, batch)
        The layer's input ``a[k]``.
    a : ndarray, shape (n_out, batch), or None
        The layer's output ``a[k+1]``; may be destroyed (NumPy's path uses it as scratch). ``None``
        when ``da`` already holds ``dz`` (the last layer: the loss gives it).
    da : ndarray, shape (n_out, batch)
        ``dL/da[k+1]`` on entry, ``dz = dL/dz[k+1]`` on exit.
    activation : str
        Key of :data:`mlpckpt.core._activations.ACTIVATIONS` (unused when ``a`` is
        None).
    dW : ndarray, shape (n_out, n_in)
        Written with ``dz @ a_prev.T``.
    db : ndarray, shape (n_out, 1)
        Written with the row sums of ``dz``.
    da_prev : ndarray, shape (n_in, batch), or None
        Written with ``W.T @ dz``; ``None`` skips it (the first layer, whose
        input gradient nobody needs).
    o : ops of :mod:`mlpckpt.core._ops`, default NumPy's
    """
    if a is not None:
        kernel = fused_derivative(activation, a, da) if o is NP else None
        if kernel is not None:
            kernel(a, da)
        else:
            ACTIVATIONS[activation][1](a, da, o)
    o.matmul(da, a_prev.T, out=dW)
    o.sum_rows(da, out=db)
    if da_prev is not None:
        o.matmul(W.T, da, out=da_prev)
    return da_prev
