"""Optimisers: in place, allocation-free updates of parameter blocks.

Optimisers follow PyTorch's update rules (``torch.optim.SGD``, ``Adam``) and
update parameter blocks in place, one block at a time, so the same object
serves a whole-model step and a fused per-layer step (identical arithmetic,
hence identical results). Block ``2k`` is ``weights[k]``, ``2k + 1`` is
``biases[k]``. Optimiser state (momentum, Adam moments) is model-sized and
allocated on the first step; so is one scratch array per distinct block
shape, which keeps every update free of temporaries.
"""

import math
import numbers

import numpy as np

from ..core._validate import check_bool, check_choice, check_positive_float
from ..backends._backends import ops_for

__all__ = ["Optimizer", "SGD", "Adam", "OPTIMIZERS", "make_optimizer", "layer_update", "apply_step"]


class Optimizer:
    """Base of the optimisers: updates parameter blocks in place.

    A training step calls :meth:`start_step` once, then :meth:`update` for
    every block (``2k`` is ``weights[k]``, ``2k + 1`` is ``biases[k]``).
    """

    def start_step(self):
        """Called once before the blocks of one step are updated."""

    def update(self, i, param, grad):
        """Update block ``i`` in place from its gradient.

        Parameters
        ----------
        i : int
            Block index; state (momentum, moments) is kept per block.
        param : ndarray
            The parameter block, written in place.
        grad : ndarray, same shape as ``param``
        """
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``buf = momentum * buf + g`` (``buf = g`` on the first step);
    ``p -= lr * (g + momentum * buf)`` with Nesterov, else ``p -= lr * buf``
    (``p -= lr * g`` without momentum) -- as ``torch.optim.SGD``.

    Parameters
    ----------
    lr : float, default 0.01
    momentum : float in [0, 1), default 0
    nesterov : bool, default False
        Needs ``momentum > 0``.
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        self.lr = check_positive_float("lr", lr)
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, numbers.Real)
            or not (0.0 <= float(momentum) < 1.0)
        ):
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        nesterov = check_bool("nesterov", nesterov)
        if nesterov and momentum == 0:
            raise ValueError("nesterov: got True with momentum=0, expected momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.state = {}
        self.scratch = {}

    def __repr__(self):
        return f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov})"

    def update(self, i, param, grad):
        # No temporaries: the products go into a scratch array kept per shape.
        o = ops_for(grad)
        tmp = _scratch(self.scratch, grad, o)
        if self.momentum == 0.0:
            o.multiply(grad, self.lr, out=tmp)
            param -= tmp
            return
        buf = self.state.get(i)
        if buf is None:
            buf = self.state[i] = o.copy(grad)
        else:
            buf *= self.momentum
            buf += grad
        if self.nesterov:
            o.multiply(buf, self.momentum, out=tmp)  # lr * (g + momentum * buf)
            tmp += grad
            tmp *= self.lr
        else:
            o.multiply(buf, self.lr, out=tmp)
        param -= tmp

    def state_dict(self):
        """The state as plain data, arrays not copied: ``{"name": "sgd", "scalars":
        {"lr", "momentum", "nesterov"}, "blocks": {"buf": {i: momentum buffer}}}``."""
        return {"name": "sgd", "scalars": {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov},
                "blocks": {"buf": dict(self.state)}}

    @classmethod
    def from_state(cls, state, copy=True):
        """The SGD that :meth:`state_dict` describes (``copy=False``: it owns the arrays)."""
        scalars, blocks = _unpack(state, "sgd", {"lr": float, "momentum": float, "nesterov": bool}, ("buf",))
        opt = cls(**scalars)
        if opt.momentum == 0.0 and blocks["buf"]:
            raise ValueError("state: momentum buffers given with momentum 0, expected none")
        opt.state = {i: np.array(a, copy=copy) for i, a in blocks["buf"].items()}
        return opt


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias-corrected as ``torch.optim.Adam``.

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr = check_positive_float("lr", lr)
        pair = tuple(betas) if isinstance(betas, (tuple, list, np.ndarray)) else ()  # ordered
        if len(pair) != 2 or not all(  # real numbers, not strings or bools
            isinstance(b, numbers.Real) and not isinstance(b, (bool, np.bool_)) and 0.0 <= b < 1.0
            for b in pair
        ):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        self.betas = tuple(float(b) for b in pair)
        self.eps = check_positive_float("eps", eps)
        self.t = 0
        self.state = {}
        self.scratch = {}

    def __repr__(self):
        return f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps})"

    def start_step(self):
        self.t += 1

    def update(self, i, param, grad):
        b1, b2 = self.betas
        o = ops_for(grad)
        if i not in self.state:
            self.state[i] = (o.zeros_like(param), o.zeros_like(param))
        m, v = self.state[i]
        tmp = _scratch(self.scratch, grad, o)  # one layer-sized scratch, reused
        m *= b1
        o.multiply(grad, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        o.multiply(grad, 1.0 - b2, out=tmp)
        tmp *= grad
        v += tmp
        corr1 = 1.0 - b1**self.t
        corr2 = 1.0 - b2**self.t
        o.sqrt(v, out=tmp)  # denominator: sqrt(v) / sqrt(corr2) + eps
        tmp /= math.sqrt(corr2)  # a Python float: float32 stays float32, no cast buffers
        tmp += self.eps
        o.divide(m, tmp, out=tmp)
        tmp *= self.lr / corr1
        param -= tmp

    def state_dict(self):
        """The state as plain data, arrays not copied: ``{"name": "adam", "scalars":
        {"lr", "beta1", "beta2", "eps", "t"}, "blocks": {"m": {i: m}, "v": {i: v}}}``."""
        scalars = {"lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps, "t": self.t}
        blocks = {"m": {i: mv[0] for i, mv in self.state.items()}, "v": {i: mv[1] for i, mv in self.state.items()}}
        return {"name": "adam", "scalars": scalars, "blocks": blocks}

    @classmethod
    def from_state(cls, state, copy=True):
        """The Adam that :meth:`state_dict` describes (``copy=False``: it owns the arrays)."""
        spec = {"lr": float, "beta1": float, "beta2": float, "eps": float, "t": int}
        s, blocks = _unpack(state, "adam", spec, ("m", "v"))
        m, v = blocks["m"], blocks["v"]
        opt = cls(lr=s["lr"], betas=(s["beta1"], s["beta2"]), eps=s["eps"])
        bad = sorted(set(m) ^ set(v))  # blocks with one moment only
        if not bad:  # moments of another shape or dtype than their twin, or a negative second moment
            bad = [i for i in m if (m[i].shape, m[i].dtype) != (v[i].shape, v[i].dtype) or not (v[i] >= 0).all()]
        if bad or s["t"] < 0 or (m and s["t"] == 0):
            raise ValueError(f"state: step count {s['t']}, moments of blocks {sorted(m)} (bad: {bad}); "
                             "expected t >= 0 (>= 1 with moments), m and v of one shape and dtype, v >= 0")
        opt.t = s["t"]
        opt.state = {i: (np.array(m[i], copy=copy), np.array(v[i], copy=copy)) for i in m}
        return opt


def _unpack(state, name, spec, slots):
    """An optimiser state's scalars (converted to the types of ``spec``) and
    blocks ``{slot: {int >= 0: float ndarray}}``, checked."""
    try:
        ok = state["name"] == name and set(state["scalars"]) == set(spec) and set(state["blocks"]) <= set(slots)
    except (TypeError, KeyError):
        ok = False
    if not ok:
        raise ValueError(f"state: expected name {name!r}, scalars {sorted(spec)} and blocks "
                         f"{list(slots)}, got {state!r:.200}")
    kinds = {bool: (bool, np.bool_), int: numbers.Integral, float: numbers.Real}
    for key, kind in spec.items():
        value = state["scalars"][key]
        if isinstance(value, (bool, np.bool_)) != (kind is bool) or not isinstance(value, kinds[kind]):
            raise ValueError(f"state: scalar {key!r}: expected a {kind.__name__}, got {value!r}")
    blocks = {slot: dict(state["blocks"].get(slot, {})) for slot in slots}
    for slot, per in blocks.items():
        for i, arr in per.items():
            if not (isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0 and isinstance(
                    arr, np.ndarray) and arr.dtype in (np.float64, np.float32)):
                raise ValueError(f"state: {slot} of block {i!r}: expected an int >= 0 and a float ndarray")
    return {key: kind(state["scalars"][key]) for key, kind in spec.items()}, blocks


def _scratch(store, like, o):
    """A scratch array shaped like ``like``, one per (shape, dtype), kept."""
    key = (tuple(like.shape), like.dtype)
    tmp = store.get(key)
    if tmp is None:
        tmp = store[key] = o.empty_like(like)
    return tmp


OPTIMIZERS = {"sgd": SGD, "momentum": SGD, "adam": Adam}


def make_optimizer(optimizer, lr):
    """An optimiser from a name (with ``lr``) or an :class:`Optimizer` (without).

    Parameters
    ----------
    optimizer : {"sgd", "momentum", "adam"} or Optimizer
        ``"momentum"`` is ``SGD(momentum=0.9)``.
    lr : float or None
        Learning rate for a name (None: the optimiser's default); must be
        None with an object, which carries its own.

    Returns
    -------
    Optimizer
    """
    if isinstance(optimizer, str):
        check_choice("optimizer", optimizer, OPTIMIZERS)
        kwargs = {} if lr is None else {"lr": lr}
        if optimizer == "momentum":
            kwargs["momentum"] = 0.9
        return OPTIMIZERS[optimizer](**kwargs)
    if isinstance(optimizer, Optimizer):
        if lr is not None:
            raise ValueError(f"lr: got {lr!r} together with the optimiser object {optimizer!r}; "
                             "expected lr=None (set the rate on the object)")
        return optimizer
    raise ValueError(
        f"optimizer: got {optimizer!r}, expected 'sgd', 'momentum', 'adam' "
        "or an optimiser object such as SGD(...) or Adam(...)"
    )


def layer_update(opt, weights, biases):
    """The fused step's ``on_layer(k, dW_k, db_k)``: update layer ``k`` in place.

    Parameters
    ----------
    opt : Optimizer
    weights, biases : lists of ndarray
        Updated in place, block ``2k`` and ``2k + 1`` of ``opt``.

    Returns
    -------
    callable
    """

    def on_layer(k, dW_k, db_k):
        opt.update(2 * k, weights[k], dW_k)
        opt.update(2 * k + 1, biases[k], db_k)

    return on_layer


def apply_step(opt, weights, biases, dW, db):
    """One whole-model update, blocks in layer order (``opt.start_step()``
    is the caller's).

    Parameters
    ----------
    opt : Optimizer
    weights, biases : lists of ndarray, shapes (n_{k+1}, n_k) and (n_{k+1}, 1)
        Updated in place.
    dW, db : lists of ndarray
        Their gradients, same shapes.
    """
    on_layer = layer_update(opt, weights, biases)
    for k in range(len(weights)):
        on_layer(k, dW[k], db[k])
