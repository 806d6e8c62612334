"""Measure and plot memory and time against depth (``mlpckpt bench``).

Measuring and plotting are separate: :func:`run_memory` runs every
configuration in fresh child processes and writes CSV and JSON;
:func:`plot_results` turns rows or a CSV into PNG figures;
:func:`plot_schedule` draws one schedule. Matplotlib is imported lazily
(Agg backend), so measuring never needs it.

Modules: :mod:`~mlpckpt.bench.measure` (tracemalloc and RSS, machine
info), :mod:`~mlpckpt.bench.children` (the child processes and strategy
specs), :mod:`~mlpckpt.bench.run` (:func:`run_memory`),
:mod:`~mlpckpt.bench.results` (the typed :class:`Row`, CSV and JSON, the
slope fit) and :mod:`~mlpckpt.bench.plots` (one function per figure).
"""

from .children import MMAP_THRESHOLD, make_strategy, normalize_strategy
from .measure import MIB, traced_peak
from .plots import FIGURES, pareto_figure, plot_forward_evals, plot_memory, plot_results, plot_schedule, plot_time
from .results import COLUMNS, CSV_NAME, JSON_NAME, SLOPE_MIN_DEPTH, Row, fit_slope, read_csv, write_csv, write_json
from .run import (
    DEFAULT_DEPTHS,
    DEFAULT_REPEATS,
    DEFAULT_STRATEGIES,
    QUICK_DEPTHS,
    QUICK_REPEATS,
    QUICK_STRATEGIES,
    run_memory,
)

__all__ = [
    "DEFAULT_DEPTHS",
    "QUICK_DEPTHS",
    "DEFAULT_STRATEGIES",
    "QUICK_STRATEGIES",
    "DEFAULT_REPEATS",
    "QUICK_REPEATS",
    "COLUMNS",
    "CSV_NAME",
    "JSON_NAME",
    "FIGURES",
    "MIB",
    "MMAP_THRESHOLD",
    "SLOPE_MIN_DEPTH",
    "Row",
    "run_memory",
    "traced_peak",
    "normalize_strategy",
    "make_strategy",
    "read_csv",
    "write_csv",
    "write_json",
    "fit_slope",
    "plot_results",
    "plot_memory",
    "plot_time",
    "plot_forward_evals",
    "plot_schedule",
    "pareto_figure",
]
