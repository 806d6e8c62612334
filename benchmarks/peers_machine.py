"""Machine facts for ``benchmarks/peers.py``: CPU, SIMD, BLAS, versions, kernels, ISA in use.

Imports nothing heavy at module level: ``peers.py`` sets the thread and ISA
environment before NumPy loads.
"""

import os

# What makes each library choose its AVX2 code paths on an AVX-512 CPU.
AVX2_ENV = {
    # X86_V4 alone leaves NumPy's AVX512_ICL/SPR dispatch targets on
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",
    "NUMBA_CPU_NAME": "haswell",
    # numba otherwise adds the host's features (+avx512f) to the named CPU
    "NUMBA_CPU_FEATURES": "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+lzcnt,+mmx,+movbe,"
                          "+popcnt,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave",
    "ATEN_CPU_CAPABILITY": "avx2",
    "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
}
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
DROPPED = {}  # what --isa native removed from the inherited environment
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def machine_info(core, torch, jax):
    """CPU, SIMD, BLAS, versions, kernels, emulation, date: recorded with every row."""
    import platform
    from datetime import datetime, timezone

    import numpy as np

    import mlpckpt.execution._kernels as mk
    from mlpckpt.bench.measure import cpu_info

    cpu = cpu_info()
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception as e:  # noqa: BLE001 -- recorded, not fatal
        blas = {"error": repr(e)}
    try:
        import threadpoolctl

        blas = dict(blas, threadpoolctl=threadpoolctl.threadpool_info())
    except ImportError:
        pass
    blas = dict(blas, openblas_core=openblas_core())
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("numba", "jaxlib", "mlpckpt"):
        try:
            versions[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            versions[mod] = None
    versions["torch"] = torch.__version__ if torch else None
    versions["jax"] = jax.__version__ if jax else None
    emulated = {k: os.environ[k] for k in AVX2_ENV if k in os.environ} if os.environ.get("PEERS_ISA") else {}
    return {
        "cpu": cpu["cpu_model"], "avx2": cpu["avx2"], "avx512f": cpu["avx512f"], "core": core,
        "blas": blas, "versions": versions, "kernels": list(mk.get_kernels()),
        "isa": "avx2" if os.environ.get("PEERS_ISA") == "avx2" else "native",
        "emulation_env": emulated, "native_dropped_env": DROPPED, "isa_check": isa_check(torch),
        "threads_env": {k: os.environ.get(k) for k in THREAD_ENV + ("XLA_FLAGS",)},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def openblas_core():
    """OpenBLAS's kernel family (``Haswell``, ``SkylakeX``...), from NumPy's copy."""
    import ctypes
    import glob

    import numpy as np

    for lib in glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "libscipy_openblas*.so")):
        for fn in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            f = getattr(ctypes.CDLL(lib), fn, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                return f().decode()
    return None


def isa_check(torch):
    """What each library actually uses: the evidence that an emulation took."""
    from numpy._core import _multiarray_umath as mu

    feats = mu.__cpu_features__
    out = {"numpy_dispatch_on": [t for t in mu.__cpu_dispatch__ if feats.get(t)],
           "openblas_core": openblas_core()}
    try:
        import numba

        out["numba_cpu"] = [numba.config.CPU_NAME, bool(numba.config.CPU_FEATURES)]
        import numpy as np

        # mlpckpt's kernels come from numba's cache (no asm to read): compile a fresh loop
        @numba.njit(cache=False)
        def axpy(x, y):
            for i in range(x.size):
                y[i] += np.tanh(x[i]) * 2.5

        axpy(np.ones(64), np.ones(64))
        asm = "".join(axpy.inspect_asm().values())
        out["numba_fresh_loop_vector_regs"] = {r: asm.count(r) for r in ("xmm", "ymm", "zmm")}
    except Exception as e:  # noqa: BLE001 -- no numba, or no kernel compiled yet
        out["numba_cpu"] = repr(e)
    if torch is not None:
        out["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return out
