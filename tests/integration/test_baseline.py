"""Planning is what it was before the redesign of issue 10.

``tests/data/baseline.json`` was recorded by ``tests/data/make_baseline.py``
on the code before the redesign (through the public API only): the actions
(hashed), ``forward_evals`` and ``max_stored`` of StoreAll, Sqrt,
Segments(k) and Revolve(s) for every n from 1 to 1000, and every plan
figure of 1210 calls (fixed strategies and Budgets, every loss, both
dtypes, with and without ``out=`` and ``fuse_update``, uniform and uneven
widths). Any difference is a change of behaviour.

Re-recorded once since, on purpose (issue 11): the memory model now takes
the per-array overhead from the interpreter, counts gradient lists only
where a call makes them, models the executor's dict of held activations,
and the losses' new temporaries. Against the first record the fixed
strategies' records for n = 1..1000 are identical, and in the calls only
``peak_bytes`` and ``activation_bytes`` changed (no actions digest,
``forward_evals``, ``max_stored`` or refusal), the Budget rows following
the new peaks.

Re-recorded again (issue 12): the executor keeps held activations in a
list (fixed bytes) instead of a dict, and Budget became the exact search
(up to 12 layers) or the certified one. Against the record before, the
600 fixed-strategy rows of the calls changed only in ``peak_bytes`` and
``activation_bytes`` (no actions digest, ``forward_evals``, ``max_stored``
or refusal), and the fixed strategies' records for n = 1..1000 are
identical; the Budget rows are new answers (their budgets follow the new
peaks).

Re-recorded a third time (issue 14): cross-entropy with one-hot targets no
longer holds a column-index vector through the loss (the backend operations
make one per indexing), so its loss temporary is modelled as what it now is
(costs.loss_transient). Only rows of that loss and target form changed: 44
fixed-strategy rows in ``peak_bytes`` alone, and 74 Budget rows whose
budgets follow the new peaks (so their refusals' numbers, and for one its
answer). The fixed strategies' records for n = 1..1000 are identical.
"""

import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

import mlpckpt as mc

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.join(TESTS, "data"))
import make_baseline  # noqa: E402

with open(os.path.join(TESTS, "data", "baseline.json")) as f:
    BASELINE = json.load(f)

#: processes computing the figures (every n and every call is independent of
#: the others): the comparison's wall time halves on two idle cores
WORKERS = min(2, os.cpu_count() or 1)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def numpy_kernels():
    """The record's bytes are those of NumPy's kernels (made before the
    compiled ones existed, whose forward has no ufunc buffer); the workers
    set the same (:func:`make_baseline.numpy_kernels`)."""
    previous = mc.set_kernels("numpy")
    yield
    mc.set_kernels(previous)


@pytest.fixture(scope="module")
def pool():
    """Spawned workers with NumPy's kernels, or None on one CPU (then
    everything runs in this process)."""
    if WORKERS < 2:
        yield None
        return
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"),
                             initializer=make_baseline.numpy_kernels) as executor:
        yield executor


def _map(pool, fn, *items):
    """``list(map(fn, *items))``, in the pool when there is one (results in order)."""
    return list(pool.map(fn, *items)) if pool is not None else list(map(fn, *items))


def test_workers_compute_what_this_process_computes(pool):
    """The pool only saves time: a worker's figures are this process's."""
    ns, case = [1, 57], make_baseline.call_cases()[-1]
    here = [make_baseline.fixed_records(n, n) for n in ns] + [make_baseline.case_records(case)]
    there = _map(pool, make_baseline.fixed_records, ns, ns) + _map(pool, make_baseline.case_records, [case])
    assert there == here


def test_fixed_strategies_unchanged(pool):
    """Every fixed strategy for n = 1..1000: actions digest, forward_evals, max_stored."""
    ns = list(range(1, BASELINE["max_n"] + 1))
    longest_first = ns[::-1]
    per_n = _map(pool, make_baseline.fixed_records, longest_first, longest_first)[::-1]
    assert all(records.keys() == BASELINE["fixed"].keys() for records in per_n)
    for name, want in BASELINE["fixed"].items():
        got = [records[name][0] for records in per_n]
        assert len(want) == len(ns), name
        differ = [n for n, g, w in zip(ns, got, want) if g != w]
        assert not differ, (f"{name}: {len(differ)} of {len(ns)} records differ, first n = {differ[0]}: "
                            f"{got[differ[0] - 1]} != {want[differ[0] - 1]} (recorded)")


def test_calls_unchanged(pool):
    """Every plan figure of the 1210 calls (fixed strategies and Budgets)."""
    now = [row for rows in _map(pool, make_baseline.case_records, make_baseline.call_cases()) for row in rows]
    assert len(now) == len(BASELINE["calls"])
    for got, want in zip(now, BASELINE["calls"]):
        assert got == want, (got, want)
