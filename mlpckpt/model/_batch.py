"""A batch for a net: ``X``, ``Y`` and ``out=`` buffers validated, and
``X`` and ``Y`` canonicalised, once per call.

``X`` becomes a C-contiguous array of the net's dtype and shape
``(n_in, batch)`` (so that no result depends on the caller's layout);
``Y`` the canonical target form of :mod:`mlpckpt.core._losses`
(a C-contiguous ``(n_out, batch)`` array of the net's dtype, or int64
labels ``(batch,)`` for cross-entropy).
"""

from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from ..core._validate import as_real_array, check_finite
from ..core._losses import check_loss

__all__ = ["Grads", "check_batch", "check_input", "check_targets", "check_out", "check_params",
           "target_form"]


@dataclass
class Grads:
    """Gradients with the shapes of ``net.weights`` and ``net.biases``.

    Attributes
    ----------
    weights : list of ndarray, shapes (n_{k+1}, n_k)
    biases : list of ndarray, shapes (n_{k+1}, 1)
    """

    weights: list
    biases: list
    # Scratch of check_out's overlap test (one int per array it compares), kept
    # between calls so that a call allocates nothing that grows with depth.
    _scratch: object = field(default=None, init=False, repr=False, compare=False)


def check_batch(net, X, Y, loss):
    """``(X, Y)`` for a ``loss`` of ``net`` (anything with ``weights``,
    ``biases``, ``sizes``, ``output`` and ``dtype``): the net's parameters
    (:func:`check_params`) and the loss against the output checked, then
    :func:`check_input` and :func:`check_targets`."""
    check_params(net.weights, net.biases, net.sizes, net.dtype)
    check_loss(loss, net.output)
    X = check_input(X, net.sizes[0], net.dtype)
    return X, check_targets(Y, loss, net.sizes[-1], X.shape[1], net.dtype)


def check_input(X, n_in, dtype):
    """``X`` as a C-contiguous array of ``dtype`` and shape ``(n_in, batch)``."""
    X = as_real_array("X", X)
    if X.ndim != 2 or X.shape[0] != n_in or X.shape[1] < 1:
        hint = ""
        if X.ndim == 2 and X.shape[1] == n_in:
            hint = " (samples go in columns: pass X.T)"
        raise ValueError(f"X: expected shape ({n_in}, batch) with batch >= 1, got {X.shape}{hint}")
    # One cast to the net's dtype and C order (no copy when X already is):
    # the result must not depend on the layout of X.
    return check_finite("X", np.ascontiguousarray(X, dtype=dtype))


def check_targets(Y, loss, n_out, batch, dtype):
    """``Y`` in the canonical form of :mod:`mlpckpt.core._losses` for this loss."""
    Y = as_real_array("Y", Y)
    if loss == "cross_entropy" and Y.ndim == 1:
        if Y.shape != (batch,):
            raise ValueError(f"Y: expected labels of shape ({batch},), got {Y.shape}")
        check_finite("Y", Y)
        if Y.dtype.kind == "f" and not np.array_equal(Y, np.round(Y)):
            raise ValueError("Y: expected integer class labels, got non-integer values")
        # Range check before the cast: uint64 or huge float labels would wrap.
        lo, hi = Y.min(), Y.max()
        if lo < 0 or hi >= n_out:
            lo, hi = (int(v) if Y.dtype.kind != "f" else float(v) for v in (lo, hi))
            raise ValueError(
                f"Y: labels out of range: got values in [{lo}, {hi}], expected 0..{n_out - 1}"
            )
        return Y.astype(np.int64, copy=False)  # int64 labels are used as given
    if Y.ndim == 1 and n_out == 1 and loss != "cross_entropy":
        Y = Y.reshape(1, -1)
    if Y.shape != (n_out, batch):
        extra = f" or labels ({batch},)" if loss == "cross_entropy" else ""
        extra += f" or ({batch},)" if n_out == 1 and loss != "cross_entropy" else ""
        raise ValueError(f"Y: expected shape ({n_out}, {batch}){extra}, got {Y.shape}")
    # One explicit cast to the net's dtype and C order (a one-hot built as
    # np.eye(k)[:, labels] is F-ordered), so the loss never copies it again.
    Y = check_finite("Y", np.ascontiguousarray(Y, dtype=dtype))
    if loss == "bce" and (Y.min() < 0 or Y.max() > 1):
        raise ValueError(
            f"Y: bce targets must lie in [0, 1], got values in [{Y.min()}, {Y.max()}]"
        )
    if loss == "cross_entropy" and Y.min() < 0:
        raise ValueError(f"Y: class probabilities must be >= 0, got a minimum of {Y.min()}")
    return Y


