"""The training loop (mlpckpt.training._loop): epochs, batches, shuffling, callbacks,
progress, the fused update, L-BFGS, and the loop over a model-free step."""

import numpy as np
import pytest
from scipy.optimize import OptimizeResult

import mlpckpt as mc
from mlpckpt.training import _loop as train
from mlpckpt.testing import assert_bitwise_equal


def test_fit_returns_one_mean_loss_per_epoch(problem, make_net):
    X, Y = problem
    net = make_net()
    hist = net.fit(X, Y, "mse", epochs=7, batch_size=5, lr=0.05, seed=0)
    assert isinstance(hist, list) and len(hist) == 7
    assert all(isinstance(h, float) and np.isfinite(h) for h in hist)
    assert net.fit(X, Y, "mse", epochs=0) == []


def test_epoch_loss_is_sample_weighted_mean_with_partial_last_batch(blocks, make_net):
    # 10 samples, batch 4: batches of 4, 4, 2; the last one is used.
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 10))
    Y = rng.standard_normal((3, 10))
    net, ref = make_net(), make_net()
    hist = net.fit(X, Y, "mse", epochs=1, batch_size=4, shuffle=False, lr=0.1)
    total = 0.0
    for sl in (slice(0, 4), slice(4, 8), slice(8, 10)):
        loss, g = ref.loss_and_grad(X[:, sl], Y[:, sl], "mse")
        total += loss * (sl.stop - sl.start)
        blocks.set(ref, [p - 0.1 * d for p, d in zip(blocks.of(ref), blocks.of_grads(g))])
    assert hist[0] == pytest.approx(total / 10, rel=1e-15)
    assert_bitwise_equal(blocks.of(net), blocks.of(ref))
    # an Adam object counts the steps: 3 per epoch
    opt = mc.Adam()
    make_net().fit(X, Y, "mse", epochs=2, batch_size=4, optimizer=opt)
    assert opt.t == 6


def test_batch_size_none_is_full_batch(problem, blocks, make_net):
    X, Y = problem
    a, b = make_net(), make_net()
    opt = mc.Adam(lr=0.01)
    ha = a.fit(X, Y, "mse", epochs=4, batch_size=None, optimizer=opt, shuffle=False)
    hb = b.fit(X, Y, "mse", epochs=4, batch_size=X.shape[1], optimizer="adam", lr=0.01,
               shuffle=False)
    assert opt.t == 4
    assert ha == hb
    assert_bitwise_equal(blocks.of(a), blocks.of(b))


def test_loss_decreases_on_easy_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 200))
    y = (X[0] + X[1] > 0).astype(int)
    net = mc.MLP([2, 8, 2], activation="tanh", output="softmax", seed=0)
    hist = net.fit(X, y, "cross_entropy", epochs=40, batch_size=20, lr=0.5, seed=0)
    assert hist[-1] < 0.5 * hist[0]
    assert hist[-1] < 0.15
    assert np.mean(net.predict(X) == y) >= 0.95


def test_shuffle_reproducible_and_leaves_global_state_alone(problem, blocks, make_net):
    X, Y = problem
    np.random.seed(12345)
    state = np.random.get_state()
    runs = []
    for seed in (5, 5, 6):
        net = make_net()
        h = net.fit(X, Y, "mse", epochs=3, batch_size=5, lr=0.1, shuffle=True, seed=seed)
        runs.append((h, blocks.of(net)))
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1])
    assert after[2:] == state[2:]
    assert runs[0][0] == runs[1][0]
    assert_bitwise_equal(runs[0][1], runs[1][1])
    assert blocks.differ(runs[0][1], runs[2][1])
    # shuffling really changes the order (vs. no shuffle)
    net = make_net()
    net.fit(X, Y, "mse", epochs=3, batch_size=5, lr=0.1, shuffle=False)
    assert blocks.differ(runs[0][1], blocks.of(net))


