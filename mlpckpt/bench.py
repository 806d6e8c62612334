"""Measure and plot memory and time against depth (``mlpckpt bench``).

Measuring and plotting are separate: :func:`run_memory` runs every
configuration in fresh child processes and writes CSV and JSON;
:func:`plot_results` turns a CSV into PNG figures; :func:`plot_schedule`
draws one schedule. Matplotlib is imported lazily (Agg backend), so
measuring never needs it.

Child processes
---------------
Each ``(depth, strategy)`` pair is measured in its own interpreter
(``python -m mlpckpt.bench --child ...``), so a configuration cannot inherit
another's heap, cached schedule or peak RSS. The children run with

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

Timing runs in a separate child per depth, with glibc's default malloc
(the fixed threshold turns every allocation into page faults and slows
StoreAll by ~30%, which is not what a user sees), the strategies
interleaved round by round so that load on the machine hits them alike.
The time ratio to StoreAll is the median over rounds of the ratio measured
within one round.

Memory is measured with :mod:`tracemalloc` as in the tests: one warm-up
call (it compiles and caches the schedule), then the peak of one call above
the memory traced just before it. ``*_out`` columns pass preallocated
gradients (``out=``): activations and workspace alone, the figure that
compares with PyTorch's live bytes when ``.grad`` buffers already exist.
"""

import csv
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

__all__ = [
    "DEFAULT_DEPTHS",
    "QUICK_DEPTHS",
    "DEFAULT_STRATEGIES",
    "QUICK_STRATEGIES",
    "COLUMNS",
    "MMAP_THRESHOLD",
    "run_memory",
    "read_csv",
    "fit_slope",
    "plot_results",
    "plot_schedule",
]

MIB = 2.0**20
DEFAULT_DEPTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
QUICK_DEPTHS = (8, 16, 32, 64, 128, 256)
DEFAULT_STRATEGIES = ("storeall", "sqrt", "revolve:4", "revolve:10", "budget:sqrt")
QUICK_STRATEGIES = ("storeall", "sqrt", "revolve:10")
DEFAULT_REPEATS = 7
QUICK_REPEATS = 3
#: glibc mmap threshold in the memory child (bytes); see the module docstring
MMAP_THRESHOLD = 65536
#: slopes are fitted over depths >= this when at least two such depths exist
SLOPE_MIN_DEPTH = 64
#: file names written by run_memory / plot_results
CSV_NAME = "memory_vs_depth.csv"
JSON_NAME = "memory_vs_depth.json"
FIGURES = ("memory_vs_depth.png", "time_vs_depth.png", "forward_evals_vs_depth.png")

#: one CSV row per (depth, strategy), in this order
COLUMNS = [
    "depth",
    "width",
    "batch",
    "dtype",
    "loss",
    "activation",
    "init",
    "strategy",
    "strategy_repr",
    "budget_bytes",
    "raw_activation_bytes",
    "measured_peak_bytes_out",
    "predicted_peak_bytes_out",
    "predicted_activation_bytes_out",
    "prediction_error_out",
    "measured_peak_bytes",
    "predicted_peak_bytes",
    "predicted_activation_bytes",
    "prediction_error",
    "forward_evals_plan",
    "forward_evals_counted",
    "max_stored",
    "rss_growth_bytes_out",
    "rss_growth_bytes",
    "time_median_s",
    "time_min_s",
    "time_repeats",
    "time_ratio_storeall",
    "error",
    "note",
]

_INT_COLUMNS = {
    "depth", "width", "batch", "budget_bytes", "raw_activation_bytes",
    "measured_peak_bytes_out", "predicted_peak_bytes_out", "predicted_activation_bytes_out",
    "measured_peak_bytes", "predicted_peak_bytes", "predicted_activation_bytes",
    "forward_evals_plan", "forward_evals_counted", "max_stored",
    "rss_growth_bytes_out", "rss_growth_bytes", "time_repeats",
}
_FLOAT_COLUMNS = {
    "prediction_error_out", "prediction_error", "time_median_s", "time_min_s", "time_ratio_storeall",
}


