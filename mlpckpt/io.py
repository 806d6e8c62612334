"""Save and load model records as ``.npz`` files: no pickle, atomic writes.

A record is the plain-data form of a model, a dict with the keys of
:data:`FIELDS`: ``sizes`` (tuple of int), ``activations`` (list of str),
``output``, ``init`` and ``dtype`` (str), ``weights`` and ``biases``
(lists of ndarray, shapes ``(sizes[k+1], sizes[k])`` and
``(sizes[k+1], 1)``). This module knows no model class:
:meth:`mlpckpt.MLP.save` hands it a record and :func:`mlpckpt.load` builds
the model from the one it reads.

The file holds ``format``, ``sizes``, ``activations``, ``output``, ``init``,
``dtype`` and the arrays ``W0, b0, W1, b1, ...``. Saving writes a temporary
file in the target's directory and renames it over the target, so an
existing file is never left half-written. Loading uses
``allow_pickle=False`` and checks every field; a corrupt or inconsistent
file raises ``ValueError``.
"""

import os
import tempfile
import zipfile

import numpy as np

from ._validate import all_finite, as_real_array, check_choice, check_dtype, check_finite, check_sizes
from .activations import check_activations, check_output
from .params import INITS

__all__ = ["FIELDS", "FORMAT", "check_arrays", "save", "load"]

FORMAT = "mlpckpt-1"

#: the keys of a record
FIELDS = ("sizes", "activations", "output", "init", "dtype", "weights", "biases")

_META = ("format", "sizes", "activations", "output", "init", "dtype")


def check_arrays(weights, biases, dtype=None):
    """A record's parameter arrays, checked, and the layer sizes they give.

    The one check of parameter blocks: :func:`load` applies it to a file's
    arrays and :meth:`mlpckpt.MLP.from_arrays` to the caller's.

    Parameters
    ----------
    weights : sequence of array_like, shapes (n_{k+1}, n_k)
    biases : sequence of array_like, shapes (n_{k+1}, 1)
    dtype : numpy dtype, optional
        The dtype every block must have; default that of ``weights[0]``.

    Returns
    -------
    weights, biases : lists of ndarray (not copied)
    sizes : list of int, ``[n_0, ..., n_n]``

    Raises
    ------
    ValueError
        Naming ``weights[k]`` or ``biases[k]``: not a 2-d float64 or
        float32 array, a shape that breaks the chain, another dtype, or
        NaN or inf.
    """
    weights = [_block(f"weights[{k}]", W) for k, W in enumerate(weights)]
    biases = [_block(f"biases[{k}]", b) for k, b in enumerate(biases)]
    if not weights:
        raise ValueError("weights: expected at least one array, got none")
    if len(biases) != len(weights):
        raise ValueError(f"biases: expected {len(weights)} arrays (one per weight), got {len(biases)}")
    sizes = [weights[0].shape[1]]
    want = "" if dtype is not None else " (that of weights[0])"
    dtype = weights[0].dtype if dtype is None else np.dtype(dtype)
    for k, (W, b) in enumerate(zip(weights, biases)):
        for name, arr, shape in (
            (f"weights[{k}]", W, (W.shape[0], sizes[-1])),
            (f"biases[{k}]", b, (W.shape[0], 1)),
        ):
            if arr.shape != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
            if arr.dtype != dtype:
                raise ValueError(f"{name}: expected dtype {dtype}{want}, got {arr.dtype}")
        sizes.append(W.shape[0])
    return weights, biases, sizes


def _block(name, value):
    arr = as_real_array(name, value)
    if arr.dtype not in (np.float64, np.float32) or arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(
            f"{name}: expected a non-empty 2-d float64 or float32 array, "
            f"got shape {arr.shape} and dtype {arr.dtype}"
        )
    return check_finite(name, arr)


