"""Save and load model records as ``.npz`` files: no pickle, atomic writes.

A record is the plain-data form of a model, a dict with the keys of
:data:`FIELDS`: ``sizes`` (tuple of int), ``activations`` (list of str),
``output``, ``init`` and ``dtype`` (str), ``weights`` and ``biases``
(lists of ndarray, shapes ``(sizes[k+1], sizes[k])`` and
``(sizes[k+1], 1)``), and optionally ``optimizer``: an :class:`~mlpckpt.SGD`
or :class:`~mlpckpt.Adam` whose state is saved with the model. This module
knows no model class: :meth:`mlpckpt.MLP.save` hands it a record and
:func:`mlpckpt.load` builds the model from the one it reads.

The file (format ``"mlpckpt-1"``) holds ``format``, ``sizes``,
``activations``, ``output``, ``init``, ``dtype`` and the arrays ``W0, b0,
W1, b1, ...``; with an optimiser also ``optimizer`` (its name),
``optimizer.<scalar>`` (0-d: ``lr``, ``momentum``, ``nesterov``, ``beta1``,
``beta2``, ``eps``, ``t``) and ``optimizer.<slot>.<i>`` (``buf``, ``m``,
``v`` of block ``i``: ``2k`` is ``W_k``, ``2k + 1`` is ``b_k``). Versions:
a field may be added to a format only as an optional one (every file of the
format keeps loading unchanged); anything else is a new format string,
and ``load`` keeps reading the old ones.

Saving checks the whole record first (a record ``load`` would refuse is
never written) and writes through :func:`mlpckpt.io._atomic.write_atomic`
(a temporary renamed over the target; stale temporaries of dead writers
removed). Loading reads every member's ``.npy`` header first and checks
its declared shape and dtype against ``sizes``, ``dtype`` and the bytes the
archive holds, before any data is read; it uses ``allow_pickle=False``; a
corrupt or inconsistent file raises ``ValueError``.
"""

import os
import zipfile

import numpy as np

from . import _atomic as _files
from ..core._validate import as_real_array, check_choice, check_dtype, check_finite, check_sizes
from ..core._activations import check_activations, check_output
from ..training._optimizers import SGD, Adam
from ..core._inits import check_init, init_name
from ..core._params import INITS

__all__ = ["FIELDS", "FORMAT", "check_arrays", "save", "load"]

FORMAT = "mlpckpt-1"

#: the keys of a record (``optimizer`` is optional)
FIELDS = ("sizes", "activations", "output", "init", "dtype", "weights", "biases")

_META = ("format", "sizes", "activations", "output", "init", "dtype")
_OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def check_arrays(weights, biases, dtype=None, sizes=None):
    """A record's parameter arrays, checked, and the layer sizes they give.

    The one check of parameter blocks: :func:`load` applies it to a file's
    arrays and :meth:`mlpckpt.MLP.from_arrays` to the caller's.

    Parameters
    ----------
    weights : sequence of array_like, shapes (n_{k+1}, n_k)
    biases : sequence of array_like, shapes (n_{k+1}, 1)
    dtype : numpy dtype, optional
        The dtype every block must have; default that of ``weights[0]``.
    sizes : sequence of int, optional
        The layer sizes the blocks must have; default any chain.

    Returns
    -------
    weights, biases : lists of ndarray (not copied)
    sizes : list of int, ``[n_0, ..., n_n]``

    Raises
    ------
    ValueError
        Naming ``weights[k]`` or ``biases[k]``: not a 2-d float64 or
        float32 array, a shape that breaks the chain (or disagrees with
        ``sizes``), another dtype, or NaN or inf.
    """
    weights = [_block(f"weights[{k}]", W) for k, W in enumerate(weights)]
    biases = [_block(f"biases[{k}]", b) for k, b in enumerate(biases)]
    if not weights:
        raise ValueError("weights: expected at least one array, got none")
    if len(biases) != len(weights):
        raise ValueError(f"biases: expected {len(weights)} arrays (one per weight), got {len(biases)}")
    if sizes is not None and len(sizes) != len(weights) + 1:
        raise ValueError(f"weights: expected {len(sizes) - 1} arrays for sizes {list(sizes)}, got {len(weights)}")
    want = "" if dtype is not None else " (that of weights[0])"
    dtype = weights[0].dtype if dtype is None else np.dtype(dtype)
    found = [weights[0].shape[1] if sizes is None else int(sizes[0])]
    for k, (W, b) in enumerate(zip(weights, biases)):
        rows = W.shape[0] if sizes is None else int(sizes[k + 1])
        for name, arr, shape in ((f"weights[{k}]", W, (rows, found[-1])), (f"biases[{k}]", b, (rows, 1))):
            if arr.shape != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
            if arr.dtype != dtype:
                raise ValueError(f"{name}: expected dtype {dtype}{want}, got {arr.dtype}")
        found.append(rows)
    return weights, biases, found


