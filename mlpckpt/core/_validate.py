"""Argument primitives: every bad argument becomes a ValueError that names
the argument, what it got and what was expected.

Ints, reals, bools, choices, byte sizes, dtypes, random generators and
finite real arrays. This module imports nothing of the package, so any
layer (the planner, the checker, the CLI) may use it; checks that need a
table of the package (activation names, losses) live beside that table.
"""

import math
import numbers

import numpy as np

__all__ = [
    "DTYPES",
    "check_choice",
    "check_bool",
    "check_int",
    "check_positive_float",
    "check_dtype",
    "check_sizes",
    "as_real_array",
    "all_finite",
    "check_finite",
    "make_rng",
    "parse_bytes",
]

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
    """``value`` must be an int (NumPy ints too, bools not) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(name, value):
    """``value`` must be a finite real number ``> 0``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def check_dtype(dtype):
    """``float64`` or ``float32``: those names, or the NumPy dtypes/types."""
    try:
        key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    except TypeError:  # not interpretable as a dtype at all
        key = None
    if key not in DTYPES:
        raise ValueError(f"dtype: got {dtype!r}, expected 'float64' or 'float32'")
    return np.dtype(DTYPES[key])


def check_sizes(sizes):
    """Layer sizes: at least two positive ints, returned as a tuple."""
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


def as_real_array(name, value):
    """``value`` as an ndarray of a real or integer dtype (no copy if it is one)."""
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


def check_finite(name, arr):
    """Refuse NaN and inf in ``arr``."""
    if not all_finite(arr):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return arr


def make_rng(seed):
    """A ``numpy.random.Generator`` from an int, a Generator or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (
        isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0
    ):
        return np.random.default_rng(seed)
    raise ValueError(f"seed: expected an int >= 0 or a numpy.random.Generator, got {seed!r}")


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


def parse_bytes(text, name="size"):
    """``"50MiB"`` -> 52428800; KiB/MiB/GiB are powers of 2, KB/MB/GB of 10.
    An int passes through (it must be positive). Errors name ``name``."""
    if isinstance(text, numbers.Integral) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"{name}: got {text!r}, expected a positive number of bytes")
        return int(text)
    raw = str(text).strip()
    num = raw.rstrip("KMGiBkmgb ")
    unit = raw[len(num) :].strip().upper()
    if unit not in _UNITS:
        raise ValueError(
            f"{name}: got {text!r}, expected a number with an optional unit "
            "(B, KiB, MiB, GiB, KB, MB, GB)"
        )
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"{name}: got {text!r}, expected a number such as 50MiB") from None
    size = value * _UNITS[unit] if math.isfinite(value) else math.inf
    if not (math.isfinite(size) and size >= 1):
        raise ValueError(f"{name}: got {text!r}, expected a finite size of at least 1 byte")
    return int(size)
