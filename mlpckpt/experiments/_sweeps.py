"""``mc.sweep``: run ``fn(**point)`` over a grid, locally or on a Dask cluster.

Engines: ``workers=0`` runs every point in this process, in grid order;
by default (``workers=None``, one per CPU) or ``workers=N`` the points run in
``N`` fresh worker processes of this machine (``concurrent.futures`` with
the ``spawn`` start method, started with one BLAS/OpenMP thread each);
``scheduler`` (an address such as ``"tcp://host:8786"`` or a
``dask.distributed.Client``) sends them to a Dask cluster. Whatever the
engine, one function runs a point (:func:`run_point`) and the rows are the
same; each is appended to ``out`` as it finishes (:mod:`mlpckpt.experiments._sweepfile`).
"""

import datetime
import itertools
import json
import math
import multiprocessing
import os
import pickle
import platform
import socket
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from . import _sweepfile as sweepfile
from .._version import __version__
from ..core._validate import check_bool, check_int

__all__ = ["sweep", "expand_grid", "run_point"]

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _scalar(name, value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        raise ValueError(f"grid: {name} = {value!r}; expected strings without line breaks")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ValueError(f"grid: {name} = {value!r}; expected ints, finite floats, strings, bools or None")


def expand_grid(grid):
    """The points of ``grid``: a dict of lists (their product, the first key
    varying slowest) or a list of dicts (as given).

    Returns
    -------
    points : list of dict
    keys : list of str
        Every key, in first-seen order.
    """
    if isinstance(grid, dict):
        if not grid:
            raise ValueError("grid: expected a non-empty dict of lists or a list of dicts, got {}")
        for key, values in grid.items():
            if not isinstance(key, str) or not isinstance(values, (list, tuple, range)) or not len(values):
                raise ValueError(f"grid: {key!r} -> {values!r}; expected str keys and non-empty lists")
        keys = list(grid)
        points = [dict(zip(keys, combo)) for combo in itertools.product(*grid.values())]
    elif isinstance(grid, (list, tuple)) and grid and all(isinstance(p, dict) for p in grid):
        points = [dict(p) for p in grid]
        keys = list(dict.fromkeys(k for p in points for k in p))
        if not all(isinstance(k, str) for k in keys):
            raise ValueError(f"grid: expected str keys, got {keys!r}")
    else:
        raise ValueError(f"grid: expected a non-empty dict of lists or a list of dicts, got {grid!r}")
    points = [{k: _scalar(k, v) for k, v in p.items()} for p in points]
    if len({sweepfile.point_key(p) for p in points}) != len(points):
        raise ValueError("grid: a point appears twice")
    return points, keys


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _row(point, result, error, tb, start, duration):
    return {"point": point, "result": result, "error": error, "traceback": tb, "host": socket.gethostname(),
            "versions": {"python": platform.python_version(), "numpy": np.__version__, "mlpckpt": __version__},
            "start": start.isoformat(timespec="milliseconds"), "duration_s": duration}


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def run_point(fn, point):
    """Run ``fn(**point)`` and return its row (never raises for ``fn``'s errors).

    The row: ``point``, ``result`` (the returned dict, made JSON-able) or
    None, ``error`` (``"Type: message"``) and ``traceback`` or None, ``host``,
    ``versions`` (python, numpy, mlpckpt), ``start`` (UTC, ISO 8601) and
    ``duration_s``.
    """
    start, t0 = _now(), time.perf_counter()
    result = error = tb = None
    try:
        value = fn(**point)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise TypeError(f"fn returned {type(value).__name__}"
                            f"{'' if not isinstance(value, dict) else ' with keys that are not all str'}"
                            ", expected a dict with str keys")
        result = json.loads(json.dumps(value, default=_jsonable))
    except Exception as e:  # recorded, and the sweep goes on
        error, tb = f"{type(e).__name__}: {e}", traceback.format_exc()
    return _row(point, result, error, tb, start, time.perf_counter() - t0)


def _lost(point, exc):
    # The engine, not fn, failed (a worker killed, a pickling error): a row all the same.
    return _row(point, None, f"{type(exc).__name__}: {exc}", None, _now(), 0.0)


def _in_process(fn, points, done):
    for p in points:
        done(run_point(fn, p))


class _OneThread:
    """Children spawned inside inherit one BLAS/OpenMP thread (set before they import NumPy)."""

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: "1" for k in _THREAD_VARS})

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _processes(fn, points, done, workers):
    try:
        pickle.dumps(fn)
    except Exception as e:
        raise ValueError(f"fn: {fn!r} cannot be sent to worker processes ({e}); define it at module level, "
                         "or use workers=0 or a Dask scheduler (which pickles closures)") from None
    pool = ProcessPoolExecutor(min(workers, len(points)), mp_context=multiprocessing.get_context("spawn"))
    try:
        with _OneThread():  # the workers start during the submits
            futures = {pool.submit(run_point, fn, p): p for p in points}
        for fut in as_completed(futures):
            exc = fut.exception()
            done(_lost(futures[fut], exc) if exc is not None else fut.result())
    finally:  # an interrupt drops the points not started
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(fn, points, done, scheduler):
    try:
        import distributed
    except ImportError:
        raise ValueError("scheduler: Dask is not installed; pip install 'mlpckpt[dask]'") from None
    own = not isinstance(scheduler, distributed.Client)
    if own and not isinstance(scheduler, str):
        raise ValueError(f"scheduler: expected an address or a dask.distributed.Client, got {scheduler!r}")
    client = distributed.Client(scheduler) if own else scheduler
    try:
        futures = {client.submit(run_point, fn, p, pure=False): p for p in points}
        for fut in distributed.as_completed(list(futures)):
            try:
                done(fut.result())
            except Exception as exc:  # a worker lost, a function that cannot be unpickled there
                done(_lost(futures[fut], exc))
    finally:
        if own:
            client.close()


