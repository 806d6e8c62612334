"""Trainability of deep tanh nets against (sigma_w2, depth), with the mean-field bound 6 xi_c.

Schoenholz et al. (2017, "Deep Information Propagation") predict that a
random tanh net trains only while its depth is below about 6 xi_c, the
correlation depth, which diverges at the edge of chaos (chi1 = 1). This
script measures it on scikit-learn's digits:

* left: held-out accuracy of width-64 tanh nets, ``init=mc.Gaussian(sigma_w2,
  0.05)``, softmax cross-entropy, plain SGD (lr 0.02, batch 64) for a fixed
  number of epochs with Sqrt checkpointing, over a grid of sigma_w2 and
  depth, with ``6 xi_c(sigma_w2)`` from :mod:`mlpckpt.experiments.meanfield` drawn over it;
* right: how narrow nets depart from the wide-net theory: the median relative
  deviation of the measured variance of ``z[k]`` (``mc.LayerStats`` on the
  first forward pass at initialisation) from the length map's prediction,
  against width, with a ``1/sqrt(width)`` guide.

Every run is a point of ``mc.sweep`` (local worker processes by default;
``--scheduler tcp://host:8786`` for a Dask cluster); rows go to
``OUT/runs.jsonl`` and ``OUT/widths.jsonl`` as they finish, and a rerun
resumes. The figure is ``OUT/phase_diagram.png``.

Run: ``python examples/phase_diagram.py`` (the full grid, a few minutes on
2 cores; needs scikit-learn), or ``--quick`` (a 3 x 2 grid, seconds).
"""

import argparse
import json
import os
import time

import numpy as np

import mlpckpt as mc
from mlpckpt import meanfield

SIGMA_B2 = 0.05
WIDTH = 64
FULL = dict(sigma_w2=[1.0 + 0.25 * i for i in range(13)], depth=[10, 20, 30, 45, 60, 80, 100, 130], epochs=30,
            widths=[4, 8, 16, 32, 64, 128, 256, 512], width_sigma_w2=[1.3, 1.75, 2.5], seeds=[0, 1, 2, 3],
            probe_depth=30)
QUICK = dict(sigma_w2=[1.0, 1.75, 3.0], depth=[5, 15], epochs=2, widths=[8, 64], width_sigma_w2=[1.75],
             seeds=[0], probe_depth=10)


