"""The ``mlpckpt`` command line (``python -m mlpckpt`` is the same program)."""

import argparse
import sys

from . import __version__
from ._validate import check_dtype, check_sizes, parse_bytes
from .activations import check_activations, check_output

__all__ = ["main", "build_parser"]


class CliError(Exception):
    """A bad argument: reported as one line, exit status 2."""


def _seed(text):
    """argparse type of --seed: an int >= 0 (numpy's own message names no option)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {text!r}")
    return value


def parse_sizes(args):
    """Layer sizes from ``--sizes 8,16,3`` or ``--width W --depth D``."""
    if getattr(args, "sizes", None):
        if args.width is not None or args.depth is not None:
            raise CliError("give either --sizes or --width/--depth, not both")
        try:
            return [int(s) for s in args.sizes.split(",")]
        except ValueError:
            raise CliError(f"--sizes: got {args.sizes!r}, expected comma-separated ints") from None
    if args.width is None or args.depth is None:
        raise CliError("give --sizes 8,16,3 or both --width and --depth")
    if args.width < 1 or args.depth < 1:
        raise CliError(f"--width/--depth: expected positive ints, got {args.width}/{args.depth}")
    return [args.width] * (args.depth + 1)


def parse_strategy(text):
    """``storeall|sqrt|segments:K|revolve:S|budget:SIZE`` -> a strategy object."""
    from .plan import parse

    try:
        return parse(text)
    except ValueError as exc:
        raise CliError(f"--{exc}") from None


def add_net_arguments(parser):
    """The options that describe a net: --sizes or --width/--depth, and more."""
    parser.add_argument("--sizes", help="layer sizes, e.g. 8,16,16,3")
    parser.add_argument("--width", type=int, help="uniform width (with --depth)")
    parser.add_argument("--depth", type=int, help="number of layers n (with --width)")
    parser.add_argument("--activation", default="tanh", help="hidden activation (default tanh)")
    parser.add_argument("--output", default=None, help="output map (default: what --loss needs)")
    parser.add_argument("--loss", default="mse", help="mse, bce or cross_entropy (default mse)")
    parser.add_argument("--dtype", default="float64", help="float64 or float32")
    parser.add_argument("--strategy", default="storeall", help="storeall|sqrt|segments:K|revolve:S|budget:SIZE")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed, an int >= 0")


def activation_for(args):
    """``--activation tanh`` or one name per hidden layer, ``tanh,relu``."""
    return args.activation.split(",") if "," in args.activation else args.activation


def output_for(args):
    """The output map: --output, or the one the loss needs."""
    if args.output:
        return args.output
    return {"bce": "sigmoid", "cross_entropy": "softmax"}.get(args.loss, "identity")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mlpckpt",
        description="Exact, memory-efficient MLPs: plan checkpoint schedules, "
        "check gradients, benchmark memory against depth.",
    )
    parser.add_argument("--version", action="version", version=f"mlpckpt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(sub)
    _add_plan(sub)
    _add_gradcheck(sub)
    _add_bench(sub)
    return parser


def _add_demo(sub):
    p = sub.add_parser("demo", help="train a small net on synthetic data, printing the loss")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--strategy", default="sqrt", help="storeall|sqrt|segments:K|revolve:S|budget:SIZE")
    p.set_defaults(run=_run_demo)


def _run_demo(args):
    import numpy as np

    import mlpckpt as mc

    if args.epochs < 1:
        raise CliError(f"--epochs: expected an int >= 1, got {args.epochs}")
    strategy = parse_strategy(args.strategy)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 512))
    labels = (X[0] * X[1] + np.sin(X[2]) > 0).astype(np.int64)  # a non-linear rule
    net = mc.MLP([8] + [32] * 12 + [2], activation="tanh", output="softmax", seed=0)
    print(f"{net}\nstrategy {strategy!r}: {args.epochs} epochs of Adam, batch 64")

    def report(epoch, loss):
        if epoch % 5 == 4 or epoch == 0:
            print(f"epoch {epoch + 1:3d}  loss {loss:.4f}")

    net.fit(X, labels, loss="cross_entropy", epochs=args.epochs, batch_size=64,
            optimizer="adam", lr=3e-3, strategy=strategy, callback=report)
    acc = float(np.mean(net.predict(X) == labels))
    print(f"training accuracy {acc:.3f}")
    return 0


def _add_plan(sub):
    p = sub.add_parser("plan", help="dry-run a checkpoint strategy: evaluations, memory, actions")
    add_net_arguments(p)
    p.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--out", action="store_true", help="gradient buffers preallocated (out=)")
    p.add_argument("--fuse-update", action="store_true", help="predict a fused training step")
    p.add_argument("--targets", default="labels", help="cross-entropy targets: labels or onehot")
    p.add_argument("--actions", action="store_true", help="print the action list too")
    p.add_argument("--plot", metavar="PNG", help="draw the schedule to a PNG file")
    p.set_defaults(run=_run_plan)


def _check_writable(path, option, suffix=".png"):
    """Fail before any work when ``path``'s directory does not exist or its
    extension is not ``suffix``."""
    import os

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"{option}: directory {directory!r} does not exist")
    if not path.lower().endswith(suffix):
        raise CliError(f"{option}: expected a {suffix} file name, got {path!r}")


def _run_plan(args):
    from types import SimpleNamespace

    import mlpckpt as mc

    # plan needs the architecture only: no weights are drawn for a dry run
    sizes = check_sizes(parse_sizes(args))
    output = check_output(output_for(args))
    net = SimpleNamespace(
        sizes=sizes,
        activations=check_activations(activation_for(args), len(sizes) - 2),
        output=output,
        dtype=check_dtype(args.dtype),
    )
    if args.plot:
        _check_writable(args.plot, "--plot")
    strategy = parse_strategy(args.strategy)
    sched = mc.plan(
        net,
        args.batch,
        strategy,
        args.loss,
        out=args.out,
        fuse_update=args.fuse_update,
        targets=args.targets,
    )
    print(sched)
    if args.actions:
        print(sched.format_actions())
    if args.plot:
        from .bench import plot_schedule

        plot_schedule(sched, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _add_gradcheck(sub):
    p = sub.add_parser(
        "gradcheck",
        help="check a random net's gradients numerically (central, complex, directional)",
        description="Build a net and random data from --seed, compare loss_and_grad with "
        "numerical derivatives and print the report. Exit 0 when it passes, 1 when it "
        "fails, 2 on bad arguments.",
    )
    add_net_arguments(p)
    p.add_argument("--batch", type=int, default=8, help="samples in the random batch (default 8)")
    p.add_argument("--method", default="central", help="central, complex or directional")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default 1e-6)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (default 1e-8*max(1,|f|))")
    p.add_argument("--eps", type=float, default=None, help="relative step (default per method)")
    p.add_argument("--directions", type=int, default=10, help="directions for --method directional")
    p.add_argument(
        "--max-entries",
        type=int,
        default=None,
        help="check this many random entries (default: all, at most 5000)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=_run_gradcheck)


#: entries checked by default by `mlpckpt gradcheck` when --max-entries is not given
_GRADCHECK_DEFAULT_ENTRIES = 5000


def _run_gradcheck(args):
    import json

    import numpy as np

    import mlpckpt as mc

    sizes = parse_sizes(args)
    if args.batch < 1:
        raise CliError(f"--batch: got {args.batch}, expected an int >= 1")
    activation = activation_for(args)
    rng = np.random.default_rng(args.seed)
    net = mc.MLP(sizes, activation=activation, output=output_for(args), dtype=args.dtype, seed=rng)
    n_out, batch = sizes[-1], args.batch
    X = rng.standard_normal((sizes[0], batch))
    if args.loss == "cross_entropy":
        Y = rng.integers(0, n_out, size=batch)
    elif args.loss == "bce":
        Y = rng.integers(0, 2, size=(n_out, batch)).astype(np.float64)
    elif net.output == "identity":
        Y = rng.standard_normal((n_out, batch))
    else:  # sigmoid / softmax outputs live in [0, 1]
        Y = rng.uniform(0.0, 1.0, size=(n_out, batch))
    kw = {"seed": args.seed, "n_directions": args.directions}
    for name in ("rtol", "atol", "eps"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    if args.method != "directional":
        n_params = sum(W.size + b.size for W, b in zip(net.weights, net.biases))
        if args.max_entries is not None:
            kw["max_entries"] = args.max_entries
        elif n_params > _GRADCHECK_DEFAULT_ENTRIES:
            kw["max_entries"] = _GRADCHECK_DEFAULT_ENTRIES
    elif args.max_entries is not None:
        raise CliError("--max-entries: applies to --method central or complex, not directional")
    strategy = parse_strategy(args.strategy)
    report = mc.gradcheck(net, X, Y, loss=args.loss, strategy=strategy, method=args.method, **kw)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"{net}, batch {batch}, loss {args.loss!r}, strategy {strategy!r}")
        print(report)
    return 0 if report.passed else 1


def _add_bench(sub):
    p = sub.add_parser(
        "bench",
        help="benchmark memory and time against depth; plot the results",
        description="`bench memory` measures (fresh child processes) and writes CSV, JSON and "
        "PNG figures; `bench plot CSV` redraws the figures from a CSV.",
    )
    bsub = p.add_subparsers(dest="bench_command", metavar="{memory,plot}")
    p.set_defaults(run=lambda args: _bench_usage(p))
    m = bsub.add_parser(
        "memory",
        help="measure memory, forward evaluations and time against depth (writes CSV, JSON, PNG)",
    )
    m.add_argument("--quick", action="store_true",
                   help="depths 8..256, storeall,sqrt,revolve:10, 3 timing rounds (under a minute)")
    m.add_argument("--depths", help="comma-separated depths (default 8,16,...,1024)")
    m.add_argument("--width", type=int, default=64, help="layer width (default 64)")
    m.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    m.add_argument("--dtype", default="float64", help="float64 or float32 (default float64)")
    m.add_argument("--activation", default="tanh", help="hidden activation (default tanh)")
    m.add_argument("--init", default="xavier", help="weight initialisation (default xavier)")
    m.add_argument("--strategies",
                   help="comma-separated: storeall,sqrt,segments:K,revolve:S,budget:SIZE,budget:sqrt "
                   "(default storeall,sqrt,revolve:4,revolve:10 and budget:sqrt when Budget exists)")
    m.add_argument("--repeats", type=int, default=None, help="timing rounds (default 7, --quick 3)")
    m.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP threads in the measuring processes (default 1; 0 = inherit)")
    m.add_argument("--seed", type=_seed, default=0, help="random seed, an int >= 0")
    m.add_argument("--out", default="bench_out", help="output directory (default bench_out)")
    m.add_argument("--no-plot", action="store_true", help="write CSV and JSON only")
    m.set_defaults(run=_run_bench_memory)
    q = bsub.add_parser("plot", help="draw the figures from a CSV written by `bench memory`")
    q.add_argument("csv", help="memory_vs_depth.csv")
    q.add_argument("--out", default=None, help="output directory (default: the CSV's directory)")
    q.add_argument("--dpi", type=int, default=100, help="resolution (default 100)")
    q.set_defaults(run=_run_bench_plot)


def _bench_usage(parser):
    parser.print_help(sys.stderr)
    return 2


def _int_list(option, text):
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise CliError(f"{option}: got {text!r}, expected comma-separated positive ints") from None
    if not values or min(values) < 1:
        raise CliError(f"{option}: got {text!r}, expected comma-separated positive ints")
    return values


def _run_bench_memory(args):
    from . import bench

    depths = _int_list("--depths", args.depths) if args.depths else (
        bench.QUICK_DEPTHS if args.quick else bench.DEFAULT_DEPTHS)
    if args.strategies:
        strategies = [s for s in args.strategies.split(",") if s.strip()]
        try:
            strategies = [bench.normalize_strategy(s) for s in strategies]
        except ValueError as exc:
            raise CliError(f"--{exc}") from None
    else:
        strategies = list(bench.QUICK_STRATEGIES) if args.quick else None
    repeats = args.repeats if args.repeats is not None else (
        bench.QUICK_REPEATS if args.quick else bench.DEFAULT_REPEATS)
    for option, value, low in (("--width", args.width, 1), ("--batch", args.batch, 1),
                               ("--repeats", repeats, 1), ("--threads", args.threads, 0)):
        if value < low:
            raise CliError(f"{option}: got {value}, expected an int >= {low}")
    rows, paths = bench.run_memory(
        depths=depths,
        width=args.width,
        batch=args.batch,
        strategies=strategies,
        repeats=repeats,
        dtype=args.dtype,
        activation=args.activation,
        init=args.init,
        seed=args.seed,
        threads=args.threads,
        out_dir=args.out,
        plot=not args.no_plot,
    )
    failed = [r for r in rows if r.get("error")]
    for r in failed:
        print(f"failed: depth {r['depth']} {r['strategy']}: {r['error']}", file=sys.stderr)
    _print_bench_summary(rows)
    for key in ("csv", "json"):
        print(f"wrote {paths[key]}")
    for p in paths["figures"]:
        print(f"wrote {p}")
    return 1 if failed else 0


def _print_bench_summary(rows):
    from .bench import MIB, fit_slope

    ok = [r for r in rows if not r.get("error")]
    if not ok:
        return
    print(f"{'strategy':<14s} {'slope':>6s} {'deepest n':>9s} {'peak (out=)':>14s} "
          f"{'plan error':>11s} {'time/StoreAll':>14s}")
    for spec in dict.fromkeys(r["strategy"] for r in ok):
        rs = sorted((r for r in ok if r["strategy"] == spec), key=lambda r: r["depth"])
        slope = fit_slope([r["depth"] for r in rs], [r["measured_peak_bytes_out"] for r in rs])
        last = rs[-1]
        ratio = last.get("time_ratio_storeall")
        slope_text = "-" if slope is None else f"{0.0 if abs(slope) < 0.005 else slope:.2f}"
        print(f"{spec:<14s} {slope_text:>6s} {last['depth']:9d} "
              f"{last['measured_peak_bytes_out'] / MIB:10.3f} MiB "
              f"{100 * last['prediction_error_out']:+10.2f}% "
              f"{(f'{ratio:.3f}x' if ratio else '-'):>14s}")
    print("(peak: tracemalloc, gradients preallocated (out=), at the deepest n measured; "
          "slope: log-log fit over n >= 64)")


def _run_bench_plot(args):
    import os

    from . import bench

    if not os.path.isfile(args.csv):
        raise CliError(f"csv: no such file {args.csv!r}")
    out = args.out if args.out else (os.path.dirname(args.csv) or ".")
    for p in bench.plot_results(args.csv, out, dpi=args.dpi):
        print(f"wrote {p}")
    return 0


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # no sub-command: usage, and a non-zero status
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except (CliError, ValueError) as exc:
        print(f"mlpckpt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"mlpckpt {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
