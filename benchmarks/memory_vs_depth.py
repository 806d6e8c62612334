"""Measure memory, forward evaluations and time against depth; write CSV,
JSON and the figures. A thin wrapper over ``mlpckpt bench memory``::

    python benchmarks/memory_vs_depth.py --out bench_out          # full run
    python benchmarks/memory_vs_depth.py --quick --out bench_out  # under a minute

All options: ``python benchmarks/memory_vs_depth.py --help``.
"""

import sys

from mlpckpt.cli._main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "memory", *sys.argv[1:]]))