def test_shuffle_with_generator_seed(problem, blocks, make_net):
    X, Y = problem
    a, b = make_net(), make_net()
    a.fit(X, Y, "mse", epochs=2, batch_size=5, seed=np.random.default_rng(9))
    b.fit(X, Y, "mse", epochs=2, batch_size=5, seed=9)
    assert_bitwise_equal(blocks.of(a), blocks.of(b))


def test_shuffle_with_labels(blocks, make_net):
    # 1-d integer labels are shuffled together with the columns of X.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 12))
    y = rng.integers(0, 3, 12)
    onehot = np.eye(3)[y].T
    a = make_net(output="softmax")
    b = make_net(output="softmax")
    ha = a.fit(X, y, "cross_entropy", epochs=3, batch_size=5, seed=1, lr=0.1)
    hb = b.fit(X, onehot, "cross_entropy", epochs=3, batch_size=5, seed=1, lr=0.1)
    np.testing.assert_allclose(ha, hb, rtol=1e-13)
    for p, q in zip(blocks.of(a), blocks.of(b)):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


def test_callback_called_and_can_stop(problem, blocks, make_net):
    X, Y = problem
    calls = []

    def record(epoch, loss):
        calls.append((epoch, loss))

    hist = make_net().fit(X, Y, "mse", epochs=5, batch_size=4, callback=record)
    assert [c[0] for c in calls] == [0, 1, 2, 3, 4]
    assert [c[1] for c in calls] == hist

    def stop_after_third(epoch, loss):
        return epoch == 2

    net = make_net()
    hist = net.fit(X, Y, "mse", epochs=10, batch_size=None, shuffle=False, callback=stop_after_third)
    assert len(hist) == 3
    ref = make_net()
    ref.fit(X, Y, "mse", epochs=3, batch_size=None, shuffle=False)
    assert_bitwise_equal(blocks.of(net), blocks.of(ref))


