"""Numerical gradient checks over plain callables, with a readable report.

Three methods (the mathematics, with the equations cited below, is in
paper_notes/gradient_checking.md):

``"central"``
    element-wise central differences in float64, step
    ``h = eps * max(1, |x|)`` with ``eps = eps_mach**(1/3)`` (eqs. G3-G4);
    error ~1e-10 on clean smooth models. Optionally on a random subset of
    entries (``max_entries``) for large models.
``"complex"``
    complex step ``Im f(x + i h e_k) / h`` (eq. G5): no subtraction, so no
    cancellation; error ~1e-16. ``fun`` must accept complex arrays and be
    analytic (no ``abs``, no branching on anything but the real part).
``"directional"``
    ``g . v`` against a central difference of ``fun`` along random unit
    directions ``v`` (eq. G6): two evaluations per direction, whatever the
    number of parameters.

Criterion (DESIGN.md, "Gradient checking"; eq. G7): with ``g`` the analytic
and ``g_hat`` the numerical value,

    rel_error = |g - g_hat| / max(|g_hat|, atol / rtol),   passed iff max rel_error <= rtol,

``rtol = 1e-6`` and ``atol = 1e-8 * max(1, |f|)`` by default (for directional
checks the reference is the analytic ``|g . v|``, eq. G8).

This module never imports the model at module level: :func:`check_gradients`
works on any ``fun``/``grad`` pair and :func:`gradcheck` wires it to an MLP.
"""

import numbers
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import _validate as _checks
from . import backprop, losses
from .activations import SMOOTH

__all__ = [
    "check_gradients",
    "gradcheck",
    "loss_functions",
    "GradcheckReport",
    "GradcheckRow",
    "METHODS",
    "DEFAULT_RTOL",
    "DEFAULT_ATOL_FACTOR",
]

METHODS = ("central", "complex", "directional")

#: default relative tolerance (DESIGN.md; eq. G7)
DEFAULT_RTOL = 1e-6
#: default absolute tolerance is this times max(1, |f|) (eq. G7)
DEFAULT_ATOL_FACTOR = 1e-8

_EPS64 = np.finfo(np.float64).eps
#: default relative step of central differences: eps_mach**(1/3) ~ 6.06e-6 (eq. G4)
CENTRAL_STEP = _EPS64 ** (1.0 / 3.0)
#: default complex step; any tiny step works since nothing is subtracted (eq. G5)
COMPLEX_STEP = 1e-20

