import os

# Small matmuls gain nothing from BLAS threads, and on a shared 2-core machine
# spinning threads slow them by 100x; results do not depend on this.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from types import SimpleNamespace

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.testing import assert_bitwise_equal


def _net_spec(sizes, activation="tanh", output="identity", dtype="float64"):
    """What plan() reads of a net, without drawing weights (big nets stay cheap)."""
    return SimpleNamespace(
        sizes=tuple(sizes),
        activations=[activation] * (len(sizes) - 2),
        output=output,
        dtype=np.dtype(dtype),
    )


def _central_diff_grads(net, X, Y, loss):
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


# -- fixtures: tests take the helpers as arguments (conftest is never imported)


def _assert_same_result(ref, got, err_msg=""):
    """Two ``(loss, Grads)`` results of ``loss_and_grad``: the same loss, and
    gradients bitwise equal (blocks ``weights + biases``)."""
    assert ref[0] == got[0], f"loss {ref[0]!r} != {got[0]!r}" + (f"\n{err_msg}" if err_msg else "")
    assert_bitwise_equal(ref[1].weights + ref[1].biases, got[1].weights + got[1].biases, err_msg=err_msg)


@pytest.fixture(name="assert_same_result", scope="session")  # a pure function: hypothesis tests may take it
def _assert_same_result_fixture():
    """``assert_same_result(ref, got, err_msg="")`` of two ``(loss, Grads)``
    results: equal losses, bitwise equal gradients."""
    return _assert_same_result


@pytest.fixture(name="net_spec")
def _net_spec_fixture():
    """``net_spec(sizes, activation, output, dtype)``: a net description for plan()."""
    return _net_spec


@pytest.fixture(name="central_diff_grads")
def _central_diff_fixture():
    """``central_diff_grads(net, X, Y, loss) -> (dW, db)``, the test oracle."""
    return _central_diff_grads


@pytest.fixture(name="run_schedule")
def _run_schedule_fixture():
    """``run_schedule(net, X, Y, loss, strategy, grads=None, on_layer=None)``:
    the executor's Result (loss, dW, db, forward_evals) for validated X, Y,
    compiled through the planner as loss_and_grad compiles it."""
    from mlpckpt.execution import _executor as backprop
    from mlpckpt.model._batch import target_form
    from mlpckpt.planning._plan import check_strategy, compile_program, make_call

    def run(net, X, Y, loss, strategy, grads=None, on_layer=None):
        call = make_call(net, X.shape[1], loss, out=grads is not None, fuse_update=on_layer is not None,
                         targets=target_form(Y))
        program = compile_program(check_strategy(strategy), call)
        return backprop.execute(program, backprop.Params(net.weights, net.biases, net.activations, net.output),
                                backprop.Batch(X, Y, loss), backprop.Options(grads=grads, on_layer=on_layer))

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
def kernel_setting():
    """The kernel setting "auto" for the test, the previous one restored after."""
    previous = mc.set_kernels("auto")
    yield
    mc.set_kernels(previous)


@pytest.fixture
def tanh_derivative_off(monkeypatch):
    """tanh' scaled by 1.001 in the backward pass (the forward is untouched):
    a planted bug every gradient check must catch."""
    from mlpckpt.core import _activations as activations
    from mlpckpt.execution import _kernels as kernels

    forward, mul_derivative = activations.ACTIVATIONS["tanh"]

    def wrong(a, da, o=activations.NP):
        mul_derivative(a, da, o)
        da *= 1.001
        return da

    monkeypatch.setitem(activations.ACTIVATIONS, "tanh", (forward, wrong))
    if kernels.get_kernels()[1] == "numba":  # the compiled path gets the same bug
        from mlpckpt.execution import _compiled as fastkernels

        compiled = fastkernels.DERIVATIVE["tanh"]

        def wrong_compiled(a, da):
            compiled(a, da)
            da *= 1.001

        monkeypatch.setitem(fastkernels.DERIVATIVE, "tanh", wrong_compiled)


# -- small problems and parameter-block helpers shared by the model's tests


@pytest.fixture
def data():
    """A batch for ``net``: X of shape (3, 5) and 5 integer labels."""
    rng = np.random.default_rng(20261123)
    return rng.standard_normal((3, 5)), np.array([0, 1, 1, 0, 1])


@pytest.fixture
def net():
    """A [3, 4, 2] tanh net with a softmax output."""
    return mc.MLP([3, 4, 2], activation="tanh", output="softmax", seed=0)


@pytest.fixture
def problem():
    """A regression batch for ``make_net()``: X (4, 12), Y (3, 12)."""
    rng = np.random.default_rng(1234)
    return rng.standard_normal((4, 12)), rng.standard_normal((3, 12))


@pytest.fixture
def make_net():
    """``make_net(seed=0, sizes=(4, 6, 5, 3), **kw)``: a tanh MLP."""

    def make(seed=0, sizes=(4, 6, 5, 3), **kw):
        kw.setdefault("activation", "tanh")
        return mc.MLP(list(sizes), seed=seed, **kw)

    return make


@pytest.fixture
def blocks():
    """Parameter blocks in flatten order ``W0, b0, W1, b1, ...``: ``of(net)``,
    ``of_grads(grads)``, ``set(net, blocks)`` (in place); ``differ(a, b)``:
    some block's values differ (equal blocks are asserted with
    :func:`mlpckpt.testing.assert_bitwise_equal`)."""

    def of(net):
        return [x for pair in zip(net.weights, net.biases) for x in pair]

    def of_grads(g):
        return [x for pair in zip(g.weights, g.biases) for x in pair]

    def set_(net, values):
        for k in range(net.n_layers):
            net.weights[k][...] = values[2 * k]
            net.biases[k][...] = values[2 * k + 1]

    def differ(a, b):
        return not (len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)))

    return SimpleNamespace(of=of, of_grads=of_grads, set=set_, differ=differ)


@pytest.fixture
def unchanged():
    """``unchanged(net, weights)``: asserts that the net's weights are bitwise
    the given copies."""
    return lambda net, weights: assert_bitwise_equal(list(net.weights), list(weights))