# -- strategies ----------------------------------------------------------------
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
        Naming ``strategies`` when the spec is not understood, or when it
        asks for ``Budget`` and this version of the library has none.
    """
    import mlpckpt as mc

    name, _, arg = str(spec).strip().partition(":")
    name, arg = name.strip().lower(), arg.strip()
    text = f"{name}:{arg}" if arg else name
    if name == "budget":
        if not hasattr(mc, "Budget"):
            raise ValueError(f"strategies: got {spec!r}, but this mlpckpt has no Budget strategy")
        if arg.lower() == "sqrt":
            return "budget:sqrt"
    from .cli import CliError, parse_strategy

    try:
        parse_strategy(text)
    except CliError as exc:
        raise ValueError(f"strategies: {exc}".replace("--strategy: ", "")) from None
    return text


def make_strategy(spec, net, batch, loss, out):
    """Strategy object for ``spec`` on ``net`` (``budget:sqrt`` resolved).

    Returns
    -------
    strategy : object
    budget_bytes : int or None
        The budget of a Budget strategy, else None.
    """
    import mlpckpt as mc

    from ._validate import parse_bytes
    from .cli import parse_strategy

    if spec.lower() == "budget:sqrt":
        budget = mc.plan(net, batch, mc.Sqrt(), loss, out=out).peak_bytes
        return mc.Budget(budget), budget
    strategy = parse_strategy(spec)
    budget = parse_bytes(spec.partition(":")[2]) if spec.startswith("budget:") else None
    return strategy, budget


# -- the child processes ---------------------------------------------------------
def _child_env(threads, mmap_threshold):
    env = dict(os.environ)
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    if mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    # the child imports this very copy of mlpckpt (source tree or installed)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _run_child(config, threads, mmap_threshold, timeout):
    """Run ``python -m mlpckpt.bench --child CONFIG``; returns its JSON dict."""
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


def _build(config):
    import numpy as np

    import mlpckpt as mc

    depth, width, batch = config["depth"], config["width"], config["batch"]
    net = mc.MLP(
        [width] * (depth + 1),
        activation=config["activation"],
        output="identity",
        init=config["init"],
        dtype=config["dtype"],
        seed=config["seed"],
    )
    rng = np.random.default_rng(config["seed"])
    X = rng.standard_normal((width, batch)).astype(config["dtype"])
    Y = rng.standard_normal((width, batch)).astype(config["dtype"])
    return net, X, Y


def _current_rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss():
    """Reset the kernel's peak RSS (VmHWM, ru_maxrss) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_growth(call):
    """Peak RSS during ``call()`` above the RSS just before it (bytes), or -1
    when the peak cannot be reset (non-Linux); ru_maxrss is in KiB on Linux."""
    import gc
    import resource

    gc.collect()
    if not _reset_peak_rss():
        return -1
    before = _current_rss()
    call()
    return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)


def traced_peak(call):
    """tracemalloc peak of ``call()`` above the memory traced before it (bytes).

    The protocol of the tests and the benchmarks: call once before to build
    and cache the schedule, then measure."""
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _child_memory(config):
    import mlpckpt as mc
    from mlpckpt import layers

    net, X, Y = _build(config)
    batch, loss, spec = config["batch"], config["loss"], config["strategy"]
    grads = net.zeros_like_grads()
    row = {}
    for out, suffix in ((True, "_out"), (False, "")):
        try:
            strategy, budget = make_strategy(spec, net, batch, loss, out)
            sched = mc.plan(net, batch, strategy, loss, out=out)
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
        row["measured_peak_bytes" + suffix] = traced_peak(call)  # schedule now cached
        row["predicted_peak_bytes" + suffix] = sched.peak_bytes
        row["predicted_activation_bytes" + suffix] = sched.activation_bytes
        if out:
            row["budget_bytes"] = budget
            row["strategy_repr"] = repr(strategy)
            row["forward_evals_plan"] = sched.forward_evals
            row["max_stored"] = sched.max_stored
            counter = [0]
            original = layers.layer_forward

            def counting(*args, **kwargs):
                counter[0] += 1
                return original(*args, **kwargs)

            layers.layer_forward = counting
            try:
                call()
            finally:
                layers.layer_forward = original
            row["forward_evals_counted"] = counter[0]
    return row


def _child_time(config):
    import gc

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
                t0 = time.perf_counter()
                net.loss_and_grad(X, Y, loss, strategy=strategies[i], out=grads)
                times[specs[i]].append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {"times": times}


