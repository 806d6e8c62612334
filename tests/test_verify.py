"""Tests of the gradient checkers (mlpckpt/verify.py) and `mlpckpt gradcheck`.

Every check below can fail: planted errors (tanh' x 1.001, one entry
x 1.001, a dropped bias gradient) must be caught by every method, clean
gradients of every smooth activation x loss x strategy must pass, and the
tolerance edge cases pin down what the default criterion can and cannot see
(paper_notes/gradient_checking.md, eqs. G7-G9).
"""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import check_grad, rosen, rosen_der

import mlpckpt as mc
from mlpckpt import activations, verify
from mlpckpt.cli import main

METHODS = ("central", "complex", "directional")
SMOOTH = ("identity", "sigmoid", "tanh", "softplus")
SIZES = [3, 5, 4, 2]
BATCH = 5


def strategies():
    out = [mc.StoreAll(), mc.Sqrt(), mc.Segments(2)]
    if hasattr(mc, "Revolve"):
        out.append(mc.Revolve(1))
    return out


def make_problem(activation="tanh", output="identity", loss="mse", targets="dense", seed=0, sizes=SIZES):
    """A small net and a batch whose targets suit ``loss``."""
    rng = np.random.default_rng(seed)
    net = mc.MLP(sizes, activation=activation, output=output, seed=seed)
    # nonzero biases so that every bias gradient and the b-dependence are exercised
    for b in net.biases:
        b += rng.uniform(-0.3, 0.3, size=b.shape)
    n_out = sizes[-1]
    X = rng.standard_normal((sizes[0], BATCH))
    if loss == "cross_entropy":
        labels = rng.integers(0, n_out, size=BATCH)
        Y = labels if targets == "labels" else np.eye(n_out)[:, labels]
    elif loss == "bce":
        Y = rng.integers(0, 2, size=(n_out, BATCH)).astype(float)
    elif output == "identity":
        Y = rng.standard_normal((n_out, BATCH))
    else:
        Y = rng.uniform(0, 1, size=(n_out, BATCH))
    return net, X, Y


LOSS_CASES = [
    ("identity", "mse", "dense"),
    ("sigmoid", "mse", "dense"),
    ("softmax", "mse", "dense"),
    ("sigmoid", "bce", "dense"),
    ("softmax", "cross_entropy", "labels"),
    ("softmax", "cross_entropy", "onehot"),
]


# -- exports -------------------------------------------------------------------


def test_exports():
    assert mc.gradcheck is verify.gradcheck and callable(mc.gradcheck)
    assert mc.check_gradients is verify.check_gradients
    assert mc.GradcheckReport is verify.GradcheckReport


# -- clean gradients pass ------------------------------------------------------


@pytest.mark.parametrize("activation", SMOOTH)
@pytest.mark.parametrize("output,loss,targets", LOSS_CASES)
def test_clean_gradients_pass_every_method_and_strategy(activation, output, loss, targets):
    net, X, Y = make_problem(activation, output, loss, targets)
    for strategy in strategies():
        for method in METHODS:
            r = mc.gradcheck(net, X, Y, loss=loss, strategy=strategy, method=method)
            assert r.passed, f"{strategy} {method}\n{r}"
            # noise floors (eqs. G3, G5): a wide margin under rtol = 1e-6
            limit = 1e-12 if method == "complex" else 1e-7
            assert r.max_rel_error < limit, str(r)


def test_clean_mixed_activations_and_rows():
    net, X, Y = make_problem(["sigmoid", "softplus"], "softmax", "cross_entropy", "labels")
    r = mc.gradcheck(net, X, Y, loss="cross_entropy", strategy=mc.Sqrt(), method="central")
    assert r.passed
    assert [row.name for row in r.rows] == ["W0", "b0", "W1", "b1", "W2", "b2"]
    assert [row.shape for row in r.rows] == [(5, 3), (5, 1), (4, 5), (4, 1), (2, 4), (2, 1)]
    assert r.n_params == r.n_checked == 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2
    assert r.n_evaluations == 2 * r.n_params + 1
    assert all(row.passed for row in r.rows)


def test_gradcheck_uses_the_given_strategy(monkeypatch):
    net, X, Y = make_problem()
    seen = []
    original = type(net).loss_and_grad

    def spy(self, X, Y, loss="mse", strategy=None, out=None):
        seen.append(strategy)
        return original(self, X, Y, loss=loss, strategy=strategy, out=out)

    monkeypatch.setattr(type(net), "loss_and_grad", spy)
    weights_before = [W.copy() for W in net.weights]
    mc.gradcheck(net, X, Y, strategy=mc.Segments(2))
    assert seen == [mc.Segments(2)]
    # the net's own parameters are restored and untouched
    assert all(W is not None and np.array_equal(W, W0) for W, W0 in zip(net.weights, weights_before))


