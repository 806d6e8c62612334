"""The cost tables: one declared interface (CostTable), one implementation
per allocator, each method with the interface's own signature, and the
memory model reading either one through it."""

import inspect

import pytest

from mlpckpt.planning import _costs as costs, _device_costs as devcosts, _memory as memory
from mlpckpt.planning._plan import Call

METHODS = ["array_bytes", "fixed_bytes", "forward_transient", "loss_transient", "grad_pair_bytes",
           "shared_grad_bytes"]
TABLES = [costs.Tracemalloc("numpy"), costs.Tracemalloc("numba"), devcosts.DeviceAllocator("torch:cuda"),
          devcosts.DeviceAllocator("cupy:cuda"), devcosts.DeviceAllocator("torch:cpu")]


def _table_id(table):  # repr has an address, which changes from run to run
    return f"{type(table).__name__}({','.join(map(str, vars(table).values()))})"


@pytest.mark.parametrize("table", TABLES, ids=_table_id)
def test_every_table_implements_the_interface_with_its_signatures(table):
    assert isinstance(table, costs.CostTable)
    for name in METHODS:
        declared = inspect.signature(getattr(costs.CostTable, name))
        got = inspect.signature(getattr(table, name))
        assert list(got.parameters) == list(declared.parameters)[1:], name  # without self
    assert isinstance(table.backward_transient, int) and isinstance(table.update_transient, int)


def test_something_else_is_not_a_cost_table():
    assert not isinstance(costs, costs.CostTable)  # the module: functions shared by convention no more
    assert not isinstance(object(), costs.CostTable)


@pytest.mark.parametrize("backend, kernels, want", [
    ("numpy", "numpy", costs.Tracemalloc), ("numpy", "numba", costs.Tracemalloc),
    ("torch:cuda", "numpy", devcosts.DeviceAllocator), ("cupy:cuda", "numpy", devcosts.DeviceAllocator),
])
def test_the_model_reads_the_calls_table(backend, kernels, want):
    call = Call(sizes=(3, 5, 5, 2), batch=7, dtype="float64", activations=("tanh", "relu"), loss="mse",
                output="identity", kernels=kernels, backend=backend)
    table = memory.cost_table(call)
    assert type(table) is want
    assert memory.model(call) == memory.model(call, table)
    # the same figures as the tables' functions give directly
    m = memory.model(call)
    if want is costs.Tracemalloc:
        assert m.act[1] == 5 * 7 * 8 + costs.ARRAY_OVERHEAD
        assert m.fwd[0] == m.act[1] + costs.forward_transient(5, 7, 8, "tanh", kernels)
    else:
        assert m.act[1] == devcosts.array_bytes(5 * 7 * 8, backend)
        assert m.fwd[0] == m.act[1] + devcosts.forward_transient(5, 7, 8, "tanh", backend)
        assert m.back[0] >= devcosts.BACKWARD_TRANSIENT
