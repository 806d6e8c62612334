"""Result rows of ``mlpckpt bench memory``: one typed :class:`Row` per
``(depth, strategy)``, written as CSV and JSON, read back strictly, and the
log-log slope the plots and the summary report.

The CSV columns are the fields of :class:`Row`, in order; rows travel as
plain dicts with exactly those keys (``dataclasses.asdict``), so a CSV
written by an older version with the same columns reads back unchanged.
"""

import csv
import dataclasses
import json
import typing
from dataclasses import dataclass

import numpy as np

__all__ = ["Row", "COLUMNS", "CSV_NAME", "JSON_NAME", "SLOPE_MIN_DEPTH",
           "write_csv", "write_json", "read_csv", "fit_slope"]

#: file names written by run_memory
CSV_NAME = "memory_vs_depth.csv"
JSON_NAME = "memory_vs_depth.json"
#: slopes are fitted over depths >= this when at least two such depths exist
SLOPE_MIN_DEPTH = 64


@dataclass
class Row:
    """One measured ``(depth, strategy)``; None where nothing was measured.

    ``*_out`` fields: gradients preallocated (``out=``). Bytes are the
    backend's allocator's (tracemalloc's for NumPy) unless named ``rss``; ``prediction_error`` is
    ``predicted / measured - 1``; times are seconds of one ``loss_and_grad``.
    """

    depth: int
    width: int
    batch: int
    dtype: str
    loss: str
    activation: str
    init: str
    strategy: str
    strategy_repr: str | None = None
    budget_bytes: int | None = None
    raw_activation_bytes: int | None = None
    measured_peak_bytes_out: int | None = None
    predicted_peak_bytes_out: int | None = None
    predicted_activation_bytes_out: int | None = None
    prediction_error_out: float | None = None
    measured_peak_bytes: int | None = None
    predicted_peak_bytes: int | None = None
    predicted_activation_bytes: int | None = None
    prediction_error: float | None = None
    forward_evals_plan: int | None = None
    forward_evals_counted: int | None = None
    max_stored: int | None = None
    rss_growth_bytes_out: int | None = None
    rss_growth_bytes: int | None = None
    time_median_s: float | None = None
    time_min_s: float | None = None
    time_repeats: int | None = None
    time_ratio_storeall: float | None = None
    kernels: str | None = None  #: elementwise kernels that ran ("numba" or "numpy")
    backend: str | None = None  #: the array library (None: an older file, NumPy)
    device: str | None = None  #: its device ("cpu", "cuda:0", ...)
    error: str | None = None
    note: str | None = None


def _scalar(annotation):
    """``int`` for ``int | None``, and so on."""
    return next(t for t in (typing.get_args(annotation) or (annotation,)) if t is not type(None))


#: one CSV row per (depth, strategy), in this order
COLUMNS = [f.name for f in dataclasses.fields(Row)]
_TYPES = {f.name: _scalar(f.type) for f in dataclasses.fields(Row)}
#: what plotting a CSV needs
_REQUIRED = ("depth", "strategy", "width", "batch", "dtype", "activation", "loss",
             "measured_peak_bytes_out", "predicted_peak_bytes_out")


def _as_dict(row):
    return dataclasses.asdict(row) if isinstance(row, Row) else row


def write_csv(rows, path):
    """Write rows (:class:`Row` or dicts with keys :data:`COLUMNS`) as CSV;
    None as empty."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in map(_as_dict, rows):
            w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})


def write_json(rows, meta, path):
    """Write ``{"meta": meta, "columns": COLUMNS, "rows": rows}``."""
    with open(path, "w") as f:
        json.dump({"meta": meta, "columns": COLUMNS, "rows": [_as_dict(r) for r in rows]}, f, indent=1)


def _parse(path, line, key, text):
    if text in ("", None):
        return None
    kind = _TYPES.get(key, str)  # a column of another version: kept as text
    try:
        return int(float(text)) if kind is int else kind(text)
    except ValueError:
        raise ValueError(f"csv: {path!r} line {line} column {key!r}: "
                         f"expected a number, got {text!r}") from None


def read_csv(path):
    """Rows of a CSV written by :func:`~mlpckpt.bench.run_memory`, numbers parsed.

    Returns
    -------
    list of dict
        One per line, keyed by the file's columns.

    Raises
    ------
    ValueError
        Naming ``csv`` when the file lacks the needed columns, holds a
        non-number in a numeric column or no depth or strategy on a line.
    """
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = set(_REQUIRED) - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"csv: {path!r} lacks columns {sorted(missing)}; expected a file "
                                 "written by `mlpckpt bench memory`")
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {k: _parse(path, line, k, v) for k, v in raw.items()}
                for k in ("depth", "strategy"):
                    if row.get(k) is None:
                        raise ValueError(f"csv: {path!r} line {line}: column {k!r} is empty")
                rows.append(row)
    except UnicodeDecodeError:
        raise ValueError(f"csv: {path!r} is not a text CSV file") from None
    return rows


def fit_slope(depths, values, min_depth=SLOPE_MIN_DEPTH):
    """Least-squares slope of ``log(values)`` against ``log(depths)``.

    Uses the depths ``>= min_depth`` (the range the plots state) when at
    least two exist; with fewer, all depths when none reaches ``min_depth``
    (a quick run), else no slope (a strategy that stopped fitting early).

    Parameters
    ----------
    depths, values : sequences of numbers, same length
        Points with a missing or non-positive depth or value are left out.

    Returns
    -------
    float or None
        None with fewer than two usable depths.
    """
    pts = [(d, v) for d, v in zip(depths, values) if d and v and v > 0]
    big = [(d, v) for d, v in pts if d >= min_depth]
    if len(big) >= 2:
        pts = big
    elif big or any(d >= min_depth for d in depths if d):
        return None
    if len({d for d, _ in pts}) < 2:  # one depth: no slope
        return None
    x, y = np.log(np.array(pts, dtype=float)).T
    return float(np.polyfit(x, y, 1)[0])
