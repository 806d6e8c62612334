"""pytest-benchmark suite: one ``loss_and_grad`` per strategy and depth.

Not collected by the default ``python -m pytest`` (which looks in tests/);
run with::

    python -m pytest benchmarks/test_speed.py --benchmark-enable

Width 64, batch 256, float64, tanh, MSE, gradients preallocated (``out=``).
Each non-StoreAll benchmark reports ``extra_info["ratio_to_storeall"]``: its
median over StoreAll's median at the same depth, measured in the same
session (StoreAll runs first at each depth). For ratios robust to load
drift, prefer ``mlpckpt bench memory``, which interleaves the strategies.
"""

import numpy as np
import pytest

import mlpckpt as mc

WIDTH, BATCH = 64, 256
DEPTHS = (64, 256, 1024)
STRATEGIES = {
    "storeall": mc.StoreAll(),
    "sqrt": mc.Sqrt(),
    "revolve10": mc.Revolve(10),
}
if hasattr(mc, "Budget"):
    STRATEGIES["budget4MiB"] = mc.Budget("4MiB")

_NETS = {}
_MEDIANS = {}


def _setup(depth):
    if depth not in _NETS:
        rng = np.random.default_rng(0)
        net = mc.MLP([WIDTH] * (depth + 1), activation="tanh", seed=0)
        X = rng.standard_normal((WIDTH, BATCH))
        Y = rng.standard_normal((WIDTH, BATCH))
        _NETS.clear()  # one depth alive at a time
        _NETS[depth] = (net, X, Y, net.zeros_like_grads())
    return _NETS[depth]


@pytest.mark.parametrize("name", list(STRATEGIES))
@pytest.mark.parametrize("depth", DEPTHS)
def test_loss_and_grad(benchmark, depth, name):
    net, X, Y, grads = _setup(depth)
    strategy = STRATEGIES[name]
    benchmark.group = f"loss_and_grad n={depth}"
    benchmark.extra_info.update(depth=depth, width=WIDTH, batch=BATCH, strategy=repr(strategy),
                                forward_evals=mc.plan(net, BATCH, strategy, out=True).forward_evals)
    rounds = 3 if depth >= 1024 else 7
    benchmark.pedantic(net.loss_and_grad, args=(X, Y, "mse"),
                       kwargs={"strategy": strategy, "out": grads},
                       rounds=rounds, iterations=1, warmup_rounds=1)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: ran once, nothing to report
        return
    median = stats.stats.median
    _MEDIANS[(depth, name)] = median
    ref = _MEDIANS.get((depth, "storeall"))
    if ref:
        benchmark.extra_info["ratio_to_storeall"] = round(median / ref, 3)
