"""mlpckpt against PyTorch on the same deep-narrow MLP: live memory and time.

The net: ``depth`` layers of ``width`` x ``width`` (default 1024 x 64),
tanh hidden, identity output, MSE, float64, batch 256, the same weights on
both sides (copied from mlpckpt). Four variants of one gradient step
(forward, loss, backward; no optimiser):

* mlpckpt ``StoreAll()`` and ``Sqrt()``, gradients preallocated (``out=``);
* PyTorch plain autograd, and ``torch.utils.checkpoint.checkpoint_sequential``
  with ``ceil(sqrt(depth))`` segments (``use_reentrant=False``) over a
  ``Sequential`` of one module per layer (``Linear`` + ``Tanh``), so both
  sides checkpoint segments of whole layers; the ``.grad`` buffers already
  allocated by a first step and zeroed in place.

Memory: mlpckpt's tracemalloc peak of one call above what was traced before
it (as ``mlpckpt bench``); PyTorch's peak of live CPU tensor bytes during
one step, from the profiler (``profile_memory=True``): every allocation and
free of the CPU allocator is an event with a signed byte count, and the
events, replayed in time order, give the live-bytes curve whose maximum is
the peak above the step's start. Both count every buffer the step
allocates (activations, autograd's saved tensors, workspace), neither
counts what existed before it (weights, inputs, gradient buffers).

Time: 1 thread on both sides (``OPENBLAS_NUM_THREADS=1`` etc. before NumPy
loads, ``torch.set_num_threads(1)``); the variants run in interleaved rounds
and each is reported as the median over rounds, ratios as the median of
within-round ratios.

Usage::

    python benchmarks/torch_compare.py [--depth 1024] [--repeats 7] [--json out.json]

Without PyTorch it prints a skip message and exits 0. PyTorch is not a
dependency of mlpckpt; this comparison used ``pip install torch==2.13.0``
(CPU).
"""

import argparse
import json
import math
import os
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=1024, help="layers n (default 1024)")
    p.add_argument("--width", type=int, default=64, help="width (default 64)")
    p.add_argument("--batch", type=int, default=256, help="batch (default 256)")
    p.add_argument("--segments", type=int, default=None, help="checkpoint segments (default ceil(sqrt(n)))")
    p.add_argument("--repeats", type=int, default=7, help="timing rounds (default 7)")
    p.add_argument("--threads", type=int, default=1, help="threads on both sides (default 1)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    for name in ("depth", "width", "batch", "repeats", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: expected an int >= 1, got {getattr(args, name)}")
    if args.segments is not None and args.segments < 1:
        p.error(f"--segments: expected an int >= 1, got {args.segments}")
    return args


