"""Figures of ``mlpckpt bench``: memory, time and forward evaluations
against depth (from result rows or their CSV), and one schedule drawn step
by step. Matplotlib (Agg backend) is imported only when a figure is drawn,
so measuring never needs it.
"""

import os

from ..planning._lowering import timeline
from ..planning._schedule import short_sizes
from .measure import MIB
from .results import SLOPE_MIN_DEPTH, fit_slope, read_csv

__all__ = ["FIGURES", "plot_memory", "plot_time", "plot_forward_evals", "plot_results", "plot_schedule",
           "pareto_figure"]

#: file names written by plot_results, in this order
FIGURES = ("memory_vs_depth.png", "time_vs_depth.png", "forward_evals_vs_depth.png")

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
_NAMES = {"storeall": "StoreAll", "sqrt": "Sqrt", "revolve": "Revolve", "segments": "Segments",
          "budget": "Budget"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, dpi):
    """Lay out, write and close a figure; returns its path."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


def _label(spec):
    """``revolve:4`` -> ``Revolve(4)``; the size of a budget as written."""
    name, _, arg = spec.partition(":")
    if name == "budget" and arg.lower() == "sqrt":
        return "Budget(= Sqrt's peak)"
    pretty = _NAMES.get(name, name)
    return f"{pretty}({arg})" if arg else pretty


def _plain_log_y(ax):
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))


def _depth_axis(ax, rows):
    from matplotlib.ticker import FixedLocator, NullLocator

    depths = sorted({r["depth"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(depths))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(d) for d in depths])
    ax.set_xlabel("depth n (layers)")


def _finish(axes, rows, fontsize=8, which="both", loc="best"):
    """Depth axis, grid and legend of each of ``axes``."""
    for ax in axes:
        _depth_axis(ax, rows)
        ax.grid(True, which=which, alpha=0.3)
        ax.legend(fontsize=fontsize, loc=loc)


def _groups(rows, key):
    """Rows without an error and with a value at ``key``, by strategy in
    first-seen order (strategies without such rows left out), by depth."""
    groups = {s: [] for s in dict.fromkeys(r["strategy"] for r in rows)}
    for r in sorted(rows, key=lambda r: r["depth"]):
        if not r.get("error") and r.get(key) is not None:
            groups[r["strategy"]].append(r)
    return {s: rs for s, rs in groups.items() if rs}


def _styles(rows):
    """Line style of each strategy: colour, marker, and hollow marks for a
    Budget (it often picks another strategy's schedule: both stay visible)."""
    order = dict.fromkeys(r["strategy"] for r in rows)
    return {s: {"color": f"C{i % 10}", "marker": _MARKERS[i % len(_MARKERS)],
                "mfc": "none" if s.startswith("budget") else f"C{i % 10}", "ms": 4.5}
            for i, s in enumerate(order)}


def _subtitle(rows):
    r = rows[0]
    where = "" if r.get("backend") in (None, "numpy") else f", {r['backend']} on {r.get('device')}"
    return f"width {r['width']}, batch {r['batch']}, {r['dtype']}, {r['activation']}, {r['loss']}{where}"


def _slope_text(depths, mib):
    slope = fit_slope(depths, mib)
    return "" if slope is None else f"  slope {0.0 if abs(slope) < 0.005 else slope:.2f}"


def _two_panels(fig, axes, rows, path, dpi, title, panels):
    """Finish a figure of two panels (the left one log-scaled): labels
    ``panels`` ((y label, title) each), depth axes, ``title``; save it."""
    axes[0].set_yscale("log")
    _plain_log_y(axes[0])
    for ax, (ylabel, what) in zip(axes, panels):
        ax.set_ylabel(ylabel)
        ax.set_title(what, fontsize=10)
    _finish(axes, rows)
    fig.suptitle(f"{title} — {_subtitle(rows)}", fontsize=11)
    return _save(fig, path, dpi)


def plot_memory(rows, path, dpi=100):
    """Measured and predicted peaks (with and without ``out=``) and the
    prediction error against depth; returns ``path``."""
    style = _styles(rows)
    fig, axes = _pyplot().subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [1.2, 1.2, 0.8]})
    panels = (("_out", "gradients preallocated (out=)"), ("", "gradients allocated by the call"))
    for ax, (suffix, what) in zip(axes[:2], panels):
        for s, rs in _groups(rows, "measured_peak_bytes" + suffix).items():
            d = [r["depth"] for r in rs]
            m = [r["measured_peak_bytes" + suffix] / MIB for r in rs]
            ax.plot(d, m, "-", label=_label(s) + _slope_text(d, m), **style[s])
            ax.plot(d, [r["predicted_peak_bytes" + suffix] / MIB for r in rs], "--", color=style[s]["color"], lw=1.2)
        raw = sorted({(r["depth"], r["raw_activation_bytes"]) for r in rows if r.get("raw_activation_bytes")})
        if raw:
            ax.plot([d for d, _ in raw], [b / MIB for _, b in raw], ":", color="0.4", lw=1,
                    label="n activations (n·width·batch·itemsize)")
        ax.plot([], [], "-", color="k", label="measured (tracemalloc)")
        ax.plot([], [], "--", color="k", label="predicted by plan()")
        ax.set_yscale("log")
        _plain_log_y(ax)
        ax.set_title(what, fontsize=10)
        _finish([ax], rows, fontsize=7.5, loc="upper left")
    axes[0].set_ylabel("peak memory of one loss_and_grad [MiB]")
    axes[1].sharey(axes[0])
    ax = axes[2]
    errors = [(suffix, ls, _groups(rows, "prediction_error" + suffix)) for suffix, ls in (("_out", "-"), ("", ":"))]
    for s in style:
        for suffix, ls, groups in errors:
            if s in groups:
                ax.plot([r["depth"] for r in groups[s]], [100 * r["prediction_error" + suffix] for r in groups[s]],
                        ls, label=_label(s) if suffix else None, **dict(style[s], ms=3.5))
    ax.plot([], [], "-", color="k", label="out=")
    ax.plot([], [], ":", color="k", label="without out=")
    ax.axhline(0.0, color="0.3", lw=1)
    ax.axhline(5.0, color="0.6", lw=1, ls="--")
    ax.set_ylabel("plan error: predicted / measured − 1 [%]")
    ax.set_title("prediction error (allowed: 0 … 5% + 64 KiB)", fontsize=10)
    _finish([ax], rows, fontsize=7.5, which="major")
    fig.suptitle(f"Memory against depth (slopes: log-log fit over n ≥ {SLOPE_MIN_DEPTH}) — {_subtitle(rows)}",
                 fontsize=11)
    return _save(fig, path, dpi)