_METHOD_TITLES = {
    "central": "central differences",
    "complex": "complex step",
    "directional": "directional (random unit directions)",
}


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
        title = _METHOD_TITLES[self.method]
        if self.method == "complex":
            step = f"h = {self.step:.0e}*max(1,|x|)"
        elif self.method == "central":
            step = f"h = {self.step:.3g}*max(1,|x|)"
        else:
            step = f"h = {self.step:.3g}*max(1,rms(x))"
        lines = [
            f"gradient check: {title}, {step}",
            (
                f"  {self.n_checked} directions over {self.n_params} parameters"
                if self.method == "directional"
                else f"  {self.n_checked} of {self.n_params} entries checked"
            )
            + f", {self.n_evaluations} evaluations of f, {self.seconds:.3g} s",
            f"  f = {self.f:.6g}; criterion |g - g_num| <= max(rtol*|g_ref|, atol), "
            f"rtol = {self.rtol:.3g}, atol = {self.atol:.3g}",
        ]
        if self.method == "directional":
            header = ("direction", "size", "checked", "abs err", "rel err", "worst", "g.v", "num", "")
        else:
            header = ("block", "shape", "checked", "max abs err", "max rel err", "worst", "g", "g_num", "")
        table = [header]
        for r in self.rows:
            table.append(
                (
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
            )
        widths = [max(len(row[c]) for row in table) for c in range(len(header))]
        for row in table:
            lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        verdict = "PASSED" if self.passed else "FAILED"
        cmp = "<=" if self.passed else ">"
        lines.append(
            f"{verdict}: max relative error {self.max_rel_error:.2e} {cmp} rtol {self.rtol:.1e} "
            f"(max absolute error {self.max_abs_error:.2e})"
        )
        lines.append(f"detectable: {self.detectable}")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


def _nan_to_inf(x):
    return np.inf if x is None or not np.isfinite(x) else x


# -- argument handling -------------------------------------------------------


def _as_blocks(params):
    """``params`` as a list of float64 arrays, and whether it was one array."""
    single = isinstance(params, np.ndarray) or np.isscalar(params)
    items = [params] if single else params
    try:
        items = list(items)
    except TypeError:
        raise ValueError(
            f"params: expected an array or a list of arrays, got {type(params).__name__}"
        ) from None
    if not items:
        raise ValueError("params: expected at least one array, got an empty list")
    blocks = []
    for i, p in enumerate(items):
        arr = np.asarray(p)
        if arr.dtype.kind not in "biuf":
            raise ValueError(
                f"params[{i}]: expected a real numeric array, got dtype {arr.dtype}"
            )
        arr = np.array(arr, dtype=np.float64, copy=True)  # checks never touch the caller's arrays
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"params[{i}]: expected finite values, got NaN or inf")
        blocks.append(arr)
    if sum(b.size for b in blocks) == 0:
        raise ValueError("params: expected at least one entry to check, got only empty arrays")
    return blocks, single


def _check_grad_value(g, blocks, single):
    """The analytic gradient as float64 blocks of the params' shapes."""
    if not single and isinstance(g, np.ndarray):
        raise ValueError(
            f"grad: params is a list of {len(blocks)} arrays, so grad must return a list "
            f"of {len(blocks)} arrays; got one array of shape {g.shape} (wrap it in a list)"
        )
    items = [g] if single and not isinstance(g, (list, tuple)) else g
    try:
        items = list(items)
    except TypeError:
        raise ValueError(
            f"grad: expected it to return a list of {len(blocks)} arrays, got {type(g).__name__}"
        ) from None
    if len(items) != len(blocks):
        raise ValueError(
            f"grad: expected it to return {len(blocks)} arrays (one per params block), "
            f"got {len(items)}"
        )
    out = []
    for i, (gi, b) in enumerate(zip(items, blocks)):
        try:
            arr = np.asarray(gi)
        except ValueError:
            raise ValueError(f"grad: block {i}: expected an array of shape {b.shape}, "
                             "got a ragged sequence") from None
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"grad: block {i}: expected a real array, got dtype {arr.dtype}")
        if arr.shape != b.shape:
            raise ValueError(
                f"grad: block {i}: expected shape {b.shape} (that of params[{i}]), got {arr.shape}"
            )
        out.append(np.asarray(arr, dtype=np.float64))
    return out


def _check_options(method, eps, rtol, atol, n_directions, max_entries):
    _checks.check_choice("method", method, METHODS)
    rtol = _checks.check_positive_float("rtol", rtol)
    if atol is not None:
        if (
            isinstance(atol, bool)
            or not isinstance(atol, numbers.Real)
            or not np.isfinite(atol)
            or atol < 0
        ):
            raise ValueError(f"atol: expected None or a finite number >= 0, got {atol!r}")
        atol = float(atol)
    if eps is not None:
        eps = _checks.check_positive_float("eps", eps)
    n_directions = _checks.check_int("n_directions", n_directions, minimum=1)
    if max_entries is not None:
        if method == "directional":
            raise ValueError(
                "max_entries: applies to 'central' and 'complex' only, "
                "got a value with method='directional' (use n_directions)"
            )
        max_entries = _checks.check_int("max_entries", max_entries, minimum=1)
    return rtol, atol, eps, n_directions, max_entries