def target_form(Y):
    """How a plan names canonical targets: ``"labels"`` (int) or ``"onehot"``."""
    return "labels" if Y.ndim == 1 else "onehot"


def _layout(a):
    if a.flags.c_contiguous:
        return "C-contiguous"
    return "Fortran-ordered" if a.flags.f_contiguous else "non-contiguous"


def _describe(a):
    if not isinstance(a, np.ndarray):
        return type(a).__name__
    return f"a {_layout(a)} {a.dtype} array of shape {a.shape}"


def check_params(weights, biases, sizes, dtype):
    """Refuse parameters a user set that the net cannot use as they are:
    ``weights[k]`` must be a C-contiguous array of ``dtype`` and shape
    ``(sizes[k+1], sizes[k])``, ``biases[k]`` one of shape ``(sizes[k+1], 1)``
    (flag, shape and dtype checks only: O(n), no copies)."""
    n = len(sizes) - 1
    for name, arrays, cols in (("weights", weights, None), ("biases", biases, 1)):
        if not isinstance(arrays, (list, tuple)) or len(arrays) != n:
            got = len(arrays) if isinstance(arrays, (list, tuple)) else type(arrays).__name__
            raise ValueError(f"{name}: expected a list of {n} arrays, got {got}")
        for k, a in enumerate(arrays):
            shape = (sizes[k + 1], sizes[k] if cols is None else 1)
            if not (isinstance(a, np.ndarray) and a.shape == shape and a.dtype == dtype
                    and a.flags.c_contiguous):
                raise ValueError(f"{name}[{k}]: expected a C-contiguous {dtype} array of shape "
                                 f"{shape}, got {_describe(a)}")


def _extent(a):
    """The byte range ``[start, end)`` that holds ``a``'s elements (exact for
    a C-contiguous array)."""
    start = end = a.ctypes.data
    for n, s in zip(a.shape, a.strides):
        if s < 0:
            start += s * (n - 1)
        else:
            end += s * (n - 1)
    return start, end + a.itemsize


_CHUNK = 256  # of the vectorised comparisons: temporaries of a few KiB


def _out_names(dW, db):
    for k in range(len(dW)):
        yield f"out.weights[{k}]", dW[k]
    for k in range(len(db)):
        yield f"out.biases[{k}]", db[k]


def _overlap_error(pairs):
    # The error path only: name the first two buffers that overlap.
    ranges = sorted((*_extent(a), name) for name, a in pairs)
    for (_, end, first), (start, _, second) in zip(ranges, ranges[1:]):
        if start < end:
            raise ValueError(f"{second}: shares memory with {first} (each out= buffer "
                             "must have memory of its own)")


def check_out(out, weights, biases, X=None, Y=None):
    """``out=`` buffers as ``(dW, db)`` lists: a :class:`Grads` of lists whose
    arrays have the shapes and dtypes of ``weights`` and ``biases``, are
    writable and C-contiguous, and share memory with no weight, bias, ``X``,
    ``Y`` or other buffer. All checks come before anything is written.

    The overlap test is O(n log n), in a scratch kept on ``out``: a fast
    pass sorts the arrays' memory owners (arrays owning their memory share
    none unless they are one); arrays sharing an owner get the exact pass,
    which sorts their byte ranges (exact, as they are C-contiguous). ``weights``, ``biases`` must have passed :func:`check_params`.
    """
    if not isinstance(out, Grads):
        raise ValueError(f"out: expected a Grads object, got {type(out).__name__}")
    for name, have, want in (("weights", out.weights, weights), ("biases", out.biases, biases)):
        if not isinstance(have, (list, tuple)):
            raise ValueError(f"out.{name}: expected a list of {len(want)} arrays, "
                             f"got {type(have).__name__}")
        if len(have) != len(want):
            raise ValueError(f"out.{name}: expected {len(want)} arrays, got {len(have)}")
        for k, (h, w) in enumerate(zip(have, want)):
            if not isinstance(h, np.ndarray) or h.shape != w.shape or h.dtype != w.dtype:
                got = (h.shape, h.dtype) if isinstance(h, np.ndarray) else type(h).__name__
                raise ValueError(
                    f"out.{name}[{k}]: expected an array of shape {w.shape} "
                    f"and dtype {w.dtype}, got {got}"
                )
            if not h.flags.writeable:
                raise ValueError(f"out.{name}[{k}]: expected a writable array, got a read-only one")
            if not h.flags.c_contiguous:
                raise ValueError(f"out.{name}[{k}]: expected a C-contiguous array, "
                                 f"got {_describe(h)}")
    dW, db = out.weights, out.biases
    _check_disjoint(out, dW, db, weights, biases, X, Y)
    return dW, db


