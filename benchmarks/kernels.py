"""The compiled float64 kernels: accuracy on many samples, and speed per element.

Accuracy: ulp distance to a long-double reference (``numpy.longdouble``, a
64-bit mantissa on x86-64), on ``--samples`` uniform points per range, for
every map and its derivative at the stored output (tests/execution/test_fastmath.py
checks fewer points against mpmath). Speed: median ns per element of one
``(64, 256)`` layer, NumPy's ufuncs (bias add, then the map) against the
fused compiled kernel, in one process.

Usage::

    python benchmarks/kernels.py [--samples 10000000]

To see a machine without AVX-512 on one that has it, run it with
``NPY_DISABLE_CPU_FEATURES=X86_V4 NUMBA_CPU_NAME=haswell``.
"""

import argparse
import os
import sys
import time

import numpy as np

from mlpckpt.core import _activations as activations
from mlpckpt.execution import _compiled as fastkernels

L = np.longdouble
REFERENCE = {
    "tanh": (lambda x: np.tanh(x.astype(L)), lambda a: (1 - a.astype(L)) * (1 + a.astype(L))),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x.astype(L))), lambda a: a.astype(L) * (1 - a.astype(L))),
    "softplus": (lambda x: np.log1p(np.exp(x.astype(L))), lambda a: -np.expm1(-a.astype(L))),
}
RANGES = {"tanh": [(-0.7, 0.7), (-20, 20)], "sigmoid": [(-40, 40), (-740, 0)],
          "softplus": [(-40, 40), (-740, 30)]}


def ulps(got, want):
    def ordered(x):
        i = x.view(np.int64)
        return np.where(i < 0, np.int64(-(2**63)) - i, i)
    return np.where(got == want, 0, np.abs(ordered(got) - ordered(want)))


def apply(kernel, x, da=None):
    z = x.reshape(1, -1).copy()
    if da is None:
        kernel(z, np.zeros((1, 1)))
        return z.ravel()
    d = da.reshape(1, -1).copy()
    kernel(z, d)
    return d.ravel()


def accuracy(samples, rng):
    print(f"accuracy: {samples} uniform samples per range, ulps against long double")
    for name, (ref, dref) in REFERENCE.items():
        for lo, hi in RANGES[name]:
            worst = dworst = 0
            for start in range(0, samples, 1_000_000):
                x = rng.uniform(lo, hi, min(1_000_000, samples - start))
                a = apply(fastkernels.FORWARD[name], x)
                worst = max(worst, int(ulps(a, ref(x).astype(np.float64)).max()))
                d = apply(fastkernels.DERIVATIVE[name], a, np.ones_like(a))
                dworst = max(dworst, int(ulps(d, dref(a).astype(np.float64)).max()))
            print(f"  {name:9s} [{lo:6g}, {hi:5g}]  map {worst} ulp, derivative {dworst} ulp")


def speed(rng, repeats=300):
    z0, b = rng.standard_normal((64, 256)), rng.standard_normal((64, 1))

    def ns(fn):
        times = []
        for _ in range(repeats):
            z = z0.copy()
            t = time.perf_counter()
            fn(z)
            times.append(time.perf_counter() - t)
        return 1e9 * float(np.median(times)) / z0.size

    print("speed: ns per element of a (64, 256) float64 layer, f(z + b)")
    for name in REFERENCE:
        numpy_map = activations.ACTIVATIONS[name][0]
        t_np = ns(lambda z: numpy_map(np.add(z, b, out=z)))
        t_nb = ns(lambda z: fastkernels.FORWARD[name](z, b))
        print(f"  {name:9s} NumPy {t_np:6.2f}  compiled {t_nb:6.2f}  ratio {t_np / t_nb:5.2f}x")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=10_000_000)
    args = p.parse_args(argv)
    rng = np.random.default_rng(2026)
    env = {k: os.environ[k] for k in ("NPY_DISABLE_CPU_FEATURES", "NUMBA_CPU_NAME") if k in os.environ}
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, emulation: {env or 'none'}")
    speed(rng)
    accuracy(args.samples, rng)


if __name__ == "__main__":
    main()
