"""``mlpckpt plan --pareto``: the memory/recompute frontier as a table, and
``--pareto-plot PNG``, its figure with the fixed strategies marked.

The frontier is :func:`mlpckpt.pareto`'s; the marks (StoreAll, Sqrt and
``Revolve(s)`` for ``s`` = 0, 1, 2, 4, ... up to ``n - 1``) are each
strategy's own plan of the same call, placed against the frontier's step
function (the fewest evaluations the frontier reaches within their peak).
"""

import sys

from . import _args as argtype
from ..planning._exact import EXACT_LAYERS
from ..planning._plan import make_call, pareto, plan_call
from ..planning._schedule import MIB, short_sizes
from ..planning._strategies import Revolve, Sqrt, StoreAll

__all__ = ["add_pareto_arguments", "run_pareto", "format_frontier", "fixed_marks", "frontier_evals_at",
           "pareto_title"]

#: options of `plan` that describe one schedule, refused with --pareto
_ONE_SCHEDULE = (("actions", "--actions"), ("plot", "--plot"), ("optimizer", "--optimizer"))


def add_pareto_arguments(parser):
    """``--pareto`` and ``--pareto-plot PNG`` (which implies ``--pareto``)."""
    parser.add_argument("--pareto", action="store_true",
                        help="print the memory/recompute frontier (every Budget that matters) "
                        "instead of one schedule; --strategy is not used")
    parser.add_argument("--pareto-plot", type=argtype.png, metavar="PNG",
                        help="draw the frontier, with StoreAll, Sqrt and Revolve(s) marked, to a PNG "
                        "(implies --pareto)")


def _gap_text(sched):
    if sched.details.get("exact"):
        return "exact"
    return f"gap {100 * sched.details['gap']:.2f}% (>= {sched.details['lower_bound']})"


def format_frontier(front):
    """The frontier as a table, one row per :class:`~mlpckpt.planning._schedule.Schedule`.

    Parameters
    ----------
    front : list of Schedule
        From :func:`mlpckpt.pareto` (peak ascending).

    Returns
    -------
    str
        Columns: peak in MiB and bytes, forward evaluations, evaluations / n,
        and ``exact`` or the certified gap (with the lower bound).
    """
    n = front[0].n_layers if front else 1
    lines = [f"{'peak MiB':>12}  {'peak bytes':>15}  {'forward evals':>13}  {'evals/n':>8}  optimality"]
    for s in front:
        lines.append(f"{s.peak_bytes / MIB:12.3f}  {s.peak_bytes:15d}  {s.forward_evals:13d}  "
                     f"{s.forward_evals / n:8.3f}  {_gap_text(s)}")
    return "\n".join(lines)


def revolve_slots(n):
    """0, 1, 2, 4, 8, ... below ``n`` (a handful of Revolve marks)."""
    slots, s = [0], 1
    while s < n:
        slots.append(s)
        s *= 2
    return slots


def fixed_marks(call):
    """``[(label, Schedule)]``: StoreAll, Sqrt and Revolve(s) (s in
    :func:`revolve_slots`) planned for ``call``."""
    strategies = [("StoreAll", StoreAll()), ("Sqrt", Sqrt())]
    strategies += [(f"Revolve({s})", Revolve(s)) for s in revolve_slots(call.n_layers)]
    return [(label, plan_call(strategy, call)) for label, strategy in strategies]


def frontier_evals_at(front, peak_bytes):
    """The fewest evaluations of a frontier point within ``peak_bytes``
    (None below the frontier's smallest peak)."""
    within = [s.forward_evals for s in front if s.peak_bytes <= peak_bytes]
    return min(within) if within else None


def format_marks(front, marks):
    """One line per fixed strategy: its peak and evaluations, and the
    frontier's evaluations within the same peak."""
    lines = [f"{'strategy':>12}  {'peak MiB':>12}  {'forward evals':>13}  frontier within that peak"]
    for label, s in marks:
        best = frontier_evals_at(front, s.peak_bytes)
        lines.append(f"{label:>12}  {s.peak_bytes / MIB:12.3f}  {s.forward_evals:13d}  "
                     f"{'-' if best is None else best}")
    return "\n".join(lines)


def pareto_title(call):
    """A figure title: sizes, batch, loss, out."""
    return (f"Memory/recompute frontier: n = {call.n_layers} (sizes {short_sizes(call.sizes)}), "
            f"batch {call.batch}, {call.dtype}, loss {call.loss}, out={call.out}")


def run_pareto(args, spec):
    """Print the frontier of the call ``args`` describe (and draw it with
    ``--pareto-plot``); returns the exit status."""
    for name, flag in _ONE_SCHEDULE:
        if getattr(args, name, None):
            raise ValueError(f"{flag}: describes one schedule, not used with --pareto/--pareto-plot")
    call = make_call(spec, args.batch, args.loss, out=args.out, fuse_update=args.fuse_update,
                     targets=args.targets)
    if call.n_layers > EXACT_LAYERS:  # a minute or two at n = 1024: say so before starting
        print(f"planning the frontier of {call.n_layers:,} layers (Budget at about 48 peaks) ...",
              file=sys.stderr, flush=True)
    front = pareto(spec, args.batch, args.loss, out=args.out, fuse_update=args.fuse_update,
                   targets=args.targets)
    marks = fixed_marks(call)
    print(f"frontier of {len(front)} schedules; layers {call.n_layers} (sizes {short_sizes(call.sizes)}), "
          f"batch {call.batch}, loss {call.loss}, out={call.out}")
    print(format_frontier(front))
    print(format_marks(front, marks))
    if args.pareto_plot:
        from ..bench.plots import pareto_figure

        pareto_figure(front, marks, args.pareto_plot, pareto_title(call))
        print(f"wrote {args.pareto_plot}")
    return 0