def _bar(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm  # a well-kept progress bar with rate and ETA

    return tqdm(total=total, desc="sweep", unit="point", file=sys.stderr, dynamic_ncols=True)


def sweep(fn, grid, *, workers=None, scheduler=None, out=None, resume=True, progress=True):
    """Run ``fn(**point)`` for every point of ``grid`` and return the rows.

    Parameters
    ----------
    fn : callable
        ``fn(**point) -> dict``. Picklable by reference (a module-level
        function) for worker processes; Dask also takes closures.
    grid : dict of lists or list of dicts
        See :func:`expand_grid`; values are ints, floats, strings, bools or None.
    workers : int >= 0, optional
        ``0``: in this process; ``N``: ``N`` local worker processes; default
        one per CPU. Not with ``scheduler``.
    scheduler : str or dask.distributed.Client, optional
        A Dask scheduler's address, or a client, to run the points on.
    out : str or path, optional
        ``.jsonl`` or ``.csv``: each row appended as it finishes.
    resume : bool, default True
        With ``out``: skip the points the file holds a result for (a point
        that failed is run again); with False the file starts afresh.
    progress : bool, default True
        A progress bar (tqdm) with the rate and the time left, on stderr.

    Returns
    -------
    list of dict
        One row per point, in grid order (finished ones read from ``out``).
    """
    if not callable(fn):
        raise ValueError(f"fn: expected a callable, got {fn!r}")
    points, keys = expand_grid(grid)
    if workers is not None:
        workers = check_int("workers", workers, minimum=0)
    if scheduler is not None and workers is not None:
        raise ValueError(f"workers: got {workers!r} with a scheduler; the cluster has its own workers")
    resume, progress = check_bool("resume", resume), check_bool("progress", progress)
    out = sweepfile.check_out(out)
    finished = {}
    if out is not None:
        for row in sweepfile.open_rows(out, keys, resume):
            if row.get("error") is None:
                finished[sweepfile.point_key(row["point"])] = row
    todo = [p for p in points if sweepfile.point_key(p) not in finished]
    bar = _bar(len(todo), progress and bool(todo))

    def done(row):
        finished[sweepfile.point_key(row["point"])] = row
        if out is not None:
            sweepfile.append(out, row, keys)
        if bar is not None:
            bar.update(1)

    try:
        if not todo:
            pass
        elif scheduler is not None:
            _dask(fn, todo, done, scheduler)
        elif workers == 0:
            _in_process(fn, todo, done)
        else:
            _processes(fn, todo, done, workers or os.cpu_count() or 1)
    finally:
        if bar is not None:
            bar.close()
    return [finished[sweepfile.point_key(p)] for p in points]
