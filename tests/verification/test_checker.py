"""Tests of the model-free checker, mlpckpt/verification/_checker.py: check_gradients over
plain callables, every method.

Every check below can fail: planted errors must be caught, clean gradients
of smooth functions must pass at any scale, and the tolerance edge cases pin
down what the default criterion can and cannot see
(paper_notes/gradient_checking.md, eqs. G7-G9). The MLP side is in
tests/verification/test_gradcheck.py, the report in tests/verification/test_report.py.
"""

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import check_grad, rosen, rosen_der

import mlpckpt as mc
from mlpckpt.verification import _checker as verify

METHODS = ("central", "complex", "directional")


def test_exports():
    assert mc.check_gradients is verify.check_gradients
    assert verify.METHODS == METHODS


# -- agreement with scipy ------------------------------------------------------


def test_agrees_with_scipy_check_grad():
    x0 = np.random.default_rng(4).uniform(-1.5, 1.5, size=6)
    # clean: both see only their own noise (scipy: forward differences, ~1e-6)
    scipy_noise = check_grad(rosen, rosen_der, x0)
    assert scipy_noise < 1e-4
    r = mc.check_gradients(rosen, rosen_der, x0)
    assert r.passed and r.max_abs_error < 1e-7
    # a 0.1% error in one entry: scipy's 2-norm and our max abs error both report its size
    delta = 1e-3 * abs(rosen_der(x0)[2])

    def wrong(x):
        g = rosen_der(x)
        g[2] += delta
        return g

    assert check_grad(rosen, wrong, x0) == pytest.approx(delta, abs=2 * scipy_noise)
    r = mc.check_gradients(rosen, wrong, x0)
    assert not r.passed
    assert r.max_abs_error == pytest.approx(delta, rel=1e-5)
    assert r.rows[0].worst_index == (2,)
    # our numerical gradient is far more accurate than scipy's forward differences
    assert r.rows[0].numeric == pytest.approx(rosen_der(x0)[2], rel=1e-9, abs=1e-9)
    assert r.max_abs_error - delta < 1e-3 * scipy_noise


# -- tolerance edge cases ------------------------------------------------------


def test_zero_gradient_constant_function():
    x = np.linspace(-1, 1, 7)
    for method in METHODS:
        r = mc.check_gradients(lambda p: 3.0 + 0 * p.sum(), np.zeros_like, x, method=method)
        assert r.passed and r.max_abs_error == 0.0 and r.max_rel_error == 0.0


def test_zero_gradient_at_minimum_and_atol_floor():
    x = np.zeros(5)
    f = lambda p: np.dot(p, p)
    assert mc.check_gradients(f, lambda p: 2 * p, x).passed
    # below atol = 1e-8 * max(1, |f|): invisible by design (eq. G7) ...
    assert mc.check_gradients(f, lambda p: 2 * p + 1e-9, x).passed
    # ... above it: caught
    r = mc.check_gradients(f, lambda p: 2 * p + 1e-6, x)
    assert not r.passed and r.max_rel_error == pytest.approx(1e-6 / 1e-2, rel=1e-3)


def test_tiny_scale_needs_explicit_atol():
    # f ~ 1e-12: every gradient entry is below atol = 1e-8, so even a zero
    # gradient passes the defaults -- and the report says what was detectable
    x = np.linspace(0.5, 1.5, 4)
    f = lambda p: 1e-12 * np.dot(p, p)
    r = mc.check_gradients(f, np.zeros_like, x)
    assert r.passed
    assert "|g| > 1e-05" in r.detectable and "(0% of the checked entries)" in r.detectable
    r = mc.check_gradients(f, np.zeros_like, x, atol=0.0)
    assert not r.passed
    assert mc.check_gradients(f, lambda p: 2e-12 * p, x, atol=0.0).passed


def test_huge_values():
    # large parameters: the step scales with |x| (eq. G4); large f: atol scales with |f|
    x = np.array([1e3, -2e3, 5e2, 3e3])
    f = lambda p: np.sum(p**4)
    g = lambda p: 4 * p**3
    for method in METHODS:
        assert mc.check_gradients(f, g, x, method=method).passed
        assert not mc.check_gradients(f, lambda p: 1.001 * g(p), x, method=method).passed
    x = np.array([1e8, 2e8])
    f = lambda p: 1e6 * np.sum(np.sin(p / 1e8))
    g = lambda p: 1e-2 * np.cos(p / 1e8)
    assert mc.check_gradients(f, g, x).passed
    assert mc.check_gradients(f, g, x, method="complex").passed


