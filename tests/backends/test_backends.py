"""The core on other array libraries (issue 14): PyTorch on the CPU and the
array API standard's reference namespace, array-api-strict (which proves
that nothing NumPy-only is left in the core). On each: every strategy
bitwise equal to StoreAll, float64 results within 1e-12 * max|g| of NumPy's
per block, the same initial weights per seed, exact round trips through
``to``, ``save`` and ``load``, gradient checks, and clear errors for arrays
of the wrong library. CUDA and CuPy tests skip without a GPU."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from mlpckpt import SGD, Actions, Adam, Budget, Revolve, Segments, Sqrt, StoreAll
from mlpckpt.testing import assert_bitwise_equal, make_data

torch = pytest.importorskip("torch")
strict = pytest.importorskip("array_api_strict")

LIBS = {"torch": torch, "array_api_strict": strict}
BACKENDS = sorted(LIBS)


def on(backend, x):
    """A NumPy array ``x`` as an array of ``backend`` (a copy)."""
    return LIBS[backend].asarray(np.array(x, copy=True))


def npy(x):
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def npys(arrays):
    """NumPy copies of a list of arrays of any backend."""
    return [npy(a) for a in arrays]


def strategies(n):
    # every kind, and an explicit schedule: Sqrt's own, as data
    sqrt_actions = mc.plan(mc.MLP([2] * (n + 1)), 1, Sqrt()).actions
    return [StoreAll(), Segments(2), Sqrt(), Revolve(1), Revolve(2), Budget(10**7), Actions(sqrt_actions), None]


def assert_close_to_numpy(grads, ref):
    for name in ("weights", "biases"):
        for k, (g, r) in enumerate(zip(getattr(grads, name), getattr(ref, name))):
            g = npy(g)
            assert g.shape == r.shape and g.dtype == r.dtype, (name, k)
            assert np.max(np.abs(g - r)) <= 1e-12 * max(np.max(np.abs(r)), 1e-300), (name, k)


CASES = [  # sizes, activation, output, loss
    ((4, 8, 8, 8, 3), "tanh", "identity", "mse"),
    ((3,) + (6,) * 19 + (2,), "tanh", "sigmoid", "bce"),  # 20 layers
    ((5, 7, 7, 7, 7, 4), "relu", "softmax", "cross_entropy"),
    ((5, 7, 7, 7, 4), "leaky_relu", "softmax", "mse"),
    ((2, 9, 9, 9, 1), "softplus", "sigmoid", "mse"),
    ((3, 5, 5, 5, 5, 3), "sigmoid", "identity", "mse"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sizes,activation,output,loss", CASES)
def test_every_strategy_is_bitwise_store_all_and_close_to_numpy(backend, sizes, activation, output, loss):
    net = mc.MLP(sizes, activation=activation, output=output, seed=3)
    X, Y = make_data(sizes, 11, loss, seed=4)
    ref_loss, ref = net.loss_and_grad(X, Y, loss)
    xnet = mc.MLP(sizes, activation=activation, output=output, seed=3, backend=backend)
    Xb, Yb = on(backend, X), on(backend, Y)
    base_loss, base = xnet.loss_and_grad(Xb, Yb, loss, strategy=StoreAll())
    assert isinstance(base_loss, float) and abs(base_loss - ref_loss) <= 1e-12 * abs(ref_loss)
    assert_close_to_numpy(base, ref)
    for strategy in strategies(len(sizes) - 1):
        value, g = xnet.loss_and_grad(Xb, Yb, loss, strategy=strategy)
        assert value == base_loss, strategy
        assert_bitwise_equal(npys(g.weights + g.biases), npys(base.weights + base.biases), err_msg=repr(strategy))


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=12, deadline=None, derandomize=True)
@given(depth=st.integers(1, 9), width=st.integers(1, 8), batch=st.integers(1, 9),
       dtype=st.sampled_from(["float64", "float32"]), init=st.sampled_from(["xavier", "he", "normal", "orthogonal"]),
       onehot=st.booleans(), seed=st.integers(0, 2**16))
def test_hypothesis_sizes_dtypes_inits(backend, depth, width, batch, dtype, init, onehot, seed):
    sizes = [3] + [width] * depth + [4]
    net = mc.MLP(sizes, output="softmax", init=init, dtype=dtype, seed=seed)
    xnet = mc.MLP(sizes, output="softmax", init=init, dtype=dtype, seed=seed, backend=backend)
    assert_bitwise_equal(npys(xnet.weights + xnet.biases), net.weights + net.biases)  # the same initial weights
    X, lab = make_data(sizes, batch, "cross_entropy", seed=seed, dtype=dtype)
    Y = np.eye(4, dtype=dtype)[:, lab] if onehot else lab
    base_loss, base = xnet.loss_and_grad(on(backend, X), on(backend, Y), "cross_entropy")
    ref_loss, ref = net.loss_and_grad(X, Y, "cross_entropy")
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert abs(base_loss - ref_loss) <= tol * max(1.0, abs(ref_loss))
    for a, r in zip(base.weights + base.biases, ref.weights + ref.biases):
        assert npy(a).dtype == np.dtype(dtype)
        assert np.max(np.abs(npy(a) - r)) <= tol * max(np.max(np.abs(r)), 1e-30)
    for strategy in (Sqrt(), Revolve(1), Segments(depth + 1)):
        value, g = xnet.loss_and_grad(on(backend, X), on(backend, Y), "cross_entropy", strategy=strategy)
        assert value == base_loss
        assert_bitwise_equal(npys(g.weights + g.biases), npys(base.weights + base.biases), err_msg=repr(strategy))


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_buffers_are_written_and_returned(backend):
    net = mc.MLP([3, 6, 6, 6, 2], seed=1, backend=backend)
    X, Y = make_data(net.sizes, 5, "mse", seed=2)
    _, fresh = net.loss_and_grad(on(backend, X), on(backend, Y))
    out = net.zeros_like_grads()
    arrays = [id(a) for a in out.weights + out.biases]
    _, g = net.loss_and_grad(on(backend, X), on(backend, Y), strategy=Revolve(1), out=out)
    assert g is out and [id(a) for a in g.weights + g.biases] == arrays
    assert_bitwise_equal(npys(g.weights + g.biases), npys(fresh.weights + fresh.biases))
    numpy_out = mc.MLP([3, 6, 6, 6, 2]).zeros_like_grads()
    with pytest.raises(ValueError, match="out"):
        net.loss_and_grad(on(backend, X), on(backend, Y), out=numpy_out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_fit_matches_numpy_and_fusing_is_bitwise(backend, optimizer):
    sizes = (4, 7, 7, 7, 3)
    X, Y = make_data(sizes, 20, "cross_entropy", seed=5)
    ref = mc.MLP(sizes, output="softmax", seed=6)
    ref_hist = ref.fit(X, Y, "cross_entropy", optimizer=optimizer, lr=0.05, epochs=3, batch_size=6, seed=1)
    runs = []
    for fuse in (False, True):
        net = mc.MLP(sizes, output="softmax", seed=6, backend=backend)
        hist = net.fit(on(backend, X), on(backend, Y), "cross_entropy", optimizer=optimizer, lr=0.05, epochs=3,
                       batch_size=6, seed=1, strategy=Sqrt(), fuse_update=fuse)
        np.testing.assert_allclose(hist, ref_hist, rtol=1e-12)
        for W, R in zip(net.weights + net.biases, ref.weights + ref.biases):
            assert np.max(np.abs(npy(W) - R)) <= 1e-12 * np.max(np.abs(R))
        runs.append(net)
    assert_bitwise_equal(npys(runs[0].weights), npys(runs[1].weights))


@pytest.mark.parametrize("backend", BACKENDS)
def test_to_is_an_exact_copy_both_ways(backend):
    net = mc.MLP([3, 5, 5, 2], activation=["tanh", "relu"], output="sigmoid", dtype="float32", seed=7)
    there = net.to(backend)
    assert there.backend.name == backend and there.backend.device == "cpu"
    assert f"backend={backend!r}" in repr(there)
    back = there.to("numpy")
    assert_bitwise_equal(npys(there.weights + there.biases), net.weights + net.biases)
    assert_bitwise_equal(back.weights + back.biases, net.weights + net.biases)  # float32, as net's are
    for a, c in zip(net.weights + net.biases, back.weights + back.biases):
        assert c.flags.c_contiguous and c is not a
    there.weights[0][...] = 0  # a copy: the original is untouched
    assert np.any(net.weights[0] != 0)
    assert (back.activations, back.output, back.dtype) == (net.activations, net.output, net.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_arrays_of_the_wrong_library_are_refused_by_name(backend):
    net = mc.MLP([3, 4, 2], seed=0, backend=backend)
    X, Y = make_data(net.sizes, 4, "mse")
    with pytest.raises(ValueError, match=r"^X: expected .* got a NumPy float64 array"):
        net.loss_and_grad(X, on(backend, Y))
    with pytest.raises(ValueError, match=r"^Y: expected .* got a NumPy float64 array"):
        net.loss_and_grad(on(backend, X), Y)
    with pytest.raises(ValueError, match=r"^X: "):
        net.forward(X.tolist())
    with pytest.raises(ValueError, match=r"^X: "):
        net.fit(X, on(backend, Y), epochs=1)
    numpy_net = mc.MLP([3, 4, 2])
    with pytest.raises(ValueError, match=r"^X: expected a NumPy array"):
        numpy_net.loss_and_grad(on(backend, X), Y)  # never converted behind the caller's back
    with pytest.raises(ValueError, match=r"^Y: expected a NumPy array"):
        numpy_net.loss_and_grad(X, on(backend, Y))
    bad = X.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"^X: holds NaN"):
        net.loss_and_grad(on(backend, bad), on(backend, Y))
    with pytest.raises(ValueError, match=r"^X: .*complex"):
        net.loss_and_grad(on(backend, X.astype(complex)), on(backend, Y))
    with pytest.raises(ValueError, match=r"^X: .*shape"):
        net.loss_and_grad(on(backend, X[:2]), on(backend, Y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_int_and_transposed_inputs_give_the_same_result(backend):
    net = mc.MLP([3, 6, 6, 2], seed=2, backend=backend)
    X, Y = make_data(net.sizes, 6, "mse", seed=3)
    Xi = np.round(3 * X).astype(np.int64)
    ref_loss, ref = net.to("numpy").loss_and_grad(Xi.astype(float), Y)
    value, g = net.loss_and_grad(on(backend, Xi), on(backend, Y))
    assert abs(value - ref_loss) <= 1e-12 * ref_loss
    assert_close_to_numpy(g, ref)
    if backend == "torch":  # a non-contiguous view: the same bits as the contiguous copy
        Xt = torch.asarray(np.ascontiguousarray(Xi.T.astype(float))).T
        assert not Xt.is_contiguous()
        v2, g2 = net.loss_and_grad(Xt, on(backend, Y))
        assert v2 == value and all(torch.equal(a, b) for a, b in zip(g2.weights, g.weights))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["central", "complex", "directional"])
def test_gradcheck_runs_on_the_backend(backend, method):
    net = mc.MLP([3, 5, 5, 2], output="softmax", seed=1, backend=backend)
    X, Y = make_data(net.sizes, 4, "cross_entropy", seed=2)
    report = mc.gradcheck(net, on(backend, X), on(backend, Y), "cross_entropy", strategy=Revolve(1), method=method)
    assert report.passed and report.max_rel_error < (1e-12 if method == "complex" else 1e-6)
    with pytest.raises(ValueError, match="^X: "):
        mc.gradcheck(net, X, on(backend, Y), "cross_entropy", method=method)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_catches_a_wrong_gradient_on_the_backend(backend, tanh_derivative_off):
    net = mc.MLP([3, 5, 5, 2], seed=1, backend=backend)
    X, Y = make_data(net.sizes, 4, "mse", seed=2)
    assert not mc.gradcheck(net, on(backend, X), on(backend, Y)).passed


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_and_load_resume_exactly(backend, tmp_path):
    sizes = (3, 6, 6, 2)
    X, Y = make_data(sizes, 12, "mse", seed=8)
    Xb, Yb = on(backend, X), on(backend, Y)
    net, opt = mc.MLP(sizes, seed=9, backend=backend), Adam(lr=0.01)
    net.fit(Xb, Yb, optimizer=opt, epochs=2, batch_size=4)
    net.save(tmp_path / "net.npz", optimizer=opt)
    loaded, opt2 = mc.load(tmp_path / "net.npz", with_optimizer=True, backend=backend)
    assert loaded.backend == net.backend
    assert_bitwise_equal(npys(loaded.weights + loaded.biases), npys(net.weights + net.biases))
    net.fit(Xb, Yb, optimizer=opt, epochs=2, batch_size=4, seed=3)
    loaded.fit(Xb, Yb, optimizer=opt2, epochs=2, batch_size=4, seed=3)
    assert_bitwise_equal(npys(loaded.weights + loaded.biases), npys(net.weights + net.biases))
    as_numpy = mc.load(tmp_path / "net.npz")  # the file is NumPy's, whoever wrote it
    assert isinstance(as_numpy.weights[0], np.ndarray)
    sgd = SGD(momentum=0.9)
    net.fit(Xb, Yb, optimizer=sgd, epochs=1)
    net.save(tmp_path / "sgd.npz", optimizer=sgd)
    _, sgd2 = mc.load(tmp_path / "sgd.npz", with_optimizer=True)
    assert all(isinstance(v, np.ndarray) for v in sgd2.state.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_only_features_say_so(backend):
    net = mc.MLP([3, 4, 2], backend=backend)
    X, Y = make_data(net.sizes, 4, "mse")
    with pytest.raises(ValueError, match=r"^workspace: NumPy nets only"):
        net.loss_and_grad(on(backend, X), on(backend, Y), workspace=mc.Workspace())
    with pytest.raises(ValueError, match=r"^fit_lbfgs: NumPy nets only"):
        net.fit_lbfgs(on(backend, X), on(backend, Y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_and_predict_match_numpy(backend):
    net = mc.MLP([3, 6, 6, 4], output="softmax", seed=4)
    X, _ = make_data(net.sizes, 9, "mse", seed=1)
    there = net.to(backend)
    out = there.forward(on(backend, X))
    assert np.max(np.abs(npy(out) - net.forward(X))) <= 1e-15
    assert np.array_equal(npy(there.predict(on(backend, X))), net.predict(X))


def test_bad_backend_and_device_names():
    with pytest.raises(ValueError, match=r"^backend: got 'jax', expected one of"):
        mc.MLP([2, 2], backend="jax")
    with pytest.raises(ValueError, match=r"^device: got 'tpu'"):
        mc.MLP([2, 2], backend="torch", device="tpu")
    with pytest.raises(ValueError, match=r"^device: got 'cuda'"):
        mc.MLP([2, 2], backend="numpy", device="cuda")
    with pytest.raises(ValueError, match=r"^device: got 'cuda'"):
        mc.MLP([2, 2], backend="array_api_strict", device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"^device: got 'cuda', but PyTorch sees no CUDA device"):
            mc.MLP([2, 2], backend="torch", device="cuda")
    with pytest.raises(ValueError, match=r"^backend: "):
        mc.load("nothing.npz", backend="tensorflow")


def test_cupy_without_cupy_says_how_to_install():
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: the CUDA tests cover it")
    with pytest.raises(ValueError, match=r"^backend: 'cupy' needs a package .*pip install cupy"):
        mc.MLP([2, 2], backend="cupy")


GPU_BACKENDS = [pytest.param("torch", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
                pytest.param("cupy", marks=pytest.mark.skipif(not importlib.util.find_spec("cupy"), reason="no CuPy"))]


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_cuda_strategies_are_bitwise_store_all(backend, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # as the warning asks
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        _cuda_strategies_are_bitwise(backend)
    finally:
        torch.use_deterministic_algorithms(was)


def _cuda_strategies_are_bitwise(backend):
    sizes = (8,) + (16,) * 12 + (3,)
    net = mc.MLP(sizes, output="softmax", seed=1, backend=backend, device="cuda")
    lib = torch if backend == "torch" else __import__("cupy")
    X, Y = make_data(sizes, 32, "cross_entropy")
    Xb, Yb = [lib.asarray(a) if backend == "cupy" else torch.asarray(a, device="cuda") for a in (X, Y)]
    base_loss, base = net.loss_and_grad(Xb, Yb, "cross_entropy")
    for strategy in strategies(len(sizes) - 1):
        value, g = net.loss_and_grad(Xb, Yb, "cross_entropy", strategy=strategy)
        assert value == base_loss
        assert_bitwise_equal([net.backend.to_numpy(a) for a in g.weights + g.biases],
                             [net.backend.to_numpy(b) for b in base.weights + base.biases], err_msg=repr(strategy))


class _FakeCuda:
    """A backend that says it is CUDA (the warning's logic, without a GPU)."""

    name, device, is_cuda = "torch", "cuda:0", True


def test_cuda_determinism_warning_once_and_only_when_recomputing(monkeypatch):
    from mlpckpt.model import _across_backends as placement
    from mlpckpt.planning._lowering import lower

    def program(strategy):  # what the executor runs: the schedule lowered to buffer events
        s = mc.plan(mc.MLP([2] * 9), 1, strategy)
        return lower(s.actions, s.sizes)

    monkeypatch.setattr(placement, "_WARNED", [])
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    placement.warn_if_nondeterministic(_FakeCuda(), program(StoreAll()), 8)  # StoreAll recomputes nothing
    with pytest.warns(RuntimeWarning, match=r"CUBLAS_WORKSPACE_CONFIG=:4096:8 .*use_deterministic_algorithms"):
        placement.warn_if_nondeterministic(_FakeCuda(), program(Sqrt()), 8)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        placement.warn_if_nondeterministic(_FakeCuda(), program(Sqrt()), 8)
    monkeypatch.setattr(placement, "_WARNED", [])
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    assert placement.deterministic_problems(_FakeCuda()) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        placement.warn_if_nondeterministic(_FakeCuda(), program(Sqrt()), 8)
    assert placement.deterministic_problems(mc.MLP([2, 2], backend="torch").backend) == []  # the CPU


@pytest.mark.slow
def test_bench_memory_on_torch_writes_the_backends_figures(tmp_path, capsys):
    from mlpckpt.bench import read_csv
    from mlpckpt.cli._main import main

    argv = ["bench", "memory", "--depths", "8,16", "--strategies", "storeall,sqrt", "--repeats", "1",
            "--width", "16", "--batch", "32", "--backend", "torch", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "PyTorch profiler's memory events" in out and "memory_vs_depth.png" in out
    rows = read_csv(tmp_path / "memory_vs_depth.csv")
    assert {(r["backend"], r["device"]) for r in rows} == {("torch", "cpu")} and len(rows) == 4
    for r in rows:
        assert r["measured_peak_bytes_out"] <= r["predicted_peak_bytes_out"] \
            <= 1.05 * r["measured_peak_bytes_out"] + 64 * 1024
        assert r["forward_evals_counted"] == r["forward_evals_plan"]


@pytest.mark.slow
def test_gpu_check_script_runs_its_checks_on_the_cpu(tmp_path):
    # the script that needs a GPU, smoke-tested through --device cpu: every
    # check of it runs (bitwise, predicted peaks, the checkpoint_sequential
    # comparison) and the report says they passed
    import json
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(script), "--device", "cpu", "--depths", "9", "--width", "8",
                        "--batch", "16", "--repeats", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["ok"] and len(report["cases"]) == 2 and report["peers"][0]["segments"] == 3
    assert all(row["bitwise_equal"] for case in report["cases"] for row in case["strategies"].values())
    assert report["cases"][1]["max_rel_diff_vs_numpy"] <= 1e-12
