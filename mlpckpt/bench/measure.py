"""Measuring one call, and the machine it ran on.

:func:`traced_peak` is the tests' and the benchmarks' memory protocol
(tracemalloc sees every NumPy data buffer); :func:`_rss_growth` is the
kernel's view (peak RSS), which follows the live activations only when
glibc returns freed blocks (see :mod:`mlpckpt.bench.children`).
"""

import gc
import os
import platform
import subprocess
import sys
import tracemalloc

import numpy as np

from ..execution._kernels import get_kernels

try:  # peak RSS: POSIX only
    import resource
except ImportError:
    resource = None

__all__ = ["MIB", "traced_peak", "cpu_info"]

MIB = 2.0**20
#: the source tree this copy of mlpckpt was imported from
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def traced_peak(call):
    """tracemalloc peak of ``call()`` above the memory traced before it (bytes).

    The protocol of the tests and the benchmarks: call once before to build
    and cache the schedule, then measure.

    Parameters
    ----------
    call : callable
        Called once, without arguments.

    Returns
    -------
    int
    """
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _current_rss():
    """Resident set size of this process now (bytes; Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss():
    """Reset the kernel's peak RSS (VmHWM, ru_maxrss) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_growth(call):
    """Peak RSS during ``call()`` above the RSS just before it (bytes), or -1
    when the peak cannot be reset (non-Linux); ru_maxrss is in KiB on Linux."""
    gc.collect()
    if resource is None or not _reset_peak_rss():
        return -1
    before = _current_rss()
    call()
    return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)


def _child_info():
    """Versions, BLAS build and runtime, CPU of this interpreter (a dict)."""
    cpu = cpu_info()
    info = {
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu["cpu_model"],
        "simd": {k: cpu[k] for k in ("avx2", "avx512f")} if cpu["avx2"] is not None else None,
        "kernels": list(get_kernels()),  # (setting, what runs on float64)
    }
    try:
        deps = np.show_config(mode="dicts").get("Build Dependencies", {})
        info["blas_build"] = {k: deps.get(k) for k in ("blas", "lapack") if k in deps}
    except Exception:  # older NumPy: no mode="dicts"
        info["blas_build"] = None
    try:
        import threadpoolctl

        info["blas_runtime"] = [
            {k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture", "threading_layer")}
            for d in threadpoolctl.threadpool_info()
        ]
    except Exception:  # optional
        info["blas_runtime"] = None
    return info


def cpu_info():
    """``{"cpu_model", "avx2", "avx512f"}`` from /proc/cpuinfo (Linux; the
    model falls back to ``platform.processor()``, the flags to None)."""
    model, flags = None, None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model is None:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and flags is None:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = {k: (k in flags if flags is not None else None) for k in ("avx2", "avx512f")}
    return {"cpu_model": model or platform.processor() or None, **simd}


def _git_state():
    """Commit and dirty flag of the source tree being measured, if it is a
    git checkout (None for an installed copy)."""
    if not os.path.exists(os.path.join(_ROOT, ".git")):  # a file in a worktree
        return None
    try:
        head = subprocess.run(["git", "-C", _ROOT, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", _ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head or None, "modified_files": dirty.splitlines() if dirty else []}


def _command_line():
    """The command that started this run, as typed."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if prog == "__main__.py":
        prog = "python -m mlpckpt"
    return " ".join([prog] + sys.argv[1:])