def plot_time(rows, path, dpi=100):
    """Median time and time relative to StoreAll against depth; returns
    ``path``, or None (nothing written) when no times were measured."""
    if not any(r.get("time_median_s") for r in rows):
        return None
    style = _styles(rows)
    fig, axes = _pyplot().subplots(1, 2, figsize=(12, 4.6))
    for ax, key, scale in ((axes[0], "time_median_s", 1e3), (axes[1], "time_ratio_storeall", 1.0)):
        for s, rs in _groups(rows, key).items():
            ax.plot([r["depth"] for r in rs], [scale * r[key] for r in rs], "-", label=_label(s), **style[s])
    axes[1].axhline(1.0, color="0.5", lw=1)
    return _two_panels(fig, axes, rows, path, dpi, "Time against depth, gradients preallocated", (
        ("time of one loss_and_grad [ms] (median)", "wall time"),
        ("time / StoreAll's time (median of interleaved rounds)", "time relative to StoreAll")))


def plot_forward_evals(rows, path, dpi=100):
    """Planned and counted forward evaluations, and the recomputation
    factor, against depth; returns ``path``."""
    style = _styles(rows)
    fig, axes = _pyplot().subplots(1, 2, figsize=(12, 4.6))
    for s, rs in _groups(rows, "forward_evals_plan").items():
        d = [r["depth"] for r in rs]
        color = style[s]["color"]
        axes[0].plot(d, [r["forward_evals_plan"] for r in rs], "-", color=color, label=_label(s))
        axes[0].plot(d, [r["forward_evals_counted"] for r in rs], "x", color=color, ms=6)
        axes[1].plot(d, [r["forward_evals_plan"] / r["depth"] for r in rs], "-", label=_label(s), **style[s])
    axes[0].plot([], [], "-", color="k", label="plan().forward_evals")
    axes[0].plot([], [], "x", color="k", label="counted by the executor")
    return _two_panels(fig, axes, rows, path, dpi, "Forward evaluations against depth", (
        ("layer-forward evaluations per loss_and_grad", "forward evaluations"),
        ("forward evaluations / n", "recomputation factor")))


