"""mlpckpt.bench.plots: every figure as PNG, from rows, a CSV or the command
line (the only bench tests that need matplotlib)."""

import pathlib

import pytest

import mlpckpt as mc
from mlpckpt import bench
from mlpckpt.cli._main import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COMMITTED = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "memory_vs_depth.csv"


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


def _is_png(path, min_size=5000):
    data = pathlib.Path(path).read_bytes()
    return data.startswith(PNG_MAGIC) and len(data) > min_size


def test_plot_command_writes_pngs(mpl, tmp_path, capsys):
    assert main(["bench", "plot", str(COMMITTED), "--out", str(tmp_path)]) == 0
    for name in bench.FIGURES:
        assert _is_png(tmp_path / name)
    assert "wrote" in capsys.readouterr().out


def test_plot_results_without_times_skips_the_time_figure(mpl, tmp_path):
    rows = [dict(r, time_median_s=None, time_ratio_storeall=None) for r in bench.read_csv(COMMITTED)]
    paths = bench.plot_results(rows, str(tmp_path), dpi=50)
    assert paths == [str(tmp_path / bench.FIGURES[0]), str(tmp_path / bench.FIGURES[2])]
    assert all(_is_png(p, 1000) for p in paths)
    assert not (tmp_path / bench.FIGURES[1]).exists()


@pytest.mark.slow
def test_each_figure_has_its_function(mpl, tmp_path):
    rows = bench.read_csv(COMMITTED)
    for draw, name in zip((bench.plot_memory, bench.plot_time, bench.plot_forward_evals), bench.FIGURES):
        path = str(tmp_path / name)
        assert draw(rows, path, dpi=50) == path and _is_png(path, 1000)


def test_plot_results_refuses_no_rows(tmp_path):
    with pytest.raises(ValueError, match="csv: no rows"):
        bench.plot_results([], str(tmp_path))


@pytest.mark.parametrize("strategy", [mc.Sqrt(), mc.Revolve(2)])
def test_plot_schedule_writes_png(mpl, tmp_path, strategy):
    net = mc.MLP([4] * 13, seed=0)
    sched = mc.plan(net, 8, strategy)
    path = tmp_path / "schedule.png"
    assert bench.plot_schedule(sched, str(path)) == str(path)
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_plan_cli_plot(mpl, tmp_path, capsys):
    path = tmp_path / "s.png"
    assert main(["plan", "--width", "4", "--depth", "16", "--strategy", "revolve:2", "--plot", str(path)]) == 0
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert f"wrote {path}" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_memory_tiny(mpl, tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["bench", "memory", "--depths", "3", "--width", "4", "--batch", "2",
            "--strategies", "storeall,revolve:1", "--repeats", "1", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "revolve:1" in printed.out and "[  1/2]" in printed.err
    for name in (bench.CSV_NAME, bench.JSON_NAME) + bench.FIGURES:
        assert (out / name).stat().st_size > 0


def test_pareto_figure_writes_png(mpl, tmp_path):
    net = mc.NetSpec([4] * 17, "tanh", "identity", "float64")
    front = mc.pareto(net, 8)
    marks = [("StoreAll", mc.plan(net, 8)), ("Revolve(2)", mc.plan(net, 8, mc.Revolve(2)))]
    path = tmp_path / "front.png"
    assert bench.pareto_figure(front, marks, str(path), "a title") == str(path)
    assert _is_png(path)
    with pytest.raises(ValueError, match="front: expected at least one"):
        bench.pareto_figure([], marks, str(path), "t")


def test_plan_cli_pareto_plot(mpl, tmp_path, capsys):
    path = tmp_path / "f.png"
    assert main(["plan", "--width", "4", "--depth", "14", "--batch", "4", "--pareto-plot", str(path)]) == 0
    assert _is_png(path)
    out = capsys.readouterr().out
    assert f"wrote {path}" in out and "forward evals" in out  # --pareto-plot implies --pareto
