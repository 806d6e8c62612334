"""mlpckpt.bench.results: the typed Row, CSV and JSON written and read back
strictly, and the log-log slope."""

import csv
import dataclasses
import json
import pathlib

import numpy as np
import pytest

from mlpckpt import bench
from mlpckpt.bench import COLUMNS, Row, fit_slope, read_csv, write_csv, write_json

COMMITTED = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "memory_vs_depth.csv"


def _rows():
    full = Row(depth=8, width=4, batch=2, dtype="float64", loss="mse", activation="tanh", init="xavier",
               strategy="revolve:2", strategy_repr="Revolve(slots=2)", measured_peak_bytes_out=1234,
               predicted_peak_bytes_out=1300, prediction_error_out=1300 / 1234 - 1.0, time_median_s=1e-3,
               time_ratio_storeall=1.25, note="without out=: a note, with a comma")
    failed = Row(depth=16, width=4, batch=2, dtype="float64", loss="mse", activation="tanh", init="xavier",
                 strategy="budget:1KiB", error="strategy: Budget(1024 B) is below ...")
    return [full, failed]


def test_columns_are_the_row_fields_in_the_committed_order():
    assert COLUMNS == [f.name for f in dataclasses.fields(Row)]
    with open(COMMITTED, newline="") as f:
        assert next(csv.reader(f)) == COLUMNS


def test_committed_csv_reads_with_typed_values():
    rows = read_csv(COMMITTED)
    assert rows and all(r["depth"] >= 1 for r in rows)
    for r in rows:
        assert isinstance(r["measured_peak_bytes_out"], int)
        assert isinstance(r["prediction_error_out"], float)
        assert isinstance(r["strategy"], str)
        assert r["error"] is None


def test_csv_round_trip(tmp_path):
    rows = _rows()
    path = tmp_path / "r.csv"
    write_csv(rows, path)
    back = read_csv(path)
    assert back == [dataclasses.asdict(r) for r in rows]
    assert type(back[0]["time_median_s"]) is float and type(back[0]["depth"]) is int
    # dicts write the same file as Rows
    path2 = tmp_path / "d.csv"
    write_csv([dataclasses.asdict(r) for r in rows], path2)
    assert path2.read_text() == path.read_text()


def test_json_holds_columns_rows_and_meta(tmp_path):
    path = tmp_path / "r.json"
    write_json(_rows(), {"date": "today"}, path)
    doc = json.loads(path.read_text())
    assert doc["columns"] == COLUMNS and doc["meta"] == {"date": "today"}
    assert doc["rows"][1]["error"].startswith("strategy:") and doc["rows"][1]["time_median_s"] is None


def test_read_csv_keeps_a_foreign_column_as_text(tmp_path):
    path = tmp_path / "r.csv"
    write_csv(_rows(), path)
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0] + ",extra"] + [line + ",7" for line in text[1:]]) + "\n")
    assert [r["extra"] for r in read_csv(path)] == ["7", "7"]


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda h, r: ("a,b", "1,2"), r"lacks columns \['activation', 'batch', 'depth'"),
        (lambda h, r: (h, r.replace("8,", "eight,", 1)), r"line 2 column 'depth': expected a number, got 'eight'"),
        (lambda h, r: (h, r.replace("1234", "12x4")), r"line 2 column 'measured_peak_bytes_out'"),
        (lambda h, r: (h, r.replace("8,", ",", 1)), r"line 2: column 'depth' is empty"),
    ],
)
def test_read_csv_is_strict(tmp_path, edit, match):
    path = tmp_path / "r.csv"
    write_csv(_rows()[:1], path)
    header, row = path.read_text().splitlines()
    path.write_text("\n".join(edit(header, row)) + "\n")
    with pytest.raises(ValueError, match="csv: .*" + match):
        read_csv(path)


def test_read_csv_refuses_a_binary_file(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(ValueError, match="not a text CSV file"):
        read_csv(path)


def test_fit_slope():
    depths = [8, 16, 32, 64, 128, 256]
    assert bench.fit_slope(depths, [d**0.5 for d in depths]) == pytest.approx(0.5)
    assert bench.fit_slope([64], [1.0]) is None


def test_fit_slope_range_rules():
    small = [8, 16, 32]
    # no depth reaches 64 (a quick run): all depths
    assert fit_slope(small, [3.0 * d**1.5 for d in small]) == pytest.approx(1.5)
    # the fit uses the depths >= 64 only: the small ones do not bend it
    depths = [8, 16, 64, 128, 256]
    values = [1.0, 1.0] + [d**2.0 for d in depths[2:]]
    assert fit_slope(depths, values) == pytest.approx(2.0)
    # only one depth >= 64 measured (a strategy that stopped fitting): no slope
    assert fit_slope([8, 16, 32, 64], [1.0, 2.0, 4.0, 8.0]) is None
    # missing and non-positive values are left out
    assert fit_slope([64, 128, 256], [None, 2.0, 4.0]) == pytest.approx(1.0)
    assert fit_slope([8, 16], [1.0, 0.0]) is None


def test_fit_slope_is_least_squares():
    rng = np.random.default_rng(0)
    depths = [64, 128, 256, 512, 1024]
    values = [d**0.5 * float(np.exp(rng.normal(0.0, 0.1))) for d in depths]
    x, y = np.log(depths), np.log(values)
    expected = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    assert fit_slope(depths, values) == pytest.approx(expected, rel=1e-12)
