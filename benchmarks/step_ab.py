"""Before and after issue 13 in one process: NumPy's or the compiled kernels,
with and without a Workspace, StoreAll and Sqrt, interleaved rounds.

Prints the median time of one ``loss_and_grad`` (width 64, batch 256,
float64, tanh, ``out=``), its ratio to NumPy's kernels without a workspace
(median of within-round ratios) and the minor page faults of a step; then
the minor page faults of each epoch of a Sqrt ``fit`` after the first.

Usage::

    python benchmarks/step_ab.py [n]
    NPY_DISABLE_CPU_FEATURES=X86_V4 OPENBLAS_CORETYPE=Haswell NUMBA_CPU_NAME=haswell python benchmarks/step_ab.py 256
"""

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import mlpckpt as mc  # noqa: E402


def main(n=256, rounds=7):
    net = mc.MLP([64] * (n + 1), activation="tanh", seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((64, 256)), rng.standard_normal((64, 256))
    grads = net.zeros_like_grads()
    kinds = ["numpy"] + (["numba"] if mc.get_kernels()[1] == "numba" else [])
    variants = {}
    for kern in kinds:
        for strategy in (mc.StoreAll(), mc.Sqrt()):
            for ws in (None, mc.Workspace()):
                def step(kern=kern, strategy=strategy, ws=ws):
                    mc.set_kernels(kern)
                    return net.loss_and_grad(X, Y, strategy=strategy, out=grads, workspace=ws)
                variants[(kern, repr(strategy), ws is not None)] = step
    for step in variants.values():
        step()  # compile, fill the workspaces
    names = list(variants)
    times, faults = {k: [] for k in names}, {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            variants[k]()
            times[k].append(time.perf_counter() - t0)
            faults[k].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    base = names[0]
    print(f"n = {n}, width 64, batch 256, float64, tanh, out=; {rounds} interleaved rounds")
    for k in names:
        ratio = statistics.median(a / b for a, b in zip(times[k], times[base]))
        print(f"kernels {k[0]:5s} {k[1]:10s} workspace {str(k[2]):5s} {1e3 * statistics.median(times[k]):7.1f} ms"
              f"  {ratio:.3f}x  minor faults per step {statistics.median(faults[k]):.0f}")
    mc.set_kernels("auto")
    fitted = mc.MLP([64] * (n + 1), seed=0)
    Xf, Yf = rng.standard_normal((64, 1024)), rng.standard_normal((64, 1024))
    marks = []
    fitted.fit(Xf, Yf, epochs=6, batch_size=256, strategy=mc.Sqrt(),
               callback=lambda epoch, loss: marks.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt))
    print("fit, Sqrt, 4 steps per epoch: minor faults per epoch after the first:", [int(x) for x in np.diff(marks)])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
