"""Budget(max_bytes): fits its budget (measured), never worse than Revolve at
the same bytes on uniform widths, clear errors."""

import re

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.core._validate import parse_bytes
from mlpckpt.core._losses import output_for
from mlpckpt.planning._strategies import griewank_t
from mlpckpt.testing import assert_bitwise_equal, make_data


def test_budget_parses_units():
    assert mc.Budget("50MiB").max_bytes == 50 * 2**20
    assert mc.Budget("2 KB").max_bytes == 2000
    assert mc.Budget(12345).max_bytes == 12345
    with pytest.raises(ValueError, match="^max_bytes:"):
        mc.Budget("lots")
    with pytest.raises(ValueError, match="^max_bytes:"):
        mc.Budget(-5)


@pytest.mark.parametrize("bad", ["lots", -5, 0, "0.5B", "nanMiB", "infGB", "3 TB", True, None])
def test_budget_errors_name_max_bytes(bad):
    # they used to say "size:", the name of the parser's argument
    with pytest.raises(ValueError, match=rf"^max_bytes: got {re.escape(repr(bad))}, expected"):
        mc.Budget(bad)
    with pytest.raises(ValueError, match=r"^size: got 'lots'"):  # the parser itself stays generic
        parse_bytes("lots")
    with pytest.raises(ValueError, match=r"^limit: got 'lots'"):
        parse_bytes("lots", name="limit")


@pytest.mark.parametrize("n", [10] + [pytest.param(n, marks=pytest.mark.slow) for n in (100, 1000)])
def test_never_more_evaluations_than_revolve_at_the_same_bytes(n, net_spec):
    net = mc.MLP([16] * (n + 1), seed=0) if n < 1000 else net_spec([64] * (n + 1))
    for slots in (0, 1, 2, 5, 9, 30):
        rev = mc.plan(net, 32, mc.Revolve(slots), out=True)
        bud = mc.plan(net, 32, mc.Budget(rev.peak_bytes), out=True)
        assert bud.peak_bytes <= rev.peak_bytes
        assert bud.forward_evals <= rev.forward_evals == griewank_t(n + 1, slots + 1)


@pytest.mark.slow
def test_budget_may_beat_revolve_with_segments(net_spec):
    net = net_spec([64] * 1001)
    sqrt = mc.plan(net, 256, mc.Sqrt(), out=True)
    bud = mc.plan(net, 256, mc.Budget(sqrt.peak_bytes), out=True)
    assert bud.forward_evals <= sqrt.forward_evals < mc.plan(net, 256, mc.Revolve(20), out=True).forward_evals


@pytest.mark.slow
def test_more_budget_never_costs_more_evaluations(net_spec):
    net = net_spec([32] * 301)
    evals = [mc.plan(net, 64, mc.Budget(f"{mib}MiB")).forward_evals for mib in (3, 3.5, 4, 6, 10, 20, 40)]
    assert evals == sorted(evals, reverse=True)
    assert evals[-1] == 300  # enough for plain backprop


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("out", [False, True])
def test_measured_peak_never_exceeds_the_budget(loss, out, measured_peak):
    rng = np.random.default_rng(7)
    sizes = [int(x) for x in rng.integers(8, 96, size=121)]  # uneven widths
    net = mc.MLP(sizes, activation="tanh", output=output_for(loss), seed=0)
    X, Y = make_data(sizes, 64, loss)
    grads = net.zeros_like_grads() if out else None
    floor = mc.plan(net, 64, mc.Revolve(0), loss, out=out).peak_bytes
    top = mc.plan(net, 64, mc.StoreAll(), loss, out=out).peak_bytes
    ref_loss, ref = net.loss_and_grad(X, Y, loss)
    for frac in (0.0, 0.05, 0.2, 0.5, 0.9):
        budget = mc.Budget(int(floor + frac * (top - floor)))
        sched = mc.plan(net, 64, budget, loss, out=out)
        assert sched.peak_bytes <= budget.max_bytes
        peak = measured_peak(lambda: net.loss_and_grad(X, Y, loss, strategy=budget, out=grads))
        assert peak <= budget.max_bytes
        got_loss, got = net.loss_and_grad(X, Y, loss, strategy=budget, out=grads)
        assert got_loss == ref_loss
        assert_bitwise_equal(ref.weights + ref.biases, got.weights + got.biases)


