"""Peak memory of a call as each backend's allocator counts it, above what
is allocated at entry (paper_notes/backends.md, "Measuring"):

* NumPy: tracemalloc (:func:`mlpckpt.bench.measure.traced_peak`);
* PyTorch on CUDA: ``torch.cuda.max_memory_allocated`` after a reset (the
  caching allocator's blocks, 512-byte rounded; cuBLAS's workspace, made on
  a stream's first matmul and kept, is allocated before a warm call);
* CuPy: a ``cupy.cuda.MemoryHook`` summing the pool's rounded blocks as they
  are handed out and given back;
* PyTorch on the CPU: no allocator counter exists; the profiler's memory
  events (``profile_memory=True``) give every allocation and free, in order,
  and their running sum gives the peak (at the granularity of one operator:
  a temporary made and freed inside one ATen call is not seen).
"""

from .measure import traced_peak

__all__ = ["device_peak"]


def device_peak(backend, call):
    """Peak bytes above entry while ``call()`` runs, by ``backend``'s allocator.

    Parameters
    ----------
    backend : mlpckpt.backends._backends.Backend
    call : callable
        Run once.

    Returns
    -------
    int
    """
    if backend.is_numpy or backend.name == "array_api_strict":  # NumPy's buffers underneath
        return traced_peak(call)
    if backend.name == "torch":
        return _torch_cuda_peak(backend, call) if backend.is_cuda else _torch_cpu_peak(call)
    if backend.name == "cupy":
        return _cupy_peak(call)
    raise ValueError(f"backend: no allocator measurement for {backend!r}")


def _torch_cuda_peak(backend, call):
    import torch

    dev = torch.device(backend.device)
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev)
    call()
    torch.cuda.synchronize(dev)
    return torch.cuda.max_memory_allocated(dev) - before


def _torch_cpu_peak(call):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    cur = best = 0
    # each event's own allocations (children excluded), frees outside an op as "[memory]" events
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        cur += event.self_cpu_memory_usage
        best = max(best, cur)
    return best


def _cupy_peak(call):
    import cupy

    class Peak(cupy.cuda.MemoryHook):
        name = "mlpckpt_peak"

        def __init__(self):
            self.cur = self.best = 0

        def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id):
            self.cur += mem_size
            self.best = max(self.best, self.cur)

        def free_postprocess(self, device_id, mem_size, mem_ptr, pmem_id):
            self.cur -= mem_size

    cupy.cuda.Device().synchronize()
    hook = Peak()
    with hook:
        call()
        cupy.cuda.Device().synchronize()
    return hook.best
