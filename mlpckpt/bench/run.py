"""``mlpckpt bench memory``: every configuration measured in fresh child
processes (:mod:`mlpckpt.bench.children`), then written as CSV and JSON
(:mod:`mlpckpt.bench.results`) and drawn (:mod:`mlpckpt.bench.plots`).

Memory is measured with :mod:`tracemalloc` as in the tests (with
``backend=``, by that library's allocator: :mod:`mlpckpt.bench.devmeasure`):
one warm-up call (it compiles and caches the schedule), then the peak of one
call above the memory allocated just before it. ``*_out`` columns pass preallocated
gradients (``out=``): activations and workspace alone, the figure that
compares with PyTorch's live bytes when ``.grad`` buffers already exist.
Timing runs in one child per depth with the strategies interleaved; the
time ratio to StoreAll is the median over rounds of the ratio measured
within one round.
"""

import dataclasses
import datetime
import functools
import os
import statistics
import sys
import time

import numpy as np

from .. import __version__
from ..core._validate import check_choice, check_dtype, check_int
from ..core._activations import check_activations
from ..backends._backends import get_backend
from ..core._losses import check_loss
from ..core._params import INITS
from ..experiments._sweeps import sweep
from .children import MMAP_THRESHOLD, _run_child, normalize_strategy
from .measure import MIB, _command_line, _git_state
from .plots import FIGURES, plot_results
from .results import CSV_NAME, JSON_NAME, Row, write_csv, write_json

__all__ = ["DEFAULT_DEPTHS", "QUICK_DEPTHS", "DEFAULT_STRATEGIES", "QUICK_STRATEGIES",
           "DEFAULT_REPEATS", "QUICK_REPEATS", "run_memory", "measure_point"]

DEFAULT_DEPTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
QUICK_DEPTHS = (8, 16, 32, 64, 128, 256)
DEFAULT_STRATEGIES = ("storeall", "sqrt", "revolve:4", "revolve:10", "budget:sqrt")
QUICK_STRATEGIES = ("storeall", "sqrt", "revolve:10")
DEFAULT_REPEATS = 7
QUICK_REPEATS = 3

_MEASUREMENT = (
    "tracemalloc peak of one loss_and_grad above the memory traced before it, after one "
    "warm-up call; *_out: gradients preallocated (out=). rss_growth: peak RSS (ru_maxrss, "
    "reset via /proc/self/clear_refs) minus RSS before the first call, with "
    f"MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}. time: out=, default malloc, strategies "
    "interleaved per round in one child per depth; ratio = median over rounds of "
    "t(strategy)/t(storeall) within a round. prediction_error = predicted/measured - 1."
)


def _positive_ints(name, values):
    values = list(values)
    try:
        if values:
            return [check_int(name, v) for v in values]
    except ValueError:
        pass
    raise ValueError(f"{name}: expected positive ints, got {values!r}")


def _specs(strategies):
    specs = list(dict.fromkeys(normalize_strategy(s) for s in strategies))
    if not specs:
        raise ValueError("strategies: expected at least one strategy")
    return specs


def _meta(settings, threads):
    """What the JSON records beside the rows: date, versions, environment."""
    inherited = {var: str(threads) if threads else os.environ.get(var)
                 for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": _command_line(),
        "mlpckpt": __version__,
        "git": _git_state(),
        "settings": settings,
        "child_env": {
            "threads": threads or "inherited",
            **inherited,
            "MALLOC_MMAP_THRESHOLD_": f"{MMAP_THRESHOLD} (memory children only)",
            **{k: v for k, v in os.environ.items()
               if (k.startswith("OPENBLAS_") and k != "OPENBLAS_NUM_THREADS")
               or (k.startswith("MALLOC_") and k != "MALLOC_MMAP_THRESHOLD_")},
            "MALLOC_MMAP_THRESHOLD_ (time children)": os.environ.get("MALLOC_MMAP_THRESHOLD_", "glibc default"),
        },
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "measurement": _MEASUREMENT,
    }


