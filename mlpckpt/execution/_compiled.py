"""The compiled array kernels over :mod:`mlpckpt.execution._fastmath`'s scalar maps.

``FORWARD[name](z, b)`` does ``z <- f(z + b)`` in one pass (the bias add
fused into the map, where XLA's lead over NumPy came from; issue 13) and
``DERIVATIVE[name](a, da)`` does ``da *= f'(a)`` without touching ``a``.
Each is compiled for its one signature (C-contiguous float64 ``z``, ``a``,
``da``; any 2-D float64 ``b``) when this module is imported, or loaded from
numba's disk cache, so no call compiles; a call allocates no array. Which
calls come here is :mod:`mlpckpt.execution._kernels`' decision.
"""

try:
    import numba
except ImportError as error:  # an optional extra: NumPy's kernels run without it
    raise ImportError('the compiled kernels need numba: pip install "mlpckpt[fast]"') from error

from . import _fastmath as fm

__all__ = ["FORWARD", "DERIVATIVE"]

_FORWARD_SIG = "void(float64[:, ::1], float64[:, :])"
_DERIVATIVE_SIG = "void(float64[:, ::1], float64[:, ::1])"


# One top-level function per kernel (numba's disk cache tells closures of
# one factory apart by name and line only, so they would recompile).
_forward_kernel = numba.njit(_FORWARD_SIG, cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
_derivative_kernel = numba.njit(_DERIVATIVE_SIG, cache=True, nogil=True, error_model="numpy",
                                fastmath={"contract"})


@_forward_kernel
def _identity_forward(z, b):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = fm._identity(z[i, j] + b[i, 0])


@_forward_kernel
def _tanh_forward(z, b):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = fm.tanh(z[i, j] + b[i, 0])


@_forward_kernel
def _sigmoid_forward(z, b):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = fm.sigmoid(z[i, j] + b[i, 0])


@_forward_kernel
def _softplus_forward(z, b):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = fm.softplus(z[i, j] + b[i, 0])


@_forward_kernel
def _relu_forward(z, b):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = fm._relu(z[i, j] + b[i, 0])


@_forward_kernel
def _leaky_relu_forward(z, b):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] = fm._leaky_relu(z[i, j] + b[i, 0])


@_derivative_kernel
def _tanh_mul_derivative(a, da):
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            da[i, j] *= fm._tanh_derivative(a[i, j])


@_derivative_kernel
def _sigmoid_mul_derivative(a, da):
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            da[i, j] *= fm._sigmoid_derivative(a[i, j])


@_derivative_kernel
def _softplus_mul_derivative(a, da):
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            da[i, j] *= fm._softplus_derivative(a[i, j])


@_derivative_kernel
def _relu_mul_derivative(a, da):
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            da[i, j] *= fm._relu_derivative(a[i, j])


@_derivative_kernel
def _leaky_relu_mul_derivative(a, da):
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            da[i, j] *= fm._leaky_relu_derivative(a[i, j])


#: name -> kernel(z, b): z (n, batch) C-contiguous float64 <- f(z + b), b (n, 1);
#: "identity" is the bias add alone (also the last layer's logits)
FORWARD = {
    "identity": _identity_forward,
    "tanh": _tanh_forward,
    "sigmoid": _sigmoid_forward,
    "softplus": _softplus_forward,
    "relu": _relu_forward,
    "leaky_relu": _leaky_relu_forward,
}
#: name -> kernel(a, da): da *= f'(z) from a = f(z), both (n, batch)
#: C-contiguous float64; a is left as it was (identity needs none)
DERIVATIVE = {
    "tanh": _tanh_mul_derivative,
    "sigmoid": _sigmoid_mul_derivative,
    "softplus": _softplus_mul_derivative,
    "relu": _relu_mul_derivative,
    "leaky_relu": _leaky_relu_mul_derivative,
}
