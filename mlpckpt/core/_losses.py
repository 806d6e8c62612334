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

from ._validate import check_choice
from ._activations import NP, _sigmoid_complex, _sigmoid_mul_derivative, output_forward

__all__ = ["LOSSES", "REQUIRED_OUTPUT", "output_for", "check_loss", "loss_and_dz", "loss_value"]


def _mse(output, z, y, ops):
    n = z.shape[0] * z.shape[1]
    if output == "identity":
        ops.subtract(z, y, out=z)  # z now holds o - y
        loss = ops.dot_flat(z, z) / n  # eq. 13
        z *= 2.0 / n
        return loss
    o = output_forward(output, z, ops)  # z now holds the output o
    g = ops.subtract(o, y)  # the one temporary of the loss
    loss = ops.dot_flat(g, g) / n
    g *= 2.0 / n  # dL/do
    if output == "sigmoid":  # eq. 14: dz = g * o (1 - o)
        _sigmoid_mul_derivative(o, g, ops)
    else:  # softmax, eq. 14: dz = o * (g - sum_c g_c o_c)
        g -= ops.colsum_product(g, o)
        g *= o
    z[...] = g
    return loss


def _bce(output, z, y, ops):
    # eq. 15, per element without cancellation (y in [0, 1]):
    #   loss = log1p(exp(-|z|)) + (H - y) z,   H = 1 where z >= 0 else 0,
    #   dz   = (sigma(z) - H) + (H - y) = (1 - y) sigma(z) - y sigma(-z),
    # every term of the loss >= 0; sigma(z) - H = -+sigma(-|z|) keeps its
    # relative accuracy where sigma(z) rounds to 1 (sigma(40) - 1 = -4.2e-18).
    n = z.shape[0] * z.shape[1]
    if ops.iscomplexobj(z):  # complex step: branch on the real part only
        pos = ops.real(z) >= 0
        # |z| as z or -z by the sign of the real part (analytic, unlike abs)
        t = ops.where(pos, z, -z)
        h = ops.where(pos, 1.0, 0.0) - y  # H - y, real
        loss = (ops.total(ops.log1p(ops.exp(-t))) + ops.dot_flat(h, z)) / n
        s = _sigmoid_complex(-t, ops)
        z[...] = (ops.where(pos, -s, s) + h) / n
        return loss
    t = ops.heaviside(z, 1.0)  # the one temporary of the loss
    t -= y
    loss = ops.dot_flat(t, z)  # sum of (H - y) z, terms >= 0
    ops.abs(z, out=t)
    ops.negative(t, out=t)
    ops.exp(t, out=t)
    ops.log1p(t, out=t)  # t = L = log1p(exp(-|z|))
    loss = (loss + ops.total(t)) / n
    ops.negative(t, out=t)  # sigma(-|z|) = 1 - 1 / (1 + e) = -expm1(-L)
    ops.expm1(t, out=t)
    ops.copysign(t, z, out=t)  # t = -(sigma(z) - H), H from z's sign bit
    ops.copysign(1.0, z, out=z)  # z = +-1, then H = (1 +- 1) / 2 exactly
    z *= 0.5
    z += 0.5
    z -= y
    z -= t
    z /= n
    return loss


def _cross_entropy(output, z, y, ops):
    # eq. 16, shifted by each column's entry of largest real part (an exact
    # identity): that entry's exp is exactly 1, so log(sum) = log1p(rest) with
    # rest the sum over the other entries, which keeps its relative accuracy
    # at confident predictions; where that entry is the label its dz is
    # -rest / (1 + rest), formed without the cancellation of p - 1.
    batch = int(z.shape[1])
    top = ops.argmax_cols(z)
    z -= ops.take_rows(z, top)[None, :]  # the top entries are now exactly 0
    e = ops.exp(z)  # the one temporary of the loss
    ops.put_rows(e, top, 0.0)
    rest = ops.colsum(e)
    if y.ndim == 1:  # integer labels
        loss = ops.total(ops.log1p(rest))
        loss = (loss - ops.total(ops.take_rows(z, y))) / batch  # terms >= 0: z <= 0 after the shift
        total = rest + 1.0
        miss = y != top
        ops.negative(rest, out=rest)
        ops.copyto_where(rest, 1.0, miss)  # the top entry's numerator: 1, or -rest at the label
        ops.put_rows(e, top, rest)
        ops.divide(e, total, out=z)
        del e, rest, total
        ops.sub_rows(z, y, miss)  # p_y - 1 where p_y <= 1/2 (the label is not the top entry)
    else:  # class probabilities (one-hot included): dz = mass p - y
        loss = ops.dot_flat(ops.log1p(rest), ops.colsum(y))
        loss = (loss - ops.dot_flat(z, y)) / batch
        total = rest + 1.0
        ops.divide(e, total, out=z)
        e[...] = y  # e is scratch from here on
        ops.put_rows(e, top, 0.0)
        fix = ops.colsum(e)  # the target mass off the top entry, summed without cancellation
        del e
        rest *= ops.take_rows(y, top)
        fix -= rest
        fix /= total  # at the top entry: mass / S - y_top = (others - y_top rest) / S
        del rest, total
        z *= ops.colsum(y)
        z -= y
        ops.put_rows(z, top, fix)
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


def loss_and_dz(name, output, z, y, ops=NP):
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
    ops : ops of :mod:`mlpckpt.core._ops`, default NumPy's

    Returns
    -------
    loss : numpy scalar (a 0-d array of the backend)
    """
    return LOSSES[name](output, z, y, ops)


def loss_value(name, output, z, y):
    """Loss value for NumPy logits ``z`` (not modified)."""
    return loss_and_dz(name, output, z.copy(), y)
