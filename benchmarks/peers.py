"""mlpckpt against its peers (PyTorch eager, JAX jit) and two floors, one thread.

The net: ``[64] * (n + 1)``, tanh hidden, identity output, MSE, batch 256,
the same weights everywhere (copied from an mlpckpt MLP), for each depth in
``--depths`` and dtype in ``--dtypes``. One measurement is one gradient step
(forward, loss, backward; no optimiser). Variants (``benchmarks/peers_sides.py``):

* mlpckpt StoreAll, Sqrt, Revolve(10), Budget at Sqrt's planned peak, with
  ``out=`` gradient buffers and, where ``mc.Workspace`` exists, one workspace
  per variant (the output says which);
* PyTorch eager, plain and ``checkpoint_sequential`` with ceil(sqrt n)
  segments (``use_reentrant=False``);
* JAX ``jit(value_and_grad)``: a ``lax.scan`` over stacked weights, plain and
  with ceil(sqrt n) ``jax.checkpoint``ed segments;
* floors: the matmul-only floor (the 3 GEMMs of each layer, NumPy, no
  elementwise work) and Sqrt's recompute floor = StoreAll's time +
  (Sqrt's forward_evals - n) x one layer's measured forward, both per round.

One thread: the BLAS/OpenMP/XLA thread variables are set before NumPy
loads, ``torch.set_num_threads(1)``, and the process is pinned to one core
before JAX loads. Variants run in interleaved rounds, the order rotated each
round; each is reported as its median, ratios as the median of within-round
ratios; minor page faults per step as the median over rounds. torch and JAX
are optional: without them their rows are skipped with a message.

``--isa avx2`` re-executes the script with the environment that makes NumPy,
OpenBLAS, numba, ATen and XLA use AVX2 code on an AVX-512 machine, and checks
what took.

Usage::

    python benchmarks/peers.py [--depths 256,1024] [--dtypes float64,float32]
        [--repeats 7] [--isa native|avx2] [--json out.json] [--quick]
"""

import argparse
import importlib
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the peers_* modules
from peers_machine import AVX2_ENV, DROPPED, THREAD_ENV, XLA_ONE_THREAD, machine_info  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depths", default="256,1024", help="layers n, comma-separated (default 256,1024)")
    p.add_argument("--dtypes", default="float64,float32", help="default float64,float32")
    p.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default 7)")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--isa", choices=("native", "avx2"), default="native")
    p.add_argument("--core", type=int, default=None, help="core to pin to (default: the lowest allowed)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--no-jax", action="store_true", help="skip JAX even if installed")
    p.add_argument("--json", default=None, help="write every figure to this file")
    p.add_argument("--quick", action="store_true", help="n = 16, 32, 2 rounds (a smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.depths, args.repeats = "16,32", 2
    args.depths = [int(d) for d in args.depths.split(",")]
    args.dtypes = args.dtypes.split(",")
    if min(args.depths) < 2 or args.repeats < 1 or not set(args.dtypes) <= {"float64", "float32"}:
        p.error("--depths >= 2, --repeats >= 1, --dtypes of float64, float32")
    return args


def progress(msg):
    print(f"peers: {msg}", file=sys.stderr, flush=True)


def setup_process(args, argv):
    """Re-exec for --isa avx2, then one thread and one core (before NumPy/JAX load)."""
    if args.isa == "avx2" and os.environ.get("PEERS_ISA") != "avx2":
        env = dict(os.environ, PEERS_ISA="avx2")
        for k, v in AVX2_ENV.items():
            env[k] = f"{env[k]} {v}" if k == "XLA_FLAGS" and env.get(k) else v
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + list(argv), env)
    if args.isa == "native":  # an inherited OPENBLAS_CORETYPE=Haswell etc. would not be native
        DROPPED.update({k: os.environ.pop(k) for k in AVX2_ENV if k != "XLA_FLAGS" and k in os.environ})
    for var in THREAD_ENV:
        os.environ[var] = "1"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + XLA_ONE_THREAD).strip()
    core = args.core if args.core is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})  # XLA's pools ignore its flags; one core keeps it to one
    return core


def import_optional(name, skip):
    if skip:
        return None, f"{name}: skipped (--no-{name})"
    try:
        if name == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)  # float64 arrays stay float64
            return jax, None
        import torch

        torch.set_num_threads(1)
        return torch, None
    except ImportError:
        return None, f"{name}: not installed, its rows are skipped"