def test_infeasible_budget_names_the_smallest_that_works():
    net = mc.MLP([32] * 41, seed=0)
    X, Y = make_data(net.sizes, 16, "mse")
    with pytest.raises(ValueError, match=r"smallest feasible budget for this net and call, (\d+) B") as info:
        net.loss_and_grad(X, Y, "mse", strategy=mc.Budget("1KiB"))
    smallest = int(info.value.args[0].split("call, ")[1].split(" B")[0])
    assert smallest == mc.plan(net, 16, mc.Revolve(0)).peak_bytes
    net.loss_and_grad(X, Y, "mse", strategy=mc.Budget(smallest))  # exactly enough works
    with pytest.raises(ValueError, match="smallest feasible"):
        mc.plan(net, 16, mc.Budget(smallest - 1))


@pytest.mark.slow
def test_budget_plans_a_thousand_layers(net_spec):
    sched = mc.plan(net_spec([64] * 1001), 256, mc.Budget("4MiB"), out=True)
    assert sched.peak_bytes <= 4 * 2**20 and sched.forward_evals < 3 * 1000


def test_fit_with_budget():
    sizes = [4, 8, 8, 8, 8, 3]
    X, labels = make_data(sizes, 30, "cross_entropy")
    a = mc.MLP(sizes, output="softmax", seed=0)
    b = mc.MLP(sizes, output="softmax", seed=0)
    a.fit(X, labels, loss="cross_entropy", epochs=2, batch_size=10)
    b.fit(X, labels, loss="cross_entropy", epochs=2, batch_size=10, strategy=mc.Budget("40KiB"))
    assert_bitwise_equal(a.weights, b.weights)


@pytest.mark.slow
def test_uneven_widths_checkpoint_at_narrow_layers(net_spec, measured_peak):
    """Widths 8 and 256 alternate: the dynamic program stores the narrow
    activations and needs far fewer evaluations than any Revolve that fits."""
    n = 200
    sizes = [64] + [8 if k % 4 else 256 for k in range(1, n)] + [64]
    net = net_spec(sizes)
    budget = mc.Budget("1.5MiB")
    sched = mc.plan(net, 128, budget, out=True)
    revolve_fits = [
        mc.plan(net, 128, mc.Revolve(s), out=True)
        for s in range(0, 40)
    ]
    best_revolve = min(p.forward_evals for p in revolve_fits if p.peak_bytes <= budget.max_bytes)
    assert sched.peak_bytes <= budget.max_bytes
    assert sched.forward_evals < 0.8 * best_revolve
    # and it runs, bitwise equal, within the budget
    real = mc.MLP([8] + sizes[1:-1] + [4], seed=0)
    X, Y = make_data(real.sizes, 32, "mse")
    grads = real.zeros_like_grads()
    ref_loss, ref = real.loss_and_grad(X, Y, "mse")
    small = mc.Budget(mc.plan(real, 32, mc.Revolve(3), out=True).peak_bytes)
    peak = measured_peak(lambda: real.loss_and_grad(X, Y, "mse", strategy=small, out=grads))
    assert peak <= small.max_bytes
    loss, got = real.loss_and_grad(X, Y, "mse", strategy=small, out=grads)
    assert loss == ref_loss
    assert_bitwise_equal(ref.weights, got.weights)


@pytest.mark.parametrize("seed", range(12))
def test_uneven_widths_never_refuse_a_budget_that_fits(seed, net_spec):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 14))
    sizes = [int(x) for x in rng.choice([5, 20, 300], size=n + 1)]
    net = net_spec(sizes, activation="leaky_relu")
    for slots in range(0, n):
        for out in (False, True):
            rev = mc.plan(net, 64, mc.Revolve(slots), out=out)
            bud = mc.plan(net, 64, mc.Budget(rev.peak_bytes), out=out)  # must not raise
            assert bud.peak_bytes <= rev.peak_bytes
            assert bud.forward_evals <= rev.forward_evals


def test_budget_counted_forward_evals_equal_plan(run_schedule):
    sizes = [6] + [4 if k % 3 else 40 for k in range(1, 60)] + [3]
    net = mc.MLP(sizes, seed=0)
    X, Y = make_data(sizes, 16, "mse")
    floor = mc.plan(net, 16, mc.Revolve(0)).peak_bytes
    for extra in (0, 20_000, 80_000):
        budget = mc.Budget(floor + extra)
        predicted = mc.plan(net, 16, budget).forward_evals
        assert run_schedule(net, X, Y, "mse", budget).forward_evals == predicted
