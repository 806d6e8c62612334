"""The dispatch of the elementwise kernels: the compiled ones where the
setting (:mod:`mlpckpt.core._kernel_setting`) asks for them and the arrays
fit, else None (the caller runs NumPy's ufuncs).

Importing this module compiles (or loads from numba's cache) every kernel,
so that no call pays for it.
"""

import numpy as np

from ..core import _kernel_setting as setting
from ..core._kernel_setting import KERNELS, get_kernels, kernels_for, set_kernels  # re-exported

__all__ = ["KERNELS", "get_kernels", "set_kernels", "kernels_for", "fused_forward", "fused_derivative"]

_compiled = None
if setting.STATE["compiled"]:
    try:  # compiles (or loads from numba's cache) every kernel now, not in a call
        from . import _compiled
    except ImportError:  # numba is installed but broken: NumPy runs, as without it
        setting.compiled_unavailable()

_state = setting.STATE  # read on every layer


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
