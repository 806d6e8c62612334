"""Array libraries the net can live on: ``backend=`` and ``device=``.

A :class:`Backend` names the array library, its array-API namespace (from
``array-api-compat``), the device and the table of in-place operations the
core runs (:mod:`mlpckpt.core._ops`). NumPy is the default and unchanged; PyTorch
(CPU or CUDA), CuPy and, for the test suite, ``array-api-strict`` run the
same core. Parameters are always drawn by NumPy's seeded Generator and
converted (:meth:`Backend.from_numpy`), so a seed gives the same initial
weights on every backend; files are always NumPy ``.npz``.
"""

import functools

import numpy as np

from ..core._validate import check_choice
from ._array_api import ArrayAPIOps
from ..core._ops import NUMPY_OPS, TorchOps, UfuncOps

__all__ = ["BACKENDS", "Backend", "get_backend", "backend_of", "ops_for", "describe", "is_foreign_array", "NUMPY"]

#: backend names ``MLP(backend=...)`` accepts ("array_api_strict": the
#: standard's reference namespace, for testing the core)
BACKENDS = ("numpy", "torch", "cupy", "array_api_strict")

_INSTALL = {"torch": "pip install torch", "cupy": "pip install cupy-cuda12x",
            "array_api_strict": "pip install array-api-strict"}


class Backend:
    """One array library on one device.

    Attributes
    ----------
    name : str
        One of :data:`BACKENDS`.
    device : str
        ``"cpu"``, ``"cuda:0"``, ... (canonical: CUDA devices carry their index).
    xp : module
        The array-API namespace (``array_api_compat.torch``, ...).
    ops : UfuncOps, TorchOps or ArrayAPIOps
        The in-place operations (:mod:`mlpckpt.core._ops`).
    """

    def __init__(self, name, device, xp, ops, native_device):
        self.name, self.device, self.xp, self.ops = name, device, xp, ops
        self._device = native_device  # the library's own device object

    def __repr__(self):
        return f"Backend({self.name!r}, device={self.device!r})"

    @property
    def is_numpy(self):
        return self.name == "numpy"

    @property
    def kind(self):
        """What the memory model keys on: ``"numpy"``, ``"torch:cpu"``, ``"torch:cuda"``, ``"cupy:cuda"``, ..."""
        return "numpy" if self.is_numpy else f"{self.name}:{self.device.split(':')[0]}"

    def __eq__(self, other):
        return isinstance(other, Backend) and (self.name, self.device) == (other.name, other.device)

    def __hash__(self):
        return hash((self.name, self.device))

    @property
    def is_cuda(self):
        return self.device.startswith("cuda")

    def dtype(self, dtype):
        """The library's dtype for a NumPy dtype or name (``float64``, ``complex128``,
        ``int64``, ...); the library's own dtypes pass through."""
        if isinstance(dtype, (str, type, np.dtype)):
            return getattr(self.xp, np.dtype(dtype).name)
        return dtype

    def empty(self, shape, dtype):
        """An uninitialised C-contiguous array on the device (``dtype``: NumPy's or the library's)."""
        if self.is_numpy:
            return np.empty(shape, dtype=dtype)
        return self.xp.empty(shape, dtype=self.dtype(dtype), device=self._device)

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=self.dtype(dtype), device=self._device) if not self.is_numpy \
            else np.zeros(shape, dtype=dtype)

    def from_numpy(self, arr):
        """A C-contiguous copy of the NumPy array ``arr`` on the device (the same values)."""
        arr = np.ascontiguousarray(arr)
        if self.is_numpy:
            return arr.copy()
        out = self.xp.asarray(arr, device=self._device, copy=True)
        return self.contiguous(out)

    def to_numpy(self, x):
        """A NumPy copy of ``x`` (from any device)."""
        if self.is_numpy:
            return np.array(x, copy=True)
        if self.name == "torch":
            return x.detach().cpu().numpy().copy()
        if self.name == "cupy":
            return x.get()
        return np.asarray(self.xp.asarray(x, copy=True))  # array-api-strict exports a buffer

    def contiguous(self, x):
        if self.name == "torch":
            return x.contiguous()
        if self.name == "cupy":
            return self.xp.ascontiguousarray(x)
        return x  # NumPy is handled by the caller; the strict namespace has no layouts

    def owns(self, x):
        """Whether ``x`` is an array of this library on this device."""
        if self.is_numpy:
            return isinstance(x, np.ndarray)
        if not _compat().is_array_api_obj(x) or isinstance(x, np.ndarray):
            return False
        try:
            return _compat().array_namespace(x) is self.xp and _canonical(self.name, x.device) == self.device
        except TypeError:
            return False

    def is_c_contiguous(self, x):
        if self.name == "torch":
            return x.is_contiguous()
        if self.name in ("numpy", "cupy"):
            return x.flags.c_contiguous
        return True

    def describe(self, x):
        """What ``x`` is, for error messages: its library, device, dtype, shape."""
        return describe(x)

    def synchronize(self):
        """Wait for the device's queued work (a no-op on the CPU): for timing."""
        if self.is_cuda and self.name == "torch":
            import torch

            torch.cuda.synchronize(self._device)
        elif self.is_cuda:
            import cupy

            cupy.cuda.Device().synchronize()

    def item(self, value):
        """A Python float (or complex) of a 0-d array (a device sync)."""
        if self.is_numpy:
            return value
        return complex(value) if self.ops.iscomplexobj(value) else float(value)


