"""Input validation: every bad argument becomes a ValueError that names the
argument, what it got and what was expected."""

import math
import numbers

import numpy as np

from .activations import ACTIVATIONS, OUTPUTS
from .losses import LOSSES, REQUIRED_OUTPUT

DTYPES = {"float64": np.float64, "float32": np.float32}


def check_choice(name, value, choices):
    """``value`` must be one of ``choices`` (a str)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: got {value!r}, expected one of {sorted(choices)}")
    return value


def check_bool(name, value):
    """``value`` must be a bool (``"no"`` is not False)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def check_dtype(dtype):
    try:
        key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    except TypeError:  # not interpretable as a dtype at all
        key = None
    if key not in DTYPES:
        raise ValueError(f"dtype: got {dtype!r}, expected 'float64' or 'float32'")
    return np.dtype(DTYPES[key])


def check_sizes(sizes):
    try:
        sizes = list(sizes)
    except TypeError:
        raise ValueError(f"sizes: expected a list of positive ints, got {sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least 2 entries (input and output), got {sizes!r}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(f"sizes: expected positive ints, got {sizes!r}")
    return tuple(int(s) for s in sizes)


def check_activations(activation, n_hidden):
    if isinstance(activation, str):
        check_choice("activation", activation, ACTIVATIONS)
        return [activation] * n_hidden
    try:
        names = list(activation)
    except TypeError:
        raise ValueError(
            f"activation: expected a name or a list of {n_hidden} names, got {activation!r}"
        ) from None
    if len(names) != n_hidden:
        raise ValueError(
            f"activation: expected one name per hidden layer ({n_hidden}), got {len(names)}"
        )
    for name in names:
        check_choice("activation", name, ACTIVATIONS)
    return names


def check_output(output):
    return check_choice("output", output, OUTPUTS)


def check_loss(loss, output):
    check_choice("loss", loss, LOSSES)
    need = REQUIRED_OUTPUT[loss]
    if need is not None and output != need:
        raise ValueError(
            f"loss: {loss!r} needs output={need!r}, got output={output!r} "
            f"(use loss='mse', or build the net with output={need!r})"
        )
    return loss


def _as_real_array(name, value):
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name}: expected a numeric array, got {type(value).__name__}") from exc
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name}: expected a real numeric array, got dtype {arr.dtype} "
            "(strings, objects and complex numbers are refused)"
        )
    return arr


def all_finite(arr):
    """True when no entry is NaN or infinite (no array-sized temporary)."""
    if arr.dtype.kind in "biu":
        return True
    # A sum is finite iff every term is (barring overflow, then check exactly).
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return True
    return bool(np.isfinite(arr).all())


def _check_finite(name, arr):
    if not all_finite(arr):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def check_input(X, n_in, dtype):
    """``X`` as an array of ``dtype`` and shape ``(n_in, batch)``."""
    X = _as_real_array("X", X)
    if X.ndim != 2 or X.shape[0] != n_in or X.shape[1] < 1:
        hint = ""
        if X.ndim == 2 and X.shape[1] == n_in:
            hint = " (samples go in columns: pass X.T)"
        raise ValueError(f"X: expected shape ({n_in}, batch) with batch >= 1, got {X.shape}{hint}")
    if X.dtype != dtype:
        X = X.astype(dtype)
    _check_finite("X", X)
    return X


def check_targets(Y, loss, n_out, batch, dtype):
    """``Y`` in the canonical form of :mod:`mlpckpt.losses` for this loss."""
    Y = _as_real_array("Y", Y)
    if loss == "cross_entropy" and Y.ndim == 1:
        if Y.shape != (batch,):
            raise ValueError(f"Y: expected labels of shape ({batch},), got {Y.shape}")
        _check_finite("Y", Y)
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
    Y = np.ascontiguousarray(Y, dtype=dtype)
    _check_finite("Y", Y)
    if loss == "bce" and (Y.min() < 0 or Y.max() > 1):
        raise ValueError(
            f"Y: bce targets must lie in [0, 1], got values in [{Y.min()}, {Y.max()}]"
        )
    if loss == "cross_entropy" and Y.min() < 0:
        raise ValueError(f"Y: class probabilities must be >= 0, got a minimum of {Y.min()}")
    return Y


def make_rng(seed):
    """A ``numpy.random.Generator`` from an int, a Generator or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (
        isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0
    ):
        return np.random.default_rng(seed)
    raise ValueError(
        f"seed: expected an int >= 0 or a numpy.random.Generator, got {seed!r}"
    )


def check_strategy(strategy):
    """``strategy`` must be None or a strategy *instance* (hashable, with
    ``actions(n)``); a class such as ``mc.Sqrt`` without parentheses, a name
    or an unhashable object is refused here, before the schedule cache."""
    if strategy is None:
        return strategy
    ok = not isinstance(strategy, type) and hasattr(strategy, "actions")
    if ok:
        try:
            hash(strategy)
        except TypeError:
            ok = False
    if not ok:
        raise ValueError(
            f"strategy: got {strategy!r}, expected StoreAll(), Segments(k), Sqrt(), "
            "Revolve(slots), Budget(max_bytes) or None"
        )
    return strategy


_UNITS = {
    "": 1,
    "B": 1,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
}


def parse_bytes(text):
    """``"50MiB"`` -> 52428800; KiB/MiB/GiB are powers of 2, KB/MB/GB of 10.
    An int passes through (it must be positive)."""
    if isinstance(text, numbers.Integral) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"size: got {text!r}, expected a positive number of bytes")
        return int(text)
    raw = str(text).strip()
    num = raw.rstrip("KMGiBkmgb ")
    unit = raw[len(num) :].strip().upper()
    if unit not in _UNITS:
        raise ValueError(
            f"size: got {text!r}, expected a number with an optional unit "
            "(B, KiB, MiB, GiB, KB, MB, GB)"
        )
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"size: got {text!r}, expected a number such as 50MiB") from None
    size = value * _UNITS[unit] if math.isfinite(value) else math.inf
    if not (math.isfinite(size) and size >= 1):
        raise ValueError(f"size: got {text!r}, expected a finite size of at least 1 byte")
    return int(size)
