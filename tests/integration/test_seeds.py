"""The small programs the library grew from (its seeds) reproduced as tests,
plus the seed 000 tanh mistake (README, "Examples").

The seeds are row-major (one sample per row) and sum or average their
gradients in their own ways; the small reference implementations below are
written from the seeds' *equations* (with the tanh mistake corrected) to pin
down how their learning rates map onto mlpckpt's mean-reduced losses.
"""

import runpy
from pathlib import Path

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.core import _activations as acts
from mlpckpt.core import _losses as losses

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _central(f, x, h=1e-6):
    """Central differences of scalar f at every entry of x (float64)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def _make_classification():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    X, y = sklearn_datasets.make_classification(
        n_samples=10, n_features=4, n_classes=2, n_clusters_per_class=1, random_state=42
    )
    return X, y


def _seed000_net(seed):
    return mc.MLP(
        [4, 6, 4, 3, 1],
        activation=["sigmoid", "tanh", "relu"],
        output="sigmoid",
        init="normal",
        seed=seed,
    )


# -- seed 000 ---------------------------------------------------------------------


def test_seed000_loss_decreases():
    X, y = _make_classification()
    net = _seed000_net(2)
    hist = net.fit(X.T, y, loss="bce", epochs=100, batch_size=None, lr=0.1, shuffle=False)
    assert len(hist) == 100
    assert np.all(np.diff(hist) < 0)  # full-batch GD with a small step: monotone
    assert hist[-1] < 0.5 * hist[0]
    assert np.mean(net.predict(X.T)[0] == y) >= 0.9


def test_seed000_loss_never_increases_over_seeds():
    # Some draws stall (a dead ReLU layer), as the seed itself did not always
    # fit: the loss must still never go up, and most draws must learn.
    X, y = _make_classification()
    learned = 0
    for seed in range(8):
        hist = _seed000_net(seed).fit(X.T, y, "bce", epochs=100, batch_size=None, lr=0.1, shuffle=False)
        assert np.all(np.diff(hist) <= 1e-12)
        learned += hist[-1] < 0.8 * hist[0]
    assert learned >= 5


def _seed000_summed_gradients(net, X_rows, y):
    """Seed 000's backward pass (row-major, summed over samples), tanh fixed."""
    derivs = {
        "sigmoid": lambda a: a * (1 - a),
        "tanh": lambda a: 1 - a**2,
        "relu": lambda a: (a > 0).astype(float),
    }
    fns = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}
    names = net.activations + ["sigmoid"]
    A = [X_rows]
    for W, b, name in zip(net.weights, net.biases, names):
        A.append(fns[name](A[-1] @ W.T + b.T))
    delta = A[-1] - y.reshape(-1, 1)  # sigmoid + BCE, summed
    dW, db = [None] * net.n_layers, [None] * net.n_layers
    for k in range(net.n_layers - 1, -1, -1):
        dW[k] = delta.T @ A[k]
        db[k] = delta.sum(axis=0).reshape(-1, 1)
        if k:
            delta = (delta @ net.weights[k]) * derivs[names[k - 1]](A[k])
    return dW, db


def test_seed000_summed_lr_001_equals_mean_lr_01():
    X, y = _make_classification()
    net = _seed000_net(3)
    _, g = net.loss_and_grad(X.T, y, "bce")
    dW, db = _seed000_summed_gradients(net, X, y)
    for ours, theirs in zip(g.weights + g.biases, dW + db):
        np.testing.assert_allclose(ours * 10, theirs, rtol=1e-12, atol=1e-14)
    # hence one seed step (lr 0.01, summed) is one mlpckpt step (lr 0.1, mean)
    seed_step = [W - 0.01 * d for W, d in zip(net.weights, dW)]
    net.fit(X.T, y, "bce", epochs=1, batch_size=None, lr=0.1, shuffle=False)
    for ours, theirs in zip(net.weights, seed_step):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)


def test_seed000_table_prints(capsys):
    pytest.importorskip("sklearn")
    main = runpy.run_path(str(EXAMPLES / "seed000_table.py"), run_name="seed000")["main"]
    hist, proba, y = main()
    out = capsys.readouterr().out.splitlines()
    header = [i for i, line in enumerate(out) if line.split() == ["example", "predicted", "true"]]
    assert len(header) == 1
    rows = out[header[0] + 1 : header[0] + 11]
    assert len(rows) == 10
    for i, row in enumerate(rows):
        idx, pred, true = row.split()
        assert int(idx) == i
        assert float(pred) == pytest.approx(proba[i], abs=1e-6)
        assert float(true) == y[i]
    assert hist[-1] < hist[0]


