"""The report of a gradient check: one row per parameter block (or direction),
the verdict, and what the check could have detected (eq. G9 of
paper_notes/gradient_checking.md).

Plain data: :mod:`mlpckpt.verification._checker` computes the numbers, this module holds
and formats them. It imports nothing of the package.
"""

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "GradcheckRow",
    "GradcheckReport",
    "entry_row",
    "detectable_elementwise",
    "detectable_directional",
]

_METHOD_TITLES = {
    "central": "central differences",
    "complex": "complex step",
    "directional": "directional (random unit directions)",
}

#: table columns of the element-wise methods, and of the directional one
_BLOCK_COLUMNS = ("block", "shape", "checked", "max abs err", "max rel err", "worst", "g", "g_num", "")
_DIRECTION_COLUMNS = ("direction", "size", "checked", "abs err", "rel err", "worst", "g.v", "num", "")


def _nan_to_inf(x):
    # A NaN error (a step that left the domain) must never pass.
    return np.inf if x is None or not np.isfinite(x) else x


@dataclass
class GradcheckRow:
    """One row of a report: a parameter block, or one direction.

    Attributes
    ----------
    index : int
        Block number (element-wise methods) or direction number.
    name : str
        ``"W0"``, ``"b0"``, ... for an MLP; ``"params[i]"`` or ``"v[i]"`` otherwise.
    shape : tuple of int
        Shape of the block (``(P,)`` for a direction over ``P`` parameters).
    n_checked : int
        Entries compared (1 for a direction).
    max_abs_error : float
        ``max |g - g_hat|`` over the checked entries (0 when none).
    max_rel_error : float
        ``max |g - g_hat| / max(|g_hat|, atol/rtol)`` (eq. G7).
    worst_index : tuple of int or None
        Index in the block of the entry with the largest relative error.
    analytic, numeric : float or None
        ``g`` and ``g_hat`` at the worst entry (``g . v`` and its difference
        quotient for a direction).
    passed : bool
    """

    index: int
    name: str
    shape: tuple
    n_checked: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple = None
    analytic: float = None
    numeric: float = None
    passed: bool = True


