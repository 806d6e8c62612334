"""mlpckpt.cli._main: the command line. Bad arguments are refused by argparse
(one stderr line naming the option, exit status 2, no traceback); every
sub-command prints what the library computes.

The figure-writing commands are tested in tests/bench/test_plots.py (they need
matplotlib).
"""

import json
import pathlib
import re
import subprocess
import sys

import pytest

import mlpckpt as mc
from mlpckpt import __version__
from mlpckpt.cli._main import build_parser, main
from mlpckpt.planning._strategies import griewank_t

NET = ["--sizes", "3,4,2"]
COMMITTED = str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "memory_vs_depth.csv")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["plan", "--sizes", "8,x"], "--sizes"),
        (["plan", "--sizes", "8"], "--sizes"),
        (["plan", "--sizes", "8,0,3"], "--sizes"),
        (["plan", "--width", "0", "--depth", "3"], "--width"),
        (["plan", "--width", "4", "--depth", "x"], "--depth"),
        (["plan", *NET, "--strategy", "revolve:x"], "--strategy"),
        (["plan", *NET, "--strategy", "foo"], "--strategy"),
        (["plan", *NET, "--strategy", "budget:lots"], "--strategy"),
        (["plan", *NET, "--batch", "0"], "--batch"),
        (["plan", *NET, "--dtype", "float16"], "--dtype"),
        (["plan", *NET, "--loss", "foo"], "--loss"),
        (["plan", *NET, "--output", "tanh"], "--output"),
        (["plan", *NET, "--targets", "probabilities"], "--targets"),
        (["plan", *NET, "--activation", "swish"], "--activation"),
        (["plan", *NET, "--plot", "/nonexistent/dir/s.png"], "--plot"),
        (["plan", *NET, "--plot", "s.jpg"], "--plot"),
        (["plan", *NET, "--no-such-option"], "--no-such-option"),
        (["gradcheck", *NET, "--seed", "-1"], "--seed"),
        (["gradcheck", *NET, "--seed", "x"], "--seed"),
        (["gradcheck", *NET, "--batch", "0"], "--batch"),
        (["gradcheck", *NET, "--method", "exact"], "--method"),
        (["gradcheck", *NET, "--directions", "0"], "--directions"),
        (["gradcheck", *NET, "--max-entries", "0"], "--max-entries"),
        (["gradcheck", *NET, "--rtol", "tight"], "--rtol"),
        (["demo", "--epochs", "0"], "--epochs"),
        (["demo", "--strategy", "segments:0"], "--strategy"),
        (["bench", "memory", "--depths", "8,x"], "--depths"),
        (["bench", "memory", "--depths", "0,8"], "--depths"),
        (["bench", "memory", "--depths", "0,x"], "--depths"),
        (["bench", "memory", "--strategies", "sqrt,nonsense"], "--strategies"),
        (["bench", "memory", "--width", "0"], "--width"),
        (["bench", "memory", "--batch", "0"], "--batch"),
        (["bench", "memory", "--repeats", "0"], "--repeats"),
        (["bench", "memory", "--threads", "-1"], "--threads"),
        (["bench", "memory", "--seed", "-1"], "--seed"),
        (["bench", "memory", "--dtype", "float16"], "--dtype"),
        (["bench", "memory", "--init", "zeros"], "--init"),
        (["bench", "memory", "--activation", "swish"], "--activation"),
        (["bench", "memory", "--backend", "jax"], "--backend"),
        (["bench", "memory", "--backend", "torch", "--device", "tpu"], "device"),
        (["bench", "plot", "/nonexistent/file.csv"], "csv"),
        (["bench", "plot", COMMITTED, "--dpi", "0"], "--dpi"),
        (["bench"], "memory,plot"),
        (["bench", "frobnicate"], "frobnicate"),
        ([], "COMMAND"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    printed = capsys.readouterr()
    err = printed.err.strip()
    assert len(err.splitlines()) == 1 and needle in err
    assert re.match(r"mlpckpt( \w+)*: error: ", err)  # the (sub-)command's own parser, or mlpckpt's
    assert "Traceback" not in err and printed.out == ""


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["plan", "--sizes", "4,4", "--width", "4", "--depth", "2"], "not both"),
        (["plan"], "--sizes 8,16,3 or both --width and --depth"),
        (["plan", "--width", "4"], "--width and --depth"),
        (["plan", "--sizes", "4,4,4", "--activation", "tanh,relu"], "activation"),
        (["plan", *NET, "--loss", "cross_entropy", "--output", "identity"], "loss"),
        (["gradcheck", *NET, "--method", "directional", "--max-entries", "5"], "--max-entries"),
    ],
)
def test_rules_across_arguments_are_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and err.startswith(f"mlpckpt {argv[0]}: error: ")


