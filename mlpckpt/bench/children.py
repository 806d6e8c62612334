"""The bench's child processes and their entry points.

Each measurement runs in its own interpreter
(``python -m mlpckpt.bench --child CONFIG``), so a configuration cannot
inherit another's heap, cached schedule or peak RSS. The children run with

* ``OPENBLAS_NUM_THREADS=1`` and ``OMP_NUM_THREADS=1`` (and MKL's) unless
  ``threads`` says otherwise: these matmuls (64 x 64 @ 64 x 256) gain
  nothing from BLAS threads, and on a busy 2-core machine spinning threads
  make them up to 100x slower;
* for the memory child only, ``MALLOC_MMAP_THRESHOLD_=65536``: glibc's
  default threshold is dynamic (it rises to the size of the largest block
  freed, up to 32 MiB), so after the first call the 128 KiB activation
  buffers come from the heap and freed ones stay in the process. Peak RSS
  then says more about glibc than about the schedule. With a fixed 64 KiB
  threshold every activation buffer is its own ``mmap`` and ``munmap``
  returns it to the OS when freed, so peak RSS follows the live
  activations (plus the weights, already resident before the call).

The time child keeps glibc's default malloc (the fixed threshold turns
every allocation into page faults and slows StoreAll by ~30%, which is not
what a user sees) and runs the strategies interleaved, round by round, so
that load on the machine hits them alike.
"""

import gc
import json
import os
import subprocess
import sys
import time

import numpy as np

from ..execution import _executor as backprop
from ..planning._budget import Budget
from ..model._batch import target_form
from ..model._mlp import MLP
from ..planning._plan import compile_program, make_call, parse, plan
from ..planning._strategies import Sqrt
from ..execution._kernels import kernels_for
from .devmeasure import device_peak
from .measure import _ROOT, _child_info, _rss_growth

__all__ = ["MMAP_THRESHOLD", "normalize_strategy", "make_strategy", "child_main"]

#: glibc mmap threshold in the memory child (bytes); see the module docstring
MMAP_THRESHOLD = 65536


# -- strategy specs: plan.parse's, plus budget:sqrt ------------------------------
def normalize_strategy(spec):
    """Canonical spelling of a strategy spec, validated.

    Parameters
    ----------
    spec : str
        ``storeall``, ``sqrt``, ``segments:K``, ``revolve:S``,
        ``budget:SIZE`` (``50MiB``, ...) or ``budget:sqrt`` (a budget equal to
        Sqrt's predicted peak for the same call).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        Naming ``strategies`` when the spec is not understood.
    """
    name, _, arg = str(spec).strip().partition(":")
    name, arg = name.strip().lower(), arg.strip()
    if name == "budget" and arg.lower() == "sqrt":
        return "budget:sqrt"
    text = f"{name}:{arg}" if arg else name
    try:
        parse(text)
    except ValueError as exc:
        raise ValueError("strategies: " + str(exc).removeprefix("strategy: ")) from None
    return text


def make_strategy(spec, net, batch, loss, out):
    """Strategy object for ``spec`` on ``net`` (``budget:sqrt`` resolved).

    Returns
    -------
    strategy : Strategy
    budget_bytes : int or None
        The budget of a Budget strategy, else None.
    """
    if spec.lower() == "budget:sqrt":
        budget = plan(net, batch, Sqrt(), loss, out=out).peak_bytes
        return Budget(budget), budget
    strategy = parse(spec)
    return strategy, (strategy.max_bytes if isinstance(strategy, Budget) else None)


# -- the parent's side -------------------------------------------------------------
def _child_env(threads, mmap_threshold):
    env = dict(os.environ)
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    if mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    # the child imports this very copy of mlpckpt (source tree or installed)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    return env


