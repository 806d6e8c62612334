"""Record what planning gives today, so that a refactoring can prove it
changed nothing (issue 10).  Run from the repository root:

    python tests/data/make_baseline.py

It uses the public API only (``mc.plan`` on a net description), so it runs
unchanged before and after a refactoring; ``tests/integration/test_baseline.py``
compares the library with the committed ``baseline.json``.
"""

import hashlib
import json
import math
import os
import sys
from types import SimpleNamespace

import numpy as np

import mlpckpt as mc

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "baseline.json")
MAX_N = 1000


def digest(actions):
    return hashlib.sha256(repr(tuple(tuple(int(x) for x in a) for a in actions)).encode()).hexdigest()[:16]


def spec(sizes, activation="tanh", output="identity", dtype="float64"):
    sizes = tuple(sizes)
    acts = activation if isinstance(activation, list) else [activation] * (len(sizes) - 2)
    return SimpleNamespace(sizes=sizes, activations=acts, output=output, dtype=np.dtype(dtype))


def fixed_strategies(n):
    """The strategies of issue 10's "Done means", keyed by a stable name."""
    root = math.isqrt(n - 1) + 1 if n > 1 else 1
    out = {"storeall": mc.StoreAll(), "sqrt": mc.Sqrt()}
    for name, k in (("1", 1), ("2", 2), ("3", 3), ("root", root), ("n-1", max(n - 1, 1)),
                    ("n", n), ("n+1", n + 1)):
        out[f"segments:{name}"] = mc.Segments(k)
    for name, s in (("0", 0), ("1", 1), ("2", 2), ("3", 3), ("9", 9), ("n-1", max(n - 1, 0))):
        out[f"revolve:{name}"] = mc.Revolve(s)
    return out


def fixed_records(max_n=MAX_N, start=1):
    """{strategy name: [[digest, forward_evals, max_stored] for n in start..max_n]}."""
    records = {}
    for n in range(start, max_n + 1):
        net = spec([8] * (n + 1))
        for name, strategy in fixed_strategies(n).items():
            s = mc.plan(net, 4, strategy, "mse")
            records.setdefault(name, []).append([digest(s.actions), s.forward_evals, s.max_stored])
    return records


def _uneven(n, seed):
    rng = np.random.default_rng(seed)
    return [int(w) for w in rng.integers(4, 160, size=n + 1)]


def call_cases():
    """Calls whose every plan figure is recorded, for fixed strategies and Budgets."""
    cases = []
    for loss, output, targets in (("mse", "identity", "labels"), ("mse", "softmax", "labels"),
                                  ("bce", "sigmoid", "labels"), ("cross_entropy", "softmax", "labels"),
                                  ("cross_entropy", "softmax", "onehot")):
        for dtype in ("float64", "float32"):
            for out, fuse in ((False, False), (True, False), (False, True)):
                for sizes_name, sizes in (("uniform64x40", [64] * 41), ("uneven30", _uneven(30, 1)),
                                          ("uneven200", _uneven(200, 2)), ("tiny", [3, 5, 2])):
                    act = "leaky_relu" if sizes_name == "uneven30" else "tanh"
                    cases.append(dict(sizes_name=sizes_name, sizes=sizes, activation=act,
                                      output=output, loss=loss, targets=targets, dtype=dtype,
                                      out=out, fuse_update=fuse, batch=32))
    return cases


def call_strategies(net, case):
    """Fixed strategies plus Budgets between the leanest and StoreAll's peak."""
    n = len(case["sizes"]) - 1
    out = {"storeall": mc.StoreAll(), "sqrt": mc.Sqrt(), "segments:3": mc.Segments(3),
           "revolve:2": mc.Revolve(2), "revolve:9": mc.Revolve(9)}
    kw = dict(out=case["out"], fuse_update=case["fuse_update"], targets=case["targets"])
    hi = mc.plan(net, case["batch"], mc.StoreAll(), case["loss"], **kw).peak_bytes
    lo = min(mc.plan(net, case["batch"], mc.Revolve(s), case["loss"], **kw).peak_bytes
             for s in range(min(n, 4)))
    for frac in (0.0, 0.05, 0.2, 0.5, 0.9, 1.0):
        b = int(lo + frac * (hi - lo))
        out[f"budget:{b}"] = mc.Budget(b)
    out[f"budget:{max(lo - 1, 1)}"] = mc.Budget(max(lo - 1, 1))  # refused
    return out


def case_records(case):
    """The records of one case of :func:`call_cases`, one per strategy."""
    rows = []
    net = spec(case["sizes"], case["activation"], case["output"], case["dtype"])
    for name, strategy in call_strategies(net, case).items():
        row = {k: v for k, v in case.items() if k != "sizes"}
        row["strategy"] = name
        try:
            s = mc.plan(net, case["batch"], strategy, case["loss"], out=case["out"],
                        fuse_update=case["fuse_update"], targets=case["targets"])
        except ValueError as exc:
            row["error"] = str(exc)
        else:
            row.update(digest=digest(s.actions), forward_evals=s.forward_evals,
                       max_stored=s.max_stored, peak_bytes=s.peak_bytes,
                       activation_bytes=s.activation_bytes)
        rows.append(row)
    return rows


def call_records():
    return [row for case in call_cases() for row in case_records(case)]


def numpy_kernels():
    """The record's bytes are those of NumPy's kernels (it was made before
    the compiled ones existed, whose forward has no ufunc buffer): the
    setting for a process that compares with it."""
    mc.set_kernels("numpy")


def main():
    numpy_kernels()
    data = {"max_n": MAX_N, "fixed": fixed_records(), "calls": call_records()}
    with open(PATH, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    print(f"wrote {PATH}: {sum(len(v) for v in data['fixed'].values())} fixed records, "
          f"{len(data['calls'])} call records", file=sys.stderr)


if __name__ == "__main__":
    main()
