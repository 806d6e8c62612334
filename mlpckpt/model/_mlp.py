"""The MLP class: a thin holder of weights, biases and configuration."""

import operator

import numpy as np

from ..execution import _executor as backprop
from ..core import _finite as finite
from ..io import _records as io
from ..experiments import _layerstats as layerstats
from . import _across_backends as placement
from ..training import _loop as train
from ..core._validate import check_bool, check_dtype, check_finite, check_sizes, make_rng
from ..core._activations import check_activations, check_output, output_forward
from ..backends._backends import NUMPY, get_backend
from ._batch import Grads, target_form
from ..training._optimizers import make_optimizer
from ..core._params import INITS, check_init, init_params
from ..core._kernel_setting import kernels_for
from ..planning._plan import Call, check_strategy, compile_program
from ._spec import NetSpec
from ..execution._workspace import Workspace, check_workspace

__all__ = ["MLP"]


class MLP:
    """A multilayer perceptron with column-major activations.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``[n_0, n_1, ..., n_n]``: input, hidden, output.
    activation : str or list of str, default "tanh"
        One name for every hidden layer, or one per hidden layer; keys of
        :data:`mlpckpt.core._activations.ACTIVATIONS`.
    output : {"identity", "sigmoid", "softmax"}, default "identity"
        Output map of the last layer.
    init : {"xavier", "he", "normal", "orthogonal"} or mc.Gaussian, default "xavier"
    dtype : {"float64", "float32"}, default "float64"
    seed : int or numpy.random.Generator, default 0
        Drawn by NumPy on the CPU, then converted: the same weights on every backend.
    backend : {"numpy", "torch", "cupy", "array_api_strict"}, default "numpy"
        The array library the parameters, batches and gradients live in
        (:mod:`mlpckpt.backends._backends`); ``device`` as it names them (``"cpu"``,
        ``"cuda"``, ``"cuda:1"``; default the CPU, CuPy's current GPU).

    Attributes
    ----------
    weights : list of arrays of the backend
        ``weights[k].shape == (sizes[k+1], sizes[k])``.
    biases : list of ndarray
        ``biases[k].shape == (sizes[k+1], 1)``.
    """

    backend = NUMPY  #: where the arrays live (:class:`mlpckpt.backends._backends.Backend`)

    def __init__(self, sizes, activation="tanh", output="identity", init="xavier", dtype="float64", seed=0,
                 *, backend="numpy", device=None):
        self._configure(sizes, activation, output, init, dtype)
        self.backend = get_backend(backend, device)
        params = init_params(self.sizes, self.init, self.dtype, make_rng(seed))
        self.weights, self.biases = placement.placed(self.backend, *params)

    def _configure(self, sizes, activation, output, init, dtype):
        # The checks __init__ and from_arrays share.
        self.sizes = check_sizes(sizes)
        self.activations = check_activations(activation, len(self.sizes) - 2)
        self.output = check_output(output)
        self.init = check_init(init, INITS)
        self.dtype = check_dtype(dtype)
        self._hidden = tuple(self.activations)  # kept for the planner's Call

    @classmethod
    def from_arrays(cls, weights, biases, activation="tanh", output="identity", init="xavier",
                    dtype=None, *, copy=True):
        """A net holding C-contiguous arrays of the given parameters; the sizes
        are read off their shapes.

        Parameters
        ----------
        weights : sequence of array_like, shapes (n_{k+1}, n_k)
        biases : sequence of array_like, shapes (n_{k+1}, 1)
            float64 or float32, all of one dtype, finite (checked by
            :func:`mlpckpt.io._records.check_arrays`: a ValueError names the block).
        activation, output, init : as for :class:`MLP` (``init`` is recorded only)
        dtype : {"float64", "float32"}, optional
            Of the net; default the arrays' own.
        copy : bool, default True
            Copy every block; with False, a block already C-contiguous and of
            the net's dtype is used as it is (shared with the caller).
        """
        weights, biases, sizes = io.check_arrays(weights, biases)
        net = cls.__new__(cls)
        net._configure(sizes, activation, output, init, weights[0].dtype if dtype is None else dtype)
        make = np.array if check_bool("copy", copy) else np.asarray
        with np.errstate(over="ignore"):  # float64 values can overflow float32: checked again
            for name, blocks in (("weights", weights), ("biases", biases)):
                setattr(net, name, [check_finite(f"{name}[{k}]", make(x, dtype=net.dtype, order="C"))
                                    for k, x in enumerate(blocks)])
        return net

    def __repr__(self):
        act = self.activations[0] if len(set(self.activations)) == 1 else self.activations
        return (
            f"MLP(sizes={list(self.sizes) if len(self.sizes) < 10 else '[...]'}, "
            f"n_layers={self.n_layers}, activation={act!r}, output={self.output!r}, "
            f"init={self.init!r}, dtype={self.dtype.name!r}{placement.describe_net(self)})"
        )

    def to(self, backend, device=None):
        """A copy on ``backend`` and ``device`` (as for :class:`MLP`): the same values, bit for bit."""
        net = type(self).__new__(type(self))
        net._configure(self.sizes, self.activations, self.output, self.init, self.dtype)
        net.backend, net.weights, net.biases = placement.moved(self, backend, device)
        return net

    spec = property(lambda self: NetSpec(self.sizes, self.activations, self.output, self.dtype), doc="Its NetSpec.")

    n_layers = property(lambda self: len(self.weights), doc="Number of weight matrices ``n``.")

    # -- forward -----------------------------------------------------------
    def forward(self, X):
        """Network output for the columns of ``X``.

        Parameters
        ----------
        X : array_like, shape (sizes[0], batch)

        Returns
        -------
        ndarray, shape (sizes[-1], batch)

        Raises
        ------
        ValueError
            Non-finite logits: naming the first non-finite block, or the overflow.
        """
        placement.check_params(self)
        X = placement.check_input(self, X)
        with np.errstate(all="ignore"):  # the logits are checked instead
            z = backprop.logits(self.weights, self.biases, self.activations, X, backend=self.backend)
        finite.check_logits(z, self.weights, self.biases, X)
        return output_forward(self.output, z, self.backend.ops)

    def predict_proba(self, X):
        """The sigmoid or softmax outputs, ``(sizes[-1], batch)``, as :meth:`forward`
        gives them; a ValueError for an ``"identity"`` output (no probabilities)."""
        if self.output == "identity":
            raise ValueError("output: predict_proba needs output='sigmoid' or 'softmax', got 'identity'")
        return self.forward(X)

    def predict(self, X):
        """Predictions for the columns of ``X`` (``(sizes[0], batch)``): int
        labels ``(batch,)`` for softmax, 0/1 ``(sizes[-1], batch)`` for sigmoid,
        the output itself for identity."""
        out, xp = self.forward(X), self.backend.xp
        if self.output == "softmax":
            return xp.argmax(out, axis=0)
        if self.output == "sigmoid":
            return xp.astype(out > 0.5, xp.int64)
        return out

    # -- gradients ---------------------------------------------------------
    def _call(self, batch, loss, out, fuse_update, targets, workspace=False):
        # The planner's Call from tuples kept between calls, so that a call
        # allocates nothing that grows with depth (plan counts no such thing).
        hidden = self._hidden
        if len(hidden) != len(self.activations) or not all(map(operator.is_, hidden, self.activations)):
            hidden = self._hidden = tuple(check_activations(self.activations, len(self.sizes) - 2))
        return Call(sizes=self.sizes, batch=batch, dtype=self.dtype.name, activations=hidden, loss=loss,
                    output=self.output, out=out, fuse_update=fuse_update, targets=targets,
                    kernels=kernels_for(self.dtype) if self.backend.is_numpy else "numpy",
                    workspace=workspace, backend=self.backend.kind)

    def _run(self, X, Y, loss, strategy, grads, on_layer, params=None, workspace=None, record=None):
        # Validated inputs only: the path loss_and_grad, fit and fit_lbfgs share;
        # params=(weights, biases) runs on other arrays of the net's shapes.
        call = self._call(X.shape[1], loss, grads is not None, on_layer is not None, target_form(Y),
                          workspace is not None)
        program = compile_program(check_strategy(strategy), call)
        placement.warn_if_nondeterministic(self.backend, program, call.n_layers)
        weights, biases = params if params is not None else (self.weights, self.biases)
        return backprop.execute(
            program, backprop.Params(weights, biases, self.activations, self.output), backprop.Batch(X, Y, loss),
            backprop.Options(grads=grads, on_layer=on_layer, workspace=workspace, backend=self.backend,
                             record=record),
        )

    def loss_and_grad(self, X, Y, loss="mse", *, strategy=None, out=None, workspace=None, record=None):
        """Loss and gradients of one batch.

        Parameters
        ----------
        X : array_like, shape (sizes[0], batch)
        Y : array_like
            ``(n_out, batch)``; ``(batch,)`` int labels for ``cross_entropy``,
            or ``(batch,)`` when ``n_out == 1``.
        loss : {"mse", "bce", "cross_entropy"}
        strategy : StoreAll, Segments, Sqrt, Revolve, Budget or None
            What the backward pass keeps; the result is bitwise the same.
        out : Grads, optional
            Buffers to write the gradients into (and return).
        workspace : Workspace, optional
            Keeps the activation buffers between calls (the same result;
            nothing allocated once it stops growing, after at most two
            calls): ``plan(..., workspace=True)`` predicts it.
        record : LayerStats, optional
            Filled with per-layer statistics (:mod:`mlpckpt.experiments._layerstats`; the same result).

        Returns
        -------
        loss : float
        grads : Grads
        """
        X, Y = placement.check_batch(self, X, Y, loss)
        bufs = None if out is None else placement.check_out(self, out, X, Y)
        workspace = placement.numpy_only(self, "workspace", check_workspace(workspace))
        rec = layerstats.start(record, self)
        value, dW, db, _ = self._run(X, Y, loss, strategy, bufs, None, workspace=workspace, record=rec)
        layerstats.finish(record, rec)
        return float(value), (out if out is not None else Grads(dW, db))

    def zeros_like_grads(self):
        """A :class:`Grads` of C-contiguous zeros, for ``loss_and_grad(..., out=)``
        (with the scratch of its overlap check, so that calls allocate none)."""
        return placement.zeros_grads(self)

    # -- training ----------------------------------------------------------
    def fit(self, X, Y, loss="mse", *, optimizer="sgd", lr=None, epochs=10, batch_size=32, shuffle=True,
            seed=0, strategy=None, fuse_update=False, callback=None, progress=False, record=None):
        """Minibatch training (:func:`mlpckpt.training._loop.fit` over this net's step).

        Parameters
        ----------
        X : array_like, shape (sizes[0], n_samples)
        Y : array_like
            Targets for all samples (see :meth:`loss_and_grad`).
        loss : str
        epochs : int, default 10
        batch_size : int or None, default 32
            ``None`` means full batch; the last batch may be smaller.
        optimizer : {"sgd", "momentum", "adam"} or SGD or Adam, default "sgd"
        lr : float, optional
            Learning rate for a named optimiser (default: the optimiser's
            own, 0.01 for SGD and 1e-3 for Adam); not with an object.
        shuffle : bool, default True
        seed : int or numpy.random.Generator, default 0
            Drives the shuffling only.
        strategy : checkpoint strategy or None
        fuse_update : bool, default False
            Update each layer as soon as its gradient is complete (gradient
            memory of one layer per shape; the same result).
        callback : callable, optional
            ``callback(epoch, mean_loss)`` after each epoch; ``True`` stops.
        record : LayerStats, optional
            One row of per-layer statistics per epoch, from its last step.
        progress : bool, default False
            Print one line per epoch to stderr.

        Returns
        -------
        list of float
            Per-epoch mean losses.
        """
        fuse_update = check_bool("fuse_update", fuse_update)
        X, Y = placement.check_batch(self, X, Y, loss)
        strategy = check_strategy(strategy)
        # for the whole run (the last, smaller batch reuses it); other backends' allocators cache
        workspace = Workspace() if self.backend.is_numpy else None
        rows = layerstats.EpochRows(record, self, X.shape[-1], batch_size)

        def gradient(Xb, Yb, grads, on_layer):
            placement.check_params(self)  # a callback may set them
            rec = rows.next()
            value = self._run(Xb, Yb, loss, strategy, grads, on_layer, workspace=workspace, record=rec).loss
            rows.done(rec)
            return value

        opt = make_optimizer(optimizer, lr)
        step = train.make_step(opt, gradient, self.weights, self.biases, fuse_update)
        history = train.fit(step, X, Y, epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
                            callback=callback, progress=progress)
        rows.commit()
        return history

    def fit_lbfgs(self, X, Y, loss="mse", *, maxiter=200, strategy=None, tol=None):
        """Full-batch L-BFGS-B (:func:`mlpckpt.training._loop.fit_lbfgs`), written into
        the existing arrays of ``weights`` and ``biases``.

        Parameters
        ----------
        X, Y, loss : as for :meth:`loss_and_grad`
        maxiter : int, default 200
        strategy : checkpoint strategy or None
        tol : float, optional
            ``scipy.optimize.minimize``'s tolerance.

        Returns
        -------
        scipy.optimize.OptimizeResult
        """
        placement.numpy_only(self, "fit_lbfgs", True)
        X, Y = placement.check_batch(self, X, Y, loss)
        strategy, workspace = check_strategy(strategy), Workspace()

        def loss_at(weights, biases, dW, db):
            return self._run(X, Y, loss, strategy, (dW, db), None, params=(weights, biases),
                             workspace=workspace).loss

        return train.fit_lbfgs(loss_at, self.weights, self.biases, maxiter=maxiter, tol=tol)

    # -- persistence -------------------------------------------------------
    def save(self, path, optimizer=None):
        """Write the model to ``path`` (.npz, atomically; see :mod:`mlpckpt.io._records`), with the
        state of ``optimizer`` (an :class:`SGD` or :class:`Adam` that trained it) when
        given, so that ``load(path, with_optimizer=True)`` resumes exactly."""
        weights, biases = placement.numpy_params(self)  # files are NumPy .npz from any backend
        io.save(path, dict(sizes=self.sizes, activations=self.activations, output=self.output,
                           init=self.init, dtype=self.dtype.name, weights=weights,
                           biases=biases, optimizer=placement.moved_optimizer(optimizer, NUMPY)))

