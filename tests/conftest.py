import os

# Small matmuls gain nothing from BLAS threads, and on a shared 2-core machine
# spinning threads slow them by 100x; results do not depend on this.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest



def make_data(sizes, batch, loss, seed=0, dtype="float64"):
    """Random X and targets that suit ``loss`` (labels for cross_entropy)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((sizes[0], batch)).astype(dtype)
    n_out = sizes[-1]
    if loss == "cross_entropy":
        Y = rng.integers(0, n_out, size=batch)
    elif loss == "bce":
        Y = rng.random((n_out, batch)).astype(dtype)
    else:
        Y = rng.standard_normal((n_out, batch)).astype(dtype)
    return X, Y


def net_spec(sizes, activation="tanh", output="identity", dtype="float64"):
    """What plan() reads of a net, without drawing weights (big nets stay cheap)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        sizes=tuple(sizes),
        activations=[activation] * (len(sizes) - 2),
        output=output,
        dtype=np.dtype(dtype),
    )


OUTPUT_FOR = {"mse": "identity", "bce": "sigmoid", "cross_entropy": "softmax"}


@pytest.fixture
def data():
    return make_data


def central_diff_grads(net, X, Y, loss):
    """Element-wise central differences of the loss, float64 (test oracle)."""
    out_w, out_b = [], []
    for params, out in ((net.weights, out_w), (net.biases, out_b)):
        for p in params:
            g = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                h = np.finfo(np.float64).eps ** (1 / 3) * max(1.0, abs(old))
                p[idx] = old + h
                fp = net.loss_and_grad(X, Y, loss)[0]
                p[idx] = old - h
                fm = net.loss_and_grad(X, Y, loss)[0]
                p[idx] = old
                g[idx] = (fp - fm) / (2 * h)
            out.append(g)
    return out_w, out_b


# -- fixtures: tests take the helpers as arguments, never `from conftest import`


@pytest.fixture(name="make_data")
def _make_data_fixture():
    """``make_data(sizes, batch, loss, seed=0, dtype="float64") -> (X, Y)``."""
    return make_data


@pytest.fixture(name="net_spec")
def _net_spec_fixture():
    """``net_spec(sizes, activation, output, dtype)``: a net description for plan()."""
    return net_spec


@pytest.fixture(name="central_diff_grads")
def _central_diff_fixture():
    """``central_diff_grads(net, X, Y, loss) -> (dW, db)``, the test oracle."""
    return central_diff_grads


@pytest.fixture(name="run_schedule")
def _run_schedule_fixture():
    """``run_schedule(net, X, Y, loss, strategy, grads=None, on_layer=None)``:
    the executor's Result (loss, dW, db, forward_evals) for validated X, Y,
    compiled through the planner as loss_and_grad compiles it."""
    from mlpckpt import backprop
    from mlpckpt.inputs import target_form
    from mlpckpt.plan import check_strategy, compile_actions, make_call

    def run(net, X, Y, loss, strategy, grads=None, on_layer=None):
        call = make_call(net, X.shape[1], loss, grads is not None, on_layer is not None,
                         target_form(Y))
        actions = compile_actions(check_strategy(strategy), call)
        return backprop.execute(actions, net.weights, net.biases, net.activations, net.output,
                                X, Y, loss, grads=grads, on_layer=on_layer)

    return run


@pytest.fixture(name="measured_peak")
def _measured_peak_fixture():
    """``measured_peak(fn)``: tracemalloc peak of ``fn()`` above the memory
    traced before it, after one warm-up call (the schedule is compiled and
    cached by then): the protocol of plan()'s contract."""
    from mlpckpt.bench import traced_peak

    def measure(fn):
        fn()
        return traced_peak(fn)

    return measure


@pytest.fixture
def tanh_derivative_off(monkeypatch):
    """tanh' scaled by 1.001 in the backward pass (the forward is untouched):
    a planted bug every gradient check must catch."""
    from mlpckpt import activations

    forward, mul_derivative = activations.ACTIVATIONS["tanh"]

    def wrong(a, da):
        mul_derivative(a, da)
        da *= 1.001
        return da

    monkeypatch.setitem(activations.ACTIVATIONS, "tanh", (forward, wrong))
