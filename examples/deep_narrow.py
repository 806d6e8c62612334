"""Train a 10,000-layer, width-64 tanh MLP in a few MiB of activation memory.

    python examples/deep_narrow.py [--depth 10000] [--steps 3] [--strategy sqrt|budget:8MiB]

Weights use the orthogonal initialisation with gain 1 (critical for tanh:
gradients neither vanish nor explode through 10,000 layers; see
paper_notes/deep_narrow.md). Each step is a fused plain-SGD step
(``fuse_update=True``): every layer is updated as soon as its gradient is
complete, so gradient memory is one layer. The script prints the
tracemalloc peak of each step (everything allocated beyond the weights)
and what plain backprop would need, as predicted by ``mlpckpt.plan``.
"""

import argparse
import time
import tracemalloc

import numpy as np

import mlpckpt as mc
from mlpckpt.planning._plan import parse

MIB = 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--strategy", default="sqrt", help="sqrt, revolve:S, budget:SIZE, ...")
    args = parser.parse_args(argv)

    n, w, b = args.depth, args.width, args.batch
    rng = np.random.default_rng(0)
    X = rng.standard_normal((w, b))
    target_map = np.linalg.qr(rng.standard_normal((w, w)))[0]
    Y = 0.5 * np.tanh(target_map @ X)  # a smooth target the deep net can fit

    t0 = time.perf_counter()
    net = mc.MLP([w] * (n + 1), activation="tanh", init="orthogonal", seed=0)
    weight_bytes = sum(W.nbytes + c.nbytes for W, c in zip(net.weights, net.biases))
    strategy = parse(args.strategy)
    print(f"{n} layers of width {w}, batch {b}: weights {weight_bytes / MIB:.1f} MiB "
          f"(built in {time.perf_counter() - t0:.1f} s)")

    store_all = mc.plan(net, b, mc.StoreAll(), "mse")
    ours = mc.plan(net, b, strategy, "mse", fuse_update=True)
    all_acts = n * w * b * X.itemsize
    print(f"plain backprop would need {store_all.peak_bytes / MIB:.1f} MiB beyond the weights "
          f"(plan: it holds {all_acts / MIB:.1f} MiB of activations after the forward pass, "
          f"and the gradients grow to {weight_bytes / MIB:.1f} MiB)")
    print(f"{strategy!r} with fused SGD: predicted {ours.peak_bytes / MIB:.2f} MiB, "
          f"{ours.forward_evals} forward evaluations ({ours.forward_evals / n:.2f} x n)")

    losses = []
    for step in range(args.steps):
        tracemalloc.start()
        t0 = time.perf_counter()
        history = net.fit(X, Y, loss="mse", epochs=1, batch_size=None, shuffle=False,
                          optimizer=mc.SGD(lr=args.lr), strategy=strategy, fuse_update=True)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        losses.append(history[0])
        print(f"step {step + 1}: loss {history[0]:.6f}  peak {peak / MIB:.2f} MiB beyond the weights  "
              f"{seconds:.1f} s", flush=True)
    final = net.loss_and_grad(X, Y, "mse", strategy=strategy)[0]
    print(f"loss after {args.steps} steps: {final:.6f} (from {losses[0]:.6f})")
    return 0 if final < losses[0] else 1


if __name__ == "__main__":
    raise SystemExit(main())
