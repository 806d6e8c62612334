"""Redraw the figures from a CSV written by ``mlpckpt bench memory``.
A thin wrapper over ``mlpckpt bench plot``::

    python benchmarks/plot.py bench_out/memory_vs_depth.csv --out benchmarks/figures
"""

import sys

from mlpckpt.cli._main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "plot", *sys.argv[1:]]))
