"""Numerical gradient checks over plain callables. The mathematics, whose
equations the code cites, is in paper_notes/gradient_checking.md.

``"central"``
    element-wise central differences in float64, step ``h = eps * max(1, |x|)``
    with ``eps = eps_mach**(1/3)`` (eqs. G3-G4); error ~1e-10 on clean smooth
    models; optionally on a random subset of entries (``max_entries``).
``"complex"``
    complex step ``Im f(x + i h e_k) / h`` (eq. G5): nothing is subtracted, so
    the error is ~1e-16; ``fun`` must accept complex arrays and be analytic.
``"directional"``
    ``g . v`` against a central difference of ``fun`` along random unit
    directions ``v`` (eq. G6): two evaluations per direction, whatever the size.

Criterion (eq. G7): ``rel_error = |g - g_hat| / max(|g_hat|, atol / rtol)``,
passed iff ``max rel_error <= rtol``; by default ``rtol = 1e-6`` and
``atol = 1e-8 * max(1, |f|)`` (directional: relative to ``|g . v|``, eq. G8).

Model-free: this module imports nothing of the package but the argument
primitives and :mod:`mlpckpt.verification._report`, so :func:`check_gradients` works on any
``fun``/``grad`` pair; :mod:`mlpckpt.verification._gradcheck` wires it to an MLP.
"""

import numbers
import time

import numpy as np

from ..core import _validate
from . import _report as report
from ._report import GradcheckReport, GradcheckRow

__all__ = ["check_gradients", "METHODS", "DEFAULT_RTOL", "DEFAULT_ATOL_FACTOR", "CENTRAL_STEP",
           "COMPLEX_STEP"]

METHODS = ("central", "complex", "directional")

#: default relative tolerance (paper_notes/gradient_checking.md, eq. G7)
DEFAULT_RTOL = 1e-6
#: default absolute tolerance is this times max(1, |f|) (eq. G7)
DEFAULT_ATOL_FACTOR = 1e-8
#: default relative step of central differences: eps_mach**(1/3) ~ 6.06e-6 (eq. G4)
CENTRAL_STEP = np.finfo(np.float64).eps ** (1.0 / 3.0)
#: default complex step; any tiny step works since nothing is subtracted (eq. G5)
COMPLEX_STEP = 1e-20


# -- argument handling -------------------------------------------------------


def _as_blocks(params):
    """``params`` as float64 copies, whether it was one array, and whether
    any block was of a narrower float type."""
    single = isinstance(params, np.ndarray) or np.isscalar(params)
    try:
        items = list([params] if single else params)
    except TypeError:
        raise ValueError(f"params: expected an array or a list of arrays, "
                         f"got {type(params).__name__}") from None
    if not items:
        raise ValueError("params: expected at least one array, got an empty list")
    blocks, narrow = [], False
    for i, p in enumerate(items):
        arr = _validate.as_real_array(f"params[{i}]", p)
        narrow = narrow or (arr.dtype.kind == "f" and arr.dtype.itemsize < 8)
        arr = np.array(arr, dtype=np.float64, order="C")  # C order whatever the layout in
        blocks.append(_validate.check_finite(f"params[{i}]", arr))
    if sum(b.size for b in blocks) == 0:
        raise ValueError("params: expected at least one entry to check, got only empty arrays")
    return blocks, single, narrow


def _check_grad_value(g, blocks, single):
    """The analytic gradient as float64 blocks of the params' shapes."""
    n = len(blocks)
    if not single and isinstance(g, np.ndarray):
        raise ValueError(f"grad: params is a list of {n} arrays, so grad must return a list of "
                         f"{n} arrays; got one array of shape {g.shape} (wrap it in a list)")
    try:
        items = list([g] if single and not isinstance(g, (list, tuple)) else g)
    except TypeError:
        raise ValueError(f"grad: expected it to return a list of {n} arrays, "
                         f"got {type(g).__name__}") from None
    if len(items) != n:
        raise ValueError(f"grad: expected it to return {n} arrays (one per params block), "
                         f"got {len(items)}")
    out = []
    for i, (gi, b) in enumerate(zip(items, blocks)):
        arr = _validate.as_real_array(f"grad: block {i}", gi)
        if arr.shape != b.shape:
            raise ValueError(f"grad: block {i}: expected shape {b.shape} (that of params[{i}]), "
                             f"got {arr.shape}")
        out.append(np.asarray(arr, dtype=np.float64))
    return out