def _measure(base, depth, spec, threads, timeout):
    """One memory child: its :class:`Row`."""
    res = _run_child(dict(base, mode="memory", depth=depth, strategy=spec), threads, MMAP_THRESHOLD, timeout)
    config = {k: v for k, v in base.items() if k not in ("seed", "backend", "device")}
    raw = depth * base["width"] * base["batch"] * np.dtype(base["dtype"]).itemsize
    res.setdefault("backend", base["backend"])
    res.setdefault("device", base["device"])
    row = Row(depth=depth, strategy=spec, raw_activation_bytes=raw, **config, **res)
    for suffix in ("_out", ""):
        m, p = getattr(row, "measured_peak_bytes" + suffix), getattr(row, "predicted_peak_bytes" + suffix)
        if m and p:
            setattr(row, "prediction_error" + suffix, p / m - 1.0)
    return row


def measure_point(base, threads, timeout, depth, strategy):
    """One memory point for :func:`mlpckpt.sweep`: measured by a fresh child of
    whichever worker runs it (so the child's environment and allocator hold)."""
    return dataclasses.asdict(_measure(base, depth, strategy, threads, timeout))


def _row_of(base, point, swept):
    if swept["error"] is None:
        return Row(**swept["result"])
    config = {k: v for k, v in base.items() if k != "seed"}
    return Row(**point, **config, error=swept["error"])


def _measured_text(row):
    return (
        f"peak(out=) {row.measured_peak_bytes_out / MIB:9.3f} MiB (plan "
        f"{100 * row.prediction_error_out:+.2f}%), no out= "
        + (f"{row.measured_peak_bytes / MIB:9.3f} MiB" if row.measured_peak_bytes else "      n/a    ")
        + f", evals {row.forward_evals_counted}/{row.forward_evals_plan}, "
        f"rss +{row.rss_growth_bytes_out / MIB:.1f} MiB"
    )


def _time(base, depth, rows, repeats, threads, timeout):
    """One time child for ``rows`` (one depth, measured): fills their times.
    Returns the progress line."""
    t0 = time.perf_counter()
    specs = [r.strategy for r in rows]
    res = _run_child(dict(base, mode="time", depth=depth, strategies=specs, repeats=repeats),
                     threads, 0, timeout)
    if "error" in res:
        return f"[time] n={depth:5d} FAILED: {res['error']}"
    times = res["times"]
    ref = times.get("storeall")
    parts = []
    for row in rows:
        ts = times[row.strategy]
        row.time_median_s, row.time_min_s, row.time_repeats = statistics.median(ts), min(ts), len(ts)
        if ref:
            row.time_ratio_storeall = statistics.median(t / t_ref for t, t_ref in zip(ts, ref))
        parts.append(f"{row.strategy} {1e3 * row.time_median_s:.1f} ms"
                     + (f" ({row.time_ratio_storeall:.2f}x)" if ref and row.strategy != "storeall" else ""))
    return f"[time] n={depth:5d} " + ", ".join(parts) + f"  [{time.perf_counter() - t0:.1f} s]"