def test_progress_prints_to_stderr(problem, capsys, make_net):
    X, Y = problem
    make_net().fit(X, Y, "mse", epochs=2, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "epoch 1/2" in captured.err and "epoch 2/2" in captured.err


def test_fit_drives_any_step_over_columns():
    # The loop knows no model: it hands the step the columns of each batch.
    X = np.arange(14.0).reshape(2, 7)
    y = np.arange(7)
    seen = []

    def step(Xb, yb):
        assert np.array_equal(Xb, np.stack([yb, yb + 7]))  # the same columns
        seen.append(yb.copy())
        return float(yb.mean())

    hist = train.fit(step, X, y, epochs=2, batch_size=3, shuffle=False)
    assert [s.tolist() for s in seen] == [[0, 1, 2], [3, 4, 5], [6]] * 2
    assert hist == [3.0, 3.0]  # batch means weighted by batch size
    seen.clear()
    train.fit(step, X, y, epochs=3, batch_size=3, shuffle=True, seed=4)
    epochs = [np.concatenate(seen[i : i + 3]) for i in (0, 3, 6)]
    assert all(sorted(e.tolist()) == list(range(7)) for e in epochs)
    assert not all(np.array_equal(e, np.arange(7)) for e in epochs)


def test_fit_refuses_a_step_that_is_not_callable():
    with pytest.raises(ValueError, match="^step:"):
        train.fit(None, np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="^Y:"):
        train.fit(lambda Xb, Yb: 0.0, np.ones((2, 3)), np.ones(4))

# -- the fused update -------------------------------------------------------------------

FUSE_OPTS = [
    ("sgd", lambda: mc.SGD(lr=0.05)),
    ("nesterov", lambda: mc.SGD(lr=0.05, momentum=0.9, nesterov=True)),
    ("momentum", lambda: mc.SGD(lr=0.05, momentum=0.9)),
    ("adam", lambda: mc.Adam(lr=0.01)),
]


@pytest.mark.parametrize("strategy", [None, mc.Sqrt(), mc.Revolve(1)], ids=["storeall", "sqrt", "revolve1"])
@pytest.mark.parametrize("name,make", FUSE_OPTS, ids=[o[0] for o in FUSE_OPTS])
def test_fuse_update_bitwise_equal(name, make, strategy, blocks):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((5, 23))
    y = rng.integers(0, 3, 23)
    sizes = [5, 7, 7, 7, 7, 3]  # repeated shapes: fused mode shares buffers
    a = mc.MLP(sizes, activation="tanh", output="softmax", seed=2)
    b = mc.MLP(sizes, activation="tanh", output="softmax", seed=2)
    ha = a.fit(X, y, "cross_entropy", epochs=3, batch_size=8, optimizer=make(), seed=0,
               strategy=strategy, fuse_update=False)
    hb = b.fit(X, y, "cross_entropy", epochs=3, batch_size=8, optimizer=make(), seed=0,
               strategy=strategy, fuse_update=True)
    assert ha == hb
    assert_bitwise_equal(blocks.of(a), blocks.of(b))
    assert blocks.differ(blocks.of(a), blocks.of(mc.MLP(sizes, activation="tanh", output="softmax", seed=2)))


@pytest.mark.parametrize("fuse", [False, True])
def test_every_strategy_trains_to_identical_weights(fuse, blocks):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((3, 30))
    Y = rng.standard_normal((2, 30))
    sizes = [3] + [6] * 8 + [2]
    results = []
    for strategy in (None, mc.StoreAll(), mc.Sqrt(), mc.Segments(3), mc.Segments(1), mc.Segments(20),
                     mc.Revolve(1), mc.Revolve(0)):
        net = mc.MLP(sizes, activation="sigmoid", seed=4)
        h = net.fit(X, Y, "mse", epochs=3, batch_size=7, optimizer="adam", lr=0.01, seed=1,
                    strategy=strategy, fuse_update=fuse)
        results.append((h, blocks.of(net)))
    for h, params in results[1:]:
        assert h == results[0][0]
        assert_bitwise_equal(params, results[0][1])


def test_fused_buffers_are_shared_per_shape():
    net = mc.MLP([5, 7, 7, 7, 3], seed=0)
    dW, db = train.grad_buffers(net.weights, net.biases, shared=True)
    assert dW[1] is dW[2] and db[1] is db[2] and dW[0] is not dW[1] and dW[2] is not dW[3]
    assert [a.shape for a in dW + db] == [a.shape for a in net.weights + net.biases]
    dW, db = train.grad_buffers(net.weights, net.biases)
    assert len({id(a) for a in dW + db}) == 2 * net.n_layers

# -- L-BFGS ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fit_lbfgs(problem, dtype, blocks, make_net):
    X, Y = problem
    net = make_net(dtype=dtype)
    before, _ = net.loss_and_grad(X, Y, "mse")
    result = net.fit_lbfgs(X, Y, "mse", maxiter=50)
    after, _ = net.loss_and_grad(X, Y, "mse")
    assert isinstance(result, OptimizeResult)
    assert 0 < result.nit <= 50
    assert after < 0.5 * before
    assert after == pytest.approx(result.fun, rel=1e-5 if dtype == "float32" else 1e-12)
    assert [W.shape for W in net.weights] == [(6, 4), (5, 6), (3, 5)]
    assert [b.shape for b in net.biases] == [(6, 1), (5, 1), (3, 1)]
    blocks = blocks.of(net)
    assert all(p.dtype == np.dtype(dtype) for p in blocks)
    assert all(p.flags.c_contiguous and p.flags.writeable for p in blocks)
    # separate arrays, not views into one flat vector
    for i in range(len(blocks)):
        for j in range(i + 1, len(blocks)):
            assert not np.shares_memory(blocks[i], blocks[j])
    assert all(p.base is None for p in blocks)
    # result.x holds the final parameters
    flat = np.concatenate([p.ravel() for p in blocks])
    np.testing.assert_allclose(flat, result.x.astype(dtype), rtol=0, atol=0)


def test_fit_lbfgs_then_fit_still_works(problem, blocks, make_net):
    X, Y = problem
    net = make_net()
    net.fit_lbfgs(X, Y, "mse", maxiter=5)
    w = [p.copy() for p in blocks.of(net)]
    net.fit(X, Y, "mse", epochs=1, batch_size=None, shuffle=False)
    assert blocks.differ(w, blocks.of(net))


def test_fit_lbfgs_over_plain_blocks():
    # The bridge knows no model: a quadratic over two blocks, solved in place.
    target = [np.full((2, 3), 1.5), np.full((2, 1), -2.0)]
    W, b = np.zeros((2, 3)), np.zeros((2, 1))

    def loss_at(weights, biases, dW, db):
        dW[0][...] = weights[0] - target[0]
        db[0][...] = biases[0] - target[1]
        return 0.5 * (np.sum(dW[0] ** 2) + np.sum(db[0] ** 2))

    result = train.fit_lbfgs(loss_at, [W], [b], maxiter=20)
    assert result.fun < 1e-20
    np.testing.assert_allclose(W, target[0], rtol=1e-12)
    np.testing.assert_allclose(b, target[1], rtol=1e-12)

# -- argument errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"epochs": -1}, "epochs"),
        ({"epochs": 2.0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"callback": 3}, "callback"),
    ],
)
def test_bad_fit_arguments(net, data, kwargs, name):
    X, labels = data
    with pytest.raises(ValueError, match=rf"^{name}:"):
        net.fit(X, labels, "cross_entropy", **kwargs)


