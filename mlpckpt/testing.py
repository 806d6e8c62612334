"""Helpers for testing code that plugs into mlpckpt.

For users who write their own strategies (a :class:`mlpckpt.Strategy`, an
explicit :class:`mlpckpt.Actions` schedule) or their own kernels, and want to
hold them to the library's own promise: the gradients of every schedule are
*bitwise* equal to plain backprop's. The library's test suite uses these
helpers too.

- :func:`assert_bitwise_equal` compares two arrays, or two sequences of
  arrays such as ``g.weights + g.biases`` of two :class:`mlpckpt.Grads`, bit
  for bit, and on failure names the block, the index and both values.
- :func:`make_data` draws a batch ``(X, Y)`` whose targets suit a loss.

The module needs NumPy only and imports nothing else of mlpckpt.

Examples
--------
>>> import mlpckpt as mc
>>> from mlpckpt.testing import assert_bitwise_equal, make_data
>>> net = mc.MLP([4, 8, 8, 3], activation="tanh", seed=0)
>>> X, Y = make_data(net.sizes, 16, "mse", seed=1)
>>> loss0, ref = net.loss_and_grad(X, Y)
>>> loss1, got = net.loss_and_grad(X, Y, strategy=mc.Revolve(0))
>>> assert_bitwise_equal(ref.weights + ref.biases, got.weights + got.biases)
"""

import numpy as np

__all__ = ["assert_bitwise_equal", "make_data"]

#: the losses :func:`make_data` draws targets for
LOSSES = ("mse", "bce", "cross_entropy")


def assert_bitwise_equal(a, b, *, err_msg=""):
    """Assert that two arrays, or two sequences of arrays, hold the same bits.

    Two arrays are bitwise equal when they have the same shape, the same
    dtype and, element by element, the same bits. For floating-point and
    complex dtypes this is stricter than ``np.array_equal``: ``-0.0`` and
    ``0.0`` differ, and NaNs are equal exactly when their bits (sign and
    payload included) are. Other dtypes (integers, booleans, ...) are
    compared with ``==``, which for them is the same thing; extended
    precision (``np.longdouble``, whose padding bytes are undefined) is
    compared by value and sign, every NaN equal to every other.

    Parameters
    ----------
    a, b : array_like, or list or tuple of array_like or None
        Two arrays (anything but a list or a tuple is converted with
        :func:`numpy.asarray`), or two sequences of the same length of
        arrays (each converted likewise), e.g. the gradient lists
        ``g.weights + g.biases`` of two :class:`mlpckpt.Grads`. ``None``
        entries are allowed where the other sequence has ``None`` too.
    err_msg : str, optional
        Appended, on a line of its own, to the message of a failure (which
        case or strategy was compared, say).

    Raises
    ------
    AssertionError
        At the first difference, with a message saying where it is:

        - ``block 1, index (1, 2): 5.0 != 5.000000000000001`` for two
          elements that differ, the values as ``repr`` writes them as Python
          scalars (``block k`` is the position in the sequences, left out
          when two arrays are compared; ``; 3 of 12 elements differ`` is
          appended when the first is not the only one, and the bits in hex
          when the two values print alike, e.g. NaNs of different payloads);
        - ``length 3 != 4``, ``block 1, shape (3, 4) != (4, 3)``,
          ``block 1, dtype float64 != float32``, ``block 2, None != array of
          shape (2,) and dtype float64``.
    TypeError
        For an input NumPy can only hold as an object array of something
        else (e.g. a ``Grads`` itself: pass ``g.weights + g.biases``).

    Examples
    --------
    >>> import numpy as np
    >>> assert_bitwise_equal([np.zeros(2), None], [np.zeros(2), None])
    >>> assert_bitwise_equal(np.array([0.0]), np.array([-0.0]))
    Traceback (most recent call last):
        ...
    AssertionError: index (0,): 0.0 != -0.0
    """
    if isinstance(a, (list, tuple)) != isinstance(b, (list, tuple)):
        _fail(f"an array and a sequence: {_describe(a)} != {_describe(b)}", err_msg)
    if not isinstance(a, (list, tuple)):
        problem = _difference(_as_array(a), _as_array(b))
        if problem:
            _fail(problem, err_msg)
        return
    if len(a) != len(b):
        _fail(f"length {len(a)} != {len(b)}", err_msg)
    for k, (x, y) in enumerate(zip(a, b)):
        if x is None or y is None:
            if x is not y:
                _fail(f"block {k}, {_describe(x)} != {_describe(y)}", err_msg)
            continue
        problem = _difference(_as_array(x), _as_array(y))
        if problem:
            _fail(f"block {k}, {problem}", err_msg)


