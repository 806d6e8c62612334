"""Crash safety with real processes (issue 11, item 7d): a child that saves in a
loop, killed with SIGKILL at random moments, leaves the target absent or a
complete model, and the next save removes the temporaries it left; two live
writers of one target never corrupt it nor remove each other's temporary."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.io import _atomic as _files
from mlpckpt.testing import assert_bitwise_equal

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and stale-temporary removal are POSIX")

ROOT = pathlib.Path(__file__).resolve().parents[2]
SIZES = [64, 1024, 1024, 16]  # about 9 MB a file: a kill usually lands inside a save

# argv: target, seed, count (0: forever), then "die" to SIGKILL itself half-way into np.savez
CHILD = """
import os, signal, sys
import numpy as np
import mlpckpt as mc
target, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
net = mc.MLP(SIZES, seed=seed)
if sys.argv[4:] == ["die"]:
    def half_then_die(fh, **arrays):
        fh.write(b"PK" + bytes(4096))
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    np.savez = half_then_die
print("ready", flush=True)
sys.stdin.readline()  # "go"
i = 0
while count == 0 or i < count:
    i += 1
    for b in net.biases:
        b[...] = seed * 1_000_000 + i
    net.save(target)
""".replace("SIZES", repr(SIZES))


def _child(target, seed, count=0, *extra, go=True):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(target), str(seed), str(count), *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT), env=env)
    assert proc.stdout.readline() == b"ready\n"
    if go:
        _go(proc)
    return proc


def _go(proc):
    proc.stdin.write(b"go\n")
    proc.stdin.flush()


def _check_complete(net, seed):
    """``net`` (loaded) is one whole save of the child of ``seed``."""
    ref = mc.MLP(SIZES, seed=seed)
    assert_bitwise_equal(net.weights, ref.weights)
    i = net.biases[0][0, 0] - seed * 1_000_000
    assert i >= 1 and all((b == net.biases[0][0, 0]).all() for b in net.biases)
    return int(i)


def _temporaries(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(_files.SUFFIX))


@pytest.mark.slow
def test_sigkill_during_saves_leaves_a_whole_file_and_the_next_save_cleans_up(tmp_path):
    target = tmp_path / "model.npz"
    rng = np.random.default_rng(11)  # the kill moments are fixed
    pids, outcomes = [], []
    for moment in rng.uniform(0.0, 0.6, size=5):
        child = _child(target, seed=1)
        time.sleep(moment)
        child.send_signal(signal.SIGKILL)
        child.wait()
        pids.append(child.pid)
        outcomes.append(_check_complete(mc.load(target), 1) if target.exists() else None)
        assert sorted(os.listdir(tmp_path)) == sorted(["model.npz"] * target.exists() + _temporaries(tmp_path))
        assert len(_temporaries(tmp_path)) <= 1  # each child removed those of the one before
    # one kill at a known moment: half-way into writing the temporary
    child = _child(target, 2, 0, "die")
    child.wait()
    assert child.returncode == -signal.SIGKILL
    pids.append(child.pid)
    stale = _temporaries(tmp_path)
    assert any(f"~{child.pid}~" in name for name in stale)
    assert all(any(f"~{pid}~" in name for pid in pids) for name in stale)  # only the children's
    mc.MLP(SIZES, seed=3).save(target)
    assert os.listdir(tmp_path) == ["model.npz"]
    assert np.array_equal(mc.load(target).weights[0], mc.MLP(SIZES, seed=3).weights[0])


@pytest.mark.slow
def test_two_live_writers_never_corrupt_a_target_nor_remove_each_others_temporary(tmp_path):
    target = tmp_path / "model.npz"
    writers = [_child(target, seed, 25, go=False) for seed in (4, 5)]
    for w in writers:  # both start saving at once
        _go(w)
    seen = set()
    while any(w.poll() is None for w in writers):
        if target.exists():
            net = mc.load(target)  # a whole file of one writer, every time
            seed = 4 if np.array_equal(net.weights[0], mc.MLP(SIZES, seed=4).weights[0]) else 5
            seen.add((seed, _check_complete(net, seed)))
    assert [w.returncode for w in writers] == [0, 0]  # no FileNotFoundError from a removed temporary
    assert _temporaries(tmp_path) == [] and os.listdir(tmp_path) == ["model.npz"]
    last = mc.load(target)
    assert last.biases[0][0, 0] in (4_000_025, 5_000_025)
