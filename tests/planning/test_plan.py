"""plan(): the Call it describes, the cached compile, strategy specs, errors.

(``mc.plan`` is the function; the module's names are imported with
``from mlpckpt.planning._plan import ...``.)"""

import dataclasses

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.planning._plan import Call, check_strategy, compile_actions, compile_program, make_call, parse, plan_call
from mlpckpt.planning._strategies import griewank_t
from mlpckpt.testing import assert_bitwise_equal, make_data


def test_plan_at_ten_thousand_layers(net_spec):
    spec = net_spec([64] * 10_001)
    sqrt = mc.plan(spec, 256, mc.Sqrt())
    assert sqrt.forward_evals == 2 * 10_000 - 100 - 99
    rev = mc.plan(spec, 256, mc.Revolve(8))
    assert rev.forward_evals == griewank_t(10_001, 9) and rev.max_stored <= 11
    assert len(rev.actions) < rev.forward_evals  # ranges, not one action per evaluation


def test_call_carries_the_settings_and_is_frozen(net_spec):
    call = make_call(net_spec([5, 6, 7], output="softmax", dtype="float32"), 9, "cross_entropy",
                       out=True, fuse_update=False, targets="onehot")
    assert call == Call(sizes=(5, 6, 7), batch=9, dtype="float32", activations=("tanh",), loss="cross_entropy",
                        output="softmax", out=True, fuse_update=False, targets="onehot")
    assert (call.n_layers, call.itemsize) == (2, 4)
    assert hash(call) == hash(dataclasses.replace(call))
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.batch = 3
    sched = plan_call(mc.Sqrt(), call)
    assert sched.details == {"loss": "cross_entropy", "out": True, "fuse_update": False,
                             "targets": "onehot", "kernels": "numpy"}  # float32: NumPy's kernels
    wide = make_call(net_spec([5, 6, 7]), 9, workspace=True)
    assert (wide.kernels, wide.workspace) == (mc.get_kernels()[1], True)
    assert sched == mc.plan(net_spec([5, 6, 7], output="softmax", dtype="float32"), 9, mc.Sqrt(),
                            "cross_entropy", out=True, targets="onehot")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(batch_size=0), "^batch_size: expected an int >= 1"),
        (dict(batch_size=2.5), "^batch_size:"),
        (dict(out="yes"), "^out: expected True or False"),
        (dict(fuse_update=1), "^fuse_update: expected True or False"),
        (dict(loss="hinge"), "^loss: got 'hinge'"),
        (dict(loss="bce"), "^loss: 'bce' needs output='sigmoid'"),
        (dict(targets="probs"), "^targets: got 'probs'"),
        (dict(strategy=mc.Sqrt), r"^strategy: got .*expected StoreAll\(\)"),
    ],
)
def test_plan_refuses_bad_arguments(net, kwargs, message):
    args = dict(batch_size=4, strategy=mc.Sqrt(), loss="mse")
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        mc.plan(net, args.pop("batch_size"), args.pop("strategy"), args.pop("loss"), **args)


@pytest.mark.parametrize(
    "strategy",
    ["sqrt", 3, object(), [1], {}, mc.Sqrt, mc.StoreAll, mc.Segments],
    ids=["str", "int", "object", "list", "dict", "Sqrt_class", "StoreAll_class", "Segments_class"],
)
def test_bad_strategy(net, data, strategy):
    X, labels = data
    with pytest.raises(ValueError, match=r"^strategy: got .*expected StoreAll\(\)"):
        net.loss_and_grad(X, labels, "cross_entropy", strategy=strategy)
    w0 = [W.copy() for W in net.weights]
    with pytest.raises(ValueError, match=r"^strategy:"):
        net.fit(X, labels, "cross_entropy", epochs=1, strategy=strategy)
    assert_bitwise_equal(net.weights, w0)
    with pytest.raises(ValueError, match=r"^strategy:"):
        net.fit_lbfgs(X, labels, "cross_entropy", strategy=strategy)


