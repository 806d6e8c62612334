"""The NumPy path of two versions of mlpckpt, interleaved in one run.

Each round runs one child process per version (``PYTHONPATH`` pointing at
its source tree, one BLAS thread, NumPy's kernels), alternating which goes
first; a child times every case ``--repeats`` times and reports the median.
The verdict per case is the median over rounds of new/old, so the machine's
drift between rounds cancels.

Cases: one ``loss_and_grad`` (tanh, float64, batch 256) at width 64 and at
width 8 (where per-layer Python overhead dominates), StoreAll and Sqrt, with
and without ``out=``; and ``plan`` of a Budget on a 1000-layer chain.

Usage::

    python benchmarks/version_ab.py OLD_TREE NEW_TREE [--rounds 9] [--repeats 7]

e.g. ``git worktree add /tmp/old cb28d8a`` and
``python benchmarks/version_ab.py /tmp/old .``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, statistics, sys, time
import numpy as np
import mlpckpt as mc
mc.set_kernels("numpy")
repeats = int(sys.argv[1])
rng = np.random.default_rng(0)
out = {}
for width, n in ((64, 256), (8, 1024)):
    net = mc.MLP([width] * (n + 1), activation="tanh", seed=0)
    X, Y = rng.standard_normal((width, 256)), rng.standard_normal((width, 256))
    for sname, strategy in (("StoreAll", mc.StoreAll()), ("Sqrt", mc.Sqrt())):
        for use_out in (False, True):
            grads = net.zeros_like_grads() if use_out else None
            net.loss_and_grad(X, Y, strategy=strategy, out=grads)  # schedule compiled, caches warm
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                net.loss_and_grad(X, Y, strategy=strategy, out=grads)
                ts.append(time.perf_counter() - t0)
            out[f"step w{width} n{n} {sname}{' out=' if use_out else ''}"] = statistics.median(ts)
net = mc.MLP([16] * 1001, activation="tanh", seed=0)
budget = mc.plan(net, 64, mc.Sqrt()).peak_bytes
ts = []
for r in range(max(1, repeats // 2)):
    t0 = time.perf_counter()
    mc.plan(net, 64, mc.Budget(budget + 64 * r))  # a new budget each time: no cached answer
    ts.append(time.perf_counter() - t0)
out["plan Budget w16 n1000"] = statistics.median(ts)
print(json.dumps(out))
"""


def run_child(tree, repeats):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MLPCKPT_KERNELS="numpy")
    res = subprocess.run([sys.executable, "-c", CHILD, str(repeats)], env=env, capture_output=True,
                         text=True, check=False, cwd=os.path.abspath(tree))
    if res.returncode:
        sys.exit(f"child for {tree} failed:\n{res.stderr.strip()}")
    return json.loads(res.stdout)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args(argv)
    old, new = [], []
    for r in range(a.rounds):
        order = [(a.old, old), (a.new, new)] if r % 2 == 0 else [(a.new, new), (a.old, old)]
        for tree, sink in order:
            sink.append(run_child(tree, a.repeats))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr, flush=True)
    print(f"old {a.old}, new {a.new}; {a.rounds} interleaved rounds of {a.repeats} repeats; NumPy kernels")
    print(f"{'case':34s} {'old ms':>9s} {'new ms':>9s} {'new/old':>8s}")
    for case in old[0]:
        o = statistics.median(x[case] for x in old)
        n = statistics.median(x[case] for x in new)
        ratio = statistics.median(y[case] / x[case] for x, y in zip(old, new))
        print(f"{case:34s} {1e3 * o:9.2f} {1e3 * n:9.2f} {ratio:8.3f}")


if __name__ == "__main__":
    main()
