"""mlpckpt.bench and `mlpckpt bench`: a tiny measurement run, plots, CLI errors.

No wall-clock assertions: times are only checked to be recorded.
"""

import csv
import json

import pytest

import mlpckpt as mc
from mlpckpt import bench
from mlpckpt.cli import main

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Depths 4 and 8, width 8, batch 4, two strategies, one timing round."""
    out = tmp_path_factory.mktemp("bench")
    rows, paths = bench.run_memory(
        depths=(8, 4), width=8, batch=4, strategies=("storeall", "sqrt"), repeats=1,
        out_dir=str(out), plot=False, progress=False,
    )
    return rows, paths, out


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
    meta = doc["meta"]
    for key in ("date", "numpy", "python", "blas_build", "child_env", "settings"):
        assert key in meta
    assert meta["child_env"]["OPENBLAS_NUM_THREADS"] == "1"
    assert meta["settings"]["depths"] == [4, 8]
    assert paths["figures"] == []


def test_measurements_agree_with_plan(tiny_run):
    rows, _, _ = tiny_run
    for r in rows:
        assert not r["error"], r
        assert r["forward_evals_counted"] == r["forward_evals_plan"]
        assert 0 < r["measured_peak_bytes_out"] <= r["predicted_peak_bytes_out"]
        assert 0 < r["measured_peak_bytes"] <= r["predicted_peak_bytes"]
        assert r["time_median_s"] > 0 and r["time_repeats"] == 1
        assert r["rss_growth_bytes_out"] is not None
    net = mc.MLP([8] * 9, seed=0)
    plan = mc.plan(net, 4, mc.Sqrt(), "mse", out=True)
    sqrt8 = next(r for r in rows if r["depth"] == 8 and r["strategy"] == "sqrt")
    assert sqrt8["forward_evals_plan"] == plan.forward_evals
    assert sqrt8["predicted_peak_bytes_out"] == plan.peak_bytes
    assert next(r for r in rows if r["strategy"] == "storeall")["time_ratio_storeall"] == 1.0


def test_read_csv_round_trip(tiny_run):
    rows, paths, _ = tiny_run
    back = bench.read_csv(paths["csv"])
    assert [r["measured_peak_bytes_out"] for r in back] == [r["measured_peak_bytes_out"] for r in rows]
    assert isinstance(back[0]["depth"], int) and isinstance(back[0]["time_median_s"], float)


def test_plot_command_writes_pngs(tiny_run, tmp_path, capsys):
    _, paths, _ = tiny_run
    assert main(["bench", "plot", paths["csv"], "--out", str(tmp_path)]) == 0
    for name in bench.FIGURES:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("strategy", [mc.Sqrt(), mc.Revolve(2)])
def test_plot_schedule_writes_png(tmp_path, strategy):
    net = mc.MLP([4] * 13, seed=0)
    sched = mc.plan(net, 8, strategy)
    path = tmp_path / "schedule.png"
    assert bench.plot_schedule(sched, str(path)) == str(path)
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_schedule_events_match_the_plan():
    net = mc.MLP([4] * 33, seed=0)
    for strategy in (mc.StoreAll(), mc.Sqrt(), mc.Revolve(3)):
        sched = mc.plan(net, 8, strategy)
        ev = bench.schedule_events(sched.actions, 32)
        assert len(ev["forward"]) == sched.forward_evals
        assert sorted(k for _, k in ev["backward"]) == list(range(32))
        assert len(ev["loss"]) == 1
        assert sorted(k for k, _, _ in ev["held"]) == sorted({k for k, _, _ in ev["held"]})


def test_plan_cli_plot(tmp_path, capsys):
    path = tmp_path / "s.png"
    assert main(["plan", "--width", "4", "--depth", "16", "--strategy", "revolve:2", "--plot", str(path)]) == 0
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_fit_slope():
    depths = [8, 16, 32, 64, 128, 256]
    assert bench.fit_slope(depths, [d**0.5 for d in depths]) == pytest.approx(0.5)
    assert bench.fit_slope([64], [1.0]) is None


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["bench", "memory", "--depths", "8,x"], "--depths"),
        (["bench", "memory", "--depths", "0,8"], "--depths"),
        (["bench", "memory", "--strategies", "sqrt,nonsense"], "--strategies"),
        (["bench", "memory", "--width", "0"], "--width"),
        (["bench", "memory", "--repeats", "0"], "--repeats"),
        (["bench", "plot", "/nonexistent/file.csv"], "csv"),
    ],
)
def test_cli_errors_are_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_cli_bench_without_subcommand(capsys):
    assert main(["bench"]) == 2


def test_cli_plot_rejects_foreign_csv(tmp_path, capsys):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    assert main(["bench", "plot", str(path)]) == 2
    assert "csv" in capsys.readouterr().err


def test_cli_memory_tiny(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["bench", "memory", "--depths", "3", "--width", "4", "--batch", "2",
            "--strategies", "storeall,revolve:1", "--repeats", "1", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "revolve:1" in printed.out and "[  1/2]" in printed.err
    for name in (bench.CSV_NAME, bench.JSON_NAME) + bench.FIGURES:
        assert (out / name).stat().st_size > 0