def _check_options(method, eps, rtol, atol, n_directions, max_entries):
    _validate.check_choice("method", method, METHODS)
    rtol = _validate.check_positive_float("rtol", rtol)
    if atol is not None:
        if isinstance(atol, bool) or not isinstance(atol, numbers.Real) \
                or not np.isfinite(atol) or atol < 0:
            raise ValueError(f"atol: expected None or a finite number >= 0, got {atol!r}")
        atol = float(atol)
    if eps is None:
        eps = COMPLEX_STEP if method == "complex" else CENTRAL_STEP
    else:
        eps = _validate.check_positive_float("eps", eps)
    n_directions = _validate.check_int("n_directions", n_directions, minimum=1)
    if max_entries is not None:
        if method == "directional":
            raise ValueError("max_entries: applies to 'central' and 'complex' only, "
                             "got a value with method='directional' (use n_directions)")
        max_entries = _validate.check_int("max_entries", max_entries, minimum=1)
    return rtol, atol, eps, n_directions, max_entries


def _scalar(value):
    """What ``fun`` returned, as a NumPy scalar (complex allowed)."""
    try:
        v = np.asarray(value)
    except ValueError:
        v = np.asarray(None)
    if v.dtype.kind not in "biufc":
        raise ValueError(f"fun: expected a number as return value, got {value!r}")
    if v.size != 1:
        raise ValueError(f"fun: expected a scalar return value, got shape {v.shape}")
    return v.reshape(())[()]


def _real(value):
    return float(np.real(_scalar(value)))