def test_float32_net_checked_through_float64_copies():
    rng = np.random.default_rng(3)
    net = mc.MLP(SIZES, activation="tanh", dtype="float32", seed=3)
    X, Y = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    r = mc.gradcheck(net, X, Y, method="complex")
    assert r.passed and any("float32" in n for n in r.notes)
    assert net.weights[0].dtype == np.float32


# -- planted errors are caught -------------------------------------------------


@pytest.fixture
def tanh_derivative_off(monkeypatch):
    """tanh' scaled by 1.001 in the backward pass (the forward is untouched)."""
    forward, mul_derivative = activations.ACTIVATIONS["tanh"]

    def wrong(a, da):
        mul_derivative(a, da)
        da *= 1.001
        return da

    monkeypatch.setitem(activations.ACTIVATIONS, "tanh", (forward, wrong))


@pytest.mark.parametrize("method", METHODS)
def test_planted_tanh_derivative_caught(tanh_derivative_off, method):
    net, X, Y = make_problem("tanh", "softmax", "cross_entropy", "labels")
    for strategy in strategies():
        r = mc.gradcheck(net, X, Y, loss="cross_entropy", strategy=strategy, method=method)
        assert not r.passed, str(r)
        assert r.max_rel_error > 1e-4  # ~1e-3 per hidden layer, far above rtol
        assert "FAILED" in str(r)
    # the last layer's weights do not see tanh': their rows still pass
    if method != "directional":
        rows = {row.name: row for row in r.rows}
        assert rows["W2"].passed and rows["b2"].passed
        assert not rows["W0"].passed


def _planted(grad, block, flat_index, factor=1.001):
    def wrong(params):
        out = [np.array(g, copy=True) for g in grad(params)]
        out[block].reshape(-1)[flat_index] *= factor
        return out

    return wrong