def test_cli_bench_without_subcommand(capsys):
    assert main(["bench"]) == 2
    assert capsys.readouterr().err.startswith("mlpckpt bench: error: ")


def test_cli_plot_rejects_foreign_csv(tmp_path, capsys):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    assert main(["bench", "plot", str(path)]) == 2
    assert "csv" in capsys.readouterr().err


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mlpckpt {__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("plan", "gradcheck", "bench", "demo"))
    assert main(["bench", "memory", "--help"]) == 0
    assert "--depths" in capsys.readouterr().out


def test_the_process_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mlpckpt", "plan", "--sizes", "8,x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["mlpckpt plan: error: argument --sizes: got '8,x', "
                                        "expected comma-separated ints"]


@pytest.mark.parametrize(
    "argv, sizes, activation, output, batch, strategy, kwargs",
    [
        (["--sizes", "8,16,16,3", "--strategy", "sqrt"], (8, 16, 16, 3), "tanh", "identity", 256,
         mc.Sqrt(), {}),
        (["--width", "16", "--depth", "40", "--batch", "32", "--strategy", "revolve:3", "--out"],
         (16,) * 41, "tanh", "identity", 32, mc.Revolve(3), {"out": True}),
        (["--sizes", "5,7,4", "--loss", "cross_entropy", "--targets", "onehot", "--fuse-update",
          "--activation", "relu", "--dtype", "float32", "--strategy", "budget:64KiB"],
         (5, 7, 4), "relu", "softmax", 256, mc.Budget(65536),
         {"loss": "cross_entropy", "targets": "onehot", "fuse_update": True}),
        (["--sizes", "5,7,1", "--loss", "bce"], (5, 7, 1), "tanh", "sigmoid", 256, mc.StoreAll(),
         {"loss": "bce"}),
    ],
)
def test_plan_prints_the_schedule_of_that_call(argv, sizes, activation, output, batch, strategy, kwargs,
                                              net_spec, capsys):
    dtype = "float32" if "float32" in argv else "float64"
    assert main(["plan", *argv]) == 0
    expected = mc.plan(net_spec(sizes, activation, output, dtype), batch, strategy, **kwargs)
    assert capsys.readouterr().out == f"{expected}\n"


def test_plan_actions_are_listed(net_spec, capsys):
    assert main(["plan", "--sizes", "4,4,4,4", "--strategy", "revolve:1", "--actions"]) == 0
    sched = mc.plan(net_spec((4, 4, 4, 4)), 256, mc.Revolve(1))
    assert capsys.readouterr().out == f"{sched}\n{sched.format_actions()}\n"


