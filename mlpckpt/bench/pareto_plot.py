"""The memory/recompute frontier drawn: peak against forward evaluations,
log-log, with fixed strategies marked where their own plans sit. (Kept out
of :mod:`~mlpckpt.bench.plots` only for its 300-line bound; it uses that
module's lazy matplotlib.)
"""

from .measure import MIB
from .plots import _plain_log_y, _pyplot, _save

__all__ = ["pareto_figure"]


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