def digits():
    """Standardised 8x8 digits, one image per column: (X_train, y_train, X_test, y_test)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    X = data.data.T.astype(np.float64)
    X = (X - X.mean(axis=1, keepdims=True)) / (X.std(axis=1, keepdims=True) + 1e-8)
    return X[:, :1400], data.target[:1400], X[:, 1400:], data.target[1400:]


def train_point(sigma_w2, depth, epochs, seed=0):
    """Held-out accuracy after ``epochs`` of SGD (22 steps each) with Sqrt checkpointing."""
    Xtr, ytr, Xte, yte = digits()
    net = mc.MLP([64] + [WIDTH] * depth + [10], activation="tanh", output="softmax",
                 init=mc.Gaussian(sigma_w2, SIGMA_B2), seed=seed)
    losses = net.fit(Xtr, ytr, loss="cross_entropy", epochs=epochs, batch_size=64, optimizer="sgd", lr=0.02,
                     strategy=mc.Sqrt(), seed=seed)
    return {"accuracy": float(np.mean(net.predict(Xte) == yte)), "final_loss": losses[-1]}


def width_point(sigma_w2, width, depth, seed):
    """Measured variance of z[1..depth] at initialisation against the length map (MF1)."""
    X, y = digits()[:2]
    X, y = X[:, :256], y[:256]
    net = mc.MLP([64] + [width] * depth + [10], activation="tanh", output="softmax",
                 init=mc.Gaussian(sigma_w2, SIGMA_B2), seed=seed)
    stats = mc.LayerStats()
    net.loss_and_grad(X, y, loss="cross_entropy", strategy=mc.Sqrt(), record=stats)
    q = meanfield.length_path("tanh", sigma_w2 * float(np.mean(X * X)) + SIGMA_B2, depth, sigma_w2, SIGMA_B2)
    deviation = np.abs(stats.z_var[:depth] / q - 1.0)
    return {"median_deviation": float(np.median(deviation[1:])), "max_deviation": float(deviation.max())}


def six_xi_c(sigma_w2):
    return np.array([6.0 * meanfield.depth_scales("tanh", s, SIGMA_B2)[1] for s in sigma_w2])


def _edges(values):
    v = np.asarray(values, dtype=float)
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0]) if len(v) > 1 else v[0] - 0.5], mid,
                           [v[-1] + (v[-1] - mid[-1]) if len(v) > 1 else v[-1] + 0.5]])


def plot(grid, runs, widths, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = np.full((len(grid["depth"]), len(grid["sigma_w2"])), np.nan)
    for r in runs:
        if r["error"] is None:
            acc[grid["depth"].index(r["point"]["depth"]), grid["sigma_w2"].index(r["point"]["sigma_w2"])] = \
                r["result"]["accuracy"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    mesh = left.pcolormesh(_edges(grid["sigma_w2"]), _edges(grid["depth"]), acc, vmin=0.0, vmax=1.0,
                           cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=left, label="held-out accuracy")
    fine = np.linspace(grid["sigma_w2"][0], grid["sigma_w2"][-1], 400)
    left.plot(fine, six_xi_c(fine), color="white", lw=2, label=r"$6\,\xi_c(\sigma_w^2)$ (mean-field)")
    edge = fine[np.argmin(np.abs([meanfield.chi1("tanh", s, SIGMA_B2) - 1.0 for s in fine]))]
    left.axvline(edge, color="white", ls=":", lw=1.5, label=rf"$\chi_1 = 1$ at $\sigma_w^2$ = {edge:.2f}")
    left.set_ylim(_edges(grid["depth"])[0], _edges(grid["depth"])[-1])
    left.set_xlabel(r"$\sigma_w^2$ (weight variance $\times$ fan-in), $\sigma_b^2$ = 0.05")
    left.set_ylabel("depth (hidden tanh layers, width 64)")
    left.set_title(f"digits, SGD, {grid['epochs']} epochs, Sqrt checkpointing")
    left.legend(loc="upper right", fontsize=9, facecolor="0.3", labelcolor="white", framealpha=0.8)
    for s in grid["width_sigma_w2"]:
        pts = sorted((r["point"]["width"], r["result"]["median_deviation"]) for r in widths
                     if r["error"] is None and r["point"]["sigma_w2"] == s)
        by_width = {}
        for w, d in pts:
            by_width.setdefault(w, []).append(d)
        ws = sorted(by_width)
        right.plot(ws, [np.median(by_width[w]) for w in ws], "o-", label=rf"$\sigma_w^2$ = {s}")
    ws = np.array(grid["widths"], dtype=float)
    right.plot(ws, 1.0 / np.sqrt(ws), "k--", lw=1, label=r"$1/\sqrt{\mathrm{width}}$")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("width")
    right.set_ylabel(r"median over layers of $|\,\mathrm{var}(z_k)\,/\,q^k - 1\,|$")
    right.set_title(f"narrow nets against the length map (depth {grid['probe_depth']}, init)")
    right.legend(fontsize=9)
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 3 x 2 grid of 2 epochs (seconds)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "phase_diagram"),
                        help="directory of the rows and the figure (default examples/phase_diagram)")
    parser.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per CPU)")
    parser.add_argument("--scheduler", default=None, help="a Dask scheduler address instead")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    grid = QUICK if args.quick else FULL
    os.makedirs(args.out, exist_ok=True)
    engine = dict(workers=None if args.scheduler else args.workers, scheduler=args.scheduler,
                  progress=not args.no_progress)
    t0 = time.time()
    runs = mc.sweep(train_point, {"sigma_w2": grid["sigma_w2"], "depth": grid["depth"], "epochs": [grid["epochs"]]},
                    out=os.path.join(args.out, "runs.jsonl"), **engine)
    widths = mc.sweep(width_point, {"sigma_w2": grid["width_sigma_w2"], "width": grid["widths"],
                                    "depth": [grid["probe_depth"]], "seed": grid["seeds"]},
                      out=os.path.join(args.out, "widths.jsonl"), **engine)
    elapsed = time.time() - t0
    failed = [r for r in runs + widths if r["error"]]
    for r in failed:
        print(f"failed: {r['point']}: {r['error']}")
    path = os.path.join(args.out, "phase_diagram.png")
    plot(grid, runs, widths, path)
    bound = dict(zip(grid["sigma_w2"], six_xi_c(grid["sigma_w2"])))
    trained = [r for r in runs if r["error"] is None and r["result"]["accuracy"] > 0.5]
    inside = int(sum(r["point"]["depth"] <= bound[r["point"]["sigma_w2"]] for r in trained))
    print(f"{len(runs)} training runs, {len(widths)} width probes in {elapsed:.0f} s "
          f"(this run; rows read back from {args.out} are not timed again)")
    print(f"trained (held-out accuracy > 0.5): {len(trained)} of {len(runs)}; "
          f"{inside} of them at depth <= 6 xi_c")
    with open(os.path.join(args.out, "summary.json"), "w") as fh:
        json.dump({"grid": grid, "elapsed_s": elapsed, "trained": len(trained), "inside_6xi_c": inside}, fh, indent=1)
    print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
