"""NetSpec (a net described, never built) and plan(..., optimizer=): the
total bytes of a training step, checked against tracemalloc."""

import dataclasses
import math
import sys
import tracemalloc

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.planning._costs import ARRAY_OVERHEAD
from mlpckpt.core._params import init_params
from mlpckpt.planning._step_totals import dict_bytes

KIB = 1024


def _traced(fn):
    """(result, tracemalloc peak above the memory traced at entry) of fn()."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


# -- NetSpec ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    dict(sizes=[3]),
    dict(sizes=[3, 0, 2]),
    dict(sizes="abc"),
    dict(sizes=[3, 2.0]),
    dict(sizes=[3, True]),
    dict(sizes=[3, 4, 2], activation="swish"),
    dict(sizes=[3, 4, 4, 2], activation=["tanh"]),
    dict(sizes=[3, 4, 4, 2], activation={"tanh", "relu"}),
    dict(sizes=[3, 4, 2], output="tanh"),
    dict(sizes=[3, 4, 2], dtype="float16"),
    dict(sizes=[3, 4, 2], dtype=np.complex128),
])
def test_netspec_refuses_what_mlp_refuses_with_the_same_message(kwargs):
    with pytest.raises(ValueError) as from_mlp:
        mc.MLP(**kwargs)
    with pytest.raises(ValueError) as from_spec:
        mc.NetSpec(**kwargs)
    assert str(from_spec.value) == str(from_mlp.value)
    assert str(from_spec.value).split(":")[0] in {"sizes", "activation", "output", "dtype"}


def test_netspec_names_its_attributes_as_the_mlp_does():
    net = mc.MLP([5, 7, 6, 3], activation=["relu", "sigmoid"], output="softmax", dtype=np.float32, seed=1)
    spec = net.spec
    assert spec == mc.NetSpec((5, 7, 6, 3), ("relu", "sigmoid"), "softmax", "float32")
    assert spec.sizes == (5, 7, 6, 3) and spec.activations == ("relu", "sigmoid")
    assert spec.output == "softmax" and spec.dtype == "float32" and spec.n_layers == 3
    assert spec.n_params == sum(W.size + b.size for W, b in zip(net.weights, net.biases))
    assert spec.n_params == 5 * 7 + 7 + 7 * 6 + 6 + 6 * 3 + 3
    assert hash(spec) == hash(mc.NetSpec([5, 7, 6, 3], ["relu", "sigmoid"], "softmax", np.float32))
    assert spec != mc.NetSpec([5, 7, 6, 3], "relu", "softmax", "float32")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.sizes = (1, 1)
    assert "NetSpec(sizes=[5, 7, 6, 3]" in repr(spec)


@pytest.mark.parametrize("sizes, dtype", [([8, 16, 16, 3], "float64"), ([32] * 41, "float32"),
                                          ([2, 300, 1], "float64")])
def test_param_bytes_are_what_the_weights_and_biases_leave_traced(sizes, dtype):
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        params = init_params(sizes, "xavier", np.dtype(dtype), rng)  # what MLP() keeps as weights, biases
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert [W.shape for W in params[0]] == [(b, a) for a, b in zip(sizes[:-1], sizes[1:])]
    predicted = mc.NetSpec(sizes, dtype=dtype).param_bytes
    assert held <= predicted <= 1.05 * held + 4 * KIB, (held, predicted)


@pytest.mark.parametrize("strategy", [None, mc.Sqrt(), mc.Revolve(2), mc.Segments(3), mc.Budget(10**6)])
def test_plan_of_a_spec_is_the_plan_of_the_net(strategy):
    net = mc.MLP([6] + [12] * 9 + [4], activation="relu", output="softmax", seed=0)
    kwargs = dict(loss="cross_entropy", out=True, targets="onehot", optimizer="momentum")
    got, expected = mc.plan(net.spec, 16, strategy, **kwargs), mc.plan(net, 16, strategy, **kwargs)
    assert (got.actions, got.peak_bytes, got.total_bytes) == (expected.actions, expected.peak_bytes,
                                                                expected.total_bytes)


def _revolve_evals(n, slots):
    # paper_notes/checkpointing.md: t(l, s) = r l - C(s + r, s + 1), r the least with C(s + r, s) >= l; l = n + 1, s = slots + 1
    l, s = n + 1, slots + 1
    r = next(r for r in range(1, l + 1) if math.comb(s + r, s) >= l)
    return r * l - math.comb(s + r, s + 1)


@pytest.mark.parametrize("strategy", [mc.Sqrt(), mc.Revolve(8)])
def test_a_billion_parameter_description_plans_without_its_weights(strategy):
    spec = mc.NetSpec([1000] * 1001)
    assert spec.n_params == 1000 * 1001 * 1000 > 10**9
    sched, peak = _traced(lambda: mc.plan(spec, 256, strategy, optimizer="adam"))
    n = 1000
    k = math.ceil(math.sqrt(n))
    expected = 2 * n - k - (math.ceil(n / k) - 1) if isinstance(strategy, mc.Sqrt) else _revolve_evals(n, 8)
    assert sched.forward_evals == expected == (1937 if isinstance(strategy, mc.Sqrt) else 4004)
    assert peak < 64 * 2**20, peak  # the weights alone would be 8 GB
    # weights, their gradients and Adam's two moments, each 8 bytes a parameter, and more
    assert 4 * 8 * spec.n_params < sched.total_bytes < 4 * 8 * spec.n_params + sched.peak_bytes + 2**30


# -- total_bytes against tracemalloc ------------------------------------------------


def _fit_peak(sizes, batch, dtype, make_opt, fuse, strategy, loss, output):
    """Tracemalloc peak of building the net and two epochs of fit on one batch
    (X, Y made before), after one untraced run (the schedule compiled)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((sizes[0], batch)).astype(dtype)
    Y = (rng.integers(0, sizes[-1], size=batch) if loss == "cross_entropy"
         else rng.standard_normal((sizes[-1], batch)).astype(dtype))

    def run():
        net = mc.MLP(sizes, output=output, dtype=dtype, seed=0)
        net.fit(X, Y, loss, epochs=2, batch_size=batch, optimizer=make_opt(), strategy=strategy,
                fuse_update=fuse)

    run()
    return _traced(run)[1]