def _block(name, value):
    arr = as_real_array(name, value)
    if arr.dtype not in (np.float64, np.float32) or arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(
            f"{name}: expected a non-empty 2-d float64 or float32 array, "
            f"got shape {arr.shape} and dtype {arr.dtype}"
        )
    return check_finite(name, arr)



def _meta(sizes, activations, output, init, dtype):
    # The configuration fields of a record, checked (save and load share it).
    sizes = check_sizes(sizes)
    return {"sizes": sizes, "activations": check_activations(activations, len(sizes) - 2),
            "output": check_output(output), "init": init_name(check_init(init, INITS)),
            "dtype": check_dtype(dtype).name}


def _block_shape(i, sizes):
    """The shape of parameter block ``i`` (``2k``: ``W_k``, ``2k + 1``: ``b_k``), or None."""
    k = i // 2
    return None if not 0 <= k < len(sizes) - 1 else (sizes[k + 1], sizes[k] if i % 2 == 0 else 1)


def _check_slots(blocks, sizes, dtype, name):
    # Optimiser blocks {slot: {i: (shape, dtype)}} against the model's blocks.
    for slot, per_block in blocks.items():
        for i, (shape, got) in per_block.items():
            if (tuple(shape), got) != (_block_shape(i, sizes), dtype):
                raise ValueError(f"{name}: {slot} of block {i} has shape {tuple(shape)} and dtype {got}, expected "
                                 f"those of block {i} of the model's {2 * (len(sizes) - 1)} blocks "
                                 f"(shape {_block_shape(i, sizes)}, dtype {np.dtype(dtype)})")