def _run_child(config, threads, mmap_threshold, timeout):
    """Run ``python -m mlpckpt.bench --child CONFIG``; returns its JSON dict
    (``{"error": last line of its stderr}`` when it fails)."""
    cmd = [sys.executable, "-m", "mlpckpt.bench", "--child", json.dumps(config)]
    try:
        proc = subprocess.run(
            cmd,
            env=_child_env(threads, mmap_threshold),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"error": lines[-1] if lines else f"child exited with status {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the child's side --------------------------------------------------------------
def _build(config):
    """The uniform net ``[width] * (depth + 1)`` and one random batch."""
    depth, width, batch = config["depth"], config["width"], config["batch"]
    net = MLP(
        [width] * (depth + 1),
        activation=config["activation"],
        output="identity",
        init=config["init"],
        dtype=config["dtype"],
        seed=config["seed"],
        backend=config.get("backend", "numpy"),
        device=config.get("device"),
    )
    rng = np.random.default_rng(config["seed"])
    X = rng.standard_normal((width, batch)).astype(config["dtype"])
    Y = rng.standard_normal((width, batch)).astype(config["dtype"])
    if not net.backend.is_numpy:  # the same values, on the device
        X, Y = net.backend.from_numpy(X), net.backend.from_numpy(Y)
    return net, X, Y


def _counted_forward_evals(net, X, Y, loss, strategy, grads):
    """Layer-forward evaluations of one run, as the executor counts them."""
    call = make_call(net, X.shape[1], loss, out=True, targets=target_form(Y))
    program = compile_program(strategy, call)
    return backprop.execute(program, backprop.Params(net.weights, net.biases, net.activations, net.output),
                            backprop.Batch(X, Y, loss),
                            backprop.Options(grads=(grads.weights, grads.biases), backend=net.backend)).forward_evals


def _child_memory(config):
    net, X, Y = _build(config)
    batch, loss, spec = config["batch"], config["loss"], config["strategy"]
    grads = net.zeros_like_grads()
    row = {"kernels": kernels_for(net.dtype) if net.backend.is_numpy else "numpy",
           "backend": net.backend.name, "device": net.backend.device}
    for out, suffix in ((True, "_out"), (False, "")):
        try:
            strategy, budget = make_strategy(spec, net, batch, loss, out)
            sched = plan(net, batch, strategy, loss, out=out)
        except ValueError as exc:
            if out:  # the main measurement: the row fails
                raise
            # e.g. a byte budget that fits only when gradients are preallocated
            row["note"] = f"without out=: {exc}"
            continue
        buffers = grads if out else None

        def call():
            net.loss_and_grad(X, Y, loss, strategy=strategy, out=buffers)

        # first call (it also compiles the schedule): peak RSS, before any
        # warm call could raise the high-water mark
        row["rss_growth_bytes" + suffix] = _rss_growth(call)
        row["measured_peak_bytes" + suffix] = device_peak(net.backend, call)  # schedule now cached
        row["predicted_peak_bytes" + suffix] = sched.peak_bytes
        row["predicted_activation_bytes" + suffix] = sched.activation_bytes
        if out:
            row["budget_bytes"] = budget
            row["strategy_repr"] = repr(strategy)
            row["forward_evals_plan"] = sched.forward_evals
            row["max_stored"] = sched.max_stored
            row["forward_evals_counted"] = _counted_forward_evals(net, X, Y, loss, strategy, grads)
    return row


def _child_time(config):
    net, X, Y = _build(config)
    batch, loss = config["batch"], config["loss"]
    grads = net.zeros_like_grads()
    specs = config["strategies"]
    strategies = [make_strategy(s, net, batch, loss, True)[0] for s in specs]
    for strategy in strategies:  # warm-up: compile and cache each schedule
        net.loss_and_grad(X, Y, loss, strategy=strategy, out=grads)
    times = {s: [] for s in specs}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(config["repeats"]):
            shift = r % len(specs)  # rotate the order: no strategy always first
            for i in list(range(shift, len(specs))) + list(range(shift)):
                net.backend.synchronize()  # a device's queued work is not this round's
                t0 = time.perf_counter()
                net.loss_and_grad(X, Y, loss, strategy=strategies[i], out=grads)
                net.backend.synchronize()
                times[specs[i]].append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {"times": times}


_MODES = {"memory": _child_memory, "time": _child_time, "info": lambda config: _child_info()}


def child_main(argv):
    """``python -m mlpckpt.bench --child CONFIG_JSON``: print one JSON line."""
    if len(argv) != 2 or argv[0] != "--child":
        print("usage: python -m mlpckpt.bench --child CONFIG_JSON (internal; use `mlpckpt bench`)",
              file=sys.stderr)
        return 2
    config = json.loads(argv[1])
    print(json.dumps(_MODES[config["mode"]](config)))
    return 0
