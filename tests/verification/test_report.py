"""Tests of the gradient-check report, mlpckpt/verification/_report.py: the verdict from
the rows, the worst row, the text table, the JSON-ready dict and the
"detectable" statements of eq. G9 (paper_notes/gradient_checking.md)."""

import json

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.verification import _report as report
from mlpckpt.verification._report import GradcheckReport, GradcheckRow
from mlpckpt.testing import make_data

SIZES = [3, 5, 4, 2]


def _report(rows, rtol=1e-6, method="central"):
    return GradcheckReport.from_rows(
        method, rows, rtol, atol=1e-8, step=6e-6, f=1.0, n_params=7, n_checked=len(rows),
        n_evaluations=2 * len(rows) + 1, seconds=0.0, detectable="some", notes=["a note"],
    )


def test_exports_and_imports():
    assert mc.GradcheckReport is GradcheckReport
    # plain data: the report needs nothing of the package
    source = open(report.__file__).read()
    assert "from ." not in source and "import mlpckpt" not in source


def test_report_dict_and_table():
    net = mc.MLP(SIZES, activation="tanh", seed=0)
    X, Y = make_data(SIZES, 5, "mse")
    r = mc.gradcheck(net, X, Y, method="complex")
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["passed"] is True and d["method"] == "complex"
    assert d["rows"][0]["name"] == "W0" and d["rows"][0]["shape"] == [5, 3]
    assert d["max_rel_error"] == r.max_rel_error <= d["rtol"] == 1e-6
    assert d["atol"] == pytest.approx(1e-8 * max(1.0, abs(r.f)))
    text = str(r)
    for word in ("complex step", "W0", "b2", "PASSED", "detectable:", "max rel err"):
        assert word in text
    assert bool(r)


def test_verdict_is_exactly_max_rel_error_within_rtol():
    rows = [GradcheckRow(0, "a", (2,), 2, 1e-9, 1e-6), GradcheckRow(1, "b", (1,), 1, 1e-9, 2e-7)]
    r = _report(rows)
    assert r.passed and bool(r) and all(row.passed for row in r.rows)
    assert r.max_rel_error == 1e-6 and r.max_abs_error == 1e-9
    rows[0].max_rel_error = np.nextafter(1e-6, 1.0)
    r = _report(rows)
    assert not r.passed and not bool(r)
    assert [row.passed for row in r.rows] == [False, True]


def test_nan_errors_never_pass_and_are_the_worst_row():
    rows = [
        GradcheckRow(0, "a", (2,), 2, 1e-3, 0.5),
        GradcheckRow(1, "b", (2,), 2, np.nan, np.nan),
        GradcheckRow(2, "c", (2,), 2, 1e-9, 1e-9),
    ]
    r = _report(rows, rtol=1.0)
    assert not r.passed and r.max_rel_error == np.inf and r.max_abs_error == np.inf
    assert r.worst.name == "b" and [row.passed for row in r.rows] == [True, False, True]
    assert _report([]).worst is None and _report([]).passed


def test_worst_row_and_dict_of_a_failure():
    rows = [
        GradcheckRow(0, "W0", (2, 3), 6, 1e-5, 2e-3, (1, 2), 0.5, 0.501),
        GradcheckRow(1, "b0", (2, 1), 2, 1e-9, 1e-8, (0, 0), 0.1, 0.1),
    ]
    r = _report(rows)
    assert r.worst is rows[0]
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["rows"][0]["worst_index"] == [1, 2] and d["rows"][1]["shape"] == [2, 1]
    assert d["passed"] is False and d["notes"] == ["a note"]
    text = str(r)
    assert "FAILED: max relative error 2.00e-03 > rtol 1.0e-06" in text
    assert "W0     2x3    6" in text and "1,2" in text and "FAIL" in text
    assert text.splitlines()[-2:] == ["detectable: some", "note: a note"]


def test_directional_table():
    rows = [GradcheckRow(0, "v[0]", (7,), 1, 1e-12, 1e-11, None, 0.25, 0.25)]
    r = _report(rows, method="directional")
    text = str(r)
    assert "directional (random unit directions), h = 6e-06*max(1,rms(x))" in text
    assert "1 directions over 7 parameters" in text
    assert "direction  size  checked  abs err" in text and "g.v" in text
    assert "v[0]       7     1" in text and " - " in text
    assert r.to_dict()["rows"][0]["worst_index"] is None


def test_entry_row():
    g = np.array([1.0, 2.0, 0.0, 4.0])
    ghat = np.array([1.0, 2.002, 1e-9, np.nan])
    row = report.entry_row(3, "W1", (2, 3), g[:3], ghat[:3], np.array([0, 4, 5]), floor=1e-2)
    assert (row.index, row.name, row.shape, row.n_checked) == (3, "W1", (2, 3), 3)
    assert row.worst_index == (1, 1) and row.analytic == 2.0 and row.numeric == 2.002
    assert row.max_rel_error == pytest.approx(0.002 / 2.002)  # relative to |ghat| (eq. G7)
    assert row.max_abs_error == pytest.approx(2e-3)
    nan_row = report.entry_row(0, "x", (4,), g, ghat, np.arange(4), floor=1e-2)
    assert nan_row.max_rel_error == np.inf and nan_row.worst_index == (3,)
    empty = report.entry_row(0, "x", (0,), g[:0], ghat[:0], np.arange(0), floor=1e-2)
    assert (empty.n_checked, empty.max_rel_error, empty.worst_index) == (0, 0.0, None)


def test_detectable_elementwise():
    # a 0.1% error shows where |g| > atol / 1e-3 (eq. G9)
    text = report.detectable_elementwise(np.array([1e-6, 2e-5, 1.0, 3.0]), 1e-6, 1e-8)
    assert text == (
        "any checked entry off by more than max(1e-06*|g|, 1e-08); a 0.1% error is caught "
        "in every entry with |g| > 1e-05 (75% of the checked entries)"
    )
    assert "never caught (rtol = 0.001 >= 1e-3)" in report.detectable_elementwise(
        np.ones(3), 1e-3, 1e-5)
    assert report.detectable_elementwise(np.empty(0), 1e-6, 1e-8) == "nothing (no entries checked)"


def test_detectable_directional():
    rows = [GradcheckRow(d, f"v[{d}]", (100,), 1, 0.0, 0.0, None, gv, gv)
            for d, gv in enumerate((0.5, -2.0))]
    text = report.detectable_directional(rows, 100, 1e-6, 1e-8)
    vk = np.sqrt(2 / (np.pi * 100))  # E|v_k| over 100 parameters
    assert f"|v_k| ~ {vk:.2g} over 100 parameters" in text
    assert f"off by more than ~{2e-6 / vk:.2g} " in text  # max(rtol * max|g.v|, atol) / E|v_k|
    assert "a common relative error above 1e-06 when |g.v| > 0.01" in text
    assert report.detectable_directional([], 100, 1e-6, 1e-8) == "nothing (no directions)"