# -- seed 001 ---------------------------------------------------------------------


@pytest.fixture
def seed001_data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 40))
    y = (X[0] - 0.5 * X[1] + 0.2 > 0).astype(float).reshape(1, -1)
    return X, y


@pytest.mark.parametrize("sizes", [[3, 1], [3, 5, 1]], ids=["one_layer", "two_layer"])
def test_seed001_sigmoid_mlp_mse_loss_decreases(seed001_data, sizes):
    X, y = seed001_data
    net = mc.MLP(sizes, activation="sigmoid", output="sigmoid", init="normal", seed=0)
    hist = net.fit(X, y, "mse", epochs=1000, batch_size=None, lr=0.1, shuffle=False)
    assert np.all(np.diff(hist) < 0)
    assert hist[-1] < 0.5 * hist[0]


def test_seed001_gradient_is_twice_the_seeds():
    # Seed 001 uses dL/dA = A - Y and divides by m; PyTorch's MSELoss (ours)
    # has dL/dA = 2 (A - Y) / (n_out m): with n_out = 1, exactly twice.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3, 8))
    Y = rng.uniform(size=(1, 8))
    net = mc.MLP([3, 5, 1], activation="sigmoid", output="sigmoid", seed=1)
    _, g = net.loss_and_grad(X, Y, "mse")
    sig = lambda z: 1 / (1 + np.exp(-z))
    Xr, Yr = X.T, Y.T
    W1, b1, W2, b2 = net.weights[0].T, net.biases[0].T, net.weights[1].T, net.biases[1].T
    A1 = sig(Xr @ W1 + b1)
    A2 = sig(A1 @ W2 + b2)
    m = Yr.shape[0]
    dZ2 = (A2 - Yr) * A2 * (1 - A2)
    dW2 = A1.T @ dZ2 / m
    db2 = dZ2.sum(axis=0, keepdims=True) / m
    dZ1 = (dZ2 @ W2.T) * A1 * (1 - A1)
    dW1 = Xr.T @ dZ1 / m
    db1 = dZ1.sum(axis=0, keepdims=True) / m
    for ours, theirs in zip(g.weights + g.biases, [dW1.T, dW2.T, db1.T, db2.T]):
        np.testing.assert_allclose(ours, 2 * theirs, rtol=1e-12, atol=1e-15)


# -- seed 002 ---------------------------------------------------------------------

DIGITS_LR = 2.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seed002_digits_training_accuracy(seed):
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    X = (digits.data / 16.0).T
    y = digits.target
    Y = np.eye(10)[y].T
    net = mc.MLP([64, 15, 10], activation="relu", output="sigmoid", init="normal", seed=seed)
    hist = net.fit(X, Y, "mse", epochs=100, batch_size=15, optimizer="sgd", lr=DIGITS_LR,
                   shuffle=True, seed=seed)
    accuracy = np.mean(np.argmax(net.predict_proba(X), axis=0) == y)
    assert accuracy >= 0.98, accuracy
    assert hist[-1] < 0.1 * hist[0]


# -- seed 003 ---------------------------------------------------------------------


def test_seed003_linear_regression_lbfgs():
    rng = np.random.default_rng(3)
    W_true = np.array([[1.5, -2.0, 0.25, 3.0], [0.0, 0.5, -1.0, 2.0]])
    b_true = np.array([[0.7], [-1.3]])
    X = rng.standard_normal((4, 200))
    Y = W_true @ X + b_true
    net = mc.MLP([4, 2], output="identity", seed=0)
    result = net.fit_lbfgs(X, Y, "mse", maxiter=500, tol=1e-30)
    np.testing.assert_allclose(net.weights[0], W_true, atol=1e-6)
    np.testing.assert_allclose(net.biases[0], b_true, atol=1e-6)
    assert result.fun < 1e-12