def _root(a):
    # The array that owns ``a``'s memory (NumPy links a view to it directly).
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a if a.base is None and a.flags.owndata else None


def _any_next(bad, left, right):
    # Whether bad(left[i], right[i + 1]) for some i, in small chunks.
    last = len(left) - 1
    return any(bad(left[i : min(i + _CHUNK, last)], right[i + 1 : min(i + _CHUNK, last) + 1]).any()
               for i in range(0, last, _CHUNK))


def _check_disjoint(out, dW, db, weights, biases, X, Y):
    # O(n log n) and no allocation that grows with depth (a scratch on out).
    # Fast test: arrays that own their memory share none unless identical, so
    # keys 2 * id(owner) + (1 for a buffer, 0 for the net's arrays), sorted,
    # find every owner a buffer shares. Owners shared with a buffer, or not
    # plain owning arrays (a bytes buffer, an mmap), get the exact test.
    n_out = len(dW) + len(db)
    batch = () if X is None else (X, Y)
    m = n_out + len(weights) + len(biases) + len(batch)
    keys = out._scratch
    if not isinstance(keys, np.ndarray) or keys.shape != (m,):
        keys = out._scratch = np.empty(m, dtype=np.intp)
    exact = False
    for i, a in enumerate(chain(dW, db, weights, biases, batch)):
        root = _root(a)
        if root is None:
            exact = True
            break
        keys[i] = 2 * id(root) + (i < n_out)
    if not exact:
        keys.sort()
        exact = _any_next(lambda l, r: ((l >> 1) == (r >> 1)) & ((l | r) & 1 == 1), keys, keys)
    if exact:
        _check_ranges(keys, dW, db, weights, biases, batch)


def _check_ranges(keys, dW, db, weights, biases, batch):
    # Exact: byte ranges, exact for C-contiguous buffers. Non-empty ranges are
    # disjoint iff the i-th smallest end is <= the (i+1)-th smallest start,
    # and then sorting pairs each start with its end.
    n_out = len(dW) + len(db)
    starts, ends = keys[:n_out], keys[n_out : 2 * n_out]
    for i, a in enumerate(chain(dW, db)):
        starts[i] = start = a.ctypes.data
        ends[i] = start + a.nbytes
    starts.sort()
    ends.sort()
    if _any_next(np.greater, ends, starts):
        _overlap_error(_out_names(dW, db))
        raise ValueError("out: buffers share memory")  # not reached: the scan names two
    # Each of the net's arrays against the one buffer starting below its end.
    for a in chain(weights, biases, batch):
        lo, hi = _extent(a)
        i = int(np.searchsorted(starts, hi)) - 1
        if i >= 0 and ends[i] > lo:
            _alias_error(a, lo, hi, dW, db, weights, biases, batch)


def _alias_error(a, lo, hi, dW, db, weights, biases, batch):
    # The error path only: name the buffer and the array it aliases.
    names = chain((f"weights[{k}]" for k in range(len(weights))),
                  (f"biases[{k}]" for k in range(len(biases))), ("X", "Y"))
    name = next(n for n, b in zip(names, chain(weights, biases, batch)) if b is a)
    for which, b in _out_names(dW, db):
        b_lo, b_hi = _extent(b)
        if b_lo < hi and lo < b_hi:
            raise ValueError(f"{which}: shares memory with {name} (out= buffers must not "
                             "alias the net's parameters or the batch)")