def save(path, record):
    """Write a model record to ``path`` (any extension; ``.npz`` recommended).

    Parameters
    ----------
    path : str, bytes or os.PathLike
        The file; its directory must exist. Written through a temporary
        file and a rename, with the mode a new file gets under the umask.
    record : dict
        The keys of :data:`FIELDS`, optionally ``optimizer`` (see the module
        docstring).

    Raises
    ------
    ValueError
        Before anything is written: a record :func:`load` would refuse
        (naming the field, e.g. ``weights[k]``), a path that is not a file
        name, a missing directory, or a directory as ``path``.
    """
    missing = [key for key in FIELDS if key not in record]
    if missing:
        raise ValueError(f"record: missing fields {missing}, expected {list(FIELDS)}")
    path = _files.check_path(path)
    meta = _meta(*(record[key] for key in FIELDS[:5]))
    weights, biases, _ = check_arrays(record["weights"], record["biases"], meta["dtype"], meta["sizes"])
    arrays = {"format": np.array(FORMAT), "sizes": np.array(meta["sizes"], dtype=np.int64),
              "activations": np.array(meta["activations"], dtype=str).reshape(-1)}
    arrays.update((key, np.array(meta[key])) for key in ("output", "init", "dtype"))
    for k, (W, b) in enumerate(zip(weights, biases)):
        arrays[f"W{k}"] = W
        arrays[f"b{k}"] = b
    opt = record.get("optimizer")
    if opt is not None:
        arrays.update(_optimizer_arrays(opt, meta))
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)) or os.path.isdir(path):
        raise ValueError(f"path: {path!r} is a directory, expected a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"path: directory {directory!r} does not exist")
    _files.write_atomic(path, lambda fh: np.savez(fh, **arrays))


def _optimizer_arrays(opt, meta):
    """The file members of an optimiser's state, checked against the model."""
    if not isinstance(opt, (SGD, Adam)):
        raise ValueError(f"optimizer: expected an SGD or Adam (whose state is saved) or None, got {opt!r}")
    state = opt.state_dict()
    try:
        type(opt).from_state(state, copy=False)  # the checks load applies
    except ValueError as exc:
        raise ValueError(f"optimizer: {exc}") from None
    blocks = {slot: {i: (a.shape, a.dtype) for i, a in per.items()} for slot, per in state["blocks"].items()}
    _check_slots(blocks, meta["sizes"], meta["dtype"], "optimizer")
    arrays = {"optimizer": np.array(state["name"])}
    arrays.update((f"optimizer.{key}", np.array(value)) for key, value in state["scalars"].items())
    for slot, per in state["blocks"].items():
        for i, arr in per.items():
            arrays[f"optimizer.{slot}.{i}"] = check_finite(f"optimizer: {slot} of block {i}", arr)
    return arrays


def _read(data, headers):
    """The record of an open archive whose members' headers are ``headers``."""
    fmt = _files.field(data, headers, "format", "U", 0, "a string")
    if fmt != FORMAT:
        raise ValueError(f"path: format {fmt!r}, expected {FORMAT!r}")
    n_sizes = headers.get("sizes", ((), None))[0]
    if len(n_sizes) == 1 and n_sizes[0] > len(headers) // 2 + 1:  # every layer has two members
        raise ValueError(f"path: field 'sizes' has {n_sizes[0]} entries for {len(headers)} members")
    sizes = _files.field(data, headers, "sizes", "iu", 1, "a list of ints").tolist()
    activations = _files.field(data, headers, "activations", "U", 1, "a list of names").tolist()
    output, init, dtype = (_files.field(data, headers, key, "U", 0, "a string") for key in ("output", "init", "dtype"))
    record = _meta(sizes, activations, output, init, dtype)
    sizes, dtype = record["sizes"], np.dtype(record["dtype"])
    n = len(sizes) - 1
    # the members W0, b0, W1, b1, ... and their declared shapes
    blocks = {f"{'Wb'[i % 2]}{i // 2}": _block_shape(i, sizes) for i in range(2 * n)}
    for key, want in blocks.items():  # every declared shape and dtype, before any data is read
        if key not in headers:
            raise ValueError(f"path: missing field {key!r}")
        shape, got = headers[key]
        name = f"{'weights' if key[0] == 'W' else 'biases'}[{key[1:]}]"
        if shape != want:
            raise ValueError(f"path: {name}: expected shape {want} (sizes {list(sizes)}), got {shape}")
        if got != dtype:
            raise ValueError(f"path: {name}: expected dtype {dtype}, got {got}")
    opt_keys = [key for key in headers if key.startswith("optimizer.")]
    extra = set(headers) - set(_META) - set(blocks) - set(opt_keys) - {"optimizer"}
    if extra or (opt_keys and "optimizer" not in headers):
        raise ValueError(f"path: unexpected fields {sorted(extra or opt_keys)[:5]}")
    state = _read_optimizer(data, headers, opt_keys, sizes, dtype) if "optimizer" in headers else None
    weights, biases, _ = check_arrays([data[f"W{k}"] for k in range(n)], [data[f"b{k}"] for k in range(n)],
                                      dtype=dtype, sizes=sizes)
    record["weights"] = [np.ascontiguousarray(W) for W in weights]
    record["biases"] = [np.ascontiguousarray(b) for b in biases]
    if state is not None:
        record["optimizer"] = _OPTIMIZERS[state["name"]].from_state(state, copy=False)
    return record


def _read_optimizer(data, headers, keys, sizes, dtype):
    """An optimiser's state from the archive, every block's header checked first."""
    name = check_choice("optimizer", _files.field(data, headers, "optimizer", "U", 0, "a string"), _OPTIMIZERS)
    scalars, blocks = {}, {}
    for key in keys:
        parts = key.split(".")
        if len(parts) == 2 and parts[1]:
            scalars[parts[1]] = _files.field(data, headers, key, "biuf", 0, "a number").item()
        elif len(parts) == 3 and parts[1] and parts[2].isdigit() and str(int(parts[2])) == parts[2]:
            blocks.setdefault(parts[1], {})[int(parts[2])] = headers[key]
        else:
            raise ValueError(f"path: unexpected field {key!r}")
    _check_slots(blocks, sizes, dtype, "path: optimizer")
    for slot, per in blocks.items():
        for i in per:
            arr = np.ascontiguousarray(data[f"optimizer.{slot}.{i}"])
            per[i] = check_finite(f"optimizer: {slot} of block {i}", arr)
    return {"name": name, "scalars": scalars, "blocks": blocks}


def load(path):
    """Read a model record written by :func:`save`, every field checked.

    Parameters
    ----------
    path : str, bytes or os.PathLike

    Returns
    -------
    dict
        A record (see the module docstring): ``sizes`` a tuple, ``dtype``
        a str, C-contiguous arrays of that dtype; ``optimizer`` (a fresh
        SGD or Adam) only when the file holds one.

    Raises
    ------
    ValueError
        Starting ``"path:"``, if the file is not a readable mlpckpt model
        or is inconsistent (checked from the headers before data is read).
    """
    path = _files.check_path(path)
    try:
        # Open the file ourselves: np.load leaks its handle when a path names
        # a damaged archive (NpzFile raises after np.load gave up ownership).
        with open(path, "rb") as fh:
            magic = fh.read(6)
            if magic == b"\x93NUMPY":
                raise ValueError(f"path: {path!r} is a single .npy array, not an .npz archive")
            if magic[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
                raise ValueError("not an .npz archive (load never unpickles)")
            fh.seek(0)
            size = os.fstat(fh.fileno()).st_size
            with np.load(fh, allow_pickle=False) as data:
                record = _read(data, _files.npz_headers(data.zip, size))
    except ValueError as exc:
        msg = str(exc)
        if "pickle" in msg and not msg.startswith("path:"):  # numpy's word for "not an array file"
            msg = "not an .npz archive (load never unpickles)"
        raise ValueError(msg if msg.startswith("path:") else f"path: {path!r}: {msg}") from exc
    except (OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"path: {path!r} is not a readable mlpckpt model ({exc})") from exc
    return record
