import os

# One BLAS thread: these small matmuls gain nothing from threads, and on a
# busy 2-core machine spinning threads slow them by up to 100x.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
