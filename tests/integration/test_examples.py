"""Every examples/*.py runs to completion in a subprocess.

Scripts are found by glob, so new examples are picked up automatically; the
ones listed in EXPECTED must also print a line matching their pattern. A
script whose imports are missing (e.g. scikit-learn, a test extra) is
skipped, not failed.
"""

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT = 120  # seconds per script; a hung script fails instead of blocking CI

#: file name -> regular expression one line of its stdout must match
EXPECTED = {
    "seed000_table.py": r"^\s*example\s+predicted\s+true\s*$",
    "digits.py": r"^training accuracy: 0\.9[89]\d*|^training accuracy: 1\.0",
    "deep_narrow.py": r"^loss after 3 steps: ",
    "phase_diagram.py": r"^wrote .*phase_diagram\.png$",
}

#: file name -> extra arguments (a quick mode, and a scratch directory for what it writes)
ARGS = {"phase_diagram.py": ["--quick", "--workers", "2", "--no-progress", "--out", "{tmp}"]}


def _missing_imports(path):
    """Top-level modules imported by ``path`` that are not installed."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return sorted(n for n in names if importlib.util.find_spec(n) is None)


def test_examples_found():
    names = {p.name for p in EXAMPLES}
    assert set(EXPECTED) <= names, f"missing examples: {set(EXPECTED) - names}"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, tmp_path):
    missing = _missing_imports(path)
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)}")
    env = dict(os.environ)
    # run against this checkout even when the package is not installed
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run(
        [sys.executable, str(path)] + [a.format(tmp=tmp_path) for a in ARGS.get(path.name, [])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, f"{path.name} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    pattern = EXPECTED.get(path.name)
    if pattern is not None:
        assert re.search(pattern, proc.stdout, flags=re.MULTILINE), (
            f"{path.name}: no line matching {pattern!r} in:\n{proc.stdout[-3000:]}"
        )


def test_example_docstrings():
    for path in EXAMPLES:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and len(doc.strip()) > 20, f"{path.name} has no docstring"
