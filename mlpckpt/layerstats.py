"""Per-layer signal statistics, recorded during a run at no activation-sized cost.

:class:`LayerStats` is passed as ``record=`` to :meth:`mlpckpt.MLP.loss_and_grad`
or :meth:`mlpckpt.MLP.fit`. Index ``k`` is layer ``k``, mapping ``a[k]`` to
``a[k+1]`` (DESIGN.md): the mean and variance of ``z[k+1]`` and ``a[k+1]``
from the first forward evaluation of each layer (a recomputation is never
counted again), and ``‖dW[k]‖``, ``‖db[k]‖``, ``‖dL/da[k+1]‖`` (Frobenius
norms) from the backward pass. ``da_norm[n-1]`` is ``‖dL/dz[n]‖``: the loss
and the output map are differentiated together, so ``dL/da[n]`` never
exists. ``a[n]`` is the output map applied to the logits.

Every figure comes from sums the backend computes in place (``sum``, a dot
product of the flattened array with itself, row sums of ``W a`` for the
bias's share), so no temporary is larger than one layer's width, except a
non-identity output map's stats, taken on column chunks of at most 8192
elements (NumPy's own ufunc buffer). Variances are ``E[x²] − E[x]²`` from
those sums: exact for the figures of signal propagation, but with a
relative error of about ``eps · mean² / var`` when the mean dominates. The
run's arithmetic is untouched: results are bitwise the same with and without.
"""

import numpy as np

from .activations import output_forward
from .costs import UFUNC_BUFSIZE

__all__ = ["LayerStats", "FIELDS", "Recorder", "start", "finish", "EpochRows"]

#: the recorded figures, in the order of the rows
FIELDS = ("z_mean", "z_var", "a_mean", "a_var", "dW_norm", "db_norm", "da_norm")


class LayerStats:
    """A recorder of per-layer statistics (see the module docstring).

    After ``loss_and_grad(..., record=stats)`` every field is an ndarray of
    shape ``(n,)``; after ``fit(..., record=stats)`` of shape ``(epochs, n)``,
    one row per epoch, from its last step. Each call replaces what was there.

    Attributes
    ----------
    z_mean, z_var, a_mean, a_var : ndarray of float64
        Mean and variance over units and batch of ``z[k+1]`` and ``a[k+1]``.
    dW_norm, db_norm, da_norm : ndarray of float64
        ``‖dW[k]‖``, ``‖db[k]‖``, ``‖dL/da[k+1]‖``.
    """

    def __init__(self):
        self._rows = None  # (rows, len(FIELDS), n) float64
        self._epochs = False

    def _get(self, i):
        if self._rows is None:
            raise ValueError("LayerStats: nothing recorded yet (pass it as record= to loss_and_grad or fit)")
        return self._rows[:, i, :] if self._epochs else self._rows[0, i, :]

    def to_dict(self):
        """The fields as nested lists of floats (for JSON and sweep rows)."""
        return {name: getattr(self, name).tolist() for name in FIELDS}

    def __repr__(self):
        if self._rows is None:
            return "LayerStats(empty)"
        shape = self._rows.shape
        return f"LayerStats({shape[0]} epochs x {shape[2]} layers)" if self._epochs else \
            f"LayerStats({shape[2]} layers)"


for _i, _name in enumerate(FIELDS):
    setattr(LayerStats, _name, property(lambda self, i=_i: self._get(i), doc=f"``{_name}`` per layer."))


