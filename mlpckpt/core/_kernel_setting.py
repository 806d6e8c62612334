"""Which elementwise kernels run: NumPy's ufuncs or the compiled ones.

The choice is configuration, never a timing race (issue 13): ``"auto"`` (the
default) takes the compiled kernels of :mod:`mlpckpt.execution._compiled`
when numba is installed, ``"numba"`` requires them, ``"numpy"`` never uses
them. The environment variable ``MLPCKPT_KERNELS`` sets it at import
(benchmark children inherit it); :func:`set_kernels` changes it for the
process.

The setting lives here, below everything, because a call's memory depends on
it (a compiled kernel has its own temporaries): the planner reads it through
:func:`kernels_for` without importing the executor, and the executor's
dispatch (:mod:`mlpckpt.execution._kernels`) reads the same record.

The compiled kernels take real, C-contiguous float64 arrays only; anything
else (float32, complex steps of the gradient check, strided views) runs on
NumPy whatever the setting. Every strategy runs the same layers through the
same kernel, so results stay bitwise equal across strategies; the two
kernels differ from each other in the last bits (both within 2 ulp of the
correctly rounded value for the compiled ones; NumPy's as its libm).
"""

import importlib.util
import os

import numpy as np

from ._validate import check_choice

__all__ = ["KERNELS", "STATE", "get_kernels", "set_kernels", "kernels_for", "compiled_unavailable"]

#: the settings :func:`set_kernels` accepts
KERNELS = ("auto", "numba", "numpy")

#: the process's setting and what runs on float64: read by the dispatch on every layer
STATE = {"setting": "auto", "active": "numpy", "compiled": importlib.util.find_spec("numba") is not None}


def set_kernels(name):
    """Choose the elementwise kernels; returns the previous setting.

    Parameters
    ----------
    name : {"auto", "numba", "numpy"}
        ``"numba"`` without numba installed is a ValueError.
    """
    check_choice("kernels", name, KERNELS)
    if name == "numba" and not STATE["compiled"]:
        raise ValueError('kernels: got "numba", but numba is not installed (pip install "mlpckpt[fast]")')
    previous = STATE["setting"]
    STATE["setting"] = name
    STATE["active"] = "numba" if name != "numpy" and STATE["compiled"] else "numpy"
    return previous


def get_kernels():
    """``(setting, active)``: what was asked for and what runs on float64."""
    return STATE["setting"], STATE["active"]


def kernels_for(dtype):
    """The kernels a net of ``dtype`` runs: ``"numba"`` or ``"numpy"``."""
    return STATE["active"] if np.dtype(dtype) == np.float64 else "numpy"


def compiled_unavailable():
    """numba is installed but the compiled kernels would not load: NumPy's run
    (called once by :mod:`mlpckpt.execution._kernels` when that import fails)."""
    STATE["compiled"] = False
    STATE["active"] = "numpy"


_env = os.environ.get("MLPCKPT_KERNELS", "") or "auto"
if _env not in KERNELS:
    raise ValueError(f"MLPCKPT_KERNELS: got {_env!r}, expected one of {', '.join(KERNELS)}")
set_kernels(_env)
