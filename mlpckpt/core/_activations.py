"""Activation table: name -> (forward in place, derivative from the output).

Every derivative is a function of the layer's *output* ``a = f(z)``
(paper_notes/backprop.md, eqs. 7-12), so the backward pass needs only
post-activations; that is what lets a checkpointed backward step of layer k
use ``a[k]`` and ``a[k+1]`` and nothing else.

Both functions work in place; on the real, C-contiguous arrays the executor
uses they make no temporary the size of the layer (leaky_relu's is at most
8192 elements; the complex-step paths of sigmoid and softplus, used only by
the gradient checker, do allocate):

``forward(z)``
    overwrites ``z`` (shape ``(n, batch)``) with ``f(z)`` and returns it.
``mul_derivative(a, da)``
    overwrites ``da`` with ``da * f'(z)`` computed from ``a = f(z)``; the
    buffer of ``a`` is used as scratch and destroyed (the backward pass is
    done with it by then).

Smooth activations are complex-safe (branches on the real part only) so that
the complex-step gradient check can run the same code on complex128 copies.
"""

import numpy as np

from ._validate import check_choice
from ._ops import NUMPY_OPS

NP = NUMPY_OPS  # NumPy's own functions (mlpckpt.core._ops)

__all__ = [
    "ACTIVATIONS",
    "SMOOTH",
    "OUTPUTS",
    "forward",
    "derivative",
    "output_forward",
    "check_activations",
    "check_output",
]


def _identity(z, o=NP):
    return z


def _identity_mul_derivative(a, da, o=NP):
    # eq. 7: f' = 1
    return da


def _sigmoid(z, o=NP):
    # eq. 17: sigma(z) = exp(-log(1 + exp(-z))), stable for large |z| and
    # accurate in relative terms for z << 0 (1 / (1 + exp(-z)) overflows).
    if o.iscomplexobj(z):
        z[...] = _sigmoid_complex(z, o)
        return z
    o.negative(z, out=z)
    o.logaddexp(0.0, z, out=z)
    o.negative(z, out=z)
    return o.exp(z, out=z)


def _sigmoid_complex(z, o=NP):
    # Branch on the real part so that exp never overflows (complex step only).
    pos = o.real(z) >= 0
    e = o.exp(o.where(pos, -z, z))
    return o.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_mul_derivative(a, da, o=NP):
    # eq. 8: f' = a (1 - a)
    da *= a
    o.subtract(1.0, a, out=a)
    da *= a
    return da


def _tanh(z, o=NP):
    return o.tanh(z, out=z)


def _tanh_mul_derivative(a, da, o=NP):
    # eq. 9: f' = 1 - a^2
    a *= a
    o.subtract(1.0, a, out=a)
    da *= a
    return da


def _relu(z, o=NP):
    return o.maximum(z, 0.0, out=z)


def _relu_mul_derivative(a, da, o=NP):
    # eq. 10: f' = 1 where a > 0, else 0 (a >= 0, so sign(a) is that indicator)
    o.sign(a, out=a)
    da *= a
    return da


LEAKY_SLOPE = 0.01


#: elements per chunk of the leaky_relu forward (bounds its temporary to the
#: size of NumPy's own ufunc buffer, which memory.py already accounts for)
CHUNK = 8192


def _leaky_relu(z, o=NP):
    # max(z, 0.01 z) equals z for z >= 0 and 0.01 z for z < 0; done in chunks
    # so that the temporary 0.01 z never exceeds CHUNK elements.
    return o.leaky_relu(z, LEAKY_SLOPE, CHUNK)


def _leaky_relu_mul_derivative(a, da, o=NP):
    # eq. 11: f' = 1 where a > 0 (same sign as z), else 0.01.
    o.heaviside(a, 0.0, out=a)
    a *= 1.0 - LEAKY_SLOPE
    a += LEAKY_SLOPE
    da *= a
    return da


def _softplus(z, o=NP):
    # eq. 18: log(1 + exp(z)), computed without overflow.
    if o.iscomplexobj(z):
        pos = o.real(z) > 0
        w = o.where(pos, -z, z)
        z[...] = o.where(pos, z, 0.0) + o.log1p(o.exp(w))
        return z
    return o.logaddexp(0.0, z, out=z)


def _softplus_mul_derivative(a, da, o=NP):
    # eq. 12: f' = sigma(z) = 1 - exp(-a) = -expm1(-a), from a = softplus(z).
    o.negative(a, out=a)
    o.expm1(a, out=a)
    o.negative(a, out=a)
    da *= a
    return da


#: name -> (forward in place, mul_derivative from output in place)
ACTIVATIONS = {
    "identity": (_identity, _identity_mul_derivative),
    "sigmoid": (_sigmoid, _sigmoid_mul_derivative),
    "tanh": (_tanh, _tanh_mul_derivative),
    "relu": (_relu, _relu_mul_derivative),
    "leaky_relu": (_leaky_relu, _leaky_relu_mul_derivative),
    "softplus": (_softplus, _softplus_mul_derivative),
}

#: activations with a continuous derivative (complex step applies to these)
SMOOTH = frozenset({"identity", "sigmoid", "tanh", "softplus"})

#: output maps of the last layer (applied after the last pre-activation)
OUTPUTS = ("identity", "sigmoid", "softmax")


def check_activations(activation, n_hidden):
    """One name for every hidden layer, or a list of ``n_hidden`` names."""
    if isinstance(activation, str):
        check_choice("activation", activation, ACTIVATIONS)
        return [activation] * n_hidden
    if not isinstance(activation, (list, tuple)):  # a dict or a set has no layer order
        raise ValueError(
            f"activation: expected a name or a list of {n_hidden} names, got {activation!r}"
        )
    names = list(activation)
    if len(names) != n_hidden:
        raise ValueError(
            f"activation: expected one name per hidden layer ({n_hidden}), got {len(names)}"
        )
    for name in names:
        check_choice("activation", name, ACTIVATIONS)
    return names


def check_output(output):
    """One of :data:`OUTPUTS`."""
    return check_choice("output", output, OUTPUTS)


def forward(name, z):
    """Return ``f(z)`` as a new array (convenience; the library works in place).

    Parameters
    ----------
    name : str
        Key of :data:`ACTIVATIONS`.
    z : ndarray, shape (n, batch)
        Pre-activation.
    """
    return ACTIVATIONS[name][0](np.array(z, copy=True))


def derivative(name, a):
    """Return ``f'(z)`` computed from the output ``a = f(z)`` (a new array).

    Parameters
    ----------
    name : str
        Key of :data:`ACTIVATIONS`.
    a : ndarray, shape (n, batch)
        Post-activation.
    """
    a = np.array(a, copy=True)
    return ACTIVATIONS[name][1](a, np.ones_like(a))


def _softmax_inplace(z, o=NP):
    # Column-wise softmax, shifted by the real part of the column maximum
    # (a constant, so exact for complex steps too).
    z -= o.colmax_real(z)
    o.exp(z, out=z)
    z /= o.colsum(z, keepdims=True)
    return z


def output_forward(name, z, o=NP):
    """Apply the output map ``name`` to the last pre-activation, in place.

    Parameters
    ----------
    name : {"identity", "sigmoid", "softmax"}
    z : ndarray, shape (n_out, batch)
        Last pre-activation (logits); overwritten with the output.
    o : ops of :mod:`mlpckpt.core._ops`, default NumPy's
    """
    if name == "identity":
        return z
    if name == "sigmoid":
        return _sigmoid(z, o)
    if name == "softmax":
        return _softmax_inplace(z, o)
    raise ValueError(f"output: got {name!r}, expected one of {OUTPUTS}")