OPTIMIZERS = {"sgd": lambda: "sgd", "momentum": lambda: "momentum", "adam": lambda: "adam",
              "nesterov": lambda: mc.SGD(lr=1e-3, momentum=0.5, nesterov=True),
              "adam_object": lambda: mc.Adam(lr=1e-4, betas=(0.8, 0.99))}


@pytest.mark.parametrize("strategy", [mc.Sqrt(), mc.StoreAll()], ids=repr)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_total_bytes_bound_the_measured_training_step(opt, fuse, dtype, strategy):
    sizes, batch = [24] + [40] * 12 + [8], 32
    measured = _fit_peak(sizes, batch, dtype, OPTIMIZERS[opt], fuse, strategy, "mse", "identity")
    sched = mc.plan(mc.NetSpec(sizes, dtype=dtype), batch, strategy, "mse", fuse_update=fuse,
                    targets="onehot", optimizer=opt)
    assert measured <= sched.total_bytes <= 1.05 * measured + 64 * KIB, (measured, sched.details["total"])


@pytest.mark.parametrize("sizes, batch, dtype, opt, fuse, strategy, loss, output", [
    ([300, 200, 100, 10], 32, "float32", "adam", True, mc.Sqrt(), "mse", "identity"),  # big blocks: Adam's casts
    ([300, 200, 100, 10], 32, "float32", "adam", False, mc.StoreAll(), "mse", "identity"),
    ([1000, 1000], 4, "float64", "momentum", False, mc.Sqrt(), "mse", "identity"),  # one layer: state dominates
    ([8] * 401, 8, "float64", "adam", False, mc.Revolve(4), "mse", "identity"),  # deep-narrow: dicts and ints
    ([16] + [64] * 30 + [10], 64, "float64", "nesterov", True, mc.Segments(4), "cross_entropy", "softmax"),
    ([16] + [64] * 30 + [10], 64, "float32", "adam_object", False, mc.Sqrt(), "cross_entropy", "softmax"),
])
def test_total_bytes_bound_other_nets_losses_and_optimiser_objects(sizes, batch, dtype, opt, fuse, strategy,
                                                                    loss, output):
    measured = _fit_peak(sizes, batch, dtype, OPTIMIZERS[opt], fuse, strategy, loss, output)
    sched = mc.plan(mc.NetSpec(sizes, output=output, dtype=dtype), batch, strategy, loss, fuse_update=fuse,
                    optimizer=OPTIMIZERS[opt]())
    assert measured <= sched.total_bytes <= 1.05 * measured + 64 * KIB, (measured, sched.details["total"])