def make_data(sizes, batch, loss, *, seed=0, dtype="float64"):
    """A random batch ``(X, Y)`` for a net of layer widths ``sizes``, with
    targets that suit ``loss``.

    Draws, from ``np.random.default_rng(seed)`` and in this order, ``X`` of
    shape ``(sizes[0], batch)`` from the standard normal, then ``Y``:

    - ``"cross_entropy"``: ``batch`` integer labels in ``[0, sizes[-1])``;
    - ``"bce"``: shape ``(sizes[-1], batch)``, uniform in ``[0, 1)``;
    - ``"mse"``: shape ``(sizes[-1], batch)``, standard normal.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first (``net.sizes``); only the first and the
        last are read.
    batch : int
        Number of samples (columns).
    loss : {"mse", "bce", "cross_entropy"}
    seed : int or numpy.random.Generator, optional
        Seed of the generator, or a generator to draw from (it advances).
    dtype : str or numpy.dtype, optional
        Floating dtype of ``X`` and of non-label targets (drawn in float64,
        then converted).

    Returns
    -------
    X : ndarray, shape (sizes[0], batch)
    Y : ndarray of int64, shape (batch,), or ndarray of ``dtype``, shape (sizes[-1], batch)

    Raises
    ------
    ValueError
        For a loss not in the list above.

    Examples
    --------
    >>> X, Y = make_data([3, 5, 4], 6, "cross_entropy", seed=2)
    >>> X.shape, Y.shape, Y.dtype.kind
    ((3, 6), (6,), 'i')
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: expected one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((sizes[0], batch)).astype(dtype)
    n_out = sizes[-1]
    if loss == "cross_entropy":
        Y = rng.integers(0, n_out, size=batch)
    elif loss == "bce":
        Y = rng.random((n_out, batch)).astype(dtype)
    else:
        Y = rng.standard_normal((n_out, batch)).astype(dtype)
    return X, Y


# -- internals ---------------------------------------------------------------


def _fail(message, err_msg):
    raise AssertionError(f"{message}\n{err_msg}" if err_msg else message)


def _as_array(x):
    array = np.asarray(x)
    if array.dtype == object and not isinstance(x, np.ndarray):
        raise TypeError(f"expected an array or a list or tuple of arrays, got {type(x).__name__}")
    return array


def _describe(x):
    if x is None:
        return "None"
    if isinstance(x, (list, tuple)):
        return f"{type(x).__name__} of {len(x)}"
    array = np.asarray(x)
    return f"array of shape {array.shape} and dtype {array.dtype}"


def _uint(dtype):
    """The unsigned integer dtype of ``dtype``'s size (of a complex dtype's
    parts), or None where bits are not compared (extended precision)."""
    size = dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize
    return np.dtype(f"u{size}") if size in (2, 4, 8) else None


def _differs(a, b):
    """A boolean array, True where the elements of ``a`` and ``b`` (same
    shape, same dtype) differ in their bits."""
    kind = a.dtype.kind
    if kind in "fc":
        u = _uint(a.dtype)
        if u is None:  # long double: by value and sign, every NaN alike
            same = (a == b) & (np.signbit(a.real) == np.signbit(b.real)) & (np.signbit(a.imag) == np.signbit(b.imag))
            return ~(same | (np.isnan(a) & np.isnan(b)))
        if kind == "c":
            return (a.real.view(u) != b.real.view(u)) | (a.imag.view(u) != b.imag.view(u))
        return a.view(u) != b.view(u)
    if kind in "mM":  # NaT != NaT by value; by bits it is one int64
        return a.view(np.int64) != b.view(np.int64)
    return np.asarray(a != b, dtype=bool)


def _hex(value, dtype):
    u = _uint(dtype)
    value = np.asarray(value, dtype=dtype)
    if dtype.kind == "c":
        return f"({int(value.real.view(u)):#x}, {int(value.imag.view(u)):#x})"
    return f"{int(value.view(u)):#x}"


def _difference(a, b):
    """What differs between arrays ``a`` and ``b``, as a message, or ''."""
    if a.shape != b.shape:
        return f"shape {a.shape} != {b.shape}"
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} != {b.dtype}"
    differs = _differs(a, b)
    count = int(np.count_nonzero(differs))
    if count == 0:
        return ""
    where = np.unravel_index(int(np.argmax(differs.reshape(-1))), a.shape)  # the first, in C order
    index = tuple(int(i) for i in where)
    x, y = a[index].item(), b[index].item()
    message = f"index {index}: {x!r} != {y!r}"
    if repr(x) == repr(y) and _uint(a.dtype) is not None:  # NaNs of other payloads, say
        message += f" (bits {_hex(a[index], a.dtype)} != {_hex(b[index], b.dtype)})"
    if count > 1:
        message += f"; {count} of {a.size} elements differ"
    return message
