"""A sweep's rows on disk: JSON lines (``.jsonl``) or CSV (``.csv``), appended
one whole row per write, as each point finishes.

A row is ``{"point", "result", "error", "traceback", "host", "versions",
"start", "duration_s"}``. A JSON-lines file holds one row per line as is.
A CSV file has one column per point key (plain values, for pandas), then
``result``, ``error`` and ``traceback`` (JSON text, so that every row is
one physical line), ``host``, ``python``,
``numpy``, ``mlpckpt``, ``start``, ``duration_s`` and ``key``: the point as
canonical JSON, which is what identifies it on resume.

A run killed mid-write leaves at most a partial last line; opening the file
again cuts it off before anything is appended, so the file never holds a
corrupt row. Rows are read with ``json`` and ``csv`` only (nothing is
unpickled).
"""

import csv
import io
import json
import os

from ..io._atomic import check_path, write_atomic

__all__ = ["point_key", "check_out", "open_rows", "append", "FORMATS"]

FORMATS = (".jsonl", ".csv")
_TAIL = ("result", "error", "traceback", "host", "python", "numpy", "mlpckpt", "start", "duration_s", "key")


def point_key(point):
    """The canonical JSON of a point: its identity in a file."""
    return json.dumps(point, sort_keys=True, separators=(",", ":"), allow_nan=False)


def check_out(out):
    """``out`` as a str path ending in ``.jsonl`` or ``.csv``, or None."""
    if out is None:
        return None
    path = check_path(out, "out")
    if not path.endswith(FORMATS):
        raise ValueError(f"out: expected a file name ending in .jsonl or .csv, got {path!r}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"out: the directory of {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"out: {path!r} is a directory, expected a file name")
    return path


def _csv_header(keys):
    return list(keys) + list(_TAIL)


def _csv_text(cells):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _csv_line(row, keys):
    versions = row["versions"]
    return _csv_text(
        [row["point"].get(k, "") for k in keys]
        + [json.dumps(row[k]) if row[k] is not None else "" for k in ("result", "error", "traceback")]
        + [row["host"], versions.get("python"), versions.get("numpy"),
           versions.get("mlpckpt"), row["start"], repr(row["duration_s"]), point_key(row["point"])])


def _csv_row(cells):
    cell = dict(zip(_TAIL, cells[-len(_TAIL):]))
    return {"point": json.loads(cell["key"]),
            **{k: json.loads(cell[k]) if cell[k] else None for k in ("result", "error", "traceback")},
            "host": cell["host"],
            "versions": {k: cell[k] for k in ("python", "numpy", "mlpckpt")}, "start": cell["start"],
            "duration_s": float(cell["duration_s"])}


def _rows_of(path, keys, text):
    """The rows of a file's complete lines ``text``; ValueError unless they are this sweep's."""
    csv_file = path.endswith(".csv")
    try:
        if csv_file:
            reader = csv.reader(io.StringIO(text, newline=""))
            found = next(reader, None)
            if found != _csv_header(keys):
                raise ValueError(f"out: {path!r} has the columns {found}, expected {_csv_header(keys)} "
                                 "(another sweep's file, or not one: choose another name, or resume=False)")
            rows = [_csv_row(cells) for cells in reader]
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, csv.Error) as e:
        raise ValueError(f"out: {path!r} is not a sweep's {'CSV' if csv_file else 'JSON-lines'} "
                         f"file ({type(e).__name__}: {e})") from None
    if not all(isinstance(r, dict) and isinstance(r.get("point"), dict) for r in rows):
        raise ValueError(f"out: {path!r} holds lines that are not sweep rows")
    return rows


def open_rows(path, keys, resume):
    """Prepare ``path`` for appending and return the rows it already holds.

    Parameters
    ----------
    path : str
        Checked by :func:`check_out`.
    keys : list of str
        The point keys of this sweep (the CSV columns).
    resume : bool
        Keep the file's rows; else start a new file (written atomically).

    Returns
    -------
    list of dict
        Rows of the file, in order (empty without ``resume``).

    Raises
    ------
    ValueError
        The file cannot be read as rows of this format, or (CSV) its header
        differs from this sweep's columns.
    """
    csv_file = path.endswith(".csv")
    header = _csv_text(_csv_header(keys)) if csv_file else ""
    if not resume or not os.path.exists(path) or os.path.getsize(path) == 0:
        write_atomic(path, lambda fh: fh.write(header.encode()))
        return []
    with open(path, "rb") as fh:
        data = fh.read()
    complete, tail = data[: data.rfind(b"\n") + 1], data[data.rfind(b"\n") + 1 :]
    try:
        rows = _rows_of(path, keys, complete.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"out: {path!r} is not a sweep's file ({e})") from None
    if tail:  # a killed writer's partial last row, cut off only in a file recognised as a sweep's
        if not (complete if csv_file else tail.startswith(b'{"point"')):  # CSV: after its header
            raise ValueError(f"out: {path!r} ends in a line that is not a sweep row: {tail[:40]!r}")
        with open(path, "rb+") as fh:
            fh.truncate(len(complete))
    return rows


def append(path, row, keys):
    """Append one row as one write (flushed and synced: a kill loses at most this row)."""
    line = _csv_line(row, keys) if path.endswith(".csv") else json.dumps(row, allow_nan=True) + "\n"
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