def _real_value(value, name="fun"):
    try:
        v = np.asarray(value)
    except ValueError:
        v = np.asarray(None)
    if v.dtype.kind not in "biufc":
        raise ValueError(f"{name}: expected a number as return value, got {value!r}")
    if v.size != 1:
        raise ValueError(f"{name}: expected a scalar return value, got shape {v.shape}")
    return v.reshape(())[()]


# -- the checks ----------------------------------------------------------------


def check_gradients(
    fun,
    grad,
    params,
    method="central",
    eps=None,
    rtol=DEFAULT_RTOL,
    atol=None,
    n_directions=10,
    seed=0,
    max_entries=None,
    names=None,
):
    """Compare an analytic gradient with a numerical one.

    Parameters
    ----------
    fun : callable
        ``fun(params) -> scalar``. Called with float64 arrays in the structure
        of ``params`` (complex128 for ``method="complex"``); the arrays are
        the checker's own copies, perturbed in place between calls, so
        ``fun`` must not modify them or keep references to them.
    grad : callable
        ``grad(params) -> list of arrays`` with the shapes of ``params`` (one
        array when ``params`` is one array). Called once, at ``params``.
    params : ndarray or list of ndarray
        The point to check at (not modified).
    method : {"central", "complex", "directional"}
    eps : float, optional
        Relative step: ``h = eps * max(1, |x|)`` (eq. G4). Defaults:
        ``eps_mach**(1/3) ~ 6.06e-6`` (central, directional), ``1e-20``
        (complex).
    rtol : float, default 1e-6
        Relative tolerance (eq. G7).
    atol : float, optional
        Absolute tolerance; default ``1e-8 * max(1, |fun(params)|)``.
    n_directions : int, default 10
        Random unit directions (``method="directional"``).
    seed : int or numpy.random.Generator, default 0
        Drives the directions and the entry subset (never global state).
    max_entries : int, optional
        Check about this many entries, chosen at random in every block;
        every non-empty block gets at least one, so with more blocks than
        ``max_entries`` more are checked. Default: all of them.
    names : list of str, optional
        Block names for the report (default ``params[i]``).

    Returns
    -------
    GradcheckReport
    """
    t0 = time.perf_counter()
    rtol, atol, eps, n_directions, max_entries = _check_options(
        method, eps, rtol, atol, n_directions, max_entries
    )
    rng = _checks.make_rng(seed)
    blocks, single = _as_blocks(params)
    if names is None:
        names = [f"params[{i}]" for i in range(len(blocks))]
    elif len(names) != len(blocks):
        raise ValueError(f"names: expected {len(blocks)} names, got {len(names)}")
    if not callable(fun) or not callable(grad):
        bad = "fun" if not callable(fun) else "grad"
        raise ValueError(f"{bad}: expected a callable, got {type(fun if bad == 'fun' else grad).__name__}")

    def call(xs):
        return fun(xs[0] if single else xs)

    f0 = _real_value(call(blocks))
    if np.iscomplexobj(f0) or not np.isfinite(f0):
        raise ValueError(f"fun: expected a finite real value at params, got {f0!r}")
    f0 = float(f0)
    g = _check_grad_value(grad(blocks[0].copy() if single else [b.copy() for b in blocks]), blocks, single)
    if atol is None:
        atol = DEFAULT_ATOL_FACTOR * max(1.0, abs(f0))  # eq. G7
    floor = atol / rtol  # |g_hat| below this is judged by atol alone
    n_params = sum(b.size for b in blocks)
    notes = []
    narrow = [np.asarray(p).dtype for p in ([params] if single else params)]
    if any(d.kind == "f" and d.itemsize < 8 for d in narrow):
        notes.append("params of a narrower float type were checked as float64 copies: "
                     "this checks the code, not its rounding in that type")

    if method == "directional":
        if eps is None:
            eps = CENTRAL_STEP
        rows, n_evals = _directional(call, blocks, g, eps, n_directions, rng, floor)
        n_checked = n_directions
        detectable = _detectable_directional(rows, n_params, rtol, atol)
    else:
        if eps is None:
            eps = CENTRAL_STEP if method == "central" else COMPLEX_STEP
        subsets = _choose_entries(blocks, max_entries, rng)
        n_checked = sum(len(s) for s in subsets)
        if n_checked < n_params:
            notes.append(
                f"random subset: {n_checked} of {n_params} entries checked "
                f"(seed-driven); an error elsewhere would go unseen"
            )
        rows, n_evals, ghat_abs, saw_imag = _elementwise(
            call, blocks, g, subsets, method, eps, floor, names
        )
        if method == "complex" and not saw_imag and any(np.any(gb) for gb in g):
            notes.append(
                "fun never returned a value with a nonzero imaginary part: it may not "
                "support complex input (use method='central')"
            )
        detectable = _detectable_elementwise(ghat_abs, rtol, atol)

    for r in rows:
        r.passed = bool(_nan_to_inf(r.max_rel_error) <= rtol)
    max_rel = max((_nan_to_inf(r.max_rel_error) for r in rows), default=0.0)
    max_abs = max((_nan_to_inf(r.max_abs_error) for r in rows), default=0.0)
    return GradcheckReport(
        method=method,
        passed=bool(max_rel <= rtol),
        max_rel_error=float(max_rel),
        max_abs_error=float(max_abs),
        rtol=rtol,
        atol=atol,
        step=eps,
        f=f0,
        n_params=n_params,
        n_checked=n_checked,
        n_evaluations=n_evals + 1,
        seconds=time.perf_counter() - t0,
        rows=rows,
        detectable=detectable,
        notes=notes,
    )


