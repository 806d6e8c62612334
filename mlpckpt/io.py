"""Save and load models as ``.npz`` files: no pickle, atomic writes.

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

from . import _validate as _checks
from .activations import check_activations, check_output
from .params import INITS

__all__ = ["save", "load"]

FORMAT = "mlpckpt-1"


def save(net, path):
    """Write ``net`` to ``path`` (any extension; ``.npz`` recommended)."""
    path = os.fspath(path)
    for name, params in (("weights", net.weights), ("biases", net.biases)):
        for k, arr in enumerate(params):
            if not _checks.all_finite(arr):
                raise ValueError(f"{name}[{k}]: expected finite values, got NaN or inf (not saved)")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"path: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"path: {path!r} is a directory, expected a file name")
    arrays = {
        "format": np.array(FORMAT),
        "sizes": np.array(net.sizes, dtype=np.int64),
        "activations": np.array(net.activations, dtype=str).reshape(-1),
        "output": np.array(net.output),
        "init": np.array(net.init),
        "dtype": np.array(net.dtype.name),
    }
    for k, (W, b) in enumerate(zip(net.weights, net.biases)):
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
    """Read a model written by :func:`save`.

    Returns
    -------
    MLP

    Raises
    ------
    ValueError
        If the file is not a readable mlpckpt model or is inconsistent.
    """
    from .mlp import MLP

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
                sizes = _checks.check_sizes(data["sizes"].tolist())
                acts = data["activations"]
                if acts.dtype.kind != "U" or acts.ndim != 1:
                    raise ValueError("path: field 'activations' is not a list of names")
                net = MLP.__new__(MLP)
                net.sizes = sizes
                net.activations = check_activations(acts.tolist(), len(sizes) - 2)
                net.output = check_output(_text(data, "output"))
                net.init = _checks.check_choice("init", _text(data, "init"), INITS)
                net.dtype = _checks.check_dtype(_text(data, "dtype"))
                net.weights, net.biases = [], []
                for k in range(len(sizes) - 1):
                    for name, shape, dest in (
                        (f"W{k}", (sizes[k + 1], sizes[k]), net.weights),
                        (f"b{k}", (sizes[k + 1], 1), net.biases),
                    ):
                        arr = data[name]
                        if arr.shape != shape or arr.dtype != net.dtype:
                            raise ValueError(
                                f"path: {name} has shape {arr.shape} and dtype {arr.dtype}, "
                                f"expected {shape} and {net.dtype}"
                            )
                        if not _checks.all_finite(arr):
                            raise ValueError(f"path: {name} holds NaN or inf")
                        dest.append(np.ascontiguousarray(arr))
                extra = set(data.files) - {"format", "sizes", "activations", "output", "init", "dtype"}
                extra -= {f"{c}{k}" for k in range(len(sizes) - 1) for c in "Wb"}
                if extra:
                    raise ValueError(f"path: unexpected fields {sorted(extra)[:5]}")
    except ValueError as exc:
        msg = str(exc)
        if "pickle" in msg:  # numpy's word for "not an array file": never unpickled
            msg = "not an .npz archive (load never unpickles)"
        raise ValueError(msg if msg.startswith("path:") else f"path: {path!r}: {msg}") from exc
    except (OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"path: {path!r} is not a readable mlpckpt model ({exc})") from exc
    return net