def plot_results(rows_or_csv, out_dir, dpi=100):
    """Write the memory, time and forward-evaluation figures as PNG.

    Parameters
    ----------
    rows_or_csv : list of dict or str
        Rows from :func:`~mlpckpt.bench.run_memory`, or the path of its CSV.
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
    figures = zip((plot_memory, plot_time, plot_forward_evals), FIGURES)
    paths = [draw(rows, os.path.join(out_dir, name), dpi) for draw, name in figures]
    return [p for p in paths if p is not None]


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
    ev = timeline(schedule.actions, n)
    steps = max(ev["steps"], 1)
    fig, ax = plt.subplots(figsize=(min(16.0, max(7.0, 4.0 + steps / 25.0)), min(9.0, max(4.5, 3.0 + n / 12.0))))
    ms = max(4.0, min(30.0, 3000.0 / max(steps, n * 2)))
    bars = [[(t0, k), (t1, k)] for k, t0, t1 in ev["held"]]
    if bars:
        ax.add_collection(LineCollection(bars, colors="#f4a261", linewidths=max(1.0, min(4.0, 120.0 / n)),
                                         alpha=0.55, zorder=1))
    ax.plot([], [], "-", color="#f4a261", lw=3, alpha=0.7, label="a[k] held (stored)")
    first = [(t, k) for t, k, f, _ in ev["forward"] if f]
    recomp = [(t, k) for t, k, f, _ in ev["forward"] if not f]
    marks = (
        (first, {"s": ms, "color": "#1f77b4", "marker": "o", "label": "forward, first computation", "zorder": 3}),
        (recomp, {"s": ms, "color": "#9467bd", "marker": "o", "label": "forward, recomputation", "zorder": 3}),
        ([(t - 0.5, k) for t, k in ev["restore"]],
         {"s": ms * 2.2, "facecolors": "none", "edgecolors": "k", "marker": "o", "linewidths": 1,
          "label": "restart from a checkpoint", "zorder": 4}),
        (ev["loss"], {"s": ms * 4, "color": "#d62728", "marker": "*", "label": "loss", "zorder": 5}),
        (ev["backward"], {"s": ms * 1.3, "color": "#2ca02c", "marker": "v",
                          "label": "backward step of layer k", "zorder": 3}),
    )
    for pts, kw in marks:
        if pts:
            ax.scatter([t for t, _ in pts], [k for _, k in pts], **kw)
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
        f"(widths {short_sizes(schedule.sizes)}, batch {schedule.batch_size})",
        fontsize=10,
    )
    return _save(fig, path, dpi)


# -- the memory/recompute frontier: peak against forward evaluations, fixed strategies marked --


def pareto_figure(front, marks, path, title, dpi=100):
    """Draw a frontier as a step plot, its certified lower bound, and marks.

    Parameters
    ----------
    front : list of Schedule
        From :func:`mlpckpt.pareto`: peak ascending, evaluations descending.
        Points whose ``details["exact"]`` is false are drawn hollow, and
        ``details["lower_bound"]`` as a dotted step below them.
    marks : list of (str, Schedule)
        Fixed strategies (label, their own plan of the same call).
    path : str
        PNG file to write.
    title : str
    dpi : int

    Returns
    -------
    str
        ``path``.
    """
    if not front:
        raise ValueError("front: expected at least one schedule, got none")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 6.0))
    n = front[0].n_layers
    right = max([s.peak_bytes for s in front] + [s.peak_bytes for _, s in marks]) / MIB * 1.25
    # the frontier holds from each point's peak up to the next one's: a post step
    xs = [s.peak_bytes / MIB for s in front] + [right]
    ys = [s.forward_evals for s in front]
    ax.step(xs, ys + ys[-1:], where="post", color="C0", lw=1.8, label=f"frontier (mc.pareto, {len(front)} points)")
    exact = [s for s in front if s.details.get("exact")]
    loose = [s for s in front if not s.details.get("exact")]
    for group, face, label in ((exact, "C0", "proved optimal"), (loose, "none", "within a certified gap")):
        if group:
            ax.plot([s.peak_bytes / MIB for s in group], [s.forward_evals for s in group], "o", color="C0",
                    mfc=face, ms=4.5, label=f"frontier point, {label}")
    if loose:
        bounds = [s.details.get("lower_bound", s.forward_evals) for s in front]
        worst = max(s.details.get("gap", 0.0) for s in front)
        ax.step(xs, bounds + bounds[-1:], where="post", color="C0", lw=1, ls=":",
                label=f"proved lower bound (largest gap {100 * worst:.2f}%)")
    others = [label for label, _ in marks if label not in ("StoreAll", "Sqrt")]
    shades = plt.get_cmap("viridis")  # Revolve(s) by s: one colour each, dark to light
    for label, s in marks:
        fixed = {"StoreAll": ("X", "C1"), "Sqrt": ("s", "C3")}
        marker, color = fixed.get(label) or ("^", shades(others.index(label) / max(1, len(others) - 1)))
        ax.plot(s.peak_bytes / MIB, s.forward_evals, marker, color=color, ms=8, mec="k", mew=0.5, ls="none",
                label=f"{label}: {s.peak_bytes / MIB:.3g} MiB, {s.forward_evals / n:.3g} n")
    ax.axhline(n, color="0.5", lw=1, ls="--", label=f"n = {n} (no recomputation)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_y(ax)
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")  # MiB as numbers, not 10^k
    ax.xaxis.set_major_formatter(plain)

    def minor(v, _):  # every minor tick within one decade, else 2 and 5 only
        lo, hi = ax.get_xlim()
        return f"{v:g}" if hi < 10 * lo or f"{v:g}".lstrip("0.")[:1] in "25" else ""

    ax.xaxis.set_minor_formatter(FuncFormatter(minor))
    ax.set_xlabel("predicted peak memory of one loss_and_grad [MiB]")
    ax.set_ylabel("layer-forward evaluations per loss_and_grad")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(title, fontsize=10)
    return _save(fig, path, dpi)