@dataclass
class GradcheckReport:
    """Result of a gradient check.

    Attributes
    ----------
    method : {"central", "complex", "directional"}
    passed : bool
        ``max_rel_error <= rtol``.
    max_rel_error : float
        Largest relative error over all checked entries (eq. G7).
    max_abs_error : float
        Largest ``|g - g_hat|``.
    rtol, atol : float
        Tolerances used (``atol`` resolved from ``max(1, |f|)``).
    step : float
        Relative step ``eps``: ``h = eps * max(1, |x|)`` (per entry; for a
        direction, ``|x|`` is the root-mean-square of the parameters).
    f : float
        ``fun(params)`` at the checked point (real part).
    n_params : int
        Number of scalar parameters.
    n_checked : int
        Entries (or directions) compared.
    n_evaluations : int
        Calls of ``fun`` made (the base point included).
    seconds : float
        Wall time of the check.
    rows : list of GradcheckRow
    detectable : str
        What size of error this check could have detected (eq. G9).
    notes : list of str
        Caveats (kinks, subsets, dtype).
    """

    method: str
    passed: bool
    max_rel_error: float
    max_abs_error: float
    rtol: float
    atol: float
    step: float
    f: float
    n_params: int
    n_checked: int
    n_evaluations: int
    seconds: float
    rows: list = field(default_factory=list)
    detectable: str = ""
    notes: list = field(default_factory=list)

    @classmethod
    def from_rows(cls, method, rows, rtol, **fields):
        """The report of ``rows`` judged at ``rtol``: each row and the whole
        pass iff their largest relative error is ``<= rtol`` (eq. G7).
        ``fields`` are the remaining attributes."""
        for r in rows:
            r.passed = bool(_nan_to_inf(r.max_rel_error) <= rtol)
        max_rel = max((_nan_to_inf(r.max_rel_error) for r in rows), default=0.0)
        max_abs = max((_nan_to_inf(r.max_abs_error) for r in rows), default=0.0)
        return cls(method=method, passed=bool(max_rel <= rtol), max_rel_error=float(max_rel),
                   max_abs_error=float(max_abs), rtol=rtol, rows=rows, **fields)

    def __bool__(self):
        return bool(self.passed)

    @property
    def worst(self):
        """The row with the largest relative error (None when there are no rows)."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda r: _nan_to_inf(r.max_rel_error))

    def to_dict(self):
        """Plain ``dict`` (JSON-serialisable: floats, ints, str, lists)."""
        out = asdict(self)
        out["rows"] = [
            {
                **asdict(r),
                "shape": list(r.shape),
                "worst_index": None if r.worst_index is None else list(r.worst_index),
            }
            for r in self.rows
        ]
        return out

    def __str__(self):
        directional = self.method == "directional"
        if self.method == "complex":
            step = f"h = {self.step:.0e}*max(1,|x|)"
        else:
            step = f"h = {self.step:.3g}*max(1,{'rms(x)' if directional else '|x|'})"
        counted = (
            f"{self.n_checked} directions over {self.n_params} parameters"
            if directional
            else f"{self.n_checked} of {self.n_params} entries checked"
        )
        lines = [
            f"gradient check: {_METHOD_TITLES[self.method]}, {step}",
            f"  {counted}, {self.n_evaluations} evaluations of f, {self.seconds:.3g} s",
            f"  f = {self.f:.6g}; criterion |g - g_num| <= max(rtol*|g_ref|, atol), "
            f"rtol = {self.rtol:.3g}, atol = {self.atol:.3g}",
        ]
        header = _DIRECTION_COLUMNS if directional else _BLOCK_COLUMNS
        table = [header] + [_cells(r) for r in self.rows]
        widths = [max(len(row[c]) for row in table) for c in range(len(header))]
        for row in table:
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        verdict, cmp = ("PASSED", "<=") if self.passed else ("FAILED", ">")
        lines.append(
            f"{verdict}: max relative error {self.max_rel_error:.2e} {cmp} rtol {self.rtol:.1e} "
            f"(max absolute error {self.max_abs_error:.2e})"
        )
        lines.append(f"detectable: {self.detectable}")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


def _cells(r):
    """The table cells of one row, as text."""
    return (
        r.name,
        "x".join(str(s) for s in r.shape) or "()",
        str(r.n_checked),
        f"{r.max_abs_error:.2e}",
        f"{r.max_rel_error:.2e}",
        "-" if r.worst_index is None else ",".join(str(i) for i in r.worst_index),
        "-" if r.analytic is None else f"{r.analytic:.6g}",
        "-" if r.numeric is None else f"{r.numeric:.6g}",
        "ok" if r.passed else "FAIL",
    )


def entry_row(index, name, shape, g, ghat, idx, floor):
    """The row of a block checked entry by entry (eq. G7).

    Parameters
    ----------
    index : int
    name : str
    shape : tuple of int
        Shape of the block.
    g, ghat : ndarray, shape (m,)
        Analytic and numerical values at the checked entries.
    idx : ndarray of int, shape (m,)
        Flat indices of the checked entries in the block.
    floor : float
        ``atol / rtol``: ``|ghat|`` below it is judged by ``atol`` alone.

    Returns
    -------
    GradcheckRow
    """
    if len(idx) == 0:
        return GradcheckRow(index, name, tuple(shape), 0, 0.0, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.abs(g - ghat)
        rel = abs_err / np.maximum(np.abs(ghat), floor)  # eq. G7
    rel = np.where(np.isfinite(rel), rel, np.inf)  # NaN must not pass
    abs_err = np.where(np.isfinite(abs_err), abs_err, np.inf)
    w = int(np.argmax(rel))
    worst = tuple(int(i) for i in np.unravel_index(int(idx[w]), shape))
    return GradcheckRow(index, name, tuple(shape), len(idx), float(abs_err.max()), float(rel[w]),
                        worst, float(g[w]), float(ghat[w]))


def detectable_elementwise(ghat_abs, rtol, atol):
    """Statement of eq. G9 for element-wise checks.

    Parameters
    ----------
    ghat_abs : ndarray, shape (m,)
        ``|ghat|`` at every checked entry.
    rtol, atol : float

    Returns
    -------
    str
    """
    if ghat_abs.size == 0:
        return "nothing (no entries checked)"
    head = f"any checked entry off by more than max({rtol:.0e}*|g|, {atol:.2g})"
    rho = 1e-3
    if rtol >= rho:
        return head + f"; a 0.1% error is never caught (rtol = {rtol:.2g} >= 1e-3)"
    # A relative error rho in entry k is flagged iff rho |g_k| > max(rtol |g_k|, atol),
    # i.e. (rho > rtol) where |g_k| > atol / rho.
    limit = atol / rho
    share = float(np.mean(ghat_abs > limit))
    return (
        head + f"; a 0.1% error is caught in every entry with |g| > {limit:.2g} "
        f"({100 * share:.0f}% of the checked entries)"
    )


def detectable_directional(rows, n_params, rtol, atol):
    """Statement of eq. G9 for directional checks.

    Parameters
    ----------
    rows : list of GradcheckRow
        One per direction (``analytic`` is ``g . v``).
    n_params : int
    rtol, atol : float

    Returns
    -------
    str
    """
    if not rows:
        return "nothing (no directions)"
    gv = max(abs(r.analytic) for r in rows)
    typical_vk = np.sqrt(2.0 / (np.pi * n_params))  # E|v_k| for a unit Gaussian direction
    thresh = max(rtol * gv, atol)
    return (
        f"an error vector e with |e.v| > max({rtol:.0e}*|g.v|, {atol:.2g}) in some direction: "
        f"a common relative error above {rtol:.0e} when |g.v| > {atol / rtol:.2g}; "
        f"a single entry only when off by more than ~{thresh / typical_vk:.2g} "
        f"(|v_k| ~ {typical_vk:.2g} over {n_params} parameters)"
    )