class Recorder:
    """One run's row, written by :func:`mlpckpt.backprop.execute`.

    Parameters
    ----------
    n : int
        Number of layers.
    backend : Backend
        Its ``ops`` make the sums, its ``item`` turns them into floats.
    """

    def __init__(self, n, backend):
        self.row = np.full((len(FIELDS), n), np.nan)
        self.seen = [False] * n  # the first forward evaluation of each layer only
        self._ops, self._item = backend.ops, backend.item
        self._batch_b = None

    def _moments(self, total, squares, count):
        mean = float(self._item(total)) / count
        return mean, float(self._item(squares)) / count - mean * mean

    def z(self, k, M, b):
        """Moments of ``z[k+1] = M + b`` from ``M = W[k] a[k]`` and ``b`` (before the bias is added)."""
        o = self._ops
        rows = o.empty_like(b)
        o.sum_rows(M, out=rows)  # sum(z^2) = sum(M^2) + 2 b . rowsum(M) + batch * b . b
        batch = M.shape[1]
        total = o.total(rows) + batch * o.total(b)
        squares = o.dot_flat(M, M) + 2 * o.dot_flat(rows, b) + batch * o.dot_flat(b, b)
        self.row[0, k], self.row[1, k] = self._moments(total, squares, M.shape[0] * batch)

    def a(self, k, a, output):
        """Moments of ``a[k+1]``; for the last layer ``a`` holds the logits and ``output`` names their map."""
        self.seen[k] = True
        count = a.shape[0] * a.shape[1]
        if output is None or output == "identity":
            self.row[2, k], self.row[3, k] = self._moments(self._ops.total(a), self._ops.dot_flat(a, a), count)
            return
        cols = max(1, UFUNC_BUFSIZE // a.shape[0])  # a chunk of columns: the output map is per column
        total = squares = 0.0
        for j in range(0, a.shape[1], cols):
            part = output_forward(output, self._ops.copy(a[:, j : min(j + cols, a.shape[1])]), self._ops)
            total += float(self._item(self._ops.total(part)))
            squares += float(self._item(self._ops.dot_flat(part, part)))
        self.row[2, k] = total / count
        self.row[3, k] = squares / count - self.row[2, k] ** 2

    def da(self, k, da):
        """``‖dL/da[k+1]‖`` (``‖dL/dz[n]‖`` for the last layer), before the backward step turns it into ``dz``."""
        self.row[6, k] = np.sqrt(float(self._item(self._ops.dot_flat(da, da))))

    def grads(self, k, dW, db):
        """``‖dW[k]‖`` and ``‖db[k]‖``, before a fused update may reuse the buffers."""
        self.row[4, k] = np.sqrt(float(self._item(self._ops.dot_flat(dW, dW))))
        self.row[5, k] = np.sqrt(float(self._item(self._ops.dot_flat(db, db))))


def _check(record):
    if record is not None and not isinstance(record, LayerStats):
        raise ValueError(f"record: expected an mc.LayerStats or None, got {record!r}")
    return record


def start(record, net):
    """A :class:`Recorder` for one run of ``net`` when ``record`` is a LayerStats, else None."""
    return None if _check(record) is None else Recorder(net.n_layers, net.backend)


def finish(record, recorder):
    """Give ``record`` the row of a completed run (``loss_and_grad``: one row, 1-D fields)."""
    if recorder is not None:
        record._rows, record._epochs = recorder.row[None].copy(), False


class EpochRows:
    """``fit``'s recording: a :class:`Recorder` for the last step of every epoch.

    Parameters
    ----------
    record : LayerStats or None
    net : MLP
    n_samples : int
    batch_size : int or None
        As ``fit`` was given it (checked by the training loop before any step).
    """

    def __init__(self, record, net, n_samples, batch_size):
        self.record, self.net = _check(record), net
        self.n_samples, self.batch_size, self.steps = n_samples, batch_size, 0
        if record is not None:
            record._rows, record._epochs = np.empty((0, len(FIELDS), net.n_layers)), True

    def next(self):
        """The recorder for the coming step, or None when it is not an epoch's last."""
        if self.record is None:
            return None
        size = self.batch_size or self.n_samples
        per_epoch = max(1, -(-self.n_samples // size))
        self.steps += 1
        return Recorder(self.net.n_layers, self.net.backend) if self.steps % per_epoch == 0 else None

    def done(self, recorder):
        """Append a completed step's row."""
        if recorder is not None:
            self.record._rows = np.concatenate([self.record._rows, recorder.row[None]])