def test_unhashable_strategy_is_refused_before_the_cache():
    @dataclasses.dataclass  # eq without frozen: unhashable
    class Mutable(mc.Strategy):
        k: int = 1

        def actions(self, call):
            return mc.StoreAll().actions(call)

    with pytest.raises(ValueError, match="^strategy:"):
        check_strategy(Mutable())
    with pytest.raises(ValueError, match="^strategy:"):
        check_strategy(mc.Strategy())  # the base says no schedule
    assert check_strategy(None) == mc.StoreAll()


def test_a_user_strategy_plans_and_runs_like_any_other():
    @dataclasses.dataclass(frozen=True)
    class EveryOther(mc.Strategy):
        """Checkpoint every second activation (Segments(n // 2) for even n)."""

        def actions(self, call):
            return mc.Segments(call.n_layers // 2).actions(call)

    net = mc.MLP([4] * 9, seed=0)
    X, Y = make_data(net.sizes, 3, "mse")
    sched = mc.plan(net, 3, EveryOther())
    assert sched.actions == mc.plan(net, 3, mc.Segments(4)).actions
    ref = net.loss_and_grad(X, Y, "mse")
    got = net.loss_and_grad(X, Y, "mse", strategy=EveryOther())
    assert got[0] == ref[0]
    assert_bitwise_equal(got[1].weights, ref[1].weights)


def test_compiled_schedules_are_cached_by_strategy_and_call():
    compile_actions.cache_clear()
    compile_program.cache_clear()
    a, b = mc.MLP([3, 5, 5, 2], seed=0), mc.MLP([3, 5, 5, 2], seed=1)
    X, Y = make_data(a.sizes, 4, "mse")
    a.loss_and_grad(X, Y, "mse", strategy=mc.Revolve(1))
    b.loss_and_grad(X, Y, "mse", strategy=mc.Revolve(1))  # same architecture: a hit
    info = compile_program.cache_info()  # the lowered program the executor runs
    assert (info.misses, info.hits) == (1, 1)
    assert compile_actions.cache_info().misses == 1  # compiled once, lowered once
    a.loss_and_grad(X[:, :3], Y[:, :3], "mse", strategy=mc.Revolve(1))  # another batch: a new call
    assert compile_program.cache_info().misses == 2 and compile_actions.cache_info().misses == 2


@pytest.mark.parametrize(
    "text,strategy",
    [
        ("storeall", mc.StoreAll()),
        ("SQRT", mc.Sqrt()),
        ("segments:4", mc.Segments(4)),
        ("revolve:0", mc.Revolve(0)),
        (" revolve : 8 ", mc.Revolve(8)),
        ("budget:2MiB", mc.Budget(2 * 2**20)),
        ("budget:1.5KB", mc.Budget(1500)),
        ("budget:123", mc.Budget(123)),
    ],
)
def test_parse_every_strategy(text, strategy):
    assert parse(text) == strategy


@pytest.mark.parametrize(
    "text,message",
    [
        ("fast", r"^strategy: got 'fast', expected storeall, sqrt"),
        ("sqrt:3", r"^strategy: got 'sqrt:3', expected"),
        ("revolve", r"^strategy: got 'revolve', expected"),
        ("revolve:x", r"^strategy: got 'revolve:x': expected an int, got 'x'"),
        ("segments:0", r"^strategy: got 'segments:0': Segments\(k\): expected an int >= 1"),
        ("revolve:-1", r"^strategy: got 'revolve:-1': Revolve\(slots\)"),
        ("budget:lots", r"^strategy: got 'budget:lots': size:"),
    ],
)
def test_parse_refuses_bad_specs(text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)


@pytest.mark.parametrize("net", ["foo", None, 8, [8, 8, 1], np.zeros((3, 3)), object()])
def test_plan_refuses_what_is_not_a_net(net):
    # "foo" used to raise AttributeError: 'str' object has no attribute 'sizes'
    with pytest.raises(ValueError, match=r"^net: expected an MLP \(or an object with sizes, activations, "
                       r"output and dtype\), got "):
        mc.plan(net, 8)
    with pytest.raises(ValueError, match=r"^net: .*, got 'foo'$"):
        make_call("foo", 8)


def test_plan_checks_a_net_descriptions_sizes(net_spec):
    spec = net_spec([3, 4, 2])
    spec.sizes = [3, 2.5, 2]  # used to be truncated to 2 by int()
    with pytest.raises(ValueError, match=r"^sizes:"):
        mc.plan(spec, 8)
