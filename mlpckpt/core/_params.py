"""Initialisation and flatten / unflatten of the weight list.

Shapes: ``weights[k]`` is ``(sizes[k+1], sizes[k])``, ``biases[k]`` is
``(sizes[k+1], 1)``. The flat layout is ``W0, b0, W1, b1, ...``, each
C-ordered, as scipy's optimisers and the gradient checkers want it.
"""

import numpy as np

from ._inits import check_init

__all__ = ["INITS", "check_init", "init_params", "flatten", "unflatten", "n_params"]


def _xavier(rng, fan_out, fan_in, dtype):
    # Glorot uniform, gain 1 (torch.nn.init.xavier_uniform_)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_out, fan_in)).astype(dtype)


def _he(rng, fan_out, fan_in, dtype):
    # He normal, fan_in mode (torch.nn.init.kaiming_normal_ for relu)
    return (rng.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in)).astype(dtype)


def _normal(rng, fan_out, fan_in, dtype):
    # randn / sqrt(fan_in), as the seed programs do
    return (rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)).astype(dtype)


def _orthogonal(rng, fan_out, fan_in, dtype, gain=1.0):
    # Haar-random (semi-)orthogonal matrix via QR with sign correction
    # (Saxe et al. 2014; torch.nn.init.orthogonal_).
    rows, cols = fan_out, fan_in
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T  # a Fortran-ordered view: weights are C-contiguous (layout-free results)
    return np.ascontiguousarray(gain * q, dtype=dtype)


INITS = {"xavier": _xavier, "he": _he, "normal": _normal, "orthogonal": _orthogonal}


def init_params(sizes, init, dtype, rng):
    """Fresh weights and zero biases (a :class:`mlpckpt.core._inits.Gaussian` draws both).

    Parameters
    ----------
    sizes : sequence of int, length n + 1
    init : str or mlpckpt.core._inits.Gaussian
        Key of :data:`INITS`, or variances.
    dtype : numpy dtype
    rng : numpy.random.Generator

    Returns
    -------
    weights : list of ndarray, shapes (sizes[k+1], sizes[k]), C-contiguous
    biases : list of ndarray, shapes (sizes[k+1], 1)
    """
    if not isinstance(init, str):  # an mc.Gaussian: weights and biases by variances
        pairs = [init.draw(rng, sizes[k + 1], sizes[k], dtype) for k in range(len(sizes) - 1)]
        return [W for W, _ in pairs], [b for _, b in pairs]
    make = INITS[init]
    weights = [make(rng, sizes[k + 1], sizes[k], dtype) for k in range(len(sizes) - 1)]
    biases = [np.zeros((sizes[k + 1], 1), dtype=dtype) for k in range(len(sizes) - 1)]
    return weights, biases


def n_params(sizes):
    """Number of scalar parameters of a net with these layer sizes."""
    return sum(sizes[k + 1] * (sizes[k] + 1) for k in range(len(sizes) - 1))


def flatten(weights, biases, out=None):
    """Concatenate ``W0, b0, W1, b1, ...`` into one vector.

    Parameters
    ----------
    weights, biases : lists of ndarray
    out : ndarray, shape (P,), optional
        Written in place if given.

    Returns
    -------
    ndarray, shape (P,)
    """
    blocks = [x for pair in zip(weights, biases) for x in pair]
    total = sum(x.size for x in blocks)
    if out is None:
        out = np.empty(total, dtype=np.result_type(*blocks))
    pos = 0
    for x in blocks:
        out[pos : pos + x.size] = x.reshape(-1)
        pos += x.size
    return out


def unflatten(vector, sizes):
    """Split a flat vector into weight and bias *views* of it.

    Parameters
    ----------
    vector : ndarray, shape (P,)
    sizes : sequence of int

    Returns
    -------
    weights, biases : lists of ndarray (views into ``vector``)
    """
    if vector.ndim != 1 or vector.size != n_params(sizes):
        raise ValueError(
            f"vector: expected shape ({n_params(sizes)},) for sizes {list(sizes)}, "
            f"got {vector.shape}"
        )
    weights, biases, pos = [], [], 0
    for k in range(len(sizes) - 1):
        n_out, n_in = sizes[k + 1], sizes[k]
        weights.append(vector[pos : pos + n_out * n_in].reshape(n_out, n_in))
        pos += n_out * n_in
        biases.append(vector[pos : pos + n_out].reshape(n_out, 1))
        pos += n_out
    return weights, biases