def test_total_bytes_parts_follow_the_optimiser():
    spec = mc.NetSpec([32] * 21)
    parts = {name: mc.plan(spec, 16, mc.Sqrt(), optimizer=name).details["total"]
             for name in ("sgd", "momentum", "adam")}
    arrays = spec.n_params * 8 + 2 * 20 * ARRAY_OVERHEAD  # one buffer per parameter array
    assert parts["sgd"]["state_bytes"] == 0
    assert arrays < parts["momentum"]["state_bytes"] < arrays + 8 * KIB
    assert 2 * arrays < parts["adam"]["state_bytes"] < 2 * arrays + 8 * KIB
    for p in parts.values():
        assert p["total_bytes"] == sum(v for k, v in p.items() if k.endswith("_bytes") and k != "total_bytes")
    fused = mc.plan(spec, 16, mc.Sqrt(), fuse_update=True, optimizer="sgd").details["total"]
    assert fused["grad_bytes"] == 0 and fused["total_bytes"] < parts["sgd"]["total_bytes"] - 19 * 32 * 33 * 8


def test_without_an_optimizer_there_is_no_total():
    sched = mc.plan(mc.NetSpec([4, 4, 4]), 8)
    assert sched.total_bytes is None and "total" not in sched.details and "total bytes" not in str(sched)
    with_opt = mc.plan(mc.NetSpec([4, 4, 4]), 8, optimizer="adam")
    assert f"total bytes       {with_opt.total_bytes / 2**20:.3f} MiB ({with_opt.total_bytes} B)" in str(with_opt)
    assert (with_opt.peak_bytes, with_opt.actions) == (sched.peak_bytes, sched.actions)


class _Custom(mc.Optimizer):
    def update(self, i, param, grad):
        param -= grad


@pytest.mark.parametrize("bad", ["adamw", "SGD", 3, object(), mc.SGD, _Custom(), ["adam"], np.array(["sgd", "adam"])])
def test_a_bad_optimizer_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="^optimizer: got .*expected 'sgd', 'momentum', 'adam'"):
        mc.plan(mc.NetSpec([4, 4]), 8, optimizer=bad)


@pytest.mark.parametrize("n", [0, 1, 5, 6, 11, 100, 1000, 5000])
def test_dict_bytes_are_the_interpreters(n):
    d = {}
    for i in range(n):  # grown by insertion, as the optimisers grow their state
        d[2 * i] = None
    assert dict_bytes(n) == sys.getsizeof(d)


@pytest.mark.parametrize("fuse", [False, True])
def test_total_bytes_with_many_batches_add_the_permutation(fuse):
    """A data set of N samples: fit's permutation holds 8 bytes a sample, the
    rest of the step is one batch's (the docstring's accounting)."""
    sizes, batch, n_samples = [24] + [40] * 12 + [8], 32, 128
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((24, n_samples)), rng.standard_normal((8, n_samples))

    def run():
        net = mc.MLP(sizes, seed=0)
        net.fit(X, Y, "mse", epochs=2, batch_size=batch, optimizer="adam", strategy=mc.Sqrt(), fuse_update=fuse)

    run()
    measured = _traced(run)[1]
    total = mc.plan(mc.NetSpec(sizes), batch, mc.Sqrt(), fuse_update=fuse, targets="onehot",
                    optimizer="adam").total_bytes + 8 * (n_samples - batch)
    assert measured <= total <= 1.05 * measured + 64 * KIB, (measured, total)
