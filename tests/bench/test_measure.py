"""mlpckpt.bench.measure: tracemalloc and RSS measurements, machine info;
the bench and the CLI import without matplotlib."""

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from mlpckpt.bench import MIB, traced_peak
from mlpckpt.bench import measure

KIB = 1024


def test_traced_peak_sees_a_temporary_array():
    size = 4 * 2**20

    def call():
        a = np.ones(size // 8)
        del a

    peak = traced_peak(call)
    assert size <= peak <= size + 64 * KIB
    assert not tracemalloc.is_tracing()  # stopped again


def test_traced_peak_counts_above_what_was_traced_before():
    tracemalloc.start()
    try:
        held = np.ones(2**17)  # 1 MiB traced before the call: not counted
        peak = traced_peak(lambda: np.ones(2**16))
    finally:
        tracemalloc.stop()
    assert held.nbytes == 2**20
    assert 2**19 <= peak <= 2**19 + 64 * KIB


def test_traced_peak_stops_tracing_when_the_call_raises():
    with pytest.raises(ZeroDivisionError):
        traced_peak(lambda: 1 / 0)
    assert not tracemalloc.is_tracing()


def test_rss_growth_follows_a_large_touched_block():
    size = 64 * 2**20

    def call():
        a = np.ones(size // 8)  # mmap'd by glibc (far above its threshold), touched
        del a

    growth = measure._rss_growth(call)
    if growth == -1:
        pytest.skip("peak RSS cannot be reset here (not Linux, or no /proc/self/clear_refs)")
    assert 0.9 * size <= growth <= 2 * size
    assert measure._current_rss() > 0


def test_child_info_names_the_versions():
    info = measure._child_info()
    assert info["numpy"] == np.__version__
    assert info["python"] == sys.version.split()[0]
    assert info["cpu_count"] >= 1
    assert info["cpu_model"] is None or isinstance(info["cpu_model"], str)


def test_git_state_is_a_commit_or_none():
    state = measure._git_state()
    if state is not None:
        commit = state["commit"]
        assert commit is None or (len(commit) == 40 and int(commit, 16) >= 0)
        assert isinstance(state["modified_files"], list)


def test_mib():
    assert MIB == 1048576.0


def test_bench_and_cli_import_without_matplotlib():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"  # any import of it fails
        "import mlpckpt.bench, mlpckpt.cli._main\n"
        "from mlpckpt.cli._main import main\n"
        "assert main(['plan', '--sizes', '4,4', '--strategy', 'sqrt']) == 0\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "forward evals" in proc.stdout
