"""``mlpckpt bench memory`` and ``mlpckpt bench plot``: the command line
of :mod:`mlpckpt.bench`."""

import os
import sys

import numpy as np

from .. import bench
from . import _args as argtype
from ..core._validate import DTYPES
from ..core._activations import ACTIVATIONS
from ..backends._backends import BACKENDS
from ..core._params import INITS

__all__ = ["add_bench"]

#: timing rounds and BLAS threads `bench memory` takes at most
MAX_REPEATS = 1000
MAX_THREADS = 1024


def add_bench(sub):
    p = sub.add_parser(
        "bench",
        help="benchmark memory and time against depth; plot the results",
        description="`bench memory` measures (fresh child processes) and writes CSV, JSON and "
        "PNG figures; `bench plot CSV` redraws the figures from a CSV.",
    )
    bsub = p.add_subparsers(dest="bench_command", metavar="{memory,plot}", required=True)
    m = bsub.add_parser(
        "memory",
        help="measure memory, forward evaluations and time against depth (writes CSV, JSON, PNG)",
    )
    m.add_argument("--quick", action="store_true",
                   help="depths 8..256, storeall,sqrt,revolve:10, 3 timing rounds (under a minute)")
    m.add_argument("--depths", type=argtype.depths, help="comma-separated depths (default 8,16,...,1024)")
    m.add_argument("--width", type=argtype.positive, default=64, help="layer width (default 64)")
    m.add_argument("--batch", type=argtype.positive, default=256, help="batch size (default 256)")
    m.add_argument("--dtype", choices=list(DTYPES), default="float64", help="default float64")
    m.add_argument("--activation", choices=list(ACTIVATIONS), default="tanh", help="hidden activation (default tanh)")
    m.add_argument("--init", choices=list(INITS), default="xavier", help="weight initialisation (default xavier)")
    m.add_argument("--strategies", type=argtype.strategies,
                   help="comma-separated: storeall,sqrt,segments:K,revolve:S,budget:SIZE,budget:sqrt "
                   "(default storeall,sqrt,revolve:4,revolve:10,budget:sqrt)")
    m.add_argument("--repeats", type=argtype.bounded(MAX_REPEATS), default=None,
                   help=f"timing rounds (default 7, --quick 3, at most {MAX_REPEATS})")
    m.add_argument("--threads", type=argtype.bounded(MAX_THREADS, 0), default=1,
                   help="BLAS/OpenMP threads in the measuring processes (default 1; 0 = inherit)")
    m.add_argument("--seed", type=argtype.nonnegative, default=0, help="random seed, an int >= 0")
    m.add_argument("--backend", choices=list(BACKENDS), default="numpy",
                   help="array library of the nets (default numpy); memory is then its allocator's")
    m.add_argument("--device", default=None, help="its device: cpu, cuda, cuda:1 (default the CPU)")
    m.add_argument("--workers", type=argtype.nonnegative, default=None,
                   help="measure the points in N local worker processes (default 0: in this process)")
    m.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="measure the points on a Dask cluster (tcp://host:8786); needs mlpckpt[dask]")
    m.add_argument("--out", default="bench_out", help="output directory (default bench_out)")
    m.add_argument("--no-plot", action="store_true", help="write CSV and JSON only")
    m.set_defaults(run=_run_bench_memory)
    q = bsub.add_parser("plot", help="draw the figures from a CSV written by `bench memory`")
    q.add_argument("csv", type=argtype.csv_file, help="memory_vs_depth.csv")
    q.add_argument("--out", default=None, help="output directory (default: the CSV's directory)")
    q.add_argument("--dpi", type=argtype.dpi, default=100, help="resolution (default 100, 10 to 1000)")
    q.set_defaults(run=_run_bench_plot)


def _run_bench_memory(args):
    quick = args.quick
    deepest = max(args.depths or (bench.QUICK_DEPTHS if quick else bench.DEFAULT_DEPTHS))
    itemsize = np.dtype(DTYPES[args.dtype]).itemsize
    argtype.check_build_size([args.width] * (deepest + 1), args.batch, itemsize,
                             f"the deepest net (n = {deepest:,}) and its stored activations")
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("--workers: not with --scheduler (the cluster has its own workers)")
    rows, paths = bench.run_memory(
        depths=args.depths or (bench.QUICK_DEPTHS if quick else bench.DEFAULT_DEPTHS),
        width=args.width,
        batch=args.batch,
        strategies=args.strategies if args.strategies is not None else (
            bench.QUICK_STRATEGIES if quick else None),
        repeats=args.repeats or (bench.QUICK_REPEATS if quick else bench.DEFAULT_REPEATS),
        dtype=args.dtype,
        activation=args.activation,
        init=args.init,
        seed=args.seed,
        threads=args.threads,
        out_dir=args.out,
        plot=not args.no_plot,
        backend=args.backend,
        device=args.device,
        workers=args.workers or 0,
        scheduler=args.scheduler,
    )
    failed = [r for r in rows if r.get("error")]
    for r in failed:
        print(f"failed: depth {r['depth']} {r['strategy']}: {r['error']}", file=sys.stderr)
    _print_bench_summary(rows)
    for p in [paths["csv"], paths["json"], *paths["figures"]]:
        print(f"wrote {p}")
    return 1 if failed else 0


def _print_bench_summary(rows):
    ok = [r for r in rows if not r.get("error")]
    if not ok:
        return
    print(f"{'strategy':<14s} {'slope':>6s} {'deepest n':>9s} {'peak (out=)':>14s} "
          f"{'plan error':>11s} {'time/StoreAll':>14s}")
    for spec in dict.fromkeys(r["strategy"] for r in ok):
        rs = sorted((r for r in ok if r["strategy"] == spec), key=lambda r: r["depth"])
        slope = bench.fit_slope([r["depth"] for r in rs], [r["measured_peak_bytes_out"] for r in rs])
        last = rs[-1]
        ratio = last.get("time_ratio_storeall")
        slope_text = "-" if slope is None else f"{0.0 if abs(slope) < 0.005 else slope:.2f}"
        print(f"{spec:<14s} {slope_text:>6s} {last['depth']:9d} "
              f"{last['measured_peak_bytes_out'] / bench.MIB:10.3f} MiB "
              f"{100 * last['prediction_error_out']:+10.2f}% "
              f"{(f'{ratio:.3f}x' if ratio else '-'):>14s}")
    counter = {"numpy": "tracemalloc", "array_api_strict": "tracemalloc", "cupy": "CuPy's memory pool",
               "torch": "PyTorch's CUDA allocator" if str(ok[0].get("device")).startswith("cuda")
               else "the PyTorch profiler's memory events"}.get(ok[0].get("backend") or "numpy")
    print(f"(peak: {counter}, gradients preallocated (out=), at the deepest n measured; "
          f"slope: log-log fit over n >= {bench.SLOPE_MIN_DEPTH})")


def _run_bench_plot(args):
    out = args.out if args.out else (os.path.dirname(args.csv) or ".")
    for p in bench.plot_results(args.csv, out, dpi=args.dpi):
        print(f"wrote {p}")
    return 0
