"""Planning a call: the :class:`Call` it describes, the cached compile of a
strategy for it, the dry run :func:`plan`, and :func:`parse` for strategy
specs such as ``"revolve:8"``.

A :class:`Call` holds every setting of one ``loss_and_grad`` that a
schedule or its memory can depend on, named as in docs/architecture.md. The
compiled schedule is a pure function of ``(strategy, call)``, so it is
cached by exactly that (:func:`compile_actions`) and checked once, when it
is compiled (:func:`mlpckpt.planning._actions.check_actions`).
"""

import functools
from dataclasses import dataclass

import numpy as np

from . import _memory as memory, _workspace_replay as poolmem, _step_totals as stepmem
from ..core._validate import check_bool, check_choice, check_dtype, check_int, check_sizes, parse_bytes
from ._actions import check_actions
from ._lowering import lower
from ..core._activations import check_activations, check_output
from ._budget import Budget, frontier
from ..core._kernel_setting import kernels_for
from ..core._losses import check_loss
from ._schedule import Schedule
from ._strategies import Revolve, Segments, Sqrt, StoreAll, Strategy

__all__ = [
    "Call", "check_net", "make_call", "check_strategy", "compile_actions", "compile_program", "plan", "plan_call",
    "pareto", "parse",
]

#: compiled schedules kept, process-wide (a Budget on a long uneven chain
#: takes seconds to plan; a Revolve(0) schedule at n = 10,000 is 20,000 tuples)
CACHE_SIZE = 32

_STRATEGY_EXPECTED = (
    "expected StoreAll(), Segments(k), Sqrt(), Revolve(slots), Budget(max_bytes), Actions(steps) or None"
)


@dataclass(frozen=True, kw_only=True)
class Call:
    """The settings of one ``loss_and_grad`` that planning depends on.

    Attributes
    ----------
    sizes : tuple of int
        Layer widths ``n_0, ..., n_n``.
    batch : int
    dtype : str
        ``"float64"`` or ``"float32"``.
    activations : tuple of str
        Hidden activation names (length ``n - 1``).
    loss : str
    output : str
    out : bool
        Gradient buffers are given (``out=``).
    fuse_update : bool
        A fused training step (one gradient buffer per layer shape).
    targets : {"labels", "onehot"}
        Form of cross-entropy targets.
    kernels : {"numpy", "numba"}
        The elementwise kernels the call runs (:func:`mlpckpt.core._kernel_setting.kernels_for`).
    workspace : bool
        Activation buffers come from a :class:`~mlpckpt.Workspace`
        (``peak_bytes`` is then the largest of any call on it, from the one
        that fills it on).
    backend : str
        Whose allocator the memory model counts (:attr:`mlpckpt.backends._backends.Backend.kind`):
        ``"numpy"`` (tracemalloc), ``"torch:cuda"``, ``"cupy:cuda"``, ...
    """

    sizes: tuple
    batch: int
    dtype: str
    activations: tuple
    loss: str = "mse"
    output: str = "identity"
    out: bool = False
    fuse_update: bool = False
    targets: str = "labels"
    kernels: str = "numpy"
    workspace: bool = False
    backend: str = "numpy"

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize


def check_net(net, fields=("sizes", "activations", "output", "dtype")):
    """``net`` must have ``fields`` (an MLP has them all); else a ValueError
    naming ``net`` (not an AttributeError from deep inside)."""
    missing = [f for f in fields if not hasattr(net, f)]
    if missing:
        text = repr(net)
        text = text if len(text) <= 80 else f"{text[:60]}... ({type(net).__name__})"
        raise ValueError(
            f"net: expected an MLP (or an object with {', '.join(fields[:-1])} and {fields[-1]}), "
            f"got {text}"
        )
    return net


def make_call(net, batch, loss="mse", *, out=False, fuse_update=False, targets="labels", workspace=False):
    """A validated :class:`Call` for ``net`` (anything with ``sizes``,
    ``activations``, ``output`` and ``dtype``, e.g. an MLP)."""
    sizes = check_sizes(check_net(net).sizes)
    output = check_output(net.output)
    backend = getattr(net, "backend", None)  # an MLP's; a described net is NumPy's
    kind = backend.kind if hasattr(backend, "kind") else "numpy"
    return Call(
        sizes=sizes,
        batch=check_int("batch_size", batch),
        dtype=check_dtype(net.dtype).name,
        activations=tuple(check_activations(net.activations, len(sizes) - 2)),
        loss=check_loss(loss, output),
        output=output,
        out=check_bool("out", out),
        fuse_update=check_bool("fuse_update", fuse_update),
        targets=check_choice("targets", targets, {"labels", "onehot"}),
        kernels=kernels_for(net.dtype) if kind == "numpy" else "numpy",
        workspace=check_bool("workspace", workspace),
        backend=kind,
    )


def check_strategy(strategy):
    """``strategy`` itself, ``StoreAll()`` for None; a class such as
    ``mc.Sqrt`` without parentheses, a name or an unhashable object is
    refused before the schedule cache."""
    if strategy is None:
        return StoreAll()
    # an instance of a subclass that says what its schedule is
    ok = isinstance(strategy, Strategy) and type(strategy).actions is not Strategy.actions
    if ok:
        try:
            hash(strategy)
        except TypeError:
            ok = False
    if not ok:
        raise ValueError(f"strategy: got {strategy!r}, {_STRATEGY_EXPECTED}")
    return strategy


@functools.lru_cache(maxsize=CACHE_SIZE)
def compile_actions(strategy, call):
    """The checked schedule of ``strategy`` for ``call`` (cached)."""
    return check_actions(tuple(strategy.actions(call)), call.n_layers)


