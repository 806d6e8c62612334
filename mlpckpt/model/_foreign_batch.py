"""A batch for a net on another backend (PyTorch, CuPy, array-api-strict):
the checks of :mod:`mlpckpt.model._batch`, written against the array API.

``X`` and ``Y`` must already live on the net's backend and device (moving a
batch between devices is the caller's choice, never a hidden copy): else a
``ValueError`` naming ``X`` (or ``Y``), what it got and what was expected.
Integer and bool inputs are cast to the net's dtype, complex ones refused;
the result is C-contiguous, so no result depends on the caller's layout.
"""

from ..backends._backends import describe

__all__ = ["check_params", "check_batch", "check_out"]


def _expected(backend):
    lib = {"torch": "a PyTorch tensor", "cupy": "a CuPy array"}.get(backend.name, f"an {backend.name} array")
    return f"{lib} on {backend.device}"


def _own(name, x, backend):
    if not backend.owns(x):
        raise ValueError(f"{name}: expected {_expected(backend)} (the net's backend and device; move it "
                         f"there, or the net with net.to()), got {describe(x)}")
    return x


def _real(name, x, backend):
    xp = backend.xp
    if xp.isdtype(x.dtype, "complex floating"):
        raise ValueError(f"{name}: expected a real numeric array, got dtype {x.dtype} "
                         "(complex numbers are refused)")
    return x


def _finite(name, x, backend):
    xp = backend.xp
    if xp.isdtype(x.dtype, "real floating") and not bool(xp.all(xp.isfinite(x))):
        kind = "NaN" if bool(xp.any(xp.isnan(x))) else "inf"
        raise ValueError(f"{name}: holds {kind}, expected finite values")
    return x


def _cast(x, dtype, backend):
    want = backend.dtype(dtype)
    if x.dtype != want:
        x = backend.xp.astype(x, want)
    return backend.contiguous(x)


def check_params(weights, biases, sizes, dtype, backend):
    """``weights[k]``, ``biases[k]``: C-contiguous arrays of the backend, on its
    device, of ``dtype`` and the shapes of ``sizes`` (O(n), no copies)."""
    n = len(sizes) - 1
    want = backend.dtype(dtype)
    for name, arrays, cols in (("weights", weights, None), ("biases", biases, 1)):
        if not isinstance(arrays, (list, tuple)) or len(arrays) != n:
            got = len(arrays) if isinstance(arrays, (list, tuple)) else type(arrays).__name__
            raise ValueError(f"{name}: expected a list of {n} arrays, got {got}")
        for k, a in enumerate(arrays):
            shape = (sizes[k + 1], sizes[k] if cols is None else 1)
            if not (backend.owns(a) and tuple(a.shape) == shape and a.dtype == want
                    and backend.is_c_contiguous(a)):
                raise ValueError(f"{name}[{k}]: expected a C-contiguous {dtype} array of shape {shape}, "
                                 f"{_expected(backend)}, got {describe(a)}")


def check_batch(net, X, Y, loss, backend):
    """``(X, Y)`` canonical for ``loss`` of ``net`` (see :func:`mlpckpt.model._batch.check_batch`)."""
    from ..core._losses import check_loss

    check_params(net.weights, net.biases, net.sizes, net.dtype, backend)
    check_loss(loss, net.output)
    X = check_input(X, net.sizes[0], net.dtype, backend)
    return X, check_targets(Y, loss, net.sizes[-1], X.shape[1], net.dtype, backend)


def check_input(X, n_in, dtype, backend):
    """``X`` as a C-contiguous array of ``dtype``, shape ``(n_in, batch)``, on the device."""
    X = _real("X", _own("X", X, backend), backend)
    shape = tuple(X.shape)
    if len(shape) != 2 or shape[0] != n_in or shape[1] < 1:
        hint = " (samples go in columns: pass X.T)" if len(shape) == 2 and shape[1] == n_in else ""
        raise ValueError(f"X: expected shape ({n_in}, batch) with batch >= 1, got {shape}{hint}")
    return _finite("X", _cast(X, dtype, backend), backend)


