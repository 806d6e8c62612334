"""Optimisers against hand-written PyTorch update rules, the fit loop,
L-BFGS, and predict / predict_proba."""

import numpy as np
import pytest
from scipy.optimize import OptimizeResult

import mlpckpt as mc


# -- reference update rules (torch.optim.SGD / torch.optim.Adam, written out) ---------


class RefSGD:
    """torch.optim.SGD with dampening=0, weight_decay=0."""

    def __init__(self, lr, momentum=0.0, nesterov=False):
        self.lr, self.mu, self.nesterov = lr, momentum, nesterov
        self.buf = {}

    def step(self, params, grads):
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            d = g
            if self.mu != 0:
                if i not in self.buf:
                    self.buf[i] = g.copy()  # torch.clone(d_p).detach()
                else:
                    self.buf[i] = self.mu * self.buf[i] + g
                d = g + self.mu * self.buf[i] if self.nesterov else self.buf[i]
            out.append(p - self.lr * d)
        return out


class RefAdam:
    """torch.optim.Adam with amsgrad=False, weight_decay=0."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.t = 0
        self.m, self.v = {}, {}

    def step(self, params, grads):
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            m = self.m.get(i, np.zeros_like(p))
            v = self.v.get(i, np.zeros_like(p))
            m = self.b1 * m + (1 - self.b1) * g
            v = self.b2 * v + (1 - self.b2) * g * g
            self.m[i], self.v[i] = m, v
            c1 = 1 - self.b1**self.t
            c2 = 1 - self.b2**self.t
            step_size = self.lr / c1
            denom = np.sqrt(v) / np.sqrt(c2) + self.eps
            out.append(p - step_size * (m / denom))
        return out


def _blocks(net):
    return [x for pair in zip(net.weights, net.biases) for x in pair]


def _set_blocks(net, blocks):
    for k in range(net.n_layers):
        net.weights[k][...] = blocks[2 * k]
        net.biases[k][...] = blocks[2 * k + 1]


def _grad_blocks(g):
    return [x for pair in zip(g.weights, g.biases) for x in pair]


def _same(a_list, b_list):
    return len(a_list) == len(b_list) and all(np.array_equal(a, b) for a, b in zip(a_list, b_list))


@pytest.fixture
def problem():
    rng = np.random.default_rng(1234)
    X = rng.standard_normal((4, 12))
    Y = rng.standard_normal((3, 12))
    return X, Y


def _net(seed=0, sizes=(4, 6, 5, 3), **kw):
    kw.setdefault("activation", "tanh")
    return mc.MLP(list(sizes), seed=seed, **kw)


OPTIMIZERS = [
    ("sgd", lambda: mc.SGD(lr=0.05), lambda: RefSGD(0.05)),
    ("momentum", lambda: mc.SGD(lr=0.05, momentum=0.9), lambda: RefSGD(0.05, 0.9)),
    ("nesterov", lambda: mc.SGD(lr=0.05, momentum=0.8, nesterov=True), lambda: RefSGD(0.05, 0.8, True)),
    ("adam", lambda: mc.Adam(lr=0.01), lambda: RefAdam(0.01)),
    ("adam_betas", lambda: mc.Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-6),
     lambda: RefAdam(0.02, (0.8, 0.99), 1e-6)),
]


@pytest.mark.parametrize("name,make,make_ref", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_matches_torch_rules_on_fixed_gradients(name, make, make_ref):
    rng = np.random.default_rng(7)
    params = [rng.standard_normal((3, 4)), rng.standard_normal((3, 1)), rng.standard_normal((2, 3))]
    ours = [p.copy() for p in params]
    ref = [p.copy() for p in params]
    opt, ref_opt = make(), make_ref()
    for step in range(3):
        grads = [rng.standard_normal(p.shape) for p in params]
        opt.start_step()
        for i, (p, g) in enumerate(zip(ours, grads)):
            opt.update(i, p, g)
        ref = ref_opt.step(ref, grads)
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-16)
    # and the parameters really moved
    assert all(not np.allclose(a, p) for a, p in zip(ours, params))


@pytest.mark.parametrize("name,make,make_ref", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_fit_matches_reference_loop(problem, name, make, make_ref):
    # Three full-batch epochs of fit == three loss_and_grad + reference updates.
    X, Y = problem
    net, ref_net = _net(), _net()
    hist = net.fit(X, Y, "mse", epochs=3, batch_size=None, optimizer=make(), shuffle=False)
    ref_opt, losses = make_ref(), []
    for _ in range(3):
        loss, g = ref_net.loss_and_grad(X, Y, "mse")
        losses.append(loss)
        _set_blocks(ref_net, ref_opt.step(_blocks(ref_net), _grad_blocks(g)))
    np.testing.assert_allclose(hist, losses, rtol=1e-14)
    for a, b in zip(_blocks(net), _blocks(ref_net)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_default_optimizer_is_sgd_lr_001(problem):
    X, Y = problem
    net, ref = _net(), _net()
    _, g = ref.loss_and_grad(X, Y, "mse")
    net.fit(X, Y, "mse", epochs=1, batch_size=None, shuffle=False)
    expect = [p - 0.01 * d for p, d in zip(_blocks(ref), _grad_blocks(g))]
    assert _same(_blocks(net), expect)
    # and not some other rate
    other = [p - 0.02 * d for p, d in zip(_blocks(ref), _grad_blocks(g))]
    assert not _same(_blocks(net), other)


def test_named_sgd_with_lr(problem):
    X, Y = problem
    net, ref = _net(), _net()
    _, g = ref.loss_and_grad(X, Y, "mse")
    net.fit(X, Y, "mse", epochs=1, batch_size=None, shuffle=False, optimizer="sgd", lr=0.3)
    assert _same(_blocks(net), [p - 0.3 * d for p, d in zip(_blocks(ref), _grad_blocks(g))])


def test_default_adam_lr_is_1e_3(problem):
    X, Y = problem
    a, b = _net(), _net()
    a.fit(X, Y, "mse", epochs=3, batch_size=5, shuffle=False, optimizer="adam")
    b.fit(X, Y, "mse", epochs=3, batch_size=5, shuffle=False, optimizer=mc.Adam(lr=1e-3))
    assert _same(_blocks(a), _blocks(b))
    # the first Adam step moves every (non-zero-gradient) entry by about lr
    c, d = _net(), _net()
    c.fit(X, Y, "mse", epochs=1, batch_size=None, shuffle=False, optimizer="adam")
    step = np.abs(c.weights[0] - d.weights[0])
    np.testing.assert_allclose(step, 1e-3, rtol=1e-4)


def test_momentum_name_is_sgd_momentum_09(problem):
    X, Y = problem
    a, b = _net(), _net()
    a.fit(X, Y, "mse", epochs=3, batch_size=4, shuffle=False, optimizer="momentum", lr=0.05)
    b.fit(X, Y, "mse", epochs=3, batch_size=4, shuffle=False,
          optimizer=mc.SGD(lr=0.05, momentum=0.9))
    assert _same(_blocks(a), _blocks(b))
    c = _net()
    c.fit(X, Y, "mse", epochs=3, batch_size=4, shuffle=False, optimizer="sgd", lr=0.05)
    assert not _same(_blocks(a), _blocks(c))


def test_fit_returns_one_mean_loss_per_epoch(problem):
    X, Y = problem
    net = _net()
    hist = net.fit(X, Y, "mse", epochs=7, batch_size=5, lr=0.05, seed=0)
    assert isinstance(hist, list) and len(hist) == 7
    assert all(isinstance(h, float) and np.isfinite(h) for h in hist)
    assert net.fit(X, Y, "mse", epochs=0) == []


def test_epoch_loss_is_sample_weighted_mean_with_partial_last_batch():
    # 10 samples, batch 4: batches of 4, 4, 2; the last one is used.
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 10))
    Y = rng.standard_normal((3, 10))
    net, ref = _net(), _net()
    hist = net.fit(X, Y, "mse", epochs=1, batch_size=4, shuffle=False, lr=0.1)
    total = 0.0
    for sl in (slice(0, 4), slice(4, 8), slice(8, 10)):
        loss, g = ref.loss_and_grad(X[:, sl], Y[:, sl], "mse")
        total += loss * (sl.stop - sl.start)
        _set_blocks(ref, [p - 0.1 * d for p, d in zip(_blocks(ref), _grad_blocks(g))])
    assert hist[0] == pytest.approx(total / 10, rel=1e-15)
    assert _same(_blocks(net), _blocks(ref))
    # an Adam object counts the steps: 3 per epoch
    opt = mc.Adam()
    _net().fit(X, Y, "mse", epochs=2, batch_size=4, optimizer=opt)
    assert opt.t == 6


def test_batch_size_none_is_full_batch(problem):
    X, Y = problem
    a, b = _net(), _net()
    opt = mc.Adam(lr=0.01)
    ha = a.fit(X, Y, "mse", epochs=4, batch_size=None, optimizer=opt, shuffle=False)
    hb = b.fit(X, Y, "mse", epochs=4, batch_size=X.shape[1], optimizer="adam", lr=0.01,
               shuffle=False)
    assert opt.t == 4
    assert ha == hb
    assert _same(_blocks(a), _blocks(b))


def test_loss_decreases_on_easy_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 200))
    y = (X[0] + X[1] > 0).astype(int)
    net = mc.MLP([2, 8, 2], activation="tanh", output="softmax", seed=0)
    hist = net.fit(X, y, "cross_entropy", epochs=40, batch_size=20, lr=0.5, seed=0)
    assert hist[-1] < 0.5 * hist[0]
    assert hist[-1] < 0.15
    assert np.mean(net.predict(X) == y) >= 0.95


def test_shuffle_reproducible_and_leaves_global_state_alone(problem):
    X, Y = problem
    np.random.seed(12345)
    state = np.random.get_state()
    runs = []
    for seed in (5, 5, 6):
        net = _net()
        h = net.fit(X, Y, "mse", epochs=3, batch_size=5, lr=0.1, shuffle=True, seed=seed)
        runs.append((h, _blocks(net)))
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1])
    assert after[2:] == state[2:]
    assert runs[0][0] == runs[1][0] and _same(runs[0][1], runs[1][1])
    assert not _same(runs[0][1], runs[2][1])
    # shuffling really changes the order (vs. no shuffle)
    net = _net()
    net.fit(X, Y, "mse", epochs=3, batch_size=5, lr=0.1, shuffle=False)
    assert not _same(runs[0][1], _blocks(net))


def test_shuffle_with_generator_seed(problem):
    X, Y = problem
    a, b = _net(), _net()
    a.fit(X, Y, "mse", epochs=2, batch_size=5, seed=np.random.default_rng(9))
    b.fit(X, Y, "mse", epochs=2, batch_size=5, seed=9)
    assert _same(_blocks(a), _blocks(b))


def test_shuffle_with_labels():
    # 1-d integer labels are shuffled together with the columns of X.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 12))
    y = rng.integers(0, 3, 12)
    onehot = np.eye(3)[y].T
    a = _net(output="softmax")
    b = _net(output="softmax")
    ha = a.fit(X, y, "cross_entropy", epochs=3, batch_size=5, seed=1, lr=0.1)
    hb = b.fit(X, onehot, "cross_entropy", epochs=3, batch_size=5, seed=1, lr=0.1)
    np.testing.assert_allclose(ha, hb, rtol=1e-13)
    for p, q in zip(_blocks(a), _blocks(b)):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


def test_callback_called_and_can_stop(problem):
    X, Y = problem
    calls = []

    def record(epoch, loss):
        calls.append((epoch, loss))

    hist = _net().fit(X, Y, "mse", epochs=5, batch_size=4, callback=record)
    assert [c[0] for c in calls] == [0, 1, 2, 3, 4]
    assert [c[1] for c in calls] == hist

    def stop_after_third(epoch, loss):
        return epoch == 2

    net = _net()
    hist = net.fit(X, Y, "mse", epochs=10, batch_size=None, shuffle=False, callback=stop_after_third)
    assert len(hist) == 3
    ref = _net()
    ref.fit(X, Y, "mse", epochs=3, batch_size=None, shuffle=False)
    assert _same(_blocks(net), _blocks(ref))


def test_progress_prints_to_stderr(problem, capsys):
    X, Y = problem
    _net().fit(X, Y, "mse", epochs=2, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "epoch 1/2" in captured.err and "epoch 2/2" in captured.err


FUSE_OPTS = [
    ("sgd", lambda: mc.SGD(lr=0.05)),
    ("nesterov", lambda: mc.SGD(lr=0.05, momentum=0.9, nesterov=True)),
    ("momentum", lambda: mc.SGD(lr=0.05, momentum=0.9)),
    ("adam", lambda: mc.Adam(lr=0.01)),
]


@pytest.mark.parametrize("strategy", [None, mc.Sqrt()], ids=["storeall", "sqrt"])
@pytest.mark.parametrize("name,make", FUSE_OPTS, ids=[o[0] for o in FUSE_OPTS])
def test_fuse_update_bitwise_equal(name, make, strategy):
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
    assert _same(_blocks(a), _blocks(b))
    assert not _same(_blocks(a), _blocks(mc.MLP(sizes, activation="tanh", output="softmax", seed=2)))


@pytest.mark.parametrize("fuse", [False, True])
def test_every_strategy_trains_to_identical_weights(fuse):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((3, 30))
    Y = rng.standard_normal((2, 30))
    sizes = [3] + [6] * 8 + [2]
    results = []
    for strategy in (None, mc.StoreAll(), mc.Sqrt(), mc.Segments(3), mc.Segments(1), mc.Segments(20)):
        net = mc.MLP(sizes, activation="sigmoid", seed=4)
        h = net.fit(X, Y, "mse", epochs=3, batch_size=7, optimizer="adam", lr=0.01, seed=1,
                    strategy=strategy, fuse_update=fuse)
        results.append((h, _blocks(net)))
    for h, blocks in results[1:]:
        assert h == results[0][0]
        assert _same(blocks, results[0][1])


# -- L-BFGS ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fit_lbfgs(problem, dtype):
    X, Y = problem
    net = _net(dtype=dtype)
    before, _ = net.loss_and_grad(X, Y, "mse")
    result = net.fit_lbfgs(X, Y, "mse", maxiter=50)
    after, _ = net.loss_and_grad(X, Y, "mse")
    assert isinstance(result, OptimizeResult)
    assert 0 < result.nit <= 50
    assert after < 0.5 * before
    assert after == pytest.approx(result.fun, rel=1e-5 if dtype == "float32" else 1e-12)
    assert [W.shape for W in net.weights] == [(6, 4), (5, 6), (3, 5)]
    assert [b.shape for b in net.biases] == [(6, 1), (5, 1), (3, 1)]
    blocks = _blocks(net)
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


def test_fit_lbfgs_then_fit_still_works(problem):
    X, Y = problem
    net = _net()
    net.fit_lbfgs(X, Y, "mse", maxiter=5)
    w = [p.copy() for p in _blocks(net)]
    net.fit(X, Y, "mse", epochs=1, batch_size=None, shuffle=False)
    assert not _same(w, _blocks(net))


# -- predict / predict_proba ------------------------------------------------------------


def test_predict_softmax():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 9))
    net = mc.MLP([4, 5, 3], output="softmax", seed=0)
    proba = net.predict_proba(X)
    labels = net.predict(X)
    assert proba.shape == (3, 9)
    np.testing.assert_allclose(proba.sum(axis=0), 1.0, rtol=1e-14)
    assert np.all(proba > 0)
    assert labels.shape == (9,) and labels.dtype.kind == "i"
    assert np.array_equal(labels, np.argmax(proba, axis=0))
    assert np.array_equal(proba, net.forward(X))


def test_predict_sigmoid():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 9))
    net = mc.MLP([4, 5, 2], output="sigmoid", seed=0)
    net.biases[-1][:] = [[3.0], [-3.0]]  # make both classes appear
    net.weights[-1] *= 10
    proba = net.predict_proba(X)
    pred = net.predict(X)
    assert proba.shape == pred.shape == (2, 9)
    assert np.all((proba > 0) & (proba < 1))
    assert set(np.unique(pred)) <= {0, 1}
    assert np.array_equal(pred, (proba > 0.5).astype(int))
    assert pred.sum() > 0 and pred.sum() < pred.size


def test_predict_identity():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 9))
    net = mc.MLP([4, 5, 2], output="identity", seed=0)
    out = net.predict(X)
    assert out.shape == (2, 9)
    assert np.array_equal(out, net.forward(X))
    assert out.min() < 0  # not squashed
    with pytest.raises(ValueError, match=r"^output:"):
        net.predict_proba(X)