def check_gradients(fun, grad, params, *, method="central", eps=None, rtol=DEFAULT_RTOL, atol=None,
                    n_directions=10, seed=0, max_entries=None, names=None):
    """Compare an analytic gradient with a numerical one.

    Parameters
    ----------
    fun : callable
        ``fun(params) -> scalar``. Called with float64 arrays in the structure
        of ``params`` (complex128 for ``method="complex"``); the arrays are
        the checker's own C-ordered copies, perturbed in place between calls, so
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
    rtol, atol, eps, n_directions, max_entries = _check_options(method, eps, rtol, atol,
                                                                n_directions, max_entries)
    rng = _validate.make_rng(seed)
    blocks, single, narrow = _as_blocks(params)
    if names is None:
        names = [f"params[{i}]" for i in range(len(blocks))]
    elif len(names) != len(blocks):
        raise ValueError(f"names: expected {len(blocks)} names, got {len(names)}")
    for label, c in (("fun", fun), ("grad", grad)):
        if not callable(c):
            raise ValueError(f"{label}: expected a callable, got {type(c).__name__}")
    call = (lambda xs: fun(xs[0])) if single else fun

    f0 = _scalar(call(blocks))
    if np.iscomplexobj(f0) or not np.isfinite(f0):
        raise ValueError(f"fun: expected a finite real value at params, got {f0!r}")
    f0 = float(f0)
    g = _check_grad_value(grad(blocks[0].copy() if single else [b.copy() for b in blocks]),
                          blocks, single)
    if atol is None:
        atol = DEFAULT_ATOL_FACTOR * max(1.0, abs(f0))  # eq. G7
    floor = atol / rtol  # |g_hat| below this is judged by atol alone
    n_params = sum(b.size for b in blocks)
    notes = []
    if narrow:
        notes.append("params of a narrower float type were checked as float64 copies: "
                     "this checks the code, not its rounding in that type")

    if method == "directional":
        rows = _directional(call, blocks, g, eps, n_directions, rng, floor)
        n_checked, n_evals = n_directions, 2 * n_directions
        detectable = report.detectable_directional(rows, n_params, rtol, atol)
    else:
        subsets = _choose_entries(blocks, max_entries, rng)
        n_checked = sum(len(s) for s in subsets)
        if n_checked < n_params:
            notes.append(f"random subset: {n_checked} of {n_params} entries checked "
                         f"(seed-driven); an error elsewhere would go unseen")
        complex_step = method == "complex"
        rows, ghat_abs, saw_imag = _elementwise(call, blocks, g, subsets, complex_step, eps,
                                                floor, names)
        n_evals = n_checked * (1 if complex_step else 2)
        if complex_step and not saw_imag and any(np.any(gb) for gb in g):
            notes.append("fun never returned a value with a nonzero imaginary part: it may not "
                         "support complex input (use method='central')")
        detectable = report.detectable_elementwise(ghat_abs, rtol, atol)

    return GradcheckReport.from_rows(
        method, rows, rtol, atol=atol, step=eps, f=f0, n_params=n_params, n_checked=n_checked,
        n_evaluations=n_evals + 1, seconds=time.perf_counter() - t0, detectable=detectable,
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


def _elementwise(call, blocks, g, subsets, complex_step, eps, floor, names):
    """Central differences (eq. G3) or complex step (eq. G5), entry by entry."""
    # C order, so that reshape(-1) below is a view of the arrays fun sees
    xs = [np.array(b, dtype=np.complex128 if complex_step else None, order="C") for b in blocks]
    rows, ghat_abs, saw_imag = [], [], False
    for bi, (x, idx) in enumerate(zip(xs, subsets)):
        flat, base = x.reshape(-1), blocks[bi].reshape(-1)  # views of C-ordered copies
        est = np.empty(len(idx))
        for j, i in enumerate(idx):
            xi = base[i]
            h = eps * max(1.0, abs(xi))  # eq. G4: step scaled to the entry
            if complex_step:
                flat[i] = complex(xi, h)
                im = float(np.imag(_scalar(call(xs))))
                saw_imag = saw_imag or im != 0.0
                est[j] = im / h
            else:
                # eq. G3 over the step taken: (x+h)-(x-h) is exact in binary, 2h may not be
                xp, xm = xi + h, xi - h
                flat[i] = xp
                fp = _real(call(xs))
                flat[i] = xm
                est[j] = (fp - _real(call(xs))) / (xp - xm)
            flat[i] = xi  # restore exactly
        ghat_abs.append(np.abs(est))
        rows.append(report.entry_row(bi, names[bi], blocks[bi].shape, g[bi].reshape(-1)[idx], est,
                                     idx, floor))
    return rows, np.concatenate(ghat_abs), saw_imag


def _directional(call, blocks, g, eps, n_directions, rng, floor):
    """``g . v`` against the central difference along unit ``v`` (eqs. G6, G8)."""
    sizes, shapes = [b.size for b in blocks], [b.shape for b in blocks]
    total = sum(sizes)
    x = np.concatenate([b.reshape(-1) for b in blocks])
    gflat = np.concatenate([gb.reshape(-1) for gb in g])
    # Along a unit direction the coordinate that moves is x.v, of the order
    # of the root-mean-square entry: scale the step by it (eq. G4).
    h = eps * max(1.0, float(np.sqrt(np.dot(x, x) / total)))
    splits = np.cumsum(sizes)[:-1]

    def at(t, v):
        y = x + t * v  # one new vector per evaluation; blocks are views of it
        return [part.reshape(s) for part, s in zip(np.split(y, splits), shapes)]

    rows = []
    for d in range(n_directions):
        v = rng.standard_normal(total)
        v /= np.linalg.norm(v)
        gv = float(np.dot(gflat, v))
        fp = _real(call(at(h, v)))
        dhat = (fp - _real(call(at(-h, v)))) / (2.0 * h)
        err = abs(gv - dhat) if np.isfinite(gv - dhat) else np.inf
        # eq. G8: judged relative to |g.v| itself, not max(1, |g.v|)
        rel = err / max(abs(gv), floor)
        rows.append(GradcheckRow(d, f"v[{d}]", (total,), 1, float(err), float(rel), None, gv,
                                 float(dhat)))
    return rows
