"""Which elementwise kernels run: NumPy's ufuncs or the compiled ones.

The choice is configuration, never a timing race (issue 13): ``"auto"`` (the
default) takes the compiled kernels of :mod:`mlpckpt.execution._compiled` when numba is
installed, ``"numba"`` requires them, ``"numpy"`` never uses them. The
environment variable ``MLPCKPT_KERNELS`` sets it at import (benchmark
children inherit it); :func:`set_kernels` changes it for the process.

The compiled kernels take real, C-contiguous float64 arrays only; anything
else (float32, complex steps of the gradient check, strided views) runs on
NumPy whatever the setting. Every strategy runs the same layers through the
same kernel, so results stay bitwise equal across strategies; the two
kernels differ from each other in the last bits (both within 2 ulp of the
correctly rounded value for the compiled ones; NumPy's as its libm).
"""

import os

import numpy as np

from ..core._validate import check_choice

__all__ = ["KERNELS", "get_kernels", "set_kernels", "kernels_for", "fused_forward", "fused_derivative"]

#: the settings :func:`set_kernels` accepts
KERNELS = ("auto", "numba", "numpy")

try:  # compiles (or loads from numba's cache) every kernel now, not in a call
    from . import _compiled
except ImportError:  # numba is an optional extra: pip install "mlpckpt[fast]"
    _compiled = None

_state = {"setting": "auto", "active": "numpy"}


def set_kernels(name):
    """Choose the elementwise kernels; returns the previous setting.

    Parameters
    ----------
    name : {"auto", "numba", "numpy"}
        ``"numba"`` without numba installed is a ValueError.
    """
    check_choice("kernels", name, KERNELS)
    if name == "numba" and _compiled is None:
        raise ValueError('kernels: got "numba", but numba is not installed (pip install "mlpckpt[fast]")')
    previous = _state["setting"]
    _state["setting"] = name
    _state["active"] = "numba" if name != "numpy" and _compiled is not None else "numpy"
    return previous


def get_kernels():
    """``(setting, active)``: what was asked for and what runs on float64."""
    return _state["setting"], _state["active"]


def kernels_for(dtype):
    """The kernels a net of ``dtype`` runs: ``"numba"`` or ``"numpy"``."""
    return _state["active"] if np.dtype(dtype) == np.float64 else "numpy"


def _fits(x):
    return x.dtype == np.float64 and x.flags.c_contiguous and x.ndim == 2


def fused_forward(name, z, b):
    """The compiled ``z <- f(z + b)`` for these arrays, or None (use NumPy)."""
    if _state["active"] != "numba" or not (_fits(z) and b.dtype == np.float64 and b.ndim == 2):
        return None
    return _compiled.FORWARD.get(name)


def fused_derivative(name, a, da):
    """The compiled ``da *= f'(a)`` for these arrays, or None (use NumPy)."""
    if _state["active"] != "numba" or not (_fits(a) and _fits(da)):
        return None
    return _compiled.DERIVATIVE.get(name)


_env = os.environ.get("MLPCKPT_KERNELS", "") or "auto"
if _env not in KERNELS:
    raise ValueError(f"MLPCKPT_KERNELS: got {_env!r}, expected one of {', '.join(KERNELS)}")
set_kernels(_env)