def _child_info(config):
    import numpy as np

    info = {
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
    }
    try:
        cfg = np.show_config(mode="dicts")
        deps = cfg.get("Build Dependencies", {})
        info["blas_build"] = {k: deps.get(k) for k in ("blas", "lapack") if k in deps}
    except Exception:  # older NumPy: no mode="dicts"
        info["blas_build"] = None
    try:
        import threadpoolctl

        info["blas_runtime"] = [
            {k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture", "threading_layer")}
            for d in threadpoolctl.threadpool_info()
        ]
    except Exception:  # optional
        info["blas_runtime"] = None
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _child_main(argv):
    if len(argv) != 2 or argv[0] != "--child":
        print("usage: python -m mlpckpt.bench --child CONFIG_JSON (internal; use `mlpckpt bench`)",
              file=sys.stderr)
        return 2
    config = json.loads(argv[1])
    mode = config["mode"]
    result = {"memory": _child_memory, "time": _child_time, "info": _child_info}[mode](config)
    print(json.dumps(result))
    return 0


# -- measuring -------------------------------------------------------------------
def _check_positive_ints(name, values):
    values = list(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name}: expected positive ints, got {values!r}")
    return values


def run_memory(
    depths=DEFAULT_DEPTHS,
    width=64,
    batch=256,
    strategies=None,
    repeats=DEFAULT_REPEATS,
    dtype="float64",
    loss="mse",
    activation="tanh",
    init="xavier",
    seed=0,
    threads=1,
    out_dir="bench_out",
    plot=True,
    progress=True,
    timeout=1800,
):
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
        Specs (see :func:`normalize_strategy`). Default
        :data:`DEFAULT_STRATEGIES`, without ``budget:sqrt`` when the library
        has no ``Budget``.
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

    Returns
    -------
    rows : list of dict
        One per ``(depth, strategy)``, keys :data:`COLUMNS`.
    paths : dict
        ``"csv"``, ``"json"`` and ``"figures"`` (a list) written.
    """
    import mlpckpt as mc

    depths = sorted(set(_check_positive_ints("depths", depths)))
    width, batch, repeats = (_check_positive_ints(k, [v])[0] for k, v in
                             (("width", width), ("batch", batch), ("repeats", repeats)))
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads: expected an int >= 0, got {threads!r}")
    if strategies is None:
        strategies = [s for s in DEFAULT_STRATEGIES if hasattr(mc, "Budget") or not s.startswith("budget")]
    specs = []
    for s in strategies:
        s = normalize_strategy(s)
        if s not in specs:
            specs.append(s)
    if not specs:
        raise ValueError("strategies: expected at least one strategy")
    from ._validate import check_choice, check_dtype
    from .activations import check_activations
    from .losses import check_loss
    from .params import INITS

    check_dtype(dtype)
    check_choice("init", init, INITS)
    check_loss(loss, "identity")
    check_activations(activation, 1)
    os.makedirs(out_dir, exist_ok=True)

    def say(msg):
        if progress:
            print(msg, file=sys.stderr, flush=True)

    base = {"width": width, "batch": batch, "dtype": dtype, "loss": loss,
            "activation": activation, "init": init, "seed": seed}
    started = time.time()
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": _command_line(),
        "mlpckpt": mc.__version__,
        "git": _git_state(),
        "settings": dict(base, depths=depths, strategies=specs, repeats=repeats),
        "child_env": {
            "threads": threads or "inherited",
            "OPENBLAS_NUM_THREADS": str(threads) if threads else os.environ.get("OPENBLAS_NUM_THREADS"),
            "OMP_NUM_THREADS": str(threads) if threads else os.environ.get("OMP_NUM_THREADS"),
            "MKL_NUM_THREADS": str(threads) if threads else os.environ.get("MKL_NUM_THREADS"),
            "MALLOC_MMAP_THRESHOLD_": f"{MMAP_THRESHOLD} (memory children only)",
            **{k: v for k, v in os.environ.items()
               if (k.startswith("OPENBLAS_") and k != "OPENBLAS_NUM_THREADS")
               or (k.startswith("MALLOC_") and k != "MALLOC_MMAP_THRESHOLD_")},
            "MALLOC_MMAP_THRESHOLD_ (time children)": os.environ.get("MALLOC_MMAP_THRESHOLD_", "glibc default"),
        },
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "measurement": (
            "tracemalloc peak of one loss_and_grad above the memory traced before it, after one "
            "warm-up call; *_out: gradients preallocated (out=). rss_growth: peak RSS (ru_maxrss, "
            "reset via /proc/self/clear_refs) minus RSS before the first call, with "
            f"MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}. time: out=, default malloc, strategies "
            "interleaved per round in one child per depth; ratio = median over rounds of "
            "t(strategy)/t(storeall) within a round. prediction_error = predicted/measured - 1."
        ),
    }
    info = _run_child({"mode": "info"}, threads, 0, timeout)
    meta.update(info)
    say(f"mlpckpt bench: numpy {info.get('numpy')}, python {info.get('python')}, "
        f"BLAS threads {meta['child_env']['OPENBLAS_NUM_THREADS']}, "
        f"{len(depths)} depths x {len(specs)} strategies, {repeats} timing rounds")

    rows = []
    total = len(depths) * len(specs)
    done = 0
    for depth in depths:
        for spec in specs:
            done += 1
            t0 = time.perf_counter()
            cfg = dict(base, mode="memory", depth=depth, strategy=spec)
            res = _run_child(cfg, threads, MMAP_THRESHOLD, timeout)
            row = {c: None for c in COLUMNS}
            row.update(base)
            del row["seed"]
            row.update(depth=depth, strategy=spec,
                       raw_activation_bytes=depth * width * batch * _itemsize(dtype))
            row.update(res)
            for suffix in ("_out", ""):
                m, p = row.get("measured_peak_bytes" + suffix), row.get("predicted_peak_bytes" + suffix)
                if m and p:
                    row["prediction_error" + suffix] = p / m - 1.0
            rows.append(row)
            if row.get("error"):
                say(f"[{done:3d}/{total}] n={depth:5d} {spec:<12s} FAILED: {row['error']}")
            else:
                say(
                    f"[{done:3d}/{total}] n={depth:5d} {spec:<12s} peak(out=) "
                    f"{row['measured_peak_bytes_out'] / MIB:9.3f} MiB (plan "
                    f"{100 * row['prediction_error_out']:+.2f}%), no out= "
                    + (f"{row['measured_peak_bytes'] / MIB:9.3f} MiB" if row.get("measured_peak_bytes")
                       else "      n/a    ")
                    + f", evals "
                    f"{row['forward_evals_counted']}/{row['forward_evals_plan']}, "
                    f"rss +{row['rss_growth_bytes_out'] / MIB:.1f} MiB  "
                    f"[{time.perf_counter() - t0:.1f} s]"
                )
        ok = [s for s in specs if not next(r for r in rows if r["depth"] == depth and r["strategy"] == s)["error"]]
        if not ok:
            continue
        t0 = time.perf_counter()
        res = _run_child(dict(base, mode="time", depth=depth, strategies=ok, repeats=repeats),
                         threads, 0, timeout)
        if "error" in res:
            say(f"[time] n={depth:5d} FAILED: {res['error']}")
            continue
        times = res["times"]
        ref = times.get("storeall")
        parts = []
        for spec in ok:
            row = next(r for r in rows if r["depth"] == depth and r["strategy"] == spec)
            ts = times[spec]
            row.update(time_median_s=statistics.median(ts), time_min_s=min(ts), time_repeats=len(ts))
            if ref:
                row["time_ratio_storeall"] = statistics.median(t / t_ref for t, t_ref in zip(ts, ref))
            parts.append(f"{spec} {1e3 * row['time_median_s']:.1f} ms"
                         + (f" ({row['time_ratio_storeall']:.2f}x)" if ref and spec != "storeall" else ""))
        say(f"[time] n={depth:5d} " + ", ".join(parts) + f"  [{time.perf_counter() - t0:.1f} s]")

    meta["elapsed_s"] = round(time.time() - started, 1)
    csv_path = os.path.join(out_dir, CSV_NAME)
    json_path = os.path.join(out_dir, JSON_NAME)
    write_csv(rows, csv_path)
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "columns": COLUMNS, "rows": rows}, f, indent=1)
    paths = {"csv": csv_path, "json": json_path, "figures": []}
    say(f"wrote {csv_path} and {json_path} ({meta['elapsed_s']} s of measuring)")
    if plot and not any(r.get("measured_peak_bytes_out") for r in rows):
        say("no configuration could be measured: no figures written")
    elif plot:
        for stale in FIGURES:  # figures of an earlier run must not sit beside new data
            if os.path.exists(os.path.join(out_dir, stale)):
                os.remove(os.path.join(out_dir, stale))
        paths["figures"] = plot_results(rows, out_dir)  # the caller reports them
    return rows, paths


def _git_state():
    """Commit and dirty flag of the source tree being measured, if it is a
    git checkout (None for an installed copy)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(root, ".git")):
        return None
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head or None, "modified_files": dirty.splitlines() if dirty else []}