@pytest.mark.parametrize("maxiter", [0, -3, 1.5])
def test_bad_maxiter(net, data, maxiter):
    X, labels = data
    with pytest.raises(ValueError, match=r"^maxiter:"):
        net.fit_lbfgs(X, labels, "cross_entropy", maxiter=maxiter)


def test_fit_flags_must_be_booleans():
    net = mc.MLP([2, 3, 1], seed=0)
    X, Y = np.ones((2, 4)), np.ones((1, 4))
    with pytest.raises(ValueError, match="^shuffle:"):
        net.fit(X, Y, epochs=1, shuffle="no")
    with pytest.raises(ValueError, match="^fuse_update:"):
        net.fit(X, Y, epochs=1, fuse_update="yes")


@pytest.mark.parametrize("tol", ["x", -1, 0, float("nan"), float("inf"), True, [1e-6]])
def test_bad_lbfgs_tol(net, data, tol):
    # "x" used to reach SciPy (a TypeError); -1 and NaN were accepted
    X, labels = data
    before = [W.copy() for W in net.weights]
    with pytest.raises(ValueError, match=r"^tol: expected None or a finite number > 0, got"):
        net.fit_lbfgs(X, labels, "cross_entropy", maxiter=2, tol=tol)
    with pytest.raises(ValueError, match=r"^tol:"):
        train.fit_lbfgs(lambda *a: 0.0, net.weights, net.biases, tol=tol)
    assert_bitwise_equal(before, net.weights)
    assert net.fit_lbfgs(X, labels, "cross_entropy", maxiter=2, tol=1e-3).nit <= 2


def test_fit_lbfgs_keeps_the_last_accepted_iterate_when_an_evaluation_raises():
    from mlpckpt.training import _loop as train

    W, b = np.zeros((2, 3)), np.zeros((2, 1))
    seen = []

    def loss_and_grad(weights, biases, dW, db):
        w, c = weights[0], biases[0]
        if np.abs(w).max() > 4 or np.abs(c).max() > 4:
            raise ValueError("loss is inf: overflow in the computation")
        seen.append((w.copy(), c.copy()))
        dW[0][...] = 2 * (w - 10)
        db[0][...] = 2 * (c - 10)
        return float(np.sum((w - 10) ** 2) + np.sum((c - 10) ** 2))

    with pytest.raises(ValueError, match="overflow"):
        train.fit_lbfgs(loss_and_grad, [W], [b], maxiter=50)
    assert np.abs(W).max() <= 4 and np.abs(b).max() <= 4  # not the failing trial point
    assert any(np.array_equal(W, w) and np.array_equal(b, c) for w, c in seen)
