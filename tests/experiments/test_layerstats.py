"""mc.LayerStats (mlpckpt/experiments/_layerstats.py): per-layer statistics recorded by the
executor. Bitwise neutral for every strategy, every figure against an
independent float64 forward and backward pass written here, first forward
evaluations only (a recomputation never counts twice), one row per epoch in
fit, and no activation-sized memory beyond the run's own."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from mlpckpt.experiments import _layerstats as layerstats
from mlpckpt.bench.measure import traced_peak
from mlpckpt.testing import assert_bitwise_equal, make_data


def _strategies(n):
    sqrt_actions = mc.plan(mc.MLP([2] * (n + 1)), 1, mc.Sqrt()).actions
    return [mc.StoreAll(), mc.Segments(2), mc.Sqrt(), mc.Revolve(1), mc.Revolve(3), mc.Budget(10**7),
            mc.Actions(sqrt_actions), None]


_PHI = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "identity": lambda z: z, "softplus": lambda z: np.logaddexp(0, z),
        "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z)}
_DPHI = {"tanh": lambda z, a: 1 - a * a, "relu": lambda z, a: (z > 0) * 1.0,
         "sigmoid": lambda z, a: a * (1 - a), "identity": lambda z, a: np.ones_like(z),
         "softplus": lambda z, a: 1 / (1 + np.exp(-z)), "leaky_relu": lambda z, a: np.where(z > 0, 1.0, 0.01)}


def _reference(net, X, Y, loss):
    """Per-layer figures by a plain float64 forward and backward pass (independent of the executor)."""
    W = [w.astype(np.float64) for w in net.weights]
    b = [v.astype(np.float64) for v in net.biases]
    n, a, zs, acts = len(W), X.astype(np.float64), [], []
    for k in range(n):
        z = W[k] @ a + b[k]
        zs.append(z)
        if k + 1 < n:
            a = _PHI[net.activations[k]](z)
        elif net.output == "softmax":
            e = np.exp(z - z.max(axis=0))
            a = e / e.sum(axis=0)
        elif net.output == "sigmoid":
            a = 1 / (1 + np.exp(-z))
        else:
            a = z
        acts.append(a)
    N = a.size
    if loss == "mse":
        assert net.output == "identity"
        dz = 2 * (a - Y) / N
    elif loss == "bce":
        dz = (a - Y) / N
    else:
        onehot = np.zeros_like(a)
        onehot[Y, np.arange(a.shape[1])] = 1.0
        dz = (a - onehot) / a.shape[1]
    ref = {f: np.zeros(n) for f in layerstats.FIELDS}
    for k in range(n - 1, -1, -1):
        if k + 1 < n:  # dz holds dL/da[k+1] here
            ref["da_norm"][k] = np.linalg.norm(dz)
            dz = dz * _DPHI[net.activations[k]](zs[k], acts[k])
        else:
            ref["da_norm"][k] = np.linalg.norm(dz)  # the last layer: dL/dz[n]
        a_prev = X if k == 0 else acts[k - 1]
        ref["dW_norm"][k] = np.linalg.norm(dz @ a_prev.T)
        ref["db_norm"][k] = np.linalg.norm(dz.sum(axis=1))
        dz = W[k].T @ dz
    for k in range(n):
        ref["z_mean"][k], ref["z_var"][k] = zs[k].mean(), zs[k].var()
        ref["a_mean"][k], ref["a_var"][k] = acts[k].mean(), acts[k].var()
    return ref


CASES = [  # sizes, activation, output, loss
    ((4, 8, 8, 8, 3), "tanh", "identity", "mse"),
    ((5, 6, 7, 6, 5, 4), "relu", "softmax", "cross_entropy"),
    ((3, 9, 2, 9, 2), "sigmoid", "sigmoid", "bce"),
    ((6,) + (8,) * 12 + (2,), "leaky_relu", "identity", "mse"),
    ((2, 5, 5, 1), "softplus", "sigmoid", "bce"),
]


@pytest.mark.parametrize("sizes,activation,output,loss", CASES)
def test_figures_match_an_independent_pass(sizes, activation, output, loss):
    net = mc.MLP(sizes, activation=activation, output=output, init=mc.Gaussian(1.7, 0.1), seed=1)
    X, Y = make_data(sizes, 33, loss, seed=2)
    stats = mc.LayerStats()
    net.loss_and_grad(X, Y, loss=loss, strategy=mc.Sqrt(), record=stats)
    ref = _reference(net, X, Y, loss)
    for f in layerstats.FIELDS:
        got = getattr(stats, f)
        assert got.shape == (net.n_layers,) and got.dtype == np.float64, f
        np.testing.assert_allclose(got, ref[f], rtol=1e-10, atol=1e-14, err_msg=f)


@pytest.mark.parametrize("sizes,activation,output,loss", CASES)
def test_bitwise_neutral_and_the_same_figures_for_every_strategy(sizes, activation, output, loss):
    net = mc.MLP(sizes, activation=activation, output=output, seed=3)
    X, Y = make_data(sizes, 17, loss, seed=4)
    base_loss, base = net.loss_and_grad(X, Y, loss=loss, strategy=mc.StoreAll())
    first = None
    for strategy in _strategies(net.n_layers):
        stats = mc.LayerStats()
        value, grads = net.loss_and_grad(X, Y, loss=loss, strategy=strategy, record=stats)
        assert value == base_loss, strategy
        assert_bitwise_equal(grads.weights + grads.biases, base.weights + base.biases, err_msg=repr(strategy))
        rows = np.array([getattr(stats, f) for f in layerstats.FIELDS])
        assert np.all(np.isfinite(rows))
        if first is None:
            first = rows
        assert np.array_equal(rows, first), strategy  # figures of the first pass, whatever is recomputed


def test_recomputation_is_never_counted_twice(monkeypatch):
    calls = []
    original = layerstats.Recorder.z
    monkeypatch.setattr(layerstats.Recorder, "z", lambda self, k, M, b: (calls.append(k), original(self, k, M, b)))
    net = mc.MLP([4] * 21, seed=0)
    X, Y = make_data(net.sizes, 8, "mse")
    sched = mc.plan(net, 8, mc.Revolve(2))
    assert sched.forward_evals > 2 * net.n_layers  # it does recompute
    net.loss_and_grad(X, Y, strategy=mc.Revolve(2), record=mc.LayerStats())
    assert calls == list(range(net.n_layers))


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(1, 9), width=st.integers(1, 7), batch=st.integers(1, 9),
       dtype=st.sampled_from(["float64", "float32"]), act=st.sampled_from(sorted(_PHI)),
       which=st.integers(0, 7), out=st.booleans(), ws=st.booleans(), fortran=st.booleans(),
       seed=st.integers(0, 2**16))
def test_hypothesis_neutral_over_sizes_dtypes_layouts(depth, width, batch, dtype, act, which, out, ws,
                                                      fortran, seed):
    sizes = [width + 1] + [width] * depth + [2]
    net = mc.MLP(sizes, activation=act, dtype=dtype, init=mc.Gaussian(1.3, 0.2), seed=seed)
    X, Y = make_data(sizes, batch, "mse", seed=seed, dtype=dtype)
    if fortran:
        X = np.asfortranarray(X)
    strategy = _strategies(net.n_layers)[which]
    kw = dict(strategy=strategy, workspace=mc.Workspace() if ws else None)
    v0, g0 = net.loss_and_grad(X, Y, **kw, out=net.zeros_like_grads() if out else None)
    stats = mc.LayerStats()
    v1, g1 = net.loss_and_grad(X, Y, **kw, out=net.zeros_like_grads() if out else None, record=stats)
    assert v0 == v1
    assert_bitwise_equal(g0.weights + g0.biases, g1.weights + g1.biases)
    ref = _reference(net, X, Y, "mse")
    tol = 1e-9 if dtype == "float64" else 2e-3
    for f in layerstats.FIELDS:
        np.testing.assert_allclose(getattr(stats, f), ref[f], rtol=tol, atol=tol * 1e-2, err_msg=f)


def test_fit_keeps_one_row_per_epoch_from_its_last_step():
    sizes = (3, 6, 6, 2)
    X, Y = make_data(sizes, 20, "mse", seed=5)
    net = mc.MLP(sizes, seed=6)
    twin = mc.MLP(sizes, seed=6)
    stats = mc.LayerStats()
    net.fit(X, Y, epochs=3, batch_size=8, shuffle=False, optimizer="sgd", lr=0.1, record=stats)
    assert stats.z_var.shape == (3, net.n_layers) and stats.dW_norm.shape == (3, 3)
    for epoch in range(3):  # replay: two steps of 8, then the last batch of 4 is the recorded one
        twin.fit(X[:, :16], Y[:, :16], epochs=1, batch_size=8, shuffle=False, optimizer="sgd", lr=0.1)
        one = mc.LayerStats()
        twin.loss_and_grad(X[:, 16:], Y[:, 16:], record=one)
        twin.fit(X[:, 16:], Y[:, 16:], epochs=1, batch_size=8, shuffle=False, optimizer="sgd", lr=0.1)
        for f in layerstats.FIELDS:
            assert np.array_equal(getattr(stats, f)[epoch], getattr(one, f)), (epoch, f)
    assert_bitwise_equal(net.weights, twin.weights)


@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_is_bitwise_the_same_with_a_recorder(fuse, optimizer):
    sizes = (4,) + (5,) * 6 + (3,)
    X, Y = make_data(sizes, 30, "cross_entropy", seed=7)
    a = mc.MLP(sizes, output="softmax", seed=8)
    b = mc.MLP(sizes, output="softmax", seed=8)
    kw = dict(loss="cross_entropy", epochs=4, batch_size=None if fuse else 7, optimizer=optimizer,
              strategy=mc.Revolve(2), fuse_update=fuse, seed=3)
    stats = mc.LayerStats()
    assert a.fit(X, Y, **kw) == b.fit(X, Y, **kw, record=stats)
    assert_bitwise_equal(a.weights + a.biases, b.weights + b.biases)
    assert stats.dW_norm.shape == (4, a.n_layers) and np.all(np.isfinite(stats.dW_norm))
    # a new run replaces the rows; loss_and_grad leaves 1-D fields
    b.loss_and_grad(X, Y, loss="cross_entropy", record=stats)
    assert stats.z_mean.shape == (a.n_layers,)


def test_fit_stopped_by_callback_has_rows_for_the_epochs_run():
    sizes = (3, 4, 2)
    X, Y = make_data(sizes, 10, "mse")
    stats = mc.LayerStats()
    mc.MLP(sizes).fit(X, Y, epochs=5, batch_size=4, callback=lambda e, loss: e == 1, record=stats)
    assert stats.a_var.shape == (2, 2)


@pytest.mark.parametrize("strategy", [mc.StoreAll(), mc.Sqrt(), mc.Revolve(3)])
@pytest.mark.parametrize("output,loss", [("identity", "mse"), ("softmax", "cross_entropy")])
def test_no_activation_sized_memory(strategy, output, loss):
    """A deep narrow net: the recorder's own bytes (its row, per-layer flags, a
    bias-sized vector) and nothing that scales with the batch."""
    sizes = [64] * 101 + [10]
    net = mc.MLP(sizes, output=output, seed=0)
    X, Y = make_data(sizes, 1024, loss)
    activation = 64 * 1024 * 8  # 512 KiB
    out = net.zeros_like_grads()
    run = lambda record=None: net.loss_and_grad(X, Y, loss=loss, strategy=strategy, out=out,  # noqa: E731
                                                record=record)
    run(), run(mc.LayerStats())  # schedules compiled, first calls made
    without = traced_peak(run)
    with_stats = traced_peak(lambda: run(mc.LayerStats()))
    # its row and flags, a float64 bias, a chunk copy and NumPy's broadcast buffer over it
    own = 7 * net.n_layers * 8 + net.n_layers * 8 + 64 * 8 + 2 * layerstats.CHUNK * 8 + 4096
    assert with_stats - without <= own < activation / 8, (with_stats, without)


def test_backends_are_neutral_and_agree_with_numpy():
    torch = pytest.importorskip("torch")
    sizes = (4, 7, 7, 7, 3)
    net = mc.MLP(sizes, output="softmax", seed=2)
    X, Y = make_data(sizes, 9, "cross_entropy")
    ref = mc.LayerStats()
    net.loss_and_grad(X, Y, loss="cross_entropy", record=ref)
    for backend in ("torch", "array_api_strict"):
        if backend == "array_api_strict":
            xp = pytest.importorskip("array_api_strict")
            conv = xp.asarray
        else:
            conv = torch.as_tensor
        other = net.to(backend)
        Xb, Yb = conv(X.copy()), conv(Y.copy())
        base_loss, base = other.loss_and_grad(Xb, Yb, loss="cross_entropy", strategy=mc.StoreAll())
        stats = mc.LayerStats()
        value, grads = other.loss_and_grad(Xb, Yb, loss="cross_entropy", strategy=mc.Revolve(1), record=stats)
        assert value == base_loss
        assert_bitwise_equal([np.asarray(g) for g in grads.weights], [np.asarray(r) for r in base.weights])
        for f in layerstats.FIELDS:
            np.testing.assert_allclose(getattr(stats, f), getattr(ref, f), rtol=1e-12, atol=1e-15, err_msg=f)


def test_deep_width_8_net_of_3000_layers():
    net = mc.MLP([8] * 3001, init="orthogonal", seed=0)
    X, Y = make_data(net.sizes, 4, "mse")
    stats = mc.LayerStats()
    net.loss_and_grad(X, Y, strategy=mc.Sqrt(), record=stats)
    assert stats.da_norm.shape == (3000,) and np.all(stats.dW_norm > 0)


def test_bad_record_and_empty_stats_are_refused():
    net = mc.MLP([2, 3, 1])
    X, Y = make_data(net.sizes, 4, "mse")
    for bad in ({}, mc.LayerStats, "stats", [mc.LayerStats()]):
        with pytest.raises(ValueError, match="record: expected an mc.LayerStats or None"):
            net.loss_and_grad(X, Y, record=bad)
        with pytest.raises(ValueError, match="record: expected an mc.LayerStats or None"):
            net.fit(X, Y, epochs=1, record=bad)
    with pytest.raises(ValueError, match="nothing recorded yet"):
        mc.LayerStats().z_mean
    assert repr(mc.LayerStats()) == "LayerStats(empty)"


def test_a_failed_call_leaves_the_last_good_row():
    net = mc.MLP([2, 3, 1])
    X, Y = make_data(net.sizes, 4, "mse")
    stats = mc.LayerStats()
    net.loss_and_grad(X, Y, record=stats)
    before = stats.to_dict()
    net.weights[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="weights\\[0\\]"):
        net.loss_and_grad(X, Y, record=stats)
    assert stats.to_dict() == before


def test_float32_figures_are_summed_in_float64_about_the_mean():
    """Biases of 1000 and tiny weights: E[z^2] - E[z]^2 in float32 would be noise or negative."""
    net = mc.MLP([5, 64, 64, 1], activation="relu", dtype="float32", init=mc.Gaussian(1e-2, 0.0), seed=0)
    for b in net.biases:
        b[...] = 1000.0
    X, Y = make_data(net.sizes, 512, "mse", dtype="float32")
    stats = mc.LayerStats()
    net.loss_and_grad(X, Y, record=stats)
    ref = _reference(net, X, Y, "mse")  # float64 arithmetic on the float32 parameters
    for f in ("z_var", "a_var"):
        assert np.all(getattr(stats, f) >= 0.0), f
        # the float32 forward pass itself rounds z near 1000 to ~6e-5; the moments add nothing to that
        np.testing.assert_allclose(getattr(stats, f)[:2], ref[f][:2], rtol=0.05, err_msg=f)
    np.testing.assert_allclose(stats.z_mean, ref["z_mean"], rtol=1e-6)


def test_a_failed_fit_leaves_the_record_and_a_callback_may_use_it():
    net = mc.MLP([2, 3, 1])
    X, Y = make_data(net.sizes, 8, "mse")
    stats = mc.LayerStats()
    net.loss_and_grad(X, Y, record=stats)
    before = stats.to_dict()
    with pytest.raises(ValueError, match="epochs"):
        net.fit(X, Y, epochs=-1, record=stats)
    assert stats.to_dict() == before
    net.fit(X, Y, epochs=3, batch_size=4, record=stats,
            callback=lambda e, loss: net.loss_and_grad(X, Y, record=stats) and None)
    assert stats.z_var.shape == (3, 2)
    net.fit(X, Y, epochs=0, record=stats)
    assert stats.z_var.shape == (0, 2)
