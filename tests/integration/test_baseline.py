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
import os
import sys

import pytest

import mlpckpt as mc

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
sys.path.insert(0, os.path.join(TESTS, "data"))
import make_baseline  # noqa: E402

with open(os.path.join(TESTS, "data", "baseline.json")) as f:
    BASELINE = json.load(f)


@pytest.fixture(autouse=True)
def numpy_kernels():
    """The record's bytes are those of NumPy's kernels (made before the
    compiled ones existed, whose forward has no ufunc buffer)."""
    previous = mc.set_kernels("numpy")
    yield
    mc.set_kernels(previous)


@pytest.mark.slow
@pytest.mark.parametrize("block", range(10))
def test_fixed_strategies_unchanged(block):
    lo, hi = 100 * block + 1, 100 * block + 100
    now = make_baseline.fixed_records(hi, start=lo)
    for name, rows in now.items():
        assert rows == BASELINE["fixed"][name][lo - 1 : hi], name


@pytest.mark.slow
def test_calls_unchanged():
    now = make_baseline.call_records()
    assert len(now) == len(BASELINE["calls"])
    for got, want in zip(now, BASELINE["calls"]):
        assert got == want, (got, want)