def _command_line():
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if prog == "__main__.py":
        prog = "python -m mlpckpt"
    return " ".join([prog] + sys.argv[1:])


def _itemsize(dtype):
    return {"float64": 8, "float32": 4}.get(str(dtype), 8)


def write_csv(rows, path):
    """Write rows (dicts with keys :data:`COLUMNS`) as CSV; None as empty."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})


def read_csv(path):
    """Rows of a CSV written by :func:`run_memory`, numbers parsed.

    Raises
    ------
    ValueError
        Naming ``csv`` when the file lacks the needed columns.
    """
    required = {"depth", "strategy", "width", "batch", "dtype", "activation", "loss",
                "measured_peak_bytes_out", "predicted_peak_bytes_out"}
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = required - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"csv: {path!r} lacks columns {sorted(missing)}; expected a file "
                                 "written by `mlpckpt bench memory`")
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {}
                for k, v in raw.items():
                    try:
                        if v in ("", None):
                            row[k] = None
                        elif k in _INT_COLUMNS:
                            row[k] = int(float(v))
                        elif k in _FLOAT_COLUMNS:
                            row[k] = float(v)
                        else:
                            row[k] = v
                    except ValueError:
                        raise ValueError(f"csv: {path!r} line {line} column {k!r}: "
                                         f"expected a number, got {v!r}") from None
                for k in ("depth", "strategy"):
                    if row.get(k) is None:
                        raise ValueError(f"csv: {path!r} line {line}: column {k!r} is empty")
                rows.append(row)
    except UnicodeDecodeError:
        raise ValueError(f"csv: {path!r} is not a text CSV file") from None
    return rows


# -- analysis and plots ----------------------------------------------------------
def fit_slope(depths, values, min_depth=SLOPE_MIN_DEPTH):
    """Least-squares slope of ``log(values)`` against ``log(depths)``.

    Uses the depths ``>= min_depth`` (the range the plots state) when at
    least two exist; with fewer, all depths when none reaches ``min_depth``
    (a quick run), else no slope (a strategy that stopped fitting early).

    Returns
    -------
    float or None
        None with fewer than two usable points.
    """
    pts = [(d, v) for d, v in zip(depths, values) if d and v and v > 0]
    big = [(d, v) for d, v in pts if d >= min_depth]
    if len(big) >= 2:
        pts = big
    elif big or any(d >= min_depth for d in depths if d):
        return None
    if len(pts) < 2:
        return None
    xs = [math.log(d) for d, _ in pts]
    ys = [math.log(v) for _, v in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def _by_strategy(rows):
    order = []
    for r in rows:
        if r["strategy"] not in order:
            order.append(r["strategy"])
    return {s: sorted((r for r in rows if r["strategy"] == s and not r.get("error")),
                      key=lambda r: r["depth"]) for s in order}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def _fmt_slope(slope):
    return f"{0.0 if abs(slope) < 0.005 else slope:.2f}"


def _depth_axis(ax, rows):
    from matplotlib.ticker import FixedLocator, NullLocator

    depths = sorted({r["depth"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(depths))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(d) for d in depths])
    ax.set_xlabel("depth n (layers)")


def _save(fig, path, dpi):
    """Lay out, write and close a figure; returns its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _plain_log_y(ax):
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))


