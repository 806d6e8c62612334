"""benchmarks/peers.py --quick: runs with NumPy alone and writes a complete JSON."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_peers_quick(tmp_path):
    out = tmp_path / "peers.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # --no-torch/--no-jax: where this Python has them, their rows are skipped all the same
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--quick", "--no-torch",
                        "--no-jax", "--json", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "torch: " in r.stdout and "jax: " in r.stdout  # the one-line skip messages
    data = json.loads(out.read_text())
    m = data["machine"]
    for key in ("cpu", "avx2", "avx512f", "blas", "versions", "kernels", "isa", "date"):
        assert key in m
    assert set(m["versions"]) >= {"python", "numpy", "numba", "torch", "jax"}
    assert [(c["depth"], c["dtype"]) for c in data["cases"]] == [
        (16, "float64"), (32, "float64"), (16, "float32"), (32, "float32")]
    for case in data["cases"]:
        assert case["machine"]["cpu"] == m["cpu"]
        rows = case["variants"]
        for name in ("mlpckpt StoreAll", "mlpckpt Sqrt", "mlpckpt Revolve(10)", "mlpckpt Budget(Sqrt peak)",
                     "matmul floor", "recompute floor (Sqrt)"):
            t = rows[name]["median_s"]
            assert math.isfinite(t) and t > 0
            assert all(math.isfinite(x) and x > 0 for x in rows[name]["times_s"])
            assert rows[name]["vs_storeall"] > 0
        assert rows["mlpckpt StoreAll"]["minflt_per_step"] >= 0
        ratios = case["ratios"]
        assert ratios["Sqrt / recompute floor"] > 0 and ratios["StoreAll / matmul floor"] > 0
        assert ratios["StoreAll / torch plain"] is None and ratios["Sqrt / jax remat"] is None
        assert all(a["dW0_rel"] == 0.0 for nm, a in case["agreement"].items())  # strategies: bitwise
