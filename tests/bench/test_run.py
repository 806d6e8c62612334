"""mlpckpt.bench.run and .children: a tiny measurement run in child
processes, its rows against plan(), strategy specs, argument errors, and
the forward evaluations the executor counts.

No wall-clock assertions: times are only checked to be recorded.
"""

import csv
import json

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt import bench
from mlpckpt.bench import children


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Depths 4 and 8, width 8, batch 4, two strategies, one timing round."""
    out = tmp_path_factory.mktemp("bench")
    rows, paths = bench.run_memory(
        depths=(8, 4), width=8, batch=4, strategies=("storeall", "sqrt"), repeats=1,
        out_dir=str(out), plot=False, progress=False,
    )
    return rows, paths, out


@pytest.mark.slow
def test_run_writes_csv_and_json(tiny_run):
    rows, paths, out = tiny_run
    assert [(r["depth"], r["strategy"]) for r in rows] == [
        (4, "storeall"), (4, "sqrt"), (8, "storeall"), (8, "sqrt")
    ]
    with open(paths["csv"], newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == bench.COLUMNS
        assert len(list(reader)) == 4
    with open(paths["json"]) as f:
        doc = json.load(f)
    assert doc["columns"] == bench.COLUMNS and len(doc["rows"]) == 4
    assert doc["rows"] == rows
    meta = doc["meta"]
    for key in ("date", "numpy", "python", "blas_build", "child_env", "settings"):
        assert key in meta
    assert meta["child_env"]["OPENBLAS_NUM_THREADS"] == "1"
    assert meta["settings"]["depths"] == [4, 8]
    assert paths["figures"] == []


@pytest.mark.slow
def test_measurements_agree_with_plan(tiny_run):
    rows, _, _ = tiny_run
    for r in rows:
        assert not r["error"], r
        assert r["forward_evals_counted"] == r["forward_evals_plan"]
        assert 0 < r["measured_peak_bytes_out"] <= r["predicted_peak_bytes_out"]
        assert 0 < r["measured_peak_bytes"] <= r["predicted_peak_bytes"]
        assert r["time_median_s"] > 0 and r["time_repeats"] == 1
        assert r["rss_growth_bytes_out"] is not None
        assert r["raw_activation_bytes"] == r["depth"] * 8 * 4 * 8
        assert r["prediction_error_out"] == r["predicted_peak_bytes_out"] / r["measured_peak_bytes_out"] - 1
    net = mc.MLP([8] * 9, seed=0)
    plan = mc.plan(net, 4, mc.Sqrt(), "mse", out=True)
    sqrt8 = next(r for r in rows if r["depth"] == 8 and r["strategy"] == "sqrt")
    assert sqrt8["forward_evals_plan"] == plan.forward_evals
    assert sqrt8["predicted_peak_bytes_out"] == plan.peak_bytes
    assert sqrt8["max_stored"] == plan.max_stored and sqrt8["strategy_repr"] == repr(mc.Sqrt())
    assert next(r for r in rows if r["strategy"] == "storeall")["time_ratio_storeall"] == 1.0


@pytest.mark.slow
def test_read_csv_round_trip(tiny_run):
    rows, paths, _ = tiny_run
    back = bench.read_csv(paths["csv"])
    assert [r["measured_peak_bytes_out"] for r in back] == [r["measured_peak_bytes_out"] for r in rows]
    assert isinstance(back[0]["depth"], int) and isinstance(back[0]["time_median_s"], float)


@pytest.mark.parametrize(
    "strategy",
    [mc.StoreAll(), mc.Sqrt(), mc.Segments(3), mc.Revolve(0), mc.Revolve(2), mc.Budget("20KiB")],
)
def test_counted_forward_evals_equal_plan(strategy):
    net = mc.MLP([6] * 12, seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    counted = children._counted_forward_evals(net, X, Y, "mse", strategy, net.zeros_like_grads())
    assert counted == mc.plan(net, 5, strategy, "mse", out=True).forward_evals


def test_memory_child_in_process_gives_row_fields():
    config = {"depth": 5, "width": 4, "batch": 3, "dtype": "float32", "loss": "mse",
              "activation": "tanh", "init": "xavier", "seed": 1, "strategy": "revolve:1"}
    row = children._child_memory(config)
    assert set(row) <= set(bench.COLUMNS)
    assert row["forward_evals_counted"] == row["forward_evals_plan"]
    assert row["strategy_repr"] == "Revolve(slots=1)" and row["budget_bytes"] is None


@pytest.mark.parametrize(
    "spec, canonical",
    [("storeall", "storeall"), (" Revolve : 4 ", "revolve:4"), ("SQRT", "sqrt"),
     ("budget:SQRT", "budget:sqrt"), ("budget:4MiB", "budget:4MiB"), ("segments:3", "segments:3")],
)
def test_normalize_strategy(spec, canonical):
    assert bench.normalize_strategy(spec) == canonical


@pytest.mark.parametrize("spec", ["nonsense", "revolve:x", "budget:", "budget:-1MiB", "segments:0"])
def test_normalize_strategy_refuses(spec):
    with pytest.raises(ValueError, match=r"^strategies: got "):
        bench.normalize_strategy(spec)


def test_make_strategy_resolves_budgets():
    net = mc.MLP([8] * 17, seed=0)
    strategy, budget = bench.make_strategy("budget:sqrt", net, 4, "mse", True)
    assert budget == mc.plan(net, 4, mc.Sqrt(), "mse", out=True).peak_bytes
    assert strategy == mc.Budget(budget)
    assert bench.make_strategy("budget:4MiB", net, 4, "mse", True) == (mc.Budget(4 * 2**20), 4 * 2**20)
    assert bench.make_strategy("revolve:3", net, 4, "mse", False) == (mc.Revolve(3), None)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depths": [0, 8]}, "depths"),
        ({"depths": []}, "depths"),
        ({"depths": [8.0]}, "depths"),
        ({"width": 0}, "width"),
        ({"batch": True}, "batch"),
        ({"repeats": 0}, "repeats"),
        ({"threads": -1}, "threads"),
        ({"strategies": []}, "strategies: expected at least one"),
        ({"strategies": ["sqrt", "fast"]}, "strategies: got 'fast'"),
        ({"dtype": "float16"}, "dtype"),
        ({"init": "zeros"}, "init"),
        ({"loss": "bce"}, "loss"),
        ({"activation": "swish"}, "activation"),
    ],
)
def test_run_memory_refuses_bad_arguments(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        bench.run_memory(**dict({"depths": [4], "out_dir": str(tmp_path / "o"), "progress": False}, **kwargs))
    assert not (tmp_path / "o").exists()  # refused before any work