@pytest.mark.parametrize("method", METHODS)
def test_planted_single_entry_caught(method):
    net, X, Y = make_problem("tanh", "softmax", "cross_entropy", "labels", sizes=[8, 16, 16, 3])
    fun, grad, params, names = verify.loss_functions(net, X, Y, "cross_entropy")
    g = grad(params)
    if method == "directional":
        # directions dilute one entry by |v_k| ~ 1/sqrt(P): plant it in the largest entry
        block = int(np.argmax([np.abs(x).max() for x in g]))
    else:
        block = 2  # W1, at its median-magnitude entry
    mags = np.abs(g[block]).reshape(-1)
    k = int(np.argmax(mags)) if method == "directional" else int(np.argsort(mags)[mags.size // 2])
    r = mc.check_gradients(fun, _planted(grad, block, k), params, method=method, names=names)
    assert not r.passed, str(r)
    if method != "directional":
        worst = r.worst
        assert worst.name == names[block]
        assert worst.worst_index == np.unravel_index(k, g[block].shape)
        assert worst.max_rel_error == pytest.approx(1e-3, rel=1e-3)
        assert sum(not row.passed for row in r.rows) == 1


def test_single_entry_caught_everywhere_by_defaults_but_not_by_loose_tolerances():
    # a 0.05% error in one entry: invisible at rtol = 1e-3, caught by the
    # defaults (PyTorch's defaults, atol 1e-5 + rtol 1e-3, miss even 0.1%;
    # paper_notes/gradient_checking.md, "Measured figures")
    net, X, Y = make_problem("tanh", "softmax", "cross_entropy", "labels")
    fun, grad, params, names = verify.loss_functions(net, X, Y, "cross_entropy")
    for k in range(0, params[2].size, 3):
        wrong = _planted(grad, 2, k, 1.0005)
        assert not mc.check_gradients(fun, wrong, params).passed
        assert mc.check_gradients(fun, wrong, params, eps=1e-6, rtol=1e-3, atol=1e-5).passed


@pytest.mark.parametrize("method", METHODS)
def test_dropped_bias_gradient_caught(method):
    net, X, Y = make_problem("sigmoid", "sigmoid", "bce")
    fun, grad, params, names = verify.loss_functions(net, X, Y, "bce")

    def no_db1(p):
        out = list(grad(p))
        out[3] = np.zeros_like(out[3])
        return out

    r = mc.check_gradients(fun, no_db1, params, method=method, names=names)
    assert not r.passed, str(r)
    if method != "directional":
        assert r.worst.name == "b1" and r.worst.max_rel_error == pytest.approx(1.0)
        assert [row.name for row in r.rows if not row.passed] == ["b1"]


# -- relu and kinks ------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", ["tanh", "relu"]])
def test_complex_step_refuses_kinked_activations(activation):
    net, X, Y = make_problem(activation)
    with pytest.raises(ValueError, match=r"method: 'complex'.*(relu|leaky_relu).*analytic"):
        mc.gradcheck(net, X, Y, method="complex")


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_kinked_net_away_from_kinks_passes_with_a_note(activation):
    # with h ~ 6e-6 a step rarely crosses a kink: these nets pass, and the
    # report still warns that a failure could be a kink, not a bug
    net, X, Y = make_problem(activation)
    for method in ("central", "directional"):
        r = mc.gradcheck(net, X, Y, method=method)
        assert r.passed, str(r)
        assert any("kink" in n for n in r.notes)


def test_step_across_a_kink_fails_legitimately():
    # A zero input column with zero biases puts every first-layer unit exactly
    # at relu's kink: the central difference there sees the average of the
    # one-sided slopes, the analytic gradient uses relu'(0) = 0. The report
    # must fail (and say why) rather than hide it.
    net = mc.MLP([3, 4, 2], activation="relu", seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 4))
    X[:, 0] = 0.0
    Y = rng.standard_normal((2, 4))
    r = mc.gradcheck(net, X, Y, method="central")
    assert not r.passed
    assert r.worst.name == "b0"
    assert any("kink" in n for n in r.notes)
    assert "kink" in str(r)


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


def test_directional_is_seeded_and_leaves_global_state_alone():
    net, X, Y = make_problem()
    state = np.random.get_state()[1].copy()
    a = mc.gradcheck(net, X, Y, method="directional", seed=7, n_directions=4)
    b = mc.gradcheck(net, X, Y, method="directional", seed=7, n_directions=4)
    c = mc.gradcheck(net, X, Y, method="directional", seed=8, n_directions=4)
    assert np.array_equal(np.random.get_state()[1], state)
    assert [r.analytic for r in a.rows] == [r.analytic for r in b.rows]
    assert [r.analytic for r in a.rows] != [r.analytic for r in c.rows]
    assert len(a.rows) == 4 and a.rows[0].shape == (a.n_params,)


def test_random_subset_of_entries():
    net, X, Y = make_problem()
    r = mc.gradcheck(net, X, Y, max_entries=12, seed=1)
    assert r.passed
    assert 6 <= r.n_checked <= 14 and all(row.n_checked >= 1 for row in r.rows)
    assert any("subset" in n for n in r.notes)
    r2 = mc.gradcheck(net, X, Y, max_entries=12, seed=1)
    assert [row.worst_index for row in r.rows] == [row.worst_index for row in r2.rows]


# -- report --------------------------------------------------------------------


def test_report_dict_and_table():
    net, X, Y = make_problem()
    r = mc.gradcheck(net, X, Y, method="complex")
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["passed"] is True and d["method"] == "complex"
    assert d["rows"][0]["name"] == "W0" and d["rows"][0]["shape"] == [5, 3]
    assert d["max_rel_error"] == r.max_rel_error <= d["rtol"] == 1e-6
    assert d["atol"] == pytest.approx(1e-8 * max(1.0, abs(r.f)))
    text = str(r)
    for word in ("complex step", "W0", "b2", "PASSED", "detectable:", "max rel err"):
        assert word in text
    assert bool(r)


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
    net, X, Y = make_problem()
    with pytest.raises(ValueError, match="method: got 'exact'"):
        mc.gradcheck(net, X, Y, method="exact")
    with pytest.raises(ValueError, match="loss"):
        mc.gradcheck(net, X, Y, loss="bce")  # identity output


# -- command line --------------------------------------------------------------


def test_cli_passes(capsys):
    argv = ["gradcheck", "--sizes", "8,16,16,3", "--activation", "tanh", "--loss",
            "cross_entropy", "--strategy", "sqrt", "--method", "complex"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "complex step" in out and "467 of 467 entries" in out
    assert "W2" in out and "Sqrt()" in out


def test_cli_width_depth_directional_and_json(capsys):
    argv = ["gradcheck", "--width", "4", "--depth", "6", "--activation", "sigmoid", "--loss",
            "bce", "--strategy", "segments:2", "--method", "directional", "--directions", "3",
            "--json", "--seed", "5"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["passed"] and d["method"] == "directional" and len(d["rows"]) == 3
    assert d["n_params"] == 6 * (4 * 4 + 4)


def test_cli_failure_exit_1(capsys, tanh_derivative_off):
    assert main(["gradcheck", "--sizes", "3,4,2", "--batch", "3"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_cli_tolerance_too_tight_exit_1(capsys):
    assert main(["gradcheck", "--sizes", "3,4,2", "--rtol", "1e-15", "--atol", "0"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--sizes", "8,x"], "--sizes"),
        (["--sizes", "3,4,2", "--activation", "relu", "--method", "complex"], "method: 'complex'"),
        (["--sizes", "3,4,2", "--method", "nope"], "method: got 'nope'"),
        (["--sizes", "3,4,2", "--strategy", "fast"], "--strategy"),
        (["--sizes", "3,4,2", "--batch", "0"], "--batch"),
        (["--sizes", "3,4,2", "--loss", "cross_entropy", "--output", "identity"], "loss"),
        (["--width", "4"], "--width"),
    ],
)
def test_cli_bad_arguments_exit_2(capsys, argv, match):
    assert main(["gradcheck"] + argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and err.startswith("mlpckpt gradcheck: error:")
