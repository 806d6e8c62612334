"""The ``mlpckpt`` command line (``python -m mlpckpt`` is the same program).

Bad arguments are refused by argparse itself, before any work: every value
goes through a ``type=`` callable or ``choices=`` (rules between options,
such as ``--sizes`` against ``--width``/``--depth``, are checked just after
parsing), and the parser reports an error as one line, ``mlpckpt <command>: error: <message>``, with exit
status 2. Errors found while running (an infeasible budget, a loss the
output cannot take) are reported the same way.
"""

import argparse
import json
import sys

import numpy as np

from .. import MLP, __version__, bench, gradcheck
from . import _args as argtype
from ._args import add_net_arguments, net_description
from ._bench import add_bench
from ._pareto import add_pareto_arguments, run_pareto
from ..planning._plan import plan
from ..planning._step_totals import OPTIMIZER_NAMES
from ..verification._checker import METHODS

__all__ = ["main", "build_parser"]

#: entries checked by default by `mlpckpt gradcheck` when --max-entries is not given
_GRADCHECK_DEFAULT_ENTRIES = 5000
#: bounds on counts of work (each costs forward evaluations or a training pass)
MAX_EPOCHS = 1_000_000
MAX_DIRECTIONS = 10_000
MAX_ENTRIES = 10_000_000
#: layers `plan --plot` draws (the figure shows every evaluation)
MAX_PLOT_DEPTH = 5_000


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser():
    parser = _Parser(
        prog="mlpckpt",
        description="Exact, memory-efficient MLPs: plan checkpoint schedules, "
        "check gradients, benchmark memory against depth.",
    )
    parser.add_argument("--version", action="version", version=f"mlpckpt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_demo(sub)
    _add_plan(sub)
    _add_gradcheck(sub)
    add_bench(sub)
    return parser


def _add_demo(sub):
    p = sub.add_parser("demo", help="train a small net on synthetic data, printing the loss")
    p.add_argument("--epochs", type=argtype.bounded(MAX_EPOCHS), default=30,
                   help=f"default 30, at most {MAX_EPOCHS:,}")
    p.add_argument("--strategy", type=argtype.strategy, default="sqrt",
                   help="storeall|sqrt|segments:K|revolve:S|budget:SIZE")
    p.set_defaults(run=_run_demo)


def _run_demo(args):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 512))
    labels = (X[0] * X[1] + np.sin(X[2]) > 0).astype(np.int64)  # a non-linear rule
    net = MLP([8] + [32] * 12 + [2], activation="tanh", output="softmax", seed=0)
    print(f"{net}\nstrategy {args.strategy!r}: {args.epochs} epochs of Adam, batch 64")

    def report(epoch, loss):
        if epoch % 5 == 4 or epoch == 0:
            print(f"epoch {epoch + 1:3d}  loss {loss:.4f}")

    net.fit(X, labels, loss="cross_entropy", epochs=args.epochs, batch_size=64,
            optimizer="adam", lr=3e-3, strategy=args.strategy, callback=report)
    acc = float(np.mean(net.predict(X) == labels))
    print(f"training accuracy {acc:.3f}")
    return 0


def _add_plan(sub):
    p = sub.add_parser("plan", help="dry-run a checkpoint strategy: evaluations, memory, actions")
    add_net_arguments(p)
    p.add_argument("--batch", type=argtype.positive, default=256, help="batch size (default 256)")
    p.add_argument("--out", action="store_true", help="gradient buffers preallocated (out=)")
    p.add_argument("--fuse-update", action="store_true", help="predict a fused training step")
    p.add_argument("--targets", choices=("labels", "onehot"), default="labels",
                   help="cross-entropy targets (default labels)")
    p.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default=None,
                   help="also print the total bytes of one fit step with this optimiser")
    p.add_argument("--actions", action="store_true", help="print the action list too")
    p.add_argument("--plot", type=argtype.png, metavar="PNG", help="draw the schedule to a PNG file")
    add_pareto_arguments(p)
    p.set_defaults(run=_run_plan)