def _choose_entries(blocks, max_entries, rng):
    """Flat indices to check in each block: all, or a random share of max_entries."""
    total = sum(b.size for b in blocks)
    if max_entries is None or max_entries >= total:
        return [np.arange(b.size) for b in blocks]
    out = []
    for b in blocks:
        # proportional share, at least one entry per non-empty block
        k = min(b.size, max(1, int(round(max_entries * b.size / total)))) if b.size else 0
        out.append(np.sort(rng.choice(b.size, size=k, replace=False)))
    return out


def _elementwise(call, blocks, g, subsets, method, eps, floor, names):
    """Central differences (eq. G3) or complex step (eq. G5), entry by entry."""
    complex_step = method == "complex"
    xs = [b.astype(np.complex128) for b in blocks] if complex_step else [b.copy() for b in blocks]
    rows, n_evals, ghat_abs, saw_imag = [], 0, [], False
    for bi, (x, gb, idx) in enumerate(zip(xs, g, subsets)):
        flat = x.reshape(-1)  # a view: xs are fresh contiguous copies
        base = blocks[bi].reshape(-1)
        est = np.empty(len(idx))
        for j, i in enumerate(idx):
            xi = base[i]
            h = eps * max(1.0, abs(xi))  # eq. G4: step scaled to the entry
            if complex_step:
                flat[i] = complex(xi, h)
                v = _real_value(call(xs))
                flat[i] = xi
                n_evals += 1
                im = float(np.imag(v))
                saw_imag = saw_imag or im != 0.0
                est[j] = im / h
            else:
                # eq. G3 with the step actually taken: (x+h)-(x-h) is exact in
                # binary, 2h may not be (a representation error of order eps/h).
                xp, xm = xi + h, xi - h
                flat[i] = xp
                fp = float(np.real(_real_value(call(xs))))
                flat[i] = xm
                fm = float(np.real(_real_value(call(xs))))
                flat[i] = xi  # restore exactly
                n_evals += 2
                est[j] = (fp - fm) / (xp - xm)
        ga = gb.reshape(-1)[idx]
        ghat_abs.append(np.abs(est))
        rows.append(_row(bi, names[bi], blocks[bi].shape, ga, est, idx, floor))
    return rows, n_evals, np.concatenate(ghat_abs) if ghat_abs else np.empty(0), saw_imag