def test_nan_never_passes():
    x = np.array([1e-7, 1.0])

    def f(p):
        with np.errstate(invalid="ignore"):
            return np.sum(np.sqrt(p))

    r = mc.check_gradients(f, lambda p: 0.5 / np.sqrt(p), x)  # x - h < 0: NaN
    assert not r.passed and r.max_rel_error == np.inf
    with pytest.raises(ValueError, match="fun: expected a finite real value"):
        mc.check_gradients(lambda p: np.nan, np.zeros_like, x)


def test_complex_step_on_non_analytic_fun_fails_with_note():
    x = np.array([0.5, -0.7])
    f = lambda p: np.sum(np.abs(p) ** 2)  # abs drops the imaginary part
    r = mc.check_gradients(f, lambda p: 2 * p, x, method="complex")
    assert not r.passed
    assert any("complex" in n for n in r.notes)


@settings(deadline=None, max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    log_scale=st.floats(-3, 6),
    n=st.integers(1, 12),
)
def test_clean_smooth_functions_pass_at_any_scale(seed, log_scale, n):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    A = A @ A.T
    c = 10.0**log_scale
    x = rng.standard_normal(n)

    def f(p):
        return c * (0.5 * p @ A @ p + np.sum(np.sin(p)))

    def g(p):
        return c * (A @ p + np.cos(p))

    for method in METHODS:
        r = mc.check_gradients(f, g, x, method=method, seed=seed)
        assert r.passed, str(r)


def _layout(a, layout):
    """``a``'s values in the memory layout named (issue 11, item 3)."""
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "transposed":  # the transpose of a C array: F-ordered strides
        return np.ascontiguousarray(a.T).T
    if layout == "reversed":  # negative strides
        return np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    big = np.full((2 * a.shape[0], 2 * a.shape[1]), np.nan)  # strided: a [::2] view
    big[::2, ::2] = a
    return big[::2, ::2]


LAYOUTS = ("C", "F", "strided", "transposed", "reversed")


def _row_values(r):
    return [(row.max_abs_error, row.max_rel_error, row.worst_index, row.analytic, row.numeric,
             row.passed) for row in r.rows]


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 5), k=st.integers(1, 5),
       n=st.integers(1, 5), subset=st.booleans())
