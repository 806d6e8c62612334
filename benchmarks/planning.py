"""How long ``mc.plan(spec, batch, mc.Budget(b))`` takes on a first call,
what it finds (forward evaluations, the proved lower bound, the gap), and
the tracemalloc peak of a first ``loss_and_grad`` with a Budget (planning
included) against the budget. Every configuration runs in a fresh child
process (nothing cached), with a time limit::

    python benchmarks/planning.py --out benchmarks/results            # full run (minutes)
    python benchmarks/planning.py --quick --out /tmp/planning         # seconds

Writes ``planning.csv`` and ``planning.json`` to ``--out`` and prints one
line per configuration (progress on stderr).

Nets: *uneven*, ``sizes = np.random.default_rng(0).integers(16, 129, n + 1)``,
tanh, MSE, float64 (batch 64 with ``out=True``, batch 256 with
``out=False``); *uniform*, ``[64] * (n + 1)``, batch 256, ``out=True``.
Budgets are fractions of StoreAll's peak for the same call.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time

COLUMNS = ("kind", "net", "n", "batch", "out", "fraction", "budget_bytes", "storeall_peak_bytes",
           "time_s", "forward_evals", "evals_per_n", "peak_bytes", "lower_bound", "gap", "exact",
           "traced_peak_bytes", "status")
FRACTIONS = (0.02, 0.05, 0.10, 0.20, 0.40)


def _spec(net, n):
    import numpy as np

    import mlpckpt as mc

    sizes = [64] * (n + 1) if net == "uniform" else np.random.default_rng(0).integers(16, 129, n + 1).tolist()
    return mc.NetSpec(sizes, "tanh", "identity", "float64")


def child(cfg):
    """Run one configuration (in this fresh process); returns its row."""
    import importlib

    import mlpckpt as mc

    # mc.plan is the function: reach the modules (for their caches) by name
    planning, budgets = (importlib.import_module(f"mlpckpt.{m}") for m in ("plan", "budget"))
    spec = _spec(cfg["net"], cfg["n"])
    storeall = mc.plan(spec, cfg["batch"], mc.StoreAll(), out=cfg["out"]).peak_bytes
    budget = cfg.get("budget_bytes") or int(cfg["fraction"] * storeall)
    row = dict(cfg, budget_bytes=budget, storeall_peak_bytes=storeall)
    planning.compile_actions.cache_clear()
    budgets.solve.cache_clear()
    t0 = time.perf_counter()
    try:
        if cfg["kind"] == "traced":
            return dict(row, **_traced(spec, cfg, budget))
        s = mc.plan(spec, cfg["batch"], mc.Budget(budget), out=cfg["out"])
    except ValueError as exc:
        return dict(row, time_s=time.perf_counter() - t0, status=f"refused: {' '.join(str(exc).split())[:160]}")
    d = s.details
    return dict(row, time_s=time.perf_counter() - t0, forward_evals=s.forward_evals,
                evals_per_n=s.forward_evals / cfg["n"], peak_bytes=s.peak_bytes, lower_bound=d.get("lower_bound"),
                gap=d.get("gap"), exact=d.get("exact"), status="ok")


def _traced(spec, cfg, budget):
    """First loss_and_grad with Budget(budget), planning included, under tracemalloc."""
    import numpy as np

    import mlpckpt as mc
    from mlpckpt.bench import traced_peak

    net = mc.MLP(spec.sizes, activation="tanh", seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((spec.sizes[0], cfg["batch"]))
    Y = rng.standard_normal((spec.sizes[-1], cfg["batch"]))
    out = net.zeros_like_grads() if cfg["out"] else None
    t0 = time.perf_counter()
    peak = traced_peak(lambda: net.loss_and_grad(X, Y, "mse", strategy=mc.Budget(budget), out=out))
    s = mc.plan(spec, cfg["batch"], mc.Budget(budget), out=cfg["out"])
    return {"time_s": time.perf_counter() - t0, "traced_peak_bytes": peak, "peak_bytes": s.peak_bytes,
            "forward_evals": s.forward_evals, "evals_per_n": s.forward_evals / cfg["n"],
            "lower_bound": s.details.get("lower_bound"), "gap": s.details.get("gap"),
            "exact": s.details.get("exact"), "status": "ok"}


def configurations(quick=False):
    small, large = ((100, 300), (1000,)) if quick else ((1000, 10_000), (1000, 10_000, 100_000))
    cfgs = []
    for n in small:
        for batch, out in ((64, True), (256, False)):
            cfgs += [dict(kind="plan", net="uneven", n=n, batch=batch, out=out, fraction=f) for f in FRACTIONS]
    for n in large:
        fractions = (0.10,) if n >= 100_000 else (0.02, 0.10, 0.40)  # n = 10^5: one budget (minutes)
        cfgs += [dict(kind="plan", net="uniform", n=n, batch=256, out=True, fraction=f) for f in fractions]
    n_refuse = 1000 if quick else 100_000
    cfgs.append(dict(kind="refusal", net="uneven", n=n_refuse, batch=64, out=True, fraction=None, budget_bytes=4096))
    for n in ((100,) if quick else (300, 1000)):
        for net, batch in (("uneven", 64), ("uniform", 256)):
            cfgs += [dict(kind="traced", net=net, n=n, batch=batch, out=True, fraction=f) for f in (0.10, 0.40)]
    return cfgs


def run(cfg, timeout):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(cfg)], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(cfg, time_s=None, status=f"over {timeout:g} s (stopped)")
    if done.returncode != 0:
        return dict(cfg, status=f"failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="benchmarks/results", help="directory for planning.csv and planning.json")
    p.add_argument("--quick", action="store_true", help="small nets only (seconds)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per configuration (default 120)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    os.makedirs(args.out, exist_ok=True)
    cfgs, rows = configurations(args.quick), []
    for i, cfg in enumerate(cfgs):
        print(f"[{i + 1:2d}/{len(cfgs)}] {cfg['kind']} {cfg['net']} n={cfg['n']} batch={cfg['batch']} "
              f"out={cfg['out']} fraction={cfg['fraction']}", file=sys.stderr, flush=True)
        row = run(cfg, args.timeout)
        rows.append({k: row.get(k) for k in COLUMNS})
        print(json.dumps(rows[-1]), flush=True)
    with open(os.path.join(args.out, "planning.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(args.out, "planning.json"), "w") as f:
        json.dump({"columns": COLUMNS, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
