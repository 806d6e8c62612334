"""Initialisation by variances: :class:`Gaussian`, the parametrisation of
mean-field signal-propagation theory (Poole et al. 2016; Schoenholz et al.
2017), beside the named initialisations of :data:`mlpckpt.core._params.INITS`.

``W[k]`` has i.i.d. entries of variance ``sigma_w2 / fan_in`` and ``b[k]``
of variance ``sigma_b2``, so a pre-activation's variance is
``q = sigma_w2 * E[a²] + sigma_b2``, the length map of the theory. In a
file the initialisation is the string ``"gaussian:<sigma_w2>:<sigma_b2>"``
(``repr`` of each float, so it reads back to the same bits).
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Gaussian", "check_init", "init_name"]


@dataclass(frozen=True)
class Gaussian:
    """Weights of variance ``sigma_w2 / fan_in``, biases of variance ``sigma_b2``.

    Parameters
    ----------
    sigma_w2 : float, > 0 and finite
    sigma_b2 : float, >= 0 and finite, default 0
    """

    sigma_w2: float
    sigma_b2: float = 0.0

    def __post_init__(self):
        for name, value, low in (("sigma_w2", self.sigma_w2, "> 0"), ("sigma_b2", self.sigma_b2, ">= 0")):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or (value <= 0 if low == "> 0" else value < 0):
                raise ValueError(f"{name}: expected a finite real {low}, got {value!r}")
            object.__setattr__(self, name, float(value))

    def draw(self, rng, fan_out, fan_in, dtype):
        """``(W, b)`` of shapes ``(fan_out, fan_in)`` and ``(fan_out, 1)`` in ``dtype``."""
        W = rng.standard_normal((fan_out, fan_in)) * math.sqrt(self.sigma_w2 / fan_in)
        if self.sigma_b2 == 0.0:  # exact zeros (no -0.0), and no draw
            return W.astype(dtype), np.zeros((fan_out, 1), dtype=dtype)
        b = rng.standard_normal((fan_out, 1)) * math.sqrt(self.sigma_b2)
        return W.astype(dtype), b.astype(dtype)


def init_name(init):
    """The string a file stores for ``init`` (a name, or a :class:`Gaussian`)."""
    if isinstance(init, Gaussian):
        return f"gaussian:{init.sigma_w2!r}:{init.sigma_b2!r}"
    return init


def check_init(init, names):
    """``init`` as the net holds it: a name of ``names``, a :class:`Gaussian`,
    or a file's ``"gaussian:<sigma_w2>:<sigma_b2>"`` string (made a Gaussian)."""
    if isinstance(init, Gaussian):
        return init
    if isinstance(init, str) and init.startswith("gaussian:"):
        parts = init.split(":")
        try:
            values = [float(p) for p in parts[1:]]
        except ValueError:
            values = []
        if len(parts) != 3 or len(values) != 2:
            raise ValueError(f"init: expected 'gaussian:<sigma_w2>:<sigma_b2>', got {init!r}")
        return Gaussian(*values)
    if not isinstance(init, str) or init not in names:
        raise ValueError(f"init: got {init!r}, expected one of {sorted(names)} or an mc.Gaussian")
    return init
