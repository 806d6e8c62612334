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


def _identity(z):
    return z


def _identity_mul_derivative(a, da):
    # eq. 7: f' = 1
    return da


def _sigmoid(z):
    # eq. 17: sigma(z) = exp(-log(1 + exp(-z))), stable for large |z| and
    # accurate in relative terms for z << 0 (1 / (1 + exp(-z)) overflows).
    if np.iscomplexobj(z):
        z[...] = _sigmoid_complex(z)
        return z
    np.negative(z, out=z)
    np.logaddexp(0.0, z, out=z)
    np.negative(z, out=z)
    return np.exp(z, out=z)


def _sigmoid_complex(z):
    # Branch on the real part so that exp never overflows (complex step only).
    pos = z.real >= 0
    e = np.exp(np.where(pos, -z, z))
    return np.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_mul_derivative(a, da):
    # eq. 8: f' = a (1 - a)
    da *= a
    np.subtract(1.0, a, out=a)
    da *= a
    return da


def _tanh(z):
    return np.tanh(z, out=z)


def _tanh_mul_derivative(a, da):
    # eq. 9: f' = 1 - a^2
    a *= a
    np.subtract(1.0, a, out=a)
    da *= a
    return da


def _relu(z):
    return np.maximum(z, 0.0, out=z)


def _relu_mul_derivative(a, da):
    # eq. 10: f' = 1 where a > 0, else 0 (a >= 0, so sign(a) is that indicator)
    np.sign(a, out=a)
    da *= a
    return da


LEAKY_SLOPE = 0.01


#: elements per chunk of the leaky_relu forward (bounds its temporary to the
#: size of NumPy's own ufunc buffer, which memory.py already accounts for)
CHUNK = 8192


def _leaky_relu(z):
    # max(z, 0.01 z) equals z for z >= 0 and 0.01 z for z < 0; done in chunks
    # so that the temporary 0.01 z never exceeds CHUNK elements.
    flat = z.reshape(-1)
    if not np.shares_memory(flat, z):  # non-contiguous: plain temporary
        return np.maximum(z, LEAKY_SLOPE * z, out=z)
    for i in range(0, flat.size, CHUNK):
        part = flat[i : i + CHUNK]
        np.maximum(part, LEAKY_SLOPE * part, out=part)
    return z


def _leaky_relu_mul_derivative(a, da):
    # eq. 11: f' = 1 where a > 0 (same sign as z), else 0.01.
    np.heaviside(a, 0.0, out=a)
    a *= 1.0 - LEAKY_SLOPE
    a += LEAKY_SLOPE
    da *= a
    return da


def _softplus(z):
    # eq. 18: log(1 + exp(z)), computed without overflow.
    if np.iscomplexobj(z):
        pos = z.real > 0
        w = np.where(pos, -z, z)
        z[...] = np.where(pos, z, 0.0) + np.log1p(np.exp(w))
        return z
    return np.logaddexp(0.0, z, out=z)


def _softplus_mul_derivative(a, da):
    # eq. 12: f' = sigma(z) = 1 - exp(-a) = -expm1(-a), from a = softplus(z).
    np.negative(a, out=a)
    np.expm1(a, out=a)
    np.negative(a, out=a)
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


def _softmax_inplace(z):
    # Column-wise softmax, shifted by the real part of the column maximum
    # (a constant, so exact for complex steps too).
    z -= z.real.max(axis=0, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=0, keepdims=True)
    return z


def output_forward(name, z):
    """Apply the output map ``name`` to the last pre-activation, in place.

    Parameters
    ----------
    name : {"identity", "sigmoid", "softmax"}
    z : ndarray, shape (n_out, batch)
        Last pre-activation (logits); overwritten with the output.
    """
    if name == "identity":
        return z
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "softmax":
        return _softmax_inplace(z)
    raise ValueError(f"output: got {name!r}, expected one of {OUTPUTS}")