def _compat():
    import array_api_compat  # a small pure-Python dependency

    return array_api_compat


def is_foreign_array(x):
    """Whether ``x`` is an array of a library other than NumPy (no import for NumPy arrays)."""
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        return False
    return bool(_compat().is_array_api_obj(x))


def describe(x):
    """A phrase naming the array library, device, dtype and shape of ``x``."""
    if isinstance(x, np.ndarray):
        return f"a NumPy {x.dtype} array of shape {x.shape}"
    compat = _compat()
    if compat.is_array_api_obj(x):
        lib = ("PyTorch tensor" if compat.is_torch_array(x) else "CuPy array" if compat.is_cupy_array(x)
               else f"{type(x).__module__.split('.')[0]} array")
        shape = tuple(int(s) for s in x.shape)
        dev = _canonical("torch" if compat.is_torch_array(x) else "", x.device)
        return f"a {lib} ({x.dtype}, shape {shape}) on {dev}"
    return type(x).__name__


def _canonical(name, device):
    text = str(device)
    if name == "cupy" or text.startswith("<CUDA Device"):  # CuPy's Device(0)
        return f"cuda:{getattr(device, 'id', 0)}"
    if text == "cuda":
        import torch

        return f"cuda:{torch.cuda.current_device()}"
    if "CPU_DEVICE" in text:  # array-api-strict
        return "cpu"
    return text


def _import(name):
    try:
        if name == "torch":
            import array_api_compat.torch as xp
            import torch

            return xp, TorchOps(torch)
        if name == "cupy":
            import array_api_compat.cupy as xp
            import cupy

            return xp, UfuncOps(cupy)
        import array_api_strict as xp

        return xp, ArrayAPIOps(xp)
    except ImportError as exc:
        raise ValueError(f"backend: {name!r} needs a package that is not installed "
                         f"({_INSTALL[name]}): {exc}") from None


@functools.lru_cache(maxsize=None)
def get_backend(name="numpy", device=None):
    """The :class:`Backend` for ``name`` on ``device`` (cached).

    Parameters
    ----------
    name : {"numpy", "torch", "cupy", "array_api_strict"}
    device : str, optional
        ``"cpu"`` or ``"cuda"``/``"cuda:k"`` as the library names it; default
        ``"cpu"`` (CuPy: the current CUDA device). NumPy and the strict
        namespace run on the CPU only.
    """
    check_choice("backend", name, BACKENDS)
    if device is not None and not isinstance(device, str):
        device = str(device)
    if name == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"device: got {device!r}, expected 'cpu' or None for backend 'numpy'")
        return NUMPY
    xp, ops = _import(name)
    if name == "array_api_strict":
        if device not in (None, "cpu"):
            raise ValueError(f"device: got {device!r}, expected 'cpu' or None for backend 'array_api_strict'")
        return Backend(name, "cpu", xp, ops, xp.Device("CPU_DEVICE"))
    if name == "torch":
        import torch

        try:
            native = torch.device(device or "cpu")
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device: got {device!r}, expected 'cpu', 'cuda' or 'cuda:k' ({exc})") from None
        if native.type not in ("cpu", "cuda"):
            raise ValueError(f"device: got {device!r}, expected 'cpu', 'cuda' or 'cuda:k'")
        if native.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(f"device: got {device!r}, but PyTorch sees no CUDA device")
            native = torch.device("cuda", native.index if native.index is not None else torch.cuda.current_device())
        return Backend(name, str(native), xp, ops, native)
    import cupy  # imported above by _import

    text = device or "cuda"
    if text == "cpu" or not text.startswith("cuda"):
        raise ValueError(f"device: got {device!r}, expected 'cuda' or 'cuda:k' for backend 'cupy'")
    index = int(text.split(":")[1]) if ":" in text else cupy.cuda.runtime.getDevice()
    return Backend(name, f"cuda:{index}", xp, ops, cupy.cuda.Device(index))


NUMPY = Backend("numpy", "cpu", np, NUMPY_OPS, None)


def backend_of(x):
    """The backend name of an array (``"numpy"`` for anything NumPy can read)."""
    if isinstance(x, np.ndarray):
        return "numpy"
    compat = _compat()
    if compat.is_torch_array(x):
        return "torch"
    if compat.is_cupy_array(x):
        return "cupy"
    if compat.is_array_api_strict_namespace(getattr(x, "__array_namespace__", lambda: None)()):
        return "array_api_strict"
    return "numpy"


def ops_for(x):
    """The operations (:mod:`mlpckpt.core._ops`) of the library ``x`` belongs to."""
    if isinstance(x, np.ndarray):
        return NUMPY.ops
    name = backend_of(x)
    return NUMPY.ops if name == "numpy" else get_backend(name, "cpu" if name != "cupy" else None).ops