def _label(spec):
    name, _, arg = spec.partition(":")
    pretty = {"storeall": "StoreAll", "sqrt": "Sqrt", "revolve": "Revolve",
              "segments": "Segments", "budget": "Budget"}.get(name, name)
    if name == "budget" and arg.lower() == "sqrt":
        return "Budget(= Sqrt's peak)"
    if name == "budget":
        units = {"kib": "KiB", "mib": "MiB", "gib": "GiB", "kb": "KB", "mb": "MB", "gb": "GB", "b": "B"}
        num = arg.rstrip("KMGiBkmgb ")
        arg = num + units.get(arg[len(num):].strip().lower(), arg[len(num):])
    return f"{pretty}({arg})" if arg else pretty


def _subtitle(rows):
    r = rows[0]
    return f"width {r['width']}, batch {r['batch']}, {r['dtype']}, {r['activation']}, {r['loss']}"


def plot_results(rows_or_csv, out_dir, dpi=100):
    """Write the memory, time and forward-evaluation figures as PNG.

    Parameters
    ----------
    rows_or_csv : list of dict or str
        Rows from :func:`run_memory`, or the path of its CSV.
    out_dir : str
    dpi : int

    Returns
    -------
    list of str
        Paths written: :data:`FIGURES` in ``out_dir`` (the time figure only
        when times were measured).
    """
    rows = read_csv(rows_or_csv) if isinstance(rows_or_csv, (str, os.PathLike)) else list(rows_or_csv)
    if not rows:
        raise ValueError("csv: no rows to plot")
    os.makedirs(out_dir, exist_ok=True)
    plt = _pyplot()
    groups = _by_strategy(rows)
    colors = {s: f"C{i % 10}" for i, s in enumerate(groups)}
    marks = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(groups)}
    # a Budget often picks another strategy's schedule: hollow marks keep both visible
    face = {s: ("none" if s.startswith("budget") else colors[s]) for s in groups}

    def style(s, ms=4.5):
        return {"color": colors[s], "marker": marks[s], "mfc": face[s], "ms": ms}

    sub = _subtitle(rows)
    paths = []

    # memory against depth
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [1.2, 1.2, 0.8]})
    panels = (("_out", "gradients preallocated (out=)"), ("", "gradients allocated by the call"))
    for ax, (suffix, what) in zip(axes[:2], panels):
        for s, rs in groups.items():
            d = [r["depth"] for r in rs if r.get("measured_peak_bytes" + suffix)]
            m = [r["measured_peak_bytes" + suffix] / MIB for r in rs if r.get("measured_peak_bytes" + suffix)]
            p = [r["predicted_peak_bytes" + suffix] / MIB for r in rs if r.get("measured_peak_bytes" + suffix)]
            if not d:
                continue
            slope = fit_slope(d, m)
            lab = _label(s) + (f"  slope {_fmt_slope(slope)}" if slope is not None else "")
            ax.plot(d, m, "-", label=lab, **style(s))
            ax.plot(d, p, "--", color=colors[s], lw=1.2)
        raw = sorted({(r["depth"], r["raw_activation_bytes"]) for r in rows if r.get("raw_activation_bytes")})
        if raw:
            ax.plot([d for d, _ in raw], [b / MIB for _, b in raw], ":", color="0.4", lw=1,
                    label="n activations (n·width·batch·itemsize)")
        ax.plot([], [], "-", color="k", label="measured (tracemalloc)")
        ax.plot([], [], "--", color="k", label="predicted by plan()")
        ax.set_yscale("log")
        _plain_log_y(ax)
        _depth_axis(ax, rows)
        ax.set_title(what, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left")
    axes[0].set_ylabel("peak memory of one loss_and_grad [MiB]")
    axes[1].sharey(axes[0])
    ax = axes[2]
    for s, rs in groups.items():
        for suffix, ls in (("_out", "-"), ("", ":")):
            rr = [r for r in rs if r.get("prediction_error" + suffix) is not None]
            if rr:
                ax.plot([r["depth"] for r in rr], [100 * r["prediction_error" + suffix] for r in rr],
                        ls, label=_label(s) if suffix else None, **style(s, 3.5))
    ax.plot([], [], "-", color="k", label="out=")
    ax.plot([], [], ":", color="k", label="without out=")
    ax.axhline(0.0, color="0.3", lw=1)
    ax.axhline(5.0, color="0.6", lw=1, ls="--")
    ax.set_ylabel("plan error: predicted / measured − 1 [%]")
    ax.set_title("prediction error (allowed: 0 … 5% + 64 KiB)", fontsize=10)
    _depth_axis(ax, rows)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5)
    fig.suptitle(f"Memory against depth (slopes: log-log fit over n ≥ {SLOPE_MIN_DEPTH}) — {sub}", fontsize=11)
    paths.append(_save(fig, os.path.join(out_dir, FIGURES[0]), dpi))

    # time against depth
    if any(r.get("time_median_s") for r in rows):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
        for s, rs in groups.items():
            rt = [r for r in rs if r.get("time_median_s")]
            if not rt:
                continue
            axes[0].plot([r["depth"] for r in rt], [1e3 * r["time_median_s"] for r in rt], "-",
                         label=_label(s), **style(s))
            rr = [r for r in rt if r.get("time_ratio_storeall")]
            if rr:
                axes[1].plot([r["depth"] for r in rr], [r["time_ratio_storeall"] for r in rr], "-",
                             label=_label(s), **style(s))
        axes[0].set_yscale("log")
        _plain_log_y(axes[0])
        axes[0].set_ylabel("time of one loss_and_grad [ms] (median)")
        axes[0].set_title("wall time", fontsize=10)
        axes[1].axhline(1.0, color="0.5", lw=1)
        axes[1].set_ylabel("time / StoreAll's time (median of interleaved rounds)")
        axes[1].set_title("time relative to StoreAll", fontsize=10)
        for ax in axes:
            _depth_axis(ax, rows)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"Time against depth, gradients preallocated — {sub}",
                     fontsize=11)
        paths.append(_save(fig, os.path.join(out_dir, FIGURES[1]), dpi))

    # forward evaluations against depth
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for s, rs in groups.items():
        rs = [r for r in rs if r.get("forward_evals_plan")]
        if not rs:
            continue
        d = [r["depth"] for r in rs]
        axes[0].plot(d, [r["forward_evals_plan"] for r in rs], "-", color=colors[s], label=_label(s))
        axes[0].plot(d, [r["forward_evals_counted"] for r in rs], "x", color=colors[s], ms=6)
        axes[1].plot(d, [r["forward_evals_plan"] / r["depth"] for r in rs], "-", label=_label(s),
                     **style(s))
    axes[0].plot([], [], "-", color="k", label="plan().forward_evals")
    axes[0].plot([], [], "x", color="k", label="counted during loss_and_grad")
    axes[0].set_yscale("log")
    _plain_log_y(axes[0])
    axes[0].set_ylabel("layer-forward evaluations per loss_and_grad")
    axes[0].set_title("forward evaluations", fontsize=10)
    axes[1].set_ylabel("forward evaluations / n")
    axes[1].set_title("recomputation factor", fontsize=10)
    for ax in axes:
        _depth_axis(ax, rows)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Forward evaluations against depth — {sub}", fontsize=11)
    paths.append(_save(fig, os.path.join(out_dir, FIGURES[2]), dpi))
    return paths


