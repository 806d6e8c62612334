"""Time of one loss_and_grad with and without record=mc.LayerStats(), side by side.

Rounds interleave the two calls (the machine is shared and noisy); the figure
is the median over rounds of t(record) / t(plain) within a round.

Run: ``python benchmarks/layerstats_overhead.py`` (about a minute).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import mlpckpt as mc  # noqa: E402


def ratio(width, depth, batch, strategy, dtype, rounds=9):
    net = mc.MLP([width] * (depth + 1), dtype=dtype, seed=0)
    X = np.random.default_rng(0).standard_normal((width, batch)).astype(dtype)
    out, stats = net.zeros_like_grads(), mc.LayerStats()
    calls = {"plain": lambda: net.loss_and_grad(X, X, strategy=strategy, out=out),
             "record": lambda: net.loss_and_grad(X, X, strategy=strategy, out=out, record=stats)}
    for call in calls.values():
        call()
    ratios = []
    for _ in range(rounds):
        t = {}
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            t[name] = time.perf_counter() - t0
        ratios.append(t["record"] / t["plain"])
    return statistics.median(ratios), min(ratios), max(ratios)


if __name__ == "__main__":
    print("| width | depth | batch | strategy | dtype | t(record)/t(plain) median [min, max] |")
    print("|---|---|---|---|---|---|")
    for width, depth, batch in ((8, 1024, 256), (64, 256, 256), (256, 64, 256)):
        for strategy in (mc.StoreAll(), mc.Sqrt()):
            for dtype in ("float64", "float32"):
                med, lo, hi = ratio(width, depth, batch, strategy, dtype)
                print(f"| {width} | {depth} | {batch} | {strategy!r} | {dtype} | {med:.2f} [{lo:.2f}, {hi:.2f}] |",
                      flush=True)
