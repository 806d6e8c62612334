"""Everything that needs a GPU, in one command of a few minutes (issue 14).

For PyTorch on CUDA and, where installed, CuPy:

1. every strategy's loss and gradients bitwise equal to StoreAll's
   (deterministic kernels: ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` is set before
   CUDA starts, ``torch.use_deterministic_algorithms(True)``);
2. float64 gradients against NumPy's (max |diff| / max |g| per block);
3. plan's predicted device peak against the allocator's measured peak
   (``mlpckpt.bench.devmeasure``) for every strategy, with and without
   ``out=``, at n = 256 and 1024: ``measured <= predicted <= 1.05 * measured
   + 64 KiB``;
4. on PyTorch: device memory and step time of mlpckpt StoreAll and Sqrt
   against eager autograd and ``torch.utils.checkpoint.checkpoint_sequential``
   with the same segments (ceil(sqrt n), the same boundaries at these n),
   interleaved rounds, synchronised.

Writes a JSON report (``--out``, default ``gpu_check.json``) and prints a
summary; exits 1 if a check fails. Usage::

    python benchmarks/gpu_check.py [--depths 256,1024] [--width 64] [--batch 256] [--repeats 5]
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts

import numpy as np  # noqa: E402

import mlpckpt as mc  # noqa: E402
from mlpckpt.bench.devmeasure import device_peak  # noqa: E402

KIB = 1024


def strategies(n, net, batch):
    sqrt_peak = mc.plan(net, batch, mc.Sqrt()).peak_bytes  # fits with and without out=
    return {"storeall": mc.StoreAll(), "segments:8": mc.Segments(8), "sqrt": mc.Sqrt(),
            "revolve:4": mc.Revolve(4), "revolve:10": mc.Revolve(10), "budget:sqrt": mc.Budget(sqrt_peak)}


def check_backend(name, n, dtype, args, report):
    net = mc.MLP([args.width] * (n + 1), dtype=dtype, seed=0, backend=name, device=args.device)
    b = net.backend
    rng = np.random.default_rng(0)
    X64 = rng.standard_normal((args.width, args.batch)).astype(dtype)
    Y64 = rng.standard_normal((args.width, args.batch)).astype(dtype)
    X, Y = b.from_numpy(X64), b.from_numpy(Y64)
    case = {"backend": name, "device": b.device, "n": n, "dtype": dtype, "strategies": {}}
    base_loss, base = net.loss_and_grad(X, Y)
    base_np = [b.to_numpy(g) for g in base.weights + base.biases]
    if dtype == "float64":
        _, ref = net.to("numpy").loss_and_grad(X64, Y64)
        case["max_rel_diff_vs_numpy"] = max(float(np.max(np.abs(g - r)) / np.max(np.abs(r)))
                                            for g, r in zip(base_np, ref.weights + ref.biases))
    ok = True
    for spec, strategy in strategies(n, net, args.batch).items():
        row = {}
        for out in (True, False):
            grads = net.zeros_like_grads() if out else None
            value, g = net.loss_and_grad(X, Y, strategy=strategy, out=grads)  # warm: compiled
            if out:
                row["bitwise_equal"] = value == base_loss and all(
                    np.array_equal(b.to_numpy(a), r) for a, r in zip(g.weights + g.biases, base_np))
            del g
            measured = device_peak(b, lambda: net.loss_and_grad(X, Y, strategy=strategy, out=grads))
            sched = mc.plan(net, args.batch, strategy, out=out)
            key = "out" if out else "no_out"
            row[key] = {"measured": measured, "predicted": sched.peak_bytes,
                        "within": measured <= sched.peak_bytes <= 1.05 * measured + 64 * KIB,
                        "forward_evals": sched.forward_evals}
        ok &= row["bitwise_equal"] and row["out"]["within"] and row["no_out"]["within"]
        case["strategies"][spec] = row
        print(f"{name} n={n} {dtype} {spec:<12s} bitwise {row['bitwise_equal']}, peak(out=) "
              f"{row['out']['measured'] / 2**20:.3f} MiB, plan {row['out']['predicted'] / 2**20:.3f} MiB "
              f"({'ok' if row['out']['within'] else 'OUTSIDE'}), no out= "
              f"{'ok' if row['no_out']['within'] else 'OUTSIDE'}", flush=True)
    case["ok"] = bool(ok)
    report["cases"].append(case)
    return ok


def torch_peers(n, args, report):
    import torch

    dev = torch.device(args.device)
    dtype = "float32"
    net = mc.MLP([args.width] * (n + 1), dtype=dtype, seed=0, backend="torch", device=args.device)
    rng = np.random.default_rng(0)
    X = net.backend.from_numpy(rng.standard_normal((args.width, args.batch)).astype(dtype))
    Y = net.backend.from_numpy(rng.standard_normal((args.width, args.batch)).astype(dtype))
    mods = []
    for k in range(n):
        lin = torch.nn.Linear(args.width, args.width, device=dev)
        with torch.no_grad():
            lin.weight.copy_(net.weights[k])
            lin.bias.copy_(net.biases[k][:, 0])
        mods.append(torch.nn.Sequential(lin, torch.nn.Tanh()) if k < n - 1 else lin)
    model = torch.nn.Sequential(*mods)
    xt, yt = X.T.contiguous(), Y.T.contiguous()
    params = list(model.parameters())
    segments = math.isqrt(n - 1) + 1

    def torch_step(checkpointed):
        for p in params:
            if p.grad is not None:
                p.grad.zero_()
        out = (torch.utils.checkpoint.checkpoint_sequential(model, segments, xt, use_reentrant=False)
               if checkpointed else model(xt))
        torch.nn.functional.mse_loss(out, yt).backward()

    grads = net.zeros_like_grads()
    variants = {"mlpckpt StoreAll": lambda: net.loss_and_grad(X, Y, strategy=mc.StoreAll(), out=grads),
                "mlpckpt Sqrt": lambda: net.loss_and_grad(X, Y, strategy=mc.Sqrt(), out=grads),
                "torch plain": lambda: torch_step(False),
                f"torch checkpoint_sequential({segments})": lambda: torch_step(True)}
    for step in variants.values():
        step()
    memory = {nm: device_peak(net.backend, step) for nm, step in variants.items()}
    times = {nm: [] for nm in variants}
    names = list(variants)
    for r in range(args.repeats):
        for nm in names[r % len(names):] + names[:r % len(names)]:
            net.backend.synchronize()
            t0 = time.perf_counter()
            variants[nm]()
            net.backend.synchronize()
            times[nm].append(time.perf_counter() - t0)
    med = {nm: statistics.median(ts) for nm, ts in times.items()}
    ckpt = names[3]
    entry = {"n": n, "dtype": dtype, "segments": segments, "peak_bytes": memory, "median_s": med,
             "times_s": times,
             "ratios": {"StoreAll / torch plain (time)": statistics.median(
                            a / b for a, b in zip(times["mlpckpt StoreAll"], times["torch plain"])),
                        "Sqrt / checkpoint_sequential (memory)": memory["mlpckpt Sqrt"] / memory[ckpt]}}
    report["peers"].append(entry)
    for nm in names:
        print(f"peers n={n} {nm:<36s} peak {memory[nm] / 2**20:9.3f} MiB  time {1e3 * med[nm]:8.2f} ms", flush=True)
    print(f"  ratios: {entry['ratios']}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depths", default="256,1024")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="gpu_check.json")
    p.add_argument("--device", default="cuda", help="cuda (default), or cpu: a smoke test of this script")
    args = p.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: PyTorch sees no CUDA device; nothing to check", file=sys.stderr)
        return 2
    torch.use_deterministic_algorithms(True)
    cuda = args.device.startswith("cuda")
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "torch": torch.__version__,
              "device": args.device, "cuda": torch.version.cuda,
              "gpu": torch.cuda.get_device_name(0) if cuda else None,
              "numpy": np.__version__, "mlpckpt": mc.__version__, "settings": vars(args),
              "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
              "cases": [], "peers": [], "skipped": []}
    backends = ["torch"]
    try:
        if not cuda:
            raise ImportError("CuPy runs on CUDA only")
        import cupy

        report["cupy"] = cupy.__version__
        backends.append("cupy")
    except ImportError as exc:
        report["skipped"].append(f"cupy: {exc}")
    ok = True
    for name in backends:
        for n in depths:
            for dtype in ("float32", "float64"):
                try:
                    ok &= check_backend(name, n, dtype, args, report)
                except Exception as exc:  # one backend's failure must not hide the others'
                    ok = False
                    report["cases"].append({"backend": name, "n": n, "dtype": dtype, "error": repr(exc)})
                    print(f"{name} n={n} {dtype}: FAILED {exc!r}", flush=True)
    for n in depths:
        torch_peers(n, args, report)
    report["ok"] = bool(ok)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out}; all checks {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