def schedule_events(actions, n):
    """The steps of a schedule, for drawing.

    Parameters
    ----------
    actions : sequence of tuple of int
    n : int
        Number of layers.

    Returns
    -------
    dict
        ``forward``: list of ``(step, k, first, kept)`` — step at which
        ``a[k]`` is computed, whether for the first time, whether kept;
        ``restore``: ``(step, k)`` — a forward range restarted from the held
        ``a[k]``; ``loss``: ``(step, n)``; ``backward``: ``(step, k)`` —
        backward step of layer ``k``; ``held``: ``(k, t0, t1)`` — ``a[k]``
        alive from step ``t0`` to ``t1``; ``steps``: the number of steps.
    """
    from .actions import BACKWARD, FORWARD, LOSS

    ev = {"forward": [], "restore": [], "loss": [], "backward": [], "held": []}
    born = {}
    seen = set()
    step = 0
    last_stop = 0
    for action in actions:
        op = action[0]
        if op == FORWARD:
            _, start, stop, keep = action
            if start != last_stop:
                ev["restore"].append((step, start))
            for k in range(start + 1, stop + 1):
                kept = bool(keep) or k == stop
                ev["forward"].append((step, k, k not in seen, kept))
                seen.add(k)
                if kept:
                    born[k] = step
                step += 1
            last_stop = stop
        elif op == LOSS:
            ev["loss"].append((step, n))
            if n in born:
                ev["held"].append((n, born.pop(n), step))
            step += 1
            last_stop = -1
        elif op == BACKWARD:
            _, start, stop = action
            for k in range(stop - 1, start - 1, -1):
                ev["backward"].append((step, k))
                if k + 1 in born:
                    ev["held"].append((k + 1, born.pop(k + 1), step))
                step += 1
            last_stop = -1
        else:
            raise ValueError(f"actions: unknown operation {action!r}")
    ev["steps"] = step
    return ev