def save(path, record):
    """Write a model record to ``path`` (any extension; ``.npz`` recommended).

    Parameters
    ----------
    path : str or os.PathLike
        The file; its directory must exist. Written through a temporary
        file and a rename, with the mode a new file gets under the umask.
    record : dict
        The keys of :data:`FIELDS` (see the module docstring).

    Raises
    ------
    ValueError
        Non-finite weights (nothing is written), a missing directory, or a
        directory as ``path``.
    """
    missing = [key for key in FIELDS if key not in record]
    if missing:
        raise ValueError(f"record: missing fields {missing}, expected {list(FIELDS)}")
    path = os.fspath(path)
    for name in ("weights", "biases"):
        for k, arr in enumerate(record[name]):
            if not all_finite(arr):
                raise ValueError(f"{name}[{k}]: expected finite values, got NaN or inf (not saved)")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"path: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"path: {path!r} is a directory, expected a file name")
    arrays = {
        "format": np.array(FORMAT),
        "sizes": np.array(record["sizes"], dtype=np.int64),
        "activations": np.array(record["activations"], dtype=str).reshape(-1),
        "output": np.array(record["output"]),
        "init": np.array(record["init"]),
        "dtype": np.array(np.dtype(record["dtype"]).name),
    }
    for k, (W, b) in enumerate(zip(record["weights"], record["biases"])):
        arrays[f"W{k}"] = W
        arrays[f"b{k}"] = b
    fd, tmp = tempfile.mkstemp(prefix=".mlpckpt-", suffix=".tmp", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _text(data, key):
    value = data[key]
    if value.dtype.kind != "U" or value.ndim != 0:
        raise ValueError(f"path: field {key!r} is not a string")
    return str(value)


def load(path):
    """Read a model record written by :func:`save`, every field checked.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        A record (see the module docstring): ``sizes`` a tuple, ``dtype``
        a str, C-contiguous arrays of that dtype.

    Raises
    ------
    ValueError
        Starting ``"path:"``, if the file is not a readable mlpckpt model
        or is inconsistent.
    """
    path = os.fspath(path)
    try:
        # Open the file ourselves: np.load leaks its handle when a path names
        # a damaged archive (NpzFile raises after np.load gave up ownership).
        with open(path, "rb") as fh:
            data = np.load(fh, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                # a bare .npy array (or memmap) has no context manager: refuse it here
                raise ValueError(f"path: {path!r} is a single .npy array, not an .npz archive")
            with data:
                fmt = _text(data, "format")
                if fmt != FORMAT:
                    raise ValueError(f"path: format {fmt!r}, expected {FORMAT!r}")
                sizes = check_sizes(data["sizes"].tolist())
                acts = data["activations"]
                if acts.dtype.kind != "U" or acts.ndim != 1:
                    raise ValueError("path: field 'activations' is not a list of names")
                record = {
                    "sizes": sizes,
                    "activations": check_activations(acts.tolist(), len(sizes) - 2),
                    "output": check_output(_text(data, "output")),
                    "init": check_choice("init", _text(data, "init"), INITS),
                    "dtype": check_dtype(_text(data, "dtype")).name,
                }
                n = len(sizes) - 1
                weights, biases, found = check_arrays(
                    [data[f"W{k}"] for k in range(n)], [data[f"b{k}"] for k in range(n)],
                    dtype=record["dtype"],
                )
                if tuple(found) != sizes:
                    raise ValueError(
                        f"path: arrays of sizes {found}, expected the field's {list(sizes)}"
                    )
                record["weights"] = [np.ascontiguousarray(W) for W in weights]
                record["biases"] = [np.ascontiguousarray(b) for b in biases]
                extra = set(data.files) - set(_META)
                extra -= {f"{c}{k}" for k in range(n) for c in "Wb"}
                if extra:
                    raise ValueError(f"path: unexpected fields {sorted(extra)[:5]}")
    except ValueError as exc:
        msg = str(exc)
        if "pickle" in msg:  # numpy's word for "not an array file": never unpickled
            msg = "not an .npz archive (load never unpickles)"
        raise ValueError(msg if msg.startswith("path:") else f"path: {path!r}: {msg}") from exc
    except (OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"path: {path!r} is not a readable mlpckpt model ({exc})") from exc
    return record