def run_memory(depths=DEFAULT_DEPTHS, width=64, batch=256, strategies=None, repeats=DEFAULT_REPEATS,
               dtype="float64", loss="mse", activation="tanh", init="xavier", seed=0, threads=1,
               out_dir="bench_out", plot=True, progress=True, timeout=1800, backend="numpy", device=None,
               workers=0, scheduler=None):
    """Measure memory, forward evaluations and time against depth.

    Each ``(depth, strategy)`` is measured in a fresh child process
    (tracemalloc peaks with and without ``out=``, plan's predictions, counted
    forward evaluations, peak RSS growth); then one child per depth times
    all strategies in interleaved rounds. Writes ``memory_vs_depth.csv`` and
    ``memory_vs_depth.json`` (rows plus settings, versions, BLAS, thread
    environment, date) to ``out_dir``, and the PNG figures when ``plot``.

    Parameters
    ----------
    depths : sequence of int
        Numbers of layers ``n``; the net is ``[width] * (n + 1)``.
    width, batch : int
    strategies : sequence of str, optional
        Specs (see :func:`~mlpckpt.bench.normalize_strategy`). Default
        :data:`DEFAULT_STRATEGIES`.
    repeats : int
        Timing rounds (median reported).
    dtype, loss, activation, init : str
    seed : int
    threads : int
        BLAS/OpenMP threads in the children; ``0`` leaves the environment's
        setting alone.
    out_dir : str
    plot : bool
        Also write the figures (needs matplotlib).
    progress : bool
        One line per measurement on stderr.
    timeout : float
        Seconds allowed to one child.
    backend, device : str
        Where the nets live (as for :class:`~mlpckpt.MLP`); memory is then
        the backend's allocator's (:mod:`mlpckpt.bench.devmeasure`).
    workers, scheduler : optional
        How :func:`mlpckpt.sweep` runs the memory points: ``workers=0`` in
        this process (the default), ``N`` local worker processes, or on the
        Dask ``scheduler`` (an address or a client); each point is still
        measured in a fresh child. Timing runs afterwards, here, one depth
        at a time (parallel timings would share cores).

    Returns
    -------
    rows : list of dict
        One per ``(depth, strategy)``, keys :data:`~mlpckpt.bench.COLUMNS`
        (the fields of :class:`~mlpckpt.bench.Row`).
    paths : dict
        ``"csv"``, ``"json"`` and ``"figures"`` (a list) written.
    """
    depths = sorted(set(_positive_ints("depths", depths)))
    width, batch, repeats = (_positive_ints(k, [v])[0] for k, v in
                             (("width", width), ("batch", batch), ("repeats", repeats)))
    threads = check_int("threads", threads, minimum=0)
    workers = check_int("workers", workers, minimum=0)
    specs = _specs(DEFAULT_STRATEGIES if strategies is None else strategies)
    check_dtype(dtype)
    check_choice("init", init, INITS)
    check_loss(loss, "identity")
    check_activations(activation, 1)
    device = get_backend(backend, device).device  # checked here, not in every child
    os.makedirs(out_dir, exist_ok=True)

    def say(msg):
        if progress:
            print(msg, file=sys.stderr, flush=True)

    base = {"width": width, "batch": batch, "dtype": dtype, "loss": loss,
            "activation": activation, "init": init, "seed": seed, "backend": backend, "device": device}
    started = time.time()
    meta = _meta(dict(base, depths=depths, strategies=specs, repeats=repeats), threads)
    if backend != "numpy":  # whose bytes the memory columns are (mlpckpt.bench.devmeasure)
        meta["memory_counter"] = f"{backend} on {device}: the allocator's peak above entry"
    info = _run_child({"mode": "info"}, threads, 0, timeout)
    meta.update(info)
    say(f"mlpckpt bench: {backend} on {device}, numpy {info.get('numpy')}, python {info.get('python')}, "
        f"BLAS threads {meta['child_env']['OPENBLAS_NUM_THREADS']}, "
        f"{len(depths)} depths x {len(specs)} strategies, {repeats} timing rounds")

    grid = [{"depth": depth, "strategy": spec} for depth in depths for spec in specs]
    meta["engine"] = {"workers": workers, "scheduler": None if scheduler is None else str(scheduler)}
    t0 = time.perf_counter()
    swept = sweep(functools.partial(measure_point, base, threads, timeout), grid,
                  workers=None if scheduler is not None else workers, scheduler=scheduler, progress=progress)
    rows = [_row_of(base, point, r) for point, r in zip(grid, swept)]
    for i, row in enumerate(rows):
        what = f"FAILED: {row.error}" if row.error else _measured_text(row)
        say(f"[{i + 1:3d}/{len(rows)}] n={row.depth:5d} {row.strategy:<12s} {what}")
    say(f"[memory] {len(rows)} points in {time.perf_counter() - t0:.1f} s")
    for depth in depths:
        ok = [r for r in rows if r.depth == depth and not r.error]
        if ok:
            say(_time(base, depth, ok, repeats, threads, timeout))

    meta["elapsed_s"] = round(time.time() - started, 1)
    rows = [dataclasses.asdict(r) for r in rows]
    paths = {"csv": os.path.join(out_dir, CSV_NAME), "json": os.path.join(out_dir, JSON_NAME), "figures": []}
    write_csv(rows, paths["csv"])
    write_json(rows, meta, paths["json"])
    say(f"wrote {paths['csv']} and {paths['json']} ({meta['elapsed_s']} s of measuring)")
    if plot and not any(r["measured_peak_bytes_out"] for r in rows):
        say("no configuration could be measured: no figures written")
    elif plot:
        for stale in FIGURES:  # figures of an earlier run must not sit beside new data
            if os.path.exists(os.path.join(out_dir, stale)):
                os.remove(os.path.join(out_dir, stale))
        paths["figures"] = plot_results(rows, out_dir)  # the caller reports them
    return rows, paths