def timed_rounds(variants, repeats):
    """Interleaved rounds, the order rotated each round: seconds and minor faults."""
    import resource

    names = list(variants)
    times = {nm: [] for nm in names}
    faults = {nm: [] for nm in names}
    for r in range(repeats):
        k = r % len(names)
        for nm in names[k:] + names[:k]:
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            variants[nm]()
            t = time.perf_counter() - t0
            faults[nm].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            times[nm].append(t)
        progress(f"  round {r + 1}/{repeats}: " + ", ".join(f"{nm} {1e3 * times[nm][-1]:.1f}" for nm in names))
    return times, faults


def rel_diff(a, b):
    import numpy as np

    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def one_case(n, dtype, args, torch, jax, machine):
    import numpy as np

    import mlpckpt as mc
    from mlpckpt.execution._kernels import kernels_for
    from peers_sides import floor_variants, jax_variants, mlpckpt_variants, torch_backend_variants, torch_variants

    w, batch = args.width, args.batch
    net = mc.MLP([w] * (n + 1), activation="tanh", output="identity", dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((w, batch)).astype(dtype)
    Y = rng.standard_normal((w, batch)).astype(dtype)
    mcv, info = mlpckpt_variants(net, X, Y)
    variants = {nm: step for nm, (step, _) in mcv.items()}
    variants["mlpckpt StoreAll"]()
    ref_dw = mcv["mlpckpt StoreAll"][1].weights[0]
    agreement = {}
    for nm, (step, grads) in mcv.items():
        agreement[nm] = {"loss": step(), "dW0_rel": rel_diff(grads.weights[0], ref_dw)}
    for lib, build in ((torch, torch_variants), (jax, jax_variants)):
        if lib is None:
            continue
        progress(f"  n={n} {dtype}: building and compiling {lib.__name__}")
        side, dw0 = build(net, X, Y, lib)
        for nm, step in side.items():
            loss = step()  # warm-up: .grad buffers, jit compilation
            agreement[nm] = {"loss": loss, "dW0_rel": rel_diff(dw0(), ref_dw)}
        variants.update(side)
    torch_memory = None
    if torch is not None:  # mlpckpt on torch tensors, beside torch's own, by the same allocator
        from mlpckpt.backends._backends import get_backend
        from mlpckpt.bench.devmeasure import device_peak

        for nm, (step, grads) in torch_backend_variants(net, X, Y, torch).items():
            agreement[nm] = {"loss": step(), "dW0_rel": rel_diff(grads.weights[0].numpy(), ref_dw)}
            variants[nm] = step
        torch_memory = {nm: device_peak(get_backend("torch"), step) for nm, step in variants.items()
                        if nm.startswith(("mlpckpt[torch]", "torch "))}
    variants.update(floor_variants(net, X))
    for step in variants.values():
        step()
    times, faults = timed_rounds(variants, args.repeats)

    extra = info["sqrt_forward_evals"] - n
    per_layer = [t / n for t in times["layer forward x n"]]
    times["recompute floor (Sqrt)"] = [s + extra * t for s, t in zip(times["mlpckpt StoreAll"], per_layer)]

    def ratio(a, b):
        if a not in times or b not in times:
            return None
        return statistics.median(x / y for x, y in zip(times[a], times[b]))

    def find(prefix):
        return next((nm for nm in times if nm.startswith(prefix)), prefix)

    ratios = {
        "StoreAll / torch plain": ratio("mlpckpt StoreAll", "torch plain"),
        "StoreAll / jax plain": ratio("mlpckpt StoreAll", "jax plain"),
        "Sqrt / jax remat": ratio("mlpckpt Sqrt", find("jax remat")),
        "Sqrt / torch checkpoint": ratio("mlpckpt Sqrt", find("torch checkpoint")),
        "[torch] StoreAll / torch plain": ratio("mlpckpt[torch] StoreAll", "torch plain"),
        "[torch] Sqrt / torch checkpoint": ratio("mlpckpt[torch] Sqrt", find("torch checkpoint")),
        "Sqrt / recompute floor": ratio("mlpckpt Sqrt", "recompute floor (Sqrt)"),
        "StoreAll / matmul floor": ratio("mlpckpt StoreAll", "matmul floor"),
    }
    rows = {nm: {"median_s": statistics.median(ts), "times_s": ts,
                 "vs_storeall": ratio(nm, "mlpckpt StoreAll"),
                 "minflt_per_step": statistics.median(faults[nm]) if nm in faults else None}
            for nm, ts in times.items()}
    rows["layer forward x n"]["one_layer_s"] = statistics.median(per_layer)
    info["kernels_this_dtype"] = kernels_for(dtype)
    return {"depth": n, "dtype": dtype, "width": w, "batch": batch, "repeats": args.repeats,
            "mlpckpt": info, "agreement": agreement, "variants": rows, "ratios": ratios,
            "torch_memory_bytes": torch_memory, "machine": machine}


def print_case(case, skipped):
    m = case["machine"]
    isa = f"emulated AVX2 on {m['cpu']}" if m["isa"] == "avx2" else f"native on {m['cpu']}"
    simd = "avx512f" if m["avx512f"] else "avx2" if m["avx2"] else "no avx2"
    ws = "one mc.Workspace per mlpckpt variant" if case["mlpckpt"]["workspace"] else "no mc.Workspace"
    v = m["versions"]
    print(f"\nn = {case['depth']}, {case['dtype']}, width {case['width']}, batch {case['batch']}, "
          f"{case['repeats']} rounds; {isa} ({simd}), 1 thread on core {m['core']}; {ws}")
    print(f"  python {v['python']}, numpy {v['numpy']}, numba {v['numba']}, torch {v['torch']}, "
          f"jax {v['jax']}; BLAS {m['blas'].get('name')} {m['blas'].get('version')} "
          f"({m['blas']['openblas_core']}); mlpckpt kernels {m['kernels'][0]} -> {m['kernels'][1]} "
          f"({case['mlpckpt']['kernels_this_dtype']} on {case['dtype']}); {m['date']}")
    c = m["isa_check"]
    print(f"  ISA in use: numpy dispatch {'/'.join(c['numpy_dispatch_on'])}; OpenBLAS {c['openblas_core']}; "
          f"numba zmm {c.get('numba_fresh_loop_vector_regs', {}).get('zmm')}; "
          f"torch {c.get('torch_cpu_capability')}; XLA_FLAGS {m['threads_env']['XLA_FLAGS']}")
    for msg in skipped:
        print(f"  {msg}")
    print(f"  {'variant':<30s} {'median ms':>10s} {'/StoreAll':>10s} {'minflt/step':>12s}")
    for nm, r in case["variants"].items():
        flt = "" if r["minflt_per_step"] is None else f"{r['minflt_per_step']:.0f}"
        print(f"  {nm:<30s} {1e3 * r['median_s']:10.2f} {r['vs_storeall']:9.3f}x {flt:>12s}")
    print(f"  one layer forward {1e6 * case['variants']['layer forward x n']['one_layer_s']:.1f} us; "
          f"Sqrt forward_evals {case['mlpckpt']['sqrt_forward_evals']} (n = {case['depth']})")
    for k, val in case["ratios"].items():
        print(f"  {k:<28s} " + ("skipped" if val is None else f"{val:6.3f}x"))
    if case.get("torch_memory_bytes"):  # PyTorch's allocator (profiler memory events) for all four
        print("  torch allocator peak: " + "; ".join(
            f"{nm} {b / 2**20:.3f} MiB" for nm, b in case["torch_memory_bytes"].items()))
    print("  agreement vs mlpckpt StoreAll: " + "; ".join(
        f"{nm} loss {a['loss']:.10g} dW0 {a['dW0_rel']:.1e}" for nm, a in case["agreement"].items()))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    core = setup_process(args, argv)
    importlib.import_module("numpy")  # after the thread variables, before torch and jax

    torch, msg_t = import_optional("torch", args.no_torch)
    jax, msg_j = import_optional("jax", args.no_jax)
    skipped = [m for m in (msg_t, msg_j) if m]
    for m in skipped:
        print(f"peers: {m}")
    cases = []
    machine = None
    for dtype in args.dtypes:
        for n in args.depths:
            progress(f"n={n} {dtype}")
            case = one_case(n, dtype, args, torch, jax, machine or {})
            if machine is None:  # after the first kernels compiled, so the numba check can read one
                machine = machine_info(core, torch, jax)
                case["machine"] = machine
            cases.append(case)
            print_case(case, skipped)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "skipped": skipped, "cases": cases}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