def main(argv=None):
    args = parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy or torch load BLAS
    try:
        import torch
    except ImportError:
        print("torch_compare: PyTorch is not installed (pip install torch==2.13.0 for a CPU build); "
              "skipping the comparison.")
        return 0

    import numpy as np

    import mlpckpt as mc

    torch.set_num_threads(args.threads)
    n, w, batch = args.depth, args.width, args.batch
    segments = args.segments or math.isqrt(n - 1) + 1
    MiB = 2.0**20

    # -- the same net on both sides --------------------------------------
    net = mc.MLP([w] * (n + 1), activation="tanh", output="identity", dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((w, batch))
    Y = rng.standard_normal((w, batch))
    grads = net.zeros_like_grads()
    mods = []
    for k in range(n):
        lin = torch.nn.Linear(w, w, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(net.weights[k]))
            lin.bias.copy_(torch.from_numpy(net.biases[k][:, 0]))
        # one module per layer, so that checkpoint_sequential's segments are
        # made of layers, as mlpckpt's are
        mods.append(torch.nn.Sequential(lin, torch.nn.Tanh()) if k < n - 1 else lin)
    model = torch.nn.Sequential(*mods)
    xt = torch.from_numpy(np.ascontiguousarray(X.T))  # (batch, w): one sample per row
    yt = torch.from_numpy(np.ascontiguousarray(Y.T))
    params = list(model.parameters())

    def torch_step(checkpointed):
        for p in params:
            if p.grad is not None:
                p.grad.zero_()  # in place: the buffers stay allocated
        if checkpointed:
            out = torch.utils.checkpoint.checkpoint_sequential(model, segments, xt, use_reentrant=False)
        else:
            out = model(xt)
        loss = torch.nn.functional.mse_loss(out, yt)
        loss.backward()
        return loss.detach()

    def mc_step(strategy):
        return net.loss_and_grad(X, Y, "mse", strategy=strategy, out=grads)

    variants = {
        "mlpckpt StoreAll": lambda: mc_step(mc.StoreAll()),
        "mlpckpt Sqrt": lambda: mc_step(mc.Sqrt()),
        "torch plain": lambda: torch_step(False),
        f"torch checkpoint_sequential({segments})": lambda: torch_step(True),
    }
    names = list(variants)
    print(f"torch_compare: n={n}, width {w}, batch {batch}, float64, tanh, mse; torch "
          f"{torch.__version__}, numpy {np.__version__}, {args.threads} thread(s)", file=sys.stderr)

    # warm-up (allocates .grad on the torch side, caches schedules), and agreement
    loss_mc, _ = mc_step(mc.StoreAll())
    loss_t = float(torch_step(False))
    g_t = model[0][0].weight.grad.numpy()
    rel = float(np.max(np.abs(grads.weights[0] - g_t)) / max(np.max(np.abs(g_t)), 1e-300))
    loss_c = float(torch_step(True))
    mc_step(mc.Sqrt())
    print(f"loss mlpckpt {loss_mc:.12g}, torch {loss_t:.12g} (checkpointed {loss_c:.12g}); "
          f"max rel. difference of dW[0]: {rel:.2e}", file=sys.stderr)

    # -- memory ------------------------------------------------------------
    from mlpckpt.bench import traced_peak

    def torch_peak(fn):
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        events = sorted(
            (e.start_ns(), e.nbytes())
            for e in prof.profiler.kineto_results.events()
            if e.name() == "[memory]"
        )
        live = peak = 0
        for _, nbytes in events:
            live += nbytes
            peak = max(peak, live)
        return peak, live

    memory = {}
    for name in names:
        if name.startswith("mlpckpt"):
            memory[name] = traced_peak(variants[name])
        else:
            memory[name], leftover = torch_peak(variants[name])
            if leftover:
                print(f"note: {name} left {leftover} B allocated after the step", file=sys.stderr)

    # -- time: interleaved rounds ------------------------------------------
    times = {name: [] for name in names}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{args.repeats}: "
              + ", ".join(f"{nm} {1e3 * times[nm][-1]:.0f} ms" for nm in names), file=sys.stderr)

    def ratio(a, b):
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    raw = n * w * batch * 8
    print(f"\nn = {n}, width {w}, batch {batch}, float64; n activations = {raw / MiB:.2f} MiB")
    print(f"{'variant':<36s} {'peak live':>12s} {'median time':>12s}")
    for name in names:
        print(f"{name:<36s} {memory[name] / MiB:8.2f} MiB {1e3 * statistics.median(times[name]):9.1f} ms")
    ckpt = names[3]
    ratios = {
        "mlpckpt Sqrt / StoreAll": ratio("mlpckpt Sqrt", "mlpckpt StoreAll"),
        "torch checkpoint / plain": ratio(ckpt, "torch plain"),
        "mlpckpt StoreAll / torch plain": ratio("mlpckpt StoreAll", "torch plain"),
        "mlpckpt Sqrt / torch checkpoint": ratio("mlpckpt Sqrt", ckpt),
    }
    for k, v in ratios.items():
        print(f"{k:<36s} {v:6.3f}x  (median of within-round ratios)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "depth": n, "width": w, "batch": batch, "segments": segments, "repeats": args.repeats,
                "threads": args.threads, "torch": torch.__version__, "numpy": np.__version__,
                "peak_bytes": memory, "times_s": times, "ratios": ratios,
                "loss": {"mlpckpt": loss_mc, "torch": loss_t, "torch_checkpoint": loss_c},
                "grad_rel_difference": rel,
            }, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
