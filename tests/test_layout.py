"""The architecture rules of DESIGN.md, checked from the source (imports at
any level, function-level ones included): small modules, no import cycles,
a model-free checker, planning free of the executor, no self-patching."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "mlpckpt"
PLANNING_ORDER = [
    "_validate", "actions", "strategies", "costs", "memory", "poolmem", "exact", "chain", "held", "schedule", "budget", "frontier", "plan",
]


def _modules():
    """{dotted name relative to the package ('bench.run', 'plan', ...): path}."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package_of(name, path):
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(name):
    """Package modules ``name`` imports, anywhere in its source."""
    path = MODULES[name]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(name, path).split(".") if _package_of(name, path) else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("mlpckpt"):
                mod = node.module[len("mlpckpt."):] if node.module != "mlpckpt" else ""
            else:
                continue
            for alias in node.names:  # `from . import memory` names a module
                sub = f"{mod}.{alias.name}" if mod else alias.name
                found.add(sub if sub in MODULES else mod)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mlpckpt."):
                    found.add(alias.name[len("mlpckpt."):])
    found.discard(name)
    return {m for m in found if m in MODULES}


GRAPH = {name: _imports(name) for name in MODULES}


def _closure(name):
    seen, stack = set(), [name]
    while stack:
        for dep in GRAPH[stack.pop()]:
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= 300, f"{name}: {lines} lines"


def test_no_import_cycles():
    cycles = sorted(name for name in MODULES if name in _closure(name))
    assert cycles == []


def test_validation_primitives_import_nothing_of_the_package():
    assert GRAPH["_validate"] == set()


def test_the_checker_is_model_free():
    assert GRAPH["verify"] <= {"_validate", "report"}
    assert GRAPH["report"] <= {"_validate"}


def test_planning_follows_its_order_and_never_reaches_the_executor():
    for i, name in enumerate(PLANNING_ORDER):
        later = set(PLANNING_ORDER[i + 1:])
        assert not GRAPH[name] & later, (name, GRAPH[name] & later)
        assert not _closure(name) & {"layers", "backprop", "mlp", "train", "verify"}, name


CLI = {"cli", "_cli_args", "_cli_bench", "_cli_pareto", "__main__"}  # the command line and its parts


def test_training_and_files_know_no_model():
    for name in ("train", "optim", "io"):
        assert not _closure(name) & {"mlp", "netcheck", "backprop"}, name


def test_core_never_imports_bench_or_cli():
    for name in MODULES:
        deps = _closure(name)
        if not name.startswith("bench") and name not in CLI:
            assert not {d for d in deps if d.startswith("bench") or d in CLI}, name
        if name.startswith("bench"):
            assert not deps & CLI, name


def _module_aliases(tree):
    """Local names bound to package modules (``from . import layers`` and the like)."""
    leaves = {m.rpartition(".")[2] for m in MODULES if m}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mlpckpt")):
            names |= {a.asname or a.name for a in node.names if a.name in leaves}
        elif isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names if a.name.startswith("mlpckpt")}
    return names


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_hasattr_dispatch_and_no_self_patching(name):
    tree = ast.parse(MODULES[name].read_text())
    aliases = _module_aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hasattr":
            text = ast.unparse(node)
            assert not any(w in text for w in ("strateg", "actions", "Budget")), f"{name}: {text}"
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
                    assert t.value.id not in aliases, f"{name} patches {ast.unparse(t)}"