def _row(index, name, shape, g, ghat, idx, floor):
    """A report row from analytic ``g`` and numeric ``ghat`` at flat indices ``idx``."""
    if len(idx) == 0:
        return GradcheckRow(index, name, tuple(shape), 0, 0.0, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.abs(g - ghat)
        rel = abs_err / np.maximum(np.abs(ghat), floor)  # eq. G7
    rel = np.where(np.isfinite(rel), rel, np.inf)  # NaN must not pass
    abs_err = np.where(np.isfinite(abs_err), abs_err, np.inf)
    w = int(np.argmax(rel))
    worst = tuple(int(i) for i in np.unravel_index(int(idx[w]), shape))
    return GradcheckRow(
        index,
        name,
        tuple(shape),
        len(idx),
        float(abs_err.max()),
        float(rel[w]),
        worst,
        float(g[w]),
        float(ghat[w]),
    )


def _directional(call, blocks, g, eps, n_directions, rng, floor):
    """``g . v`` against the central difference along unit ``v`` (eqs. G6, G8)."""
    sizes = [b.size for b in blocks]
    total = sum(sizes)
    x = np.concatenate([b.reshape(-1) for b in blocks])
    gflat = np.concatenate([gb.reshape(-1) for gb in g])
    # Along a unit direction the coordinate that moves is x.v, of the order
    # of the root-mean-square entry: scale the step by it (eq. G4).
    rms = float(np.sqrt(np.dot(x, x) / total)) if total else 0.0
    h = eps * max(1.0, rms)
    splits = np.cumsum(sizes)[:-1]
    shapes = [b.shape for b in blocks]

    def at(t, v):
        y = x + t * v  # one new vector per evaluation; blocks are views of it
        return [part.reshape(s) for part, s in zip(np.split(y, splits), shapes)]

    rows = []
    for d in range(n_directions):
        v = rng.standard_normal(total)
        v /= np.linalg.norm(v)
        gv = float(np.dot(gflat, v))
        fp = float(np.real(_real_value(call(at(h, v)))))
        fm = float(np.real(_real_value(call(at(-h, v)))))
        dhat = (fp - fm) / (2.0 * h)
        err = abs(gv - dhat)
        if not np.isfinite(err):
            err = np.inf
        # eq. G8: judged relative to |g.v| itself, not max(1, |g.v|)
        rel = err / max(abs(gv), floor)
        rows.append(
            GradcheckRow(d, f"v[{d}]", (total,), 1, float(err), float(rel), None, gv, float(dhat))
        )
    return rows, 2 * n_directions


def _detectable_elementwise(ghat_abs, rtol, atol):
    """Statement of eq. G9 for element-wise checks."""
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


def _detectable_directional(rows, n_params, rtol, atol):
    """Statement of eq. G9 for directional checks."""
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


# -- the MLP -------------------------------------------------------------------

_KINKED = {
    "relu": "relu(z) = max(z, 0)",
    "leaky_relu": "leaky_relu(z) = max(z, 0.01 z)",
}


def loss_functions(net, X, Y, loss="mse", strategy=None):
    """``fun``, ``grad``, ``params`` and block names for an MLP's loss.

    The parameters are ``[W0, b0, W1, b1, ...]`` (the flatten order of
    :mod:`mlpckpt.params`) as float64 copies. ``fun`` runs the plain
    layer-by-layer forward and the loss (:mod:`mlpckpt.layers`,
    :mod:`mlpckpt.losses`) in the dtype of the arrays it is given, complex
    included; ``grad`` calls ``net.loss_and_grad(..., strategy=strategy)``
    with the given parameters swapped into ``net`` for the call.

    Parameters
    ----------
    net : MLP
    X : array_like, shape (sizes[0], batch)
    Y : array_like
        Targets (see ``MLP.loss_and_grad``).
    loss : {"mse", "bce", "cross_entropy"}
    strategy : checkpoint strategy or None

    Returns
    -------
    fun : callable
    grad : callable
    params : list of ndarray, float64
    names : list of str
    """
    X, Y = net._check_batch(X, Y, loss)
    X64 = np.asarray(X, dtype=np.float64)
    hidden, output = list(net.activations), net.output
    cast = {np.dtype(np.float64): X64}

    def fun(params):
        dtype = np.result_type(*params)  # complex if any block is perturbed
        Xd = cast.get(dtype)
        if Xd is None:  # complex step: one complex128 copy of X, reused
            Xd = cast[dtype] = X64.astype(dtype)
        z = backprop.logits(params[0::2], params[1::2], hidden, Xd, dtype)
        return losses.loss_and_dz(loss, output, z, Y)  # overwrites z only

    def grad(params):
        saved = net.weights, net.biases
        net.weights, net.biases = list(params[0::2]), list(params[1::2])
        try:
            _, grads = net.loss_and_grad(X, Y, loss=loss, strategy=strategy)
        finally:
            net.weights, net.biases = saved
        return [x for pair in zip(grads.weights, grads.biases) for x in pair]

    params = [np.array(p, dtype=np.float64) for pair in zip(net.weights, net.biases) for p in pair]
    names = [f"{c}{k}" for k in range(len(net.weights)) for c in ("W", "b")]
    return fun, grad, params, names


def gradcheck(net, X, Y, loss="mse", strategy=None, method="central", **kw):
    """Check ``net.loss_and_grad`` against numerical derivatives of the loss.

    Parameters
    ----------
    net : MLP
    X : array_like, shape (sizes[0], batch)
    Y : array_like
        Targets (see ``MLP.loss_and_grad``).
    loss : {"mse", "bce", "cross_entropy"}
    strategy : checkpoint strategy or None
        Used for the analytic gradient (every strategy must agree).
    method : {"central", "complex", "directional"}
    **kw
        ``eps``, ``rtol``, ``atol``, ``n_directions``, ``seed``,
        ``max_entries`` of :func:`check_gradients`.

    Returns
    -------
    GradcheckReport
        One row per parameter block ``W0, b0, W1, b1, ...`` (per direction
        for ``"directional"``).

    Notes
    -----
    The check runs in float64 (complex128 for the complex step) on copies
    of the parameters; a float32 net is checked through float64 copies,
    which verifies its code, not its float32 rounding. ``method="complex"``
    refuses nets with relu / leaky_relu layers: those functions are not
    analytic (eq. G5 needs a complex extension), and the complex step
    would silently return the one-sided derivative at a kink.
    """
    _checks.check_choice("method", method, METHODS)
    kinked = [(k, h) for k, h in enumerate(net.activations) if h not in SMOOTH]
    if method == "complex" and kinked:
        k, h = kinked[0]
        raise ValueError(
            f"method: 'complex' needs every activation to be smooth (analytic), got "
            f"{h!r} at hidden layer {k}: {_KINKED.get(h, h)} has no complex-analytic "
            f"extension and a kink at 0, so the complex step is not a derivative there; "
            f"expected method='central' or 'directional', or activations from {sorted(SMOOTH)}"
        )
    fun, grad, params, names = loss_functions(net, X, Y, loss, strategy)
    report = check_gradients(fun, grad, params, method=method, names=names, **kw)
    if kinked:
        report.notes.append(
            f"the net has kinks ({', '.join(sorted({h for _, h in kinked}))}): an entry can fail "
            "legitimately when a +-h step crosses a kink; re-check at another point before "
            "blaming the gradient"
        )
    if net.dtype != np.float64:
        report.notes.append(
            f"{net.dtype.name} net: checked through float64 copies (verifies the code, "
            "not float32 rounding)"
        )
    return report