def test_gradcheck_takes_one_activation_per_hidden_layer(capsys):
    assert main(["gradcheck", "--sizes", "3,5,4,2", "--activation", "tanh,sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "activation=['tanh', 'sigmoid']" in out and "PASSED" in out


def test_demo_trains(capsys):
    assert main(["demo", "--epochs", "1", "--strategy", "revolve:2"]) == 0
    out = capsys.readouterr().out
    assert "strategy Revolve(slots=2): 1 epochs of Adam" in out
    assert "epoch   1  loss" in out and "training accuracy" in out


def test_parser_applies_types_to_defaults():
    args = build_parser().parse_args(["plan", "--sizes", "4,4"])
    assert args.strategy == mc.StoreAll() and args.sizes == [4, 4] and args.batch == 256
    args = build_parser().parse_args(["bench", "memory", "--depths", "16,8", "--strategies", " SQRT ,budget:sqrt"])
    assert args.depths == [16, 8] and args.strategies == ["sqrt", "budget:sqrt"] and args.repeats is None


# -- `mlpckpt plan` -------------------------------------------------------------


def test_cli_plan(capsys):
    assert main(["plan", "--width", "64", "--depth", "1000", "--batch", "256", "--strategy", "revolve:8"]) == 0
    text = capsys.readouterr().out
    assert f"forward evals     {griewank_t(1001, 9)}" in text and "MiB" in text
    assert main(["plan", "--sizes", "8,16,16,3", "--strategy", "sqrt", "--actions"]) == 0
    text = capsys.readouterr().out
    assert "forward layers" in text and "backward layers" in text
    assert main(["plan", "--sizes", "8,16", "--strategy", "revolve:x"]) == 2
    assert "--strategy" in capsys.readouterr().err


def test_cli_plan_with_budget(capsys):
    assert main(["plan", "--width", "64", "--depth", "200", "--out", "--strategy", "budget:2MiB"]) == 0
    assert "Budget(max_bytes=2097152)" in capsys.readouterr().out
    assert main(["plan", "--width", "64", "--depth", "200", "--strategy", "budget:1KiB"]) == 2
    assert "smallest feasible budget" in capsys.readouterr().err


# -- command line (`mlpckpt gradcheck`) ----------------------------------------


def test_cli_passes(capsys):
    argv = ["gradcheck", "--sizes", "8,16,16,3", "--activation", "tanh", "--loss",
            "cross_entropy", "--strategy", "sqrt", "--method", "complex"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "complex step" in out and "467 of 467 entries" in out
    assert "W2" in out and "Sqrt()" in out


def test_cli_width_depth_directional_and_json(capsys):
    argv = ["gradcheck", "--width", "4", "--depth", "6", "--activation", "sigmoid", "--loss",
            "bce", "--strategy", "segments:2", "--method", "directional", "--directions", "3",
            "--json", "--seed", "5"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["passed"] and d["method"] == "directional" and len(d["rows"]) == 3
    assert d["n_params"] == 6 * (4 * 4 + 4)


def test_cli_failure_exit_1(capsys, tanh_derivative_off):
    assert main(["gradcheck", "--sizes", "3,4,2", "--batch", "3"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_cli_tolerance_too_tight_exit_1(capsys):
    assert main(["gradcheck", "--sizes", "3,4,2", "--rtol", "1e-15", "--atol", "0"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--sizes", "8,x"], "--sizes"),
        (["--sizes", "3,4,2", "--activation", "relu", "--method", "complex"], "method: 'complex'"),
        (["--sizes", "3,4,2", "--method", "nope"], "method: got 'nope'"),
        (["--sizes", "3,4,2", "--strategy", "fast"], "--strategy"),
        (["--sizes", "3,4,2", "--batch", "0"], "--batch"),
        (["--sizes", "3,4,2", "--loss", "cross_entropy", "--output", "identity"], "loss"),
        (["--width", "4"], "--width"),
        (["--sizes", "3,4,2", "--rtol", "-1"], "argument --rtol: expected a finite number > 0"),
        (["--sizes", "3,4,2", "--rtol", "nan"], "argument --rtol"),
        (["--sizes", "3,4,2", "--eps", "0"], "argument --eps"),
        (["--sizes", "3,4,2", "--atol", "-1e-9"], "argument --atol"),
        (["--sizes", "3,4,2", "--atol", "x"], "argument --atol: expected a number, got 'x'"),
    ],
)
def test_cli_bad_arguments_exit_2(capsys, argv, match):
    assert main(["gradcheck"] + argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and err.startswith("mlpckpt gradcheck: error:")


# -- hostile arguments (issue 11): bounds named, one line, never a traceback ------------

ROOT = pathlib.Path(__file__).resolve().parents[2]

HOSTILE = [
    ["plan", "--width", "8", "--depth", "10000000000"],  # was a MemoryError traceback
    ["plan", "--width", "8", "--depth", "1000001"],
    ["plan", "--sizes", "8,100000000000000000000,1"],  # was an OverflowError traceback
    ["plan", "--width", "10000000000000", "--depth", "3"],
    ["plan", "--sizes", "3,4,2", "--batch", "100000000000000000000000"],
    ["plan", "--width", "8", "--depth", "10000", "--plot", "big.png"],
    ["gradcheck", "--width", "100000", "--depth", "3"],  # was a 74.5 GiB allocation
    ["gradcheck", "--sizes", "3,4,2", "--batch", "10000000000000"],
    ["gradcheck", "--sizes", "3,4,2", "--method", "directional", "--directions", "100000000"],
    ["gradcheck", "--sizes", "3,4,2", "--max-entries", "100000000000000"],
    ["gradcheck", "--sizes", "3,4,2", "--rtol", "nan"],
    ["gradcheck", "--sizes", "3,4,2", "--atol", "-inf"],
    ["gradcheck", "--sizes", "3,4,2", "--atol", "nan"],
    ["gradcheck", "--sizes", "3,4,2", "--eps", "0"],
    ["demo", "--epochs", "10000000000"],
    ["demo", "--epochs", "-3"],
    ["bench", "memory", "--depths", ""],
    ["bench", "memory", "--depths", ","],
    ["bench", "memory", "--depths", "8,10000000000"],
    ["bench", "memory", "--width", "100000", "--depths", "8"],
    ["bench", "memory", "--batch", "100000000000", "--depths", "8"],
    ["bench", "memory", "--repeats", "100000000"],
    ["bench", "memory", "--threads", "100000000"],
    ["bench", "memory", "--strategies", ""],
    ["bench", "plot", COMMITTED, "--dpi", "100000"],  # was a std::bad_alloc traceback
    ["bench", "plot", COMMITTED, "--dpi", "1"],
]


@pytest.mark.slow
def test_hostile_argument_lines_exit_2_with_one_line_and_no_traceback(tmp_path):
    # Real processes (what a user sees), a few at a time; the timeout is a
    # safety net for a command that would start the work, not a speed test.
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    failures = []
    for start in range(0, len(HOSTILE), 6):
        procs = [(argv, subprocess.Popen([sys.executable, "-m", "mlpckpt", *argv], cwd=tmp_path, env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                 for argv in HOSTILE[start:start + 6]]
        for argv, proc in procs:
            try:
                out, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                failures.append((argv, "timed out: the work started"))
                continue
            lines = err.splitlines()
            if proc.returncode != 2 or len(lines) != 1 or "Traceback" in out + err or out \
                    or not re.match(r"mlpckpt( \w+)*: error: ", lines[0]):
                failures.append((argv, proc.returncode, out[-300:], err[-600:]))
    assert not failures, failures
    assert list(tmp_path.iterdir()) == []  # nothing written (no bench_out, no PNG)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plan", "--width", "8", "--depth", "10000000000"],
         "mlpckpt plan: error: argument --depth: expected an int in [1, 1,000,000], got '10000000000'"),
        (["plan", "--width", "10000000000000", "--depth", "3"],
         "mlpckpt plan: error: the net's weights would need 2,400,000,000,000,240,000,000,000,000 B "
         "(2.235e+18 GiB), more than the 1 PiB a plan describes"),
        (["bench", "plot", COMMITTED, "--dpi", "100000"],
         "mlpckpt bench plot: error: argument --dpi: expected an int in [10, 1,000], got '100000'"),
        (["bench", "memory", "--depths", ""],
         "mlpckpt bench memory: error: argument --depths: got '', expected comma-separated ints in [1, 1,000,000]"),
        (["gradcheck", "--sizes", "3,4,2", "--atol", "-1"],
         "mlpckpt gradcheck: error: argument --atol: expected a finite number >= 0, got '-1'"),
    ],
)
def test_bounds_are_named(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err == message + "\n"


def test_a_net_too_big_to_build_names_its_bytes_and_the_bound(capsys, monkeypatch):
    from mlpckpt.cli import _args as _cli_args

    # 100,000 x 100,000 float64 weights, three layers: 240,002,400,000 B and the batch
    assert main(["gradcheck", "--width", "100000", "--depth", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlpckpt gradcheck: error: the net's weights and one batch would need 240,028,000,000 B")
    assert "(weights 240,002,400,000 B (223.5 GiB)), more than " in err and err.count("\n") == 1
    # the bound is the machine's memory when that is less than 16 GiB
    monkeypatch.setattr(_cli_args.os, "sysconf", lambda key: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1024}[key])
    assert _cli_args.build_limit() == (4 * 2**20, "this machine's memory (4,194,304 B (0.003906 GiB))")
    assert main(["gradcheck", "--width", "500", "--depth", "3"]) == 2
    assert "more than this machine's memory (4,194,304 B" in capsys.readouterr().err
    assert main(["bench", "memory", "--width", "500", "--depths", "4"]) == 2
    assert capsys.readouterr().err.startswith(
        "mlpckpt bench memory: error: the deepest net (n = 4) and its stored activations would need ")


@pytest.mark.parametrize("exc", [MemoryError(), MemoryError("Unable to allocate 74.5 GiB"), OverflowError("too big")])
def test_memory_and_overflow_errors_are_one_line_as_a_last_resort(exc, capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr("mlpckpt.cli._main.plan", boom)
    assert main(["plan", "--sizes", "3,4,2"]) == 2
    printed = capsys.readouterr()
    assert printed.err.count("\n") == 1 and printed.err.startswith("mlpckpt plan: error: ")
    assert ("out of memory" if isinstance(exc, MemoryError) else "too large") in printed.err
    assert "Traceback" not in printed.err and printed.out == ""


# -- `mlpckpt plan` of a net never built (NetSpec) ------------------------------


def _traced_main(argv, monkeypatch):
    """(exit status, tracemalloc peak) of ``main(argv)`` in-process, with
    drawing weights made an error."""
    import tracemalloc

    def never(*args, **kwargs):
        raise AssertionError("plan drew weights")

    monkeypatch.setattr("mlpckpt.core._params.init_params", never)
    monkeypatch.setattr("mlpckpt.model._mlp.init_params", never)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        status = main(argv)
        return status, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_cli_plans_a_wide_billion_parameters_without_building_them(capsys, monkeypatch):
    """Width 1000, depth 1000: 1.001e9 parameters, 8 GB of float64 weights."""
    status, peak = _traced_main(["plan", "--width", "1000", "--depth", "1000", "--strategy", "revolve:8",
                                 "--optimizer", "adam"], monkeypatch)
    out = capsys.readouterr().out
    assert status == 0
    assert f"forward evals     {griewank_t(1001, 9)} (" in out and griewank_t(1001, 9) == 4004
    sched = mc.plan(mc.NetSpec([1000] * 1001), 256, mc.Revolve(8), optimizer="adam")
    assert f"({sched.total_bytes} B), one training step in all" in out
    assert sched.total_bytes > 4 * 8 * 1000 * 1001 * 1000  # weights, gradients, two moments
    assert peak < 64 * 2**20, peak


@pytest.mark.slow
def test_cli_plans_a_billion_parameters_without_building_them(capsys, monkeypatch):
    """About 10^9 parameters (8.3 GB of float64 weights) in 250,000 layers:
    planned, not built (~25 s under tracemalloc)."""
    import math

    status, peak = _traced_main(["plan", "--width", "64", "--depth", "250000", "--strategy", "sqrt"],
                                monkeypatch)
    out = capsys.readouterr().out
    assert status == 0
    n, k = 250000, math.ceil(math.sqrt(250000))
    assert mc.NetSpec([64] * (n + 1)).n_params == 64 * 65 * n > 10**9
    assert f"forward evals     {2 * n - k - (math.ceil(n / k) - 1)} (" in out  # 499001
    assert "layers            250000 (sizes 64,64,64,...,64,64), batch 256" in out
    weights = 64 * 65 * n * 8
    assert peak < weights / 50, (peak, weights)  # per-layer lists of the plan, never the weights


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_cli_plan_prints_the_total_bytes_of_a_step(optimizer, capsys):
    argv = ["plan", "--sizes", "8,32,32,3", "--loss", "cross_entropy", "--strategy", "revolve:1",
            "--batch", "64", "--fuse-update", "--optimizer", optimizer, "--dtype", "float32"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    expected = mc.plan(mc.NetSpec([8, 32, 32, 3], output="softmax", dtype="float32"), 64, mc.Revolve(1),
                       "cross_entropy", fuse_update=True, optimizer=optimizer)
    assert out.startswith(str(expected) + "\n")
    assert f"total bytes       {expected.total_bytes / 2**20:.3f} MiB ({expected.total_bytes} B)" in out
    assert "of which         weights " in out and "optimiser " in out


def test_cli_plan_without_optimizer_prints_no_total(capsys):
    assert main(["plan", "--sizes", "8,16,3"]) == 0
    assert "total bytes" not in capsys.readouterr().out


@pytest.mark.parametrize("value", ["adamw", "", "SGD"])
def test_cli_plan_refuses_a_bad_optimizer_in_one_line(value, capsys):
    assert main(["plan", "--sizes", "8,16,3", "--optimizer", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mlpckpt plan: error: argument --optimizer: invalid choice")


# -- `mlpckpt plan --pareto` ----------------------------------------------------


def _table_rows(text):
    """(peak MiB text, peak bytes, evals, evals/n, optimality) of the frontier table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["peak", "MiB"]) + 1
    rows = []
    for line in lines[start:]:
        parts = line.split(None, 4)
        if not parts[1].isdigit():
            break
        rows.append((parts[0], int(parts[1]), int(parts[2]), float(parts[3]), parts[4]))
    return rows


@pytest.mark.parametrize("argv, sizes, batch, kwargs", [
    (["--sizes", "6,9,5,7,3", "--batch", "16"], (6, 9, 5, 7, 3), 16, {}),
    pytest.param(["--width", "8", "--depth", "16", "--batch", "8", "--out"], (8,) * 17, 8, {"out": True},
                 marks=pytest.mark.slow),
    (["--sizes", "5,7,7,7,7,7,7,7,7,7,7,7,7,7,4", "--loss", "cross_entropy", "--targets", "onehot",
      "--fuse-update"], (5,) + (7,) * 13 + (4,), 256,
     {"loss": "cross_entropy", "targets": "onehot", "fuse_update": True}),
])
def test_plan_pareto_prints_the_frontier_of_mc_pareto(argv, sizes, batch, kwargs, net_spec, capsys):
    assert main(["plan", *argv, "--pareto"]) == 0
    printed = capsys.readouterr()
    output = "softmax" if kwargs.get("loss") == "cross_entropy" else "identity"
    spec = net_spec(sizes, "tanh", output)
    front = mc.pareto(spec, batch, **kwargs)
    rows = _table_rows(printed.out)
    n = len(sizes) - 1
    assert len(rows) == len(front) >= 2
    for (mib, peak, evals, per_n, optimality), s in zip(rows, front):
        assert (peak, evals) == (s.peak_bytes, s.forward_evals)
        assert mib == f"{s.peak_bytes / 2**20:.3f}" and per_n == pytest.approx(s.forward_evals / n, abs=5e-4)
        gap = "exact" if s.details["exact"] else f"gap {100 * s.details['gap']:.2f}%"
        assert optimality.startswith(gap)
    assert rows[-1][2] == n  # the frontier ends at StoreAll's n evaluations
    assert ("planning the frontier" in printed.err) == (n > 12)


def test_plan_pareto_marks_the_fixed_strategies(net_spec, capsys):
    assert main(["plan", "--width", "6", "--depth", "10", "--batch", "4", "--pareto"]) == 0
    text = capsys.readouterr().out
    spec = net_spec((6,) * 11)
    front = mc.pareto(spec, 4)
    for label, strategy in [("StoreAll", mc.StoreAll()), ("Sqrt", mc.Sqrt()), ("Revolve(0)", mc.Revolve(0)),
                            ("Revolve(8)", mc.Revolve(8))]:
        s = mc.plan(spec, 4, strategy)
        best = min(f.forward_evals for f in front if f.peak_bytes <= s.peak_bytes)
        line = next(line for line in text.splitlines() if line.split()[:1] == [label])
        assert line.split()[1:] == [f"{s.peak_bytes / 2**20:.3f}", str(s.forward_evals), str(best)]
        assert best <= s.forward_evals  # the frontier is never worse than a fixed strategy
    assert "Revolve(16)" not in text


@pytest.mark.parametrize("extra, needle", [
    (["--pareto", "--actions"], "--actions"),
    (["--pareto", "--plot", "x.png"], "--plot"),
    (["--pareto", "--optimizer", "adam"], "--optimizer"),
    (["--pareto-plot", "/nonexistent/dir/f.png"], "--pareto-plot"),
    (["--pareto-plot", "f.svg"], "--pareto-plot"),
])
def test_plan_pareto_bad_combinations_are_one_line_exit_2(extra, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "--sizes", "4,4,4", *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