def _short(sizes):
    if len(set(sizes)) == 1:
        return f"{sizes[0]}"
    return ",".join(map(str, sizes)) if len(sizes) <= 6 else f"{sizes[0]},{sizes[1]},...,{sizes[-1]}"


def plot_schedule(schedule, path, dpi=100):
    """Draw a schedule: step on x, activation index on y.

    Marks: forward evaluations (first computation and recomputation in two
    colours), stored activations as bars over their lifetime, restarts from
    a checkpoint, the loss and the backward steps.

    Parameters
    ----------
    schedule : Schedule
        From :func:`mlpckpt.plan`.
    path : str
        PNG file to write.
    dpi : int

    Returns
    -------
    str
        ``path``.
    """
    plt = _pyplot()
    from matplotlib.collections import LineCollection

    n = len(schedule.sizes) - 1
    ev = schedule_events(schedule.actions, n)
    steps = max(ev["steps"], 1)
    width = min(16.0, max(7.0, 4.0 + steps / 25.0))
    height = min(9.0, max(4.5, 3.0 + n / 12.0))
    fig, ax = plt.subplots(figsize=(width, height))
    ms = max(4.0, min(30.0, 3000.0 / max(steps, n * 2)))
    bars = [[(t0, k), (t1, k)] for k, t0, t1 in ev["held"]]
    if bars:
        ax.add_collection(LineCollection(bars, colors="#f4a261", linewidths=max(1.0, min(4.0, 120.0 / n)),
                                         alpha=0.55, zorder=1))
    ax.plot([], [], "-", color="#f4a261", lw=3, alpha=0.7, label="a[k] held (stored)")
    first = [(t, k) for t, k, f, _ in ev["forward"] if f]
    recomp = [(t, k) for t, k, f, _ in ev["forward"] if not f]
    for pts, color, label in ((first, "#1f77b4", "forward, first computation"),
                              (recomp, "#9467bd", "forward, recomputation")):
        if pts:
            ax.scatter([t for t, _ in pts], [k for _, k in pts], s=ms, color=color, marker="o",
                       label=label, zorder=3)
    if ev["restore"]:
        ax.scatter([t - 0.5 for t, _ in ev["restore"]], [k for _, k in ev["restore"]], s=ms * 2.2,
                   facecolors="none", edgecolors="k", marker="o", linewidths=1,
                   label="restart from a checkpoint", zorder=4)
    if ev["loss"]:
        ax.scatter([t for t, _ in ev["loss"]], [k for _, k in ev["loss"]], s=ms * 4, color="#d62728",
                   marker="*", label="loss", zorder=5)
    if ev["backward"]:
        ax.scatter([t for t, _ in ev["backward"]], [k for _, k in ev["backward"]], s=ms * 1.3,
                   color="#2ca02c", marker="v", label="backward step of layer k", zorder=3)
    ax.set_xlim(-1, steps + 1)
    ax.set_ylim(-0.8, n + 0.8)
    ax.set_xlabel("step (one layer evaluation, loss or backward step each)")
    ax.set_ylabel("activation index k (a[k]; layer k maps a[k] to a[k+1])")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(
        f"{schedule.strategy!r}: n = {n}, forward_evals = {schedule.forward_evals} "
        f"({schedule.forward_evals / n:.2f} n), max_stored = {schedule.max_stored}\n"
        f"predicted peak {schedule.peak_bytes / MIB:.3f} MiB "
        f"(widths {_short(schedule.sizes)}, batch {schedule.batch_size})",
        fontsize=10,
    )
    return _save(fig, path, dpi)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