def _run_plan(args):
    spec = net_description(args)
    argtype.check_plan_size(spec.sizes, args.batch, np.dtype(spec.dtype).itemsize)
    if args.pareto or args.pareto_plot:
        return run_pareto(args, spec)
    if args.plot and len(spec.sizes) - 1 > MAX_PLOT_DEPTH:
        raise ValueError(f"--plot: draws nets of at most {MAX_PLOT_DEPTH:,} layers, got {len(spec.sizes) - 1:,}")
    # a NetSpec: no weights are drawn, so a net too large to build is planned
    sched = plan(spec, args.batch, args.strategy, args.loss, out=args.out, fuse_update=args.fuse_update,
                 targets=args.targets, optimizer=args.optimizer)
    print(sched)
    if args.optimizer is not None:
        parts = sched.details["total"]
        print("  of which         " + ", ".join(
            f"{what} {parts[key] / 2**20:.3f} MiB" for what, key in (
                ("weights", "param_bytes"), ("net", "net_bytes"), ("optimiser", "state_bytes"),
                ("scratch", "scratch_bytes"),
                ("gradients", "grad_bytes"), ("call peak", "step_peak_bytes"), ("data", "data_bytes"))))
    if args.actions:
        print(sched.format_actions())
    if args.plot:
        bench.plot_schedule(sched, args.plot)
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
    p.add_argument("--batch", type=argtype.positive, default=8, help="samples in the random batch (default 8)")
    p.add_argument("--method", type=argtype.method, default="central", metavar="{" + ",".join(METHODS) + "}",
                   help="default central")
    p.add_argument("--rtol", type=argtype.positive_real, default=None, help="relative tolerance (default 1e-6)")
    p.add_argument("--atol", type=argtype.nonnegative_real, default=None,
                   help="absolute tolerance (default 1e-8*max(1,|f|))")
    p.add_argument("--eps", type=argtype.positive_real, default=None, help="relative step (default per method)")
    p.add_argument("--directions", type=argtype.bounded(MAX_DIRECTIONS), default=10,
                   help=f"directions for --method directional (default 10, at most {MAX_DIRECTIONS:,})")
    p.add_argument("--max-entries", type=argtype.bounded(MAX_ENTRIES), default=None,
                   help=f"check this many random entries (default: all, at most {_GRADCHECK_DEFAULT_ENTRIES})")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=_run_gradcheck)


def _run_gradcheck(args):
    spec = net_description(args)
    if args.method == "directional" and args.max_entries is not None:
        raise ValueError("--max-entries: applies to --method central or complex, not directional")
    argtype.check_build_size(spec.sizes, args.batch, np.dtype(spec.dtype).itemsize)
    rng = np.random.default_rng(args.seed)
    net = MLP(spec.sizes, activation=spec.activations, output=spec.output, dtype=args.dtype, seed=rng)
    n_out, batch = spec.sizes[-1], args.batch
    X = rng.standard_normal((spec.sizes[0], batch))
    if args.loss == "cross_entropy":
        Y = rng.integers(0, n_out, size=batch)
    elif args.loss == "bce":
        Y = rng.integers(0, 2, size=(n_out, batch)).astype(np.float64)
    elif net.output == "identity":
        Y = rng.standard_normal((n_out, batch))
    else:  # sigmoid / softmax outputs live in [0, 1]
        Y = rng.uniform(0.0, 1.0, size=(n_out, batch))
    kw = {"seed": args.seed, "n_directions": args.directions}
    kw.update({k: getattr(args, k) for k in ("rtol", "atol", "eps") if getattr(args, k) is not None})
    if args.method != "directional":
        n_params = sum(W.size + b.size for W, b in zip(net.weights, net.biases))
        if args.max_entries is not None:
            kw["max_entries"] = args.max_entries
        elif n_params > _GRADCHECK_DEFAULT_ENTRIES:
            kw["max_entries"] = _GRADCHECK_DEFAULT_ENTRIES
    report = gradcheck(net, X, Y, loss=args.loss, strategy=args.strategy, method=args.method, **kw)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"{net}, batch {batch}, loss {args.loss!r}, strategy {args.strategy!r}")
        print(report)
    return 0 if report.passed else 1


def main(argv=None):
    """Run the command line; returns the exit status (2 for bad arguments)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help and --version (0), or a bad argument (2, one line said)
        return exc.code
    prog = " ".join(["mlpckpt", args.command] + ([args.bench_command] if args.command == "bench" else []))
    try:
        return args.run(args)
    except ValueError as exc:
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"{prog}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except (MemoryError, OverflowError) as exc:  # last resort: the bounds above should come first
        what = "out of memory" if isinstance(exc, MemoryError) else "a number too large"
        print(f"{prog}: error: {what} ({' '.join(str(exc).split()) or type(exc).__name__}); "
              "expected a smaller net, batch or count", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