def test_seed003_linear_regression_sgd():
    rng = np.random.default_rng(4)
    w_true = np.array([[2.0, -1.0, 0.5]])
    b_true = 0.3
    X = rng.standard_normal((3, 100))
    y = (w_true @ X + b_true).ravel()  # (batch,) accepted for n_out == 1
    net = mc.MLP([3, 1], output="identity", seed=0)
    hist = net.fit(X, y, "mse", epochs=400, batch_size=None, lr=0.2, shuffle=False)
    np.testing.assert_allclose(net.weights[0], w_true, atol=1e-6)
    np.testing.assert_allclose(net.biases[0], [[b_true]], atol=1e-6)
    assert hist[-1] < 1e-12


def _softmax(z):
    e = np.exp(z - z.max(axis=0))
    return e / e.sum(axis=0)


@pytest.mark.parametrize("targets", ["labels", "onehot"])
def test_seed003_fused_softmax_cross_entropy_derivative(targets):
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4, 6)) * 3
    labels = rng.integers(0, 4, 6)
    y = labels if targets == "labels" else np.eye(4)[labels].T
    dz = z.copy()
    loss = losses.loss_and_dz("cross_entropy", "softmax", dz, y)
    # closed form: (softmax - onehot) / batch
    fused = (_softmax(z) - np.eye(4)[labels].T) / 6
    np.testing.assert_allclose(dz, fused, rtol=1e-13, atol=1e-16)
    # value: -mean log softmax at the label
    ref = -np.mean(np.log(_softmax(z)[labels, np.arange(6)]))
    assert float(loss) == pytest.approx(ref, rel=1e-13)
    # numerically: central differences of the loss
    num = _central(lambda zz: float(losses.loss_value("cross_entropy", "softmax", zz, y)), z.copy())
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-9)


def test_seed003_softmax_classifier_trains_and_gradient_checks():
    rng = np.random.default_rng(6)
    centers = np.array([[2.0, 0.0], [-2.0, 2.0], [0.0, -2.5]]).T
    labels = rng.integers(0, 3, 90)
    X = centers[:, labels] + 0.5 * rng.standard_normal((2, 90))
    net = mc.MLP([2, 8, 3], activation="sigmoid", output="softmax", seed=0)
    # the network gradient (fused derivative at the top) against central differences
    _, g = net.loss_and_grad(X, labels, "cross_entropy")
    for k in range(net.n_layers):
        for param, grad in ((net.weights[k], g.weights[k]), (net.biases[k], g.biases[k])):
            num = _central(lambda _p: net.loss_and_grad(X, labels, "cross_entropy")[0], param)
            np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)
    hist = net.fit(X, labels, "cross_entropy", epochs=60, batch_size=10, lr=0.5, seed=0)
    assert hist[-1] < 0.2 * hist[0]
    assert np.mean(net.predict(X) == labels) >= 0.97


# -- activations: seed 000's tanh is wrong, ours is right ------------------------------


def _seed000_tanh(x):
    return (np.exp(x) - np.exp(-1)) / (np.exp(x) + np.exp(-x))  # the seed's formula


def test_our_tanh_is_right_and_seed000_tanh_is_wrong():
    x = np.linspace(-5, 5, 101).reshape(1, -1)
    ours = acts.forward("tanh", x)
    textbook = (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))
    np.testing.assert_allclose(ours, np.tanh(x), rtol=0, atol=0)
    np.testing.assert_allclose(ours, textbook, rtol=1e-13, atol=1e-15)
    seed = _seed000_tanh(x)
    assert np.max(np.abs(seed - np.tanh(x))) > 0.1
    assert np.max(np.abs(seed - textbook)) > 0.1
    # at 0 the seed gives (1 - 1/e) / 2 instead of 0; tanh is odd, the seed's is not
    assert _seed000_tanh(0.0) == pytest.approx((1 - np.exp(-1)) / 2, rel=1e-15)
    assert abs(_seed000_tanh(1.0) + _seed000_tanh(-1.0)) > 0.1
    assert ours[0, 50] == 0.0
    np.testing.assert_array_equal(acts.forward("tanh", -x), -ours)


def test_seed000_tanh_is_inconsistent_with_its_derivative():
    # 1 - a^2 is tanh's derivative from its output; for the seed's formula it
    # is not the derivative (which is how the mistake hides in training).
    x = np.linspace(-2, 2, 9)
    num = _central(lambda v: float(np.sum(_seed000_tanh(v))), x.copy())
    a = _seed000_tanh(x)
    assert np.max(np.abs(num - (1 - a**2))) > 0.05