def test_every_method_sees_every_layout_as_the_c_ordered_case(seed, m, k, n, subset):
    # the checker perturbs the arrays fun sees whatever the layout of the
    # params: a Fortran, strided or transposed block used to be perturbed
    # through a copy, so the complex step saw a zero derivative
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    fun = lambda p: np.sum(np.sin(p[0]) @ p[1])

    def grad(p):
        G = np.ones((p[0].shape[0], p[1].shape[1]))
        return [np.cos(p[0]) * (G @ p[1].T), np.sin(p[0]).T @ G]

    extra = {"max_entries": max(1, (m * k + k * n) // 2)} if subset else {}
    for method in METHODS:
        kw = {} if method == "directional" else extra
        ref = mc.check_gradients(fun, grad, [A, B], method=method, seed=seed, **kw)
        assert ref.passed, str(ref)
        for la, lb in [(la, lb) for la in LAYOUTS for lb in LAYOUTS]:
            params = [_layout(A, la), _layout(B, lb)]
            r = mc.check_gradients(fun, grad, params, method=method, seed=seed, **kw)
            assert r.passed, (method, la, lb, str(r))
            assert _row_values(r) == _row_values(ref), (method, la, lb)
            assert np.array_equal(params[0], A) and np.array_equal(params[1], B)


def test_fortran_single_array_complex_step():
    x = np.asfortranarray(np.random.default_rng(3).standard_normal((4, 3)))
    for method in METHODS:
        r = mc.check_gradients(lambda p: np.sum(np.sin(p) ** 2), lambda p: np.sin(2 * p), x,
                               method=method)
        assert r.passed, (method, str(r))


# -- directional ---------------------------------------------------------------


def test_directional_million_parameters():
    n = 10**6
    rng = np.random.default_rng(1)
    A = rng.uniform(0.5, 2.0, n)
    x0 = rng.standard_normal(n) / np.sqrt(n)  # f ~ 0.6, like a mean loss
    f = lambda x: 0.5 * np.dot(A * x, x)
    g = lambda x: A * x
    r = mc.check_gradients(f, g, x0, method="directional", n_directions=5)
    assert r.passed and r.n_evaluations == 11 and r.n_params == n
    r = mc.check_gradients(f, lambda x: 1.001 * g(x), x0, method="directional", n_directions=5)
    assert not r.passed
    assert r.max_rel_error > 1e-4


# -- params structure ----------------------------------------------------------


def test_single_array_params():
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    seen = []

    def f(p):
        seen.append(type(p))
        return np.sum(p**3)

    r = mc.check_gradients(f, lambda p: 3 * p**2, x)
    assert r.passed and r.rows[0].shape == (2, 2)
    assert set(seen) == {np.ndarray}
    assert np.array_equal(x, [[1.0, 2.0], [3.0, -1.0]])  # caller's array untouched
    # a plain number is one 0-d block
    r = mc.check_gradients(lambda p: p**3, lambda p: 3 * p**2, 2.0)
    assert r.passed and r.rows[0].shape == () and r.n_params == 1


def test_list_params_names_and_narrow_dtype_note():
    params = [np.ones((2, 3), dtype=np.float32), np.arange(3.0)]
    f = lambda p: np.sum(p[0] ** 2) + np.sum(np.sin(p[1]))
    g = lambda p: [2 * p[0], np.cos(p[1])]
    r = mc.check_gradients(f, g, params, names=["A", "c"])
    assert r.passed and [row.name for row in r.rows] == ["A", "c"]
    assert any("narrower float type" in n for n in r.notes)
    assert params[0].dtype == np.float32 and np.array_equal(params[0], np.ones((2, 3)))
    r = mc.check_gradients(f, g, [np.ones((2, 3)), np.arange(3.0)])
    assert not any("narrower" in n for n in r.notes)


# -- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"method": "forward"}, "method: got 'forward'"),
        ({"rtol": -1.0}, "rtol: expected a finite number > 0"),
        ({"atol": -1.0}, "atol: expected None or a finite number >= 0"),
        ({"eps": 0.0}, "eps: expected a finite number > 0"),
        ({"n_directions": 0}, "n_directions: expected an int >= 1"),
        ({"max_entries": 0}, "max_entries: expected an int >= 1"),
        ({"method": "directional", "max_entries": 3}, "max_entries: applies to"),
        ({"seed": "x"}, "seed: expected an int"),
    ],
)
def test_bad_options(kw, match):
    x = np.ones(3)
    with pytest.raises(ValueError, match=match):
        mc.check_gradients(np.sum, np.ones_like, x, **kw)


def test_bad_params_and_grad():
    with pytest.raises(ValueError, match=r"params\[0\]: expected a real numeric array"):
        mc.check_gradients(np.sum, np.ones_like, np.ones(3) + 1j)
    with pytest.raises(ValueError, match="params: expected at least one array"):
        mc.check_gradients(np.sum, np.ones_like, [])
    with pytest.raises(ValueError, match=r"grad: block 0: expected shape \(3,\)"):
        mc.check_gradients(np.sum, lambda p: np.ones(4), np.ones(3))
    with pytest.raises(ValueError, match="grad: expected it to return 2 arrays"):
        mc.check_gradients(lambda p: p[0].sum(), lambda p: [np.ones(3)], [np.ones(3), np.ones(2)])


@pytest.mark.parametrize(
    "args,match",
    [
        ((np.sum, np.ones_like, [np.array([1.0, np.inf])]), r"params\[0\]: expected finite"),
        ((np.sum, np.ones_like, [np.ones(0)]), "params: expected at least one entry"),
        (("f", np.ones_like, np.ones(2)), "fun: expected a callable, got str"),
        ((np.sum, None, np.ones(2)), "grad: expected a callable, got NoneType"),
        ((lambda p: "x", np.ones_like, np.ones(2)), "fun: expected a number as return value"),
        ((lambda p: p, np.ones_like, np.ones(2)), r"fun: expected a scalar .*shape \(2,\)"),
        ((lambda p: p[0].sum(), lambda p: np.ones(2), [np.ones(2)]), "wrap it in a list"),
        ((np.sum, lambda p: np.ones(2) + 1j, np.ones(2)), "grad: block 0: expected a real"),
    ],
)
def test_bad_callables_and_values(args, match):
    with pytest.raises(ValueError, match=match):
        mc.check_gradients(*args)


def test_names_must_match_blocks():
    with pytest.raises(ValueError, match="names: expected 2 names, got 1"):
        mc.check_gradients(lambda p: p[0].sum(), lambda p: [np.ones(2), np.ones(1)],
                           [np.ones(2), np.ones(1)], names=["a"])
