"""Where a net's arrays live: the checks of a call routed to the net's backend,
and moving a net to another backend or device (:meth:`mlpckpt.MLP.to`).

NumPy nets go through :mod:`mlpckpt.model._batch` exactly as before; other
backends through :mod:`mlpckpt.model._foreign_batch`. Moving always goes through NumPy
copies of the parameters, so ``net.to("torch").to("numpy")`` holds the same
bits as ``net``. On CUDA, the first call whose schedule recomputes warns once
when the settings for deterministic kernels are missing.
"""

import os
import warnings

import numpy as np

from . import _batch as inputs, _foreign_batch as xinputs
from ..planning._lowering import forward_evals
from ..backends._backends import NUMPY, backend_of, describe, get_backend, is_foreign_array
from ..training._optimizers import Adam, SGD

__all__ = ["backend_of_net", "check_params", "check_batch", "check_input", "check_out", "zeros_grads",
           "numpy_params", "moved", "moved_optimizer", "deterministic_problems", "warn_if_nondeterministic"]


def placed(backend, weights, biases):
    """NumPy parameter lists on ``backend`` (NumPy's: the lists themselves)."""
    if backend.is_numpy:
        return weights, biases
    return [backend.from_numpy(W) for W in weights], [backend.from_numpy(b) for b in biases]


def describe_net(net):
    """The ``repr`` tail naming a net's backend and device ("" for NumPy)."""
    b = backend_of_net(net)
    return "" if b.is_numpy else f", backend={b.name!r}, device={b.device!r}"


_WHY = {"workspace": "the library's own allocator caches its buffers",
        "fit_lbfgs": "SciPy's L-BFGS-B works on NumPy arrays: train net.to('numpy') and move it back"}


def numpy_only(net, name, value):
    """``value``, unless it is set (not None) for a net on another backend: ValueError naming ``name``."""
    b = backend_of_net(net)
    if value is not None and not b.is_numpy:
        raise ValueError(f"{name}: NumPy nets only, this net is on {b.name} ({_WHY[name]})")
    return value


def backend_of_net(net):
    """The net's :class:`~mlpckpt.backends._backends.Backend` (NumPy for objects without one)."""
    return getattr(net, "backend", NUMPY)


def check_params(net):
    b = backend_of_net(net)
    if b.is_numpy:
        return inputs.check_params(net.weights, net.biases, net.sizes, net.dtype)
    return xinputs.check_params(net.weights, net.biases, net.sizes, net.dtype, b)


def _not_foreign(name, x):
    """``x`` for a NumPy net, unless it is another library's array (a tensor
    is never converted behind the caller's back): ValueError naming ``name``."""
    if not isinstance(x, np.ndarray) and is_foreign_array(x):
        raise ValueError(f"{name}: expected a NumPy array or array_like (the net's backend; move it "
                         f"there, or the net with net.to()), got {describe(x)}")
    return x


def check_batch(net, X, Y, loss):
    b = backend_of_net(net)
    if b.is_numpy:
        return inputs.check_batch(net, _not_foreign("X", X), _not_foreign("Y", Y), loss)
    return xinputs.check_batch(net, X, Y, loss, b)


def check_input(net, X):
    b = backend_of_net(net)
    if b.is_numpy:
        return inputs.check_input(_not_foreign("X", X), net.sizes[0], net.dtype)
    return xinputs.check_input(X, net.sizes[0], net.dtype, b)


def check_out(net, out, X, Y):
    b = backend_of_net(net)
    if b.is_numpy:
        return inputs.check_out(out, net.weights, net.biases, X, Y)
    return xinputs.check_out(out, net.weights, net.biases, X, Y, b)


def zeros_grads(net):
    """A :class:`~mlpckpt.model._batch.Grads` of C-contiguous zeros on the net's backend."""
    b = backend_of_net(net)
    rows, cols = net.sizes[1:], net.sizes[:-1]
    g = inputs.Grads([b.zeros((r, c), net.dtype) for r, c in zip(rows, cols)],
                     [b.zeros((r, 1), net.dtype) for r in rows])
    if b.is_numpy:  # the scratch of its overlap check, so that calls allocate none
        g._scratch = np.empty(4 * len(rows) + 2, dtype=np.intp)
    return g


def numpy_params(net):
    """NumPy copies (NumPy nets: the arrays themselves) of ``weights``, ``biases``."""
    b = backend_of_net(net)
    if b.is_numpy:
        return net.weights, net.biases
    return [b.to_numpy(W) for W in net.weights], [b.to_numpy(c) for c in net.biases]


def moved(net, backend, device=None):
    """``net``'s parameters on ``backend``/``device``: lists of new arrays (the same values)."""
    target = get_backend(backend, device)
    weights, biases = numpy_params(net)
    if target.is_numpy and not backend_of_net(net).is_numpy:
        return target, weights, biases  # fresh copies already
    return target, [target.from_numpy(W) for W in weights], [target.from_numpy(c) for c in biases]


def _to_numpy(arr):
    return arr if isinstance(arr, np.ndarray) else get_backend(backend_of(arr), _device(arr)).to_numpy(arr)


def _device(arr):
    name = backend_of(arr)
    return None if name == "cupy" else ("cpu" if name != "torch" else str(arr.device))


def moved_optimizer(opt, target):
    """A copy of an SGD or Adam whose state arrays live on ``target``; anything
    else (None, or what io.save will refuse with its own error) as it is."""
    if not isinstance(opt, (SGD, Adam)):
        return opt
    state = opt.state_dict()
    arrays = [a for per in state["blocks"].values() for a in per.values()]
    if target.is_numpy and all(isinstance(a, np.ndarray) for a in arrays):
        return opt  # already there: no copy
    state["blocks"] = {slot: {i: _to_numpy(a) for i, a in per.items()} for slot, per in state["blocks"].items()}
    moved_opt = type(opt).from_state(state, copy=True)
    if not target.is_numpy:
        moved_opt.state = {i: (tuple(target.from_numpy(a) for a in v) if isinstance(v, tuple)
                               else target.from_numpy(v)) for i, v in moved_opt.state.items()}
    return moved_opt


#: whether the determinism warning was given (once per process)
_WARNED = []
_CUBLAS_SETTINGS = (":4096:8", ":16:8")


def deterministic_problems(backend):
    """What keeps ``backend``'s kernels from being bitwise repeatable (a list of
    settings to make; empty off CUDA or when everything is set)."""
    if not backend.is_cuda:
        return []
    problems = []
    if os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in _CUBLAS_SETTINGS:
        problems.append("CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment before the first CUDA call")
    if backend.name == "torch":
        import torch

        if not torch.are_deterministic_algorithms_enabled():
            problems.append("torch.use_deterministic_algorithms(True)")
    return problems


def warn_if_nondeterministic(backend, program, n_layers):
    """Warn once, at the first CUDA call whose schedule recomputes, when the
    settings that make recomputed layers bitwise equal to the first pass are
    missing (paper_notes/backends.md, B3)."""
    if _WARNED or not backend.is_cuda or forward_evals(program) <= n_layers:
        return
    problems = deterministic_problems(backend)
    if problems:
        _WARNED.append(True)
        warnings.warn(f"mlpckpt: a recomputing strategy on {backend.name} {backend.device} is bitwise "
                      f"equal to StoreAll only with deterministic kernels; set {' and '.join(problems)}",
                      RuntimeWarning, stacklevel=4)
