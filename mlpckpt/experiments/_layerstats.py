"""Per-layer signal statistics, recorded during a run at no activation-sized cost.

:class:`LayerStats` is passed as ``record=`` to :meth:`mlpckpt.MLP.loss_and_grad`
or :meth:`mlpckpt.MLP.fit`. Index ``k`` is layer ``k``, mapping ``a[k]`` to
``a[k+1]`` (docs/architecture.md): the mean and variance of ``z[k+1]`` and ``a[k+1]``
from the first forward evaluation of each layer (a recomputation is never
counted again), and ``‖dW[k]‖``, ``‖db[k]‖``, ``‖dL/da[k+1]‖`` (Frobenius
norms) from the backward pass. ``da_norm[n-1]`` is ``‖dL/dz[n]‖``: the loss
and the output map are differentiated together, so ``dL/da[n]`` never
exists. ``a[n]`` is the output map applied to the logits.

On float64 arrays the figures are sums and dot products in place (``z``'s
from ``W a`` and the bias's share, before the bias is added), and a variance
is ``E[x²] − E[x]²`` (relative error about ``1e-16 · mean² / var``, clamped
at 0). Other dtypes, and the last layer's output map, are summed in float64
over copies of column chunks of at most :data:`CHUNK` elements (16 KiB), a
variance in two passes (the mean, then the squares about it), so that a
float32 net's figures do not round in float32. No temporary grows with the
batch. The run's arithmetic is untouched:
results are bitwise the same with and without.
"""

import numpy as np

from ..core._activations import output_forward
__all__ = ["LayerStats", "FIELDS", "CHUNK", "Recorder", "start", "finish", "EpochRows"]

#: elements of each float64 copy the moments are summed over (16 KiB)
CHUNK = 2048

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
    """One run's row, written by :func:`mlpckpt.execution._executor.execute`.

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
        self._ops, self._item, self._xp = backend.ops, backend.item, backend.xp

    def _chunks(self, x, b, output):
        # float64 copies of column chunks of x (+ b, then the output map): the sums never
        # round in the net's dtype, and no temporary exceeds CHUNK elements.
        xp = self._xp
        cols = max(1, CHUNK // x.shape[0])
        for j in range(0, x.shape[1], cols):
            t = xp.astype(x[:, j : min(j + cols, x.shape[1])], xp.float64, copy=True)
            if b is not None:
                t += b
            yield t if output is None else output_forward(output, t, self._ops)

    def _moments(self, x, b=None, output=None):
        # two passes: the mean, then the sum of squares about it (no E[x^2] - E[x]^2 cancellation)
        count = x.shape[0] * x.shape[1]
        mean = sum(float(self._item(self._ops.total(t))) for t in self._chunks(x, b, output)) / count
        squares = 0.0
        for t in self._chunks(x, b, output):
            t -= mean
            squares += float(self._item(self._ops.dot_flat(t, t)))
        return mean, squares / count

    def _from_sums(self, total, squares, count):
        # float64 only: E[x^2] - E[x]^2, relative error ~ 1e-16 * mean^2 / var; never below 0
        mean = float(self._item(total)) / count
        return mean, max(0.0, float(self._item(squares)) / count - mean * mean)

    def z(self, k, M, b):
        """Moments of ``z[k+1] = M + b`` from ``M = W[k] a[k]`` and ``b`` (before the bias is added)."""
        o, xp = self._ops, self._xp
        if M.dtype == xp.float64:  # in place: sum(z^2) = sum(M^2) + 2 b . rowsum(M) + batch * b . b
            rows, batch = o.empty_like(b), M.shape[1]
            o.sum_rows(M, out=rows)
            total = o.total(rows) + batch * o.total(b)
            squares = o.dot_flat(M, M) + 2 * o.dot_flat(rows, b) + batch * o.dot_flat(b, b)
            self.row[0, k], self.row[1, k] = self._from_sums(total, squares, M.shape[0] * batch)
        else:
            self.row[0, k], self.row[1, k] = self._moments(M, xp.astype(b, xp.float64, copy=True))

    def a(self, k, a, output):
        """Moments of ``a[k+1]``; for the last layer ``a`` holds the logits and ``output`` names their map."""
        self.seen[k] = True
        output = None if output == "identity" else output
        if a.dtype == self._xp.float64 and output is None:
            sums = self._ops.total(a), self._ops.dot_flat(a, a)
            self.row[2, k], self.row[3, k] = self._from_sums(*sums, a.shape[0] * a.shape[1])
        else:
            self.row[2, k], self.row[3, k] = self._moments(a, None, output)

    def _norm(self, x):
        if x.dtype == self._xp.float64:  # a dot product in place, no copy
            return float(np.sqrt(float(self._item(self._ops.dot_flat(x, x)))))
        return float(np.sqrt(sum(float(self._item(self._ops.dot_flat(t, t))) for t in self._chunks(x, None, None))))

    def da(self, k, da):
        """``‖dL/da[k+1]‖`` (``‖dL/dz[n]‖`` for the last layer), before the backward step turns it into ``dz``."""
        self.row[6, k] = self._norm(da)

    def grads(self, k, dW, db):
        """``‖dW[k]‖`` and ``‖db[k]‖``, before a fused update may reuse the buffers."""
        self.row[4, k], self.row[5, k] = self._norm(dW), self._norm(db)


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
    """``fit``'s recording: a :class:`Recorder` for the last step of every epoch,
    committed to the LayerStats when the run ends (a failed run leaves it as it was).

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
        self.n_samples, self.batch_size, self.steps, self.rows = n_samples, batch_size, 0, []

    def next(self):
        """The recorder for the coming step, or None when it is not an epoch's last."""
        if self.record is None:
            return None
        size = self.batch_size or self.n_samples
        per_epoch = max(1, -(-self.n_samples // size))
        self.steps += 1
        return Recorder(self.net.n_layers, self.net.backend) if self.steps % per_epoch == 0 else None

    def done(self, recorder):
        """Keep a completed step's row."""
        if recorder is not None:
            self.rows.append(recorder.row)

    def commit(self):
        """Give the record the run's rows, one per epoch (2-D fields)."""
        if self.record is not None:
            shape = (len(self.rows), len(FIELDS), self.net.n_layers)
            self.record._rows = np.stack(self.rows) if self.rows else np.empty(shape)
            self.record._epochs = True