def check_targets(Y, loss, n_out, batch, dtype, backend):
    """``Y`` in the canonical form of :mod:`mlpckpt.core._losses` (labels: int64)."""
    xp = backend.xp
    Y = _real("Y", _own("Y", Y, backend), backend)
    shape = tuple(Y.shape)
    if loss == "cross_entropy" and len(shape) == 1:
        if shape != (batch,):
            raise ValueError(f"Y: expected labels of shape ({batch},), got {shape}")
        if xp.isdtype(Y.dtype, "real floating"):
            _finite("Y", Y, backend)
            if not bool(xp.all(Y == xp.round(Y))):
                raise ValueError("Y: expected integer class labels, got non-integer values")
        lo, hi = xp.min(Y), xp.max(Y)
        if bool(lo < 0) or bool(hi >= n_out):
            raise ValueError(f"Y: labels out of range: got values in [{float(lo):g}, {float(hi):g}], "
                             f"expected 0..{n_out - 1}")
        return _cast(Y, "int64", backend)  # no copy of int64 labels
    if len(shape) == 1 and n_out == 1 and loss != "cross_entropy":
        Y = xp.reshape(Y, (1, -1))
        shape = tuple(Y.shape)
    if shape != (n_out, batch):
        extra = f" or labels ({batch},)" if loss == "cross_entropy" else ""
        extra += f" or ({batch},)" if n_out == 1 and loss != "cross_entropy" else ""
        raise ValueError(f"Y: expected shape ({n_out}, {batch}){extra}, got {shape}")
    Y = _finite("Y", _cast(Y, dtype, backend), backend)
    lo, hi = float(xp.min(Y)), float(xp.max(Y))
    if loss == "bce" and (lo < 0 or hi > 1):
        raise ValueError(f"Y: bce targets must lie in [0, 1], got values in [{lo}, {hi}]")
    if loss == "cross_entropy" and lo < 0:
        raise ValueError(f"Y: class probabilities must be >= 0, got a minimum of {lo}")
    return Y


def _extent(a, backend):
    # [start, end) bytes of a C-contiguous array (None: the library shows no address)
    if backend.name == "torch":
        return a.data_ptr(), a.data_ptr() + a.numel() * a.element_size()
    if backend.name == "cupy":
        return a.data.ptr, a.data.ptr + a.nbytes
    return None


def check_out(out, weights, biases, X, Y, backend):
    """``out=`` buffers as ``(dW, db)``: backend arrays of the parameters' shapes
    and dtype, C-contiguous, sharing memory with no parameter, X, Y or other
    buffer (by address ranges where the library shows them; else by identity)."""
    from ._batch import Grads

    if not isinstance(out, Grads):
        raise ValueError(f"out: expected a Grads object, got {type(out).__name__}")
    for name, have, want in (("weights", out.weights, weights), ("biases", out.biases, biases)):
        if not isinstance(have, (list, tuple)) or len(have) != len(want):
            got = len(have) if isinstance(have, (list, tuple)) else type(have).__name__
            raise ValueError(f"out.{name}: expected a list of {len(want)} arrays, got {got}")
        for k, (h, w) in enumerate(zip(have, want)):
            if not (backend.owns(h) and tuple(h.shape) == tuple(w.shape) and h.dtype == w.dtype
                    and backend.is_c_contiguous(h)):
                raise ValueError(f"out.{name}[{k}]: expected a C-contiguous array of shape {tuple(w.shape)} "
                                 f"and dtype {w.dtype}, {_expected(backend)}, got {describe(h)}")
    names = [f"out.weights[{k}]" for k in range(len(out.weights))] + \
            [f"out.biases[{k}]" for k in range(len(out.biases))]
    bufs = list(out.weights) + list(out.biases)
    others = [(f"weights[{k}]", a) for k, a in enumerate(weights)] + \
             [(f"biases[{k}]", a) for k, a in enumerate(biases)] + [("X", X), ("Y", Y)]
    spans = [(_extent(a, backend), name, True) for name, a in zip(names, bufs)]
    spans += [(_extent(a, backend), name, False) for name, a in others]
    if any(s is None for s, _, _ in spans):  # identity only
        seen = {}
        for (_, name, _), a in zip(spans, bufs + [a for _, a in others]):
            if id(a) in seen:
                raise ValueError(f"{name}: shares memory with {seen[id(a)]} (each out= buffer "
                                 "must have memory of its own)")
            seen[id(a)] = name
        return out.weights, out.biases
    spans = sorted((s, e, name, is_buf) for (s, e), name, is_buf in spans if e > s)
    reach = None  # the open span reaching furthest so far
    for start, end, name, is_buf in spans:
        if reach is not None and start < reach[0] and (is_buf or reach[2]):
            raise ValueError(f"{name if is_buf else reach[1]}: shares memory with "
                             f"{reach[1] if is_buf else name} (out= buffers must have memory of their own "
                             "and must not alias the net's parameters or the batch)")
        if reach is None or end > reach[0]:
            reach = (end, name, is_buf)
    return out.weights, out.biases