@functools.lru_cache(maxsize=CACHE_SIZE)
def compile_program(strategy, call):
    """The checked schedule of ``strategy`` for ``call`` lowered to its buffer
    events (:func:`mlpckpt.planning._lowering.lower`; cached): what the
    executor runs."""
    return lower(compile_actions(strategy, call), call.sizes)


def plan_call(strategy, call):
    """The :class:`~mlpckpt.planning._schedule.Schedule` of ``strategy`` for ``call``."""
    actions = compile_actions(strategy, call)
    figures = memory.simulate(actions, call)
    pooled = {}
    if call.workspace:  # eqs. C27-C28: the buffers stay; the largest call on them counts
        pooled = poolmem.pool_figures(actions, call)
        figures["peak_bytes"] = pooled.pop("peak_bytes")
    return Schedule(
        strategy=strategy,
        sizes=call.sizes,
        batch_size=call.batch,
        actions=actions,
        forward_evals=figures["forward_evals"],
        max_stored=figures["max_stored"],
        peak_bytes=figures["peak_bytes"],
        activation_bytes=figures["activation_bytes"],
        details={"loss": call.loss, "out": call.out, "fuse_update": call.fuse_update,
                 "targets": call.targets, "kernels": call.kernels, **pooled, **strategy.describe(call)},
    )


def plan(net, batch_size, strategy=None, loss="mse", *, out=False, fuse_update=False, targets="labels",
         optimizer=None, workspace=False):
    """Dry run: what one ``loss_and_grad`` with these arguments will do.

    Allocates no arrays. The arguments describe the call being predicted:
    ``out=True`` when gradient buffers are passed in, ``fuse_update=True``
    for a fused training step, ``targets`` ``"labels"`` or ``"onehot"`` for
    cross-entropy. X and Y are assumed already in the net's dtype (labels as
    int64); casts are extra.

    With ``optimizer`` (a name or an :class:`~mlpckpt.SGD` /
    :class:`~mlpckpt.Adam`, as ``fit`` takes it), ``total_bytes`` is what
    one step of ``net.fit(X, Y, loss, optimizer=optimizer, strategy=strategy,
    fuse_update=fuse_update, batch_size=batch_size)`` holds in all:
    weights, optimiser state and scratch, the gradient buffers fit keeps,
    the peak of the call it makes (``out=`` given, whatever ``out`` says
    here) and one shuffled batch of data (:mod:`mlpckpt.planning._step_totals`; its parts
    are in ``details["total"]``).

    Parameters
    ----------
    net : MLP or NetSpec
        Or anything with ``sizes``, ``activations``, ``output``, ``dtype``;
        a :class:`~mlpckpt.NetSpec` plans a net never built.
    batch_size : int
    strategy : Strategy or None
    loss : {"mse", "bce", "cross_entropy"}
    workspace : bool, default False
        Predict a call with ``workspace=`` a :class:`~mlpckpt.Workspace`:
        ``peak_bytes`` is the peak of the call that fills it (its buffers
        count), ``details`` adds ``workspace_bytes`` (what it then holds) and
        ``warm_peak_bytes`` (the peak of a later call, above the workspace).
    optimizer : {"sgd", "momentum", "adam"}, SGD, Adam or None

    Returns
    -------
    Schedule
    """
    strategy = check_strategy(strategy)
    sched = plan_call(strategy, make_call(net, batch_size, loss, out=out, fuse_update=fuse_update, targets=targets,
                                          workspace=workspace))
    if optimizer is not None:
        opt = stepmem.check_optimizer(optimizer)
        # fit keeps a workspace
        call = make_call(net, batch_size, loss, out=True, fuse_update=fuse_update, targets=targets, workspace=True)
        parts = stepmem.step_bytes(call, compile_actions(strategy, call), opt)
        sched.total_bytes = parts["total_bytes"]
        sched.details["total"] = {"optimizer": repr(opt), **parts}
    return sched


def pareto(net, batch_size, loss="mse", *, out=False, fuse_update=False, targets="labels"):
    """The memory/recompute frontier of one call: every ``Budget`` that
    matters.

    Returns
    -------
    list of Schedule
        Peak ascending, forward evaluations strictly descending; each is
        ``plan(net, batch_size, Budget(its peak), ...)``. Exact (every
        non-dominated schedule of the vocabulary) for chains of up to 12
        layers; beyond, the non-dominated answers of ``Budget`` at the
        peaks of StoreAll and of every Revolve and Segments schedule
        (about 48 of them), each re-planned at its own peak, with its
        certified gap in ``details``.
    """
    call = make_call(net, batch_size, loss, out=out, fuse_update=fuse_update, targets=targets)
    return [plan_call(Budget(peak), call) for peak in frontier(call)]


def parse(text):
    """A strategy from its spec: ``storeall``, ``sqrt``, ``segments:K``,
    ``revolve:S`` or ``budget:SIZE`` (``50MiB``, ``1GB``, bytes).

    Raises
    ------
    ValueError
        Naming ``strategy``, the spec and what was expected.
    """
    name, _, arg = str(text).partition(":")
    name, arg = name.strip().lower(), arg.strip()
    makers = {
        ("storeall", False): lambda: StoreAll(),
        ("sqrt", False): lambda: Sqrt(),
        ("segments", True): lambda: Segments(_int(arg)),
        ("revolve", True): lambda: Revolve(_int(arg)),
        ("budget", True): lambda: Budget(parse_bytes(arg)),
    }
    make = makers.get((name, bool(arg)))
    if make is None:
        raise ValueError(
            f"strategy: got {text!r}, expected storeall, sqrt, segments:K, revolve:S or budget:SIZE"
        )
    try:
        return make()
    except ValueError as exc:
        raise ValueError(f"strategy: got {text!r}: {exc}") from None


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an int, got {text!r}") from None
