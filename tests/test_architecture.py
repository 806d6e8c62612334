"""The architecture of docs/architecture.md, checked from the source: the
layering between subpackages (imports at any level, function-level ones and
imports through a subpackage's ``__init__`` included), no import cycles, a
model-free checker, no function shadowing a module, no self-patching, and
every module importable without the optional extras.

Each rule is also run on a planted violation, so that a rule that could
never fail is caught too."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "mlpckpt"
SUBPACKAGES = ("core", "backends", "training", "planning", "execution", "model", "verification", "io",
               "experiments", "cli", "bench")
TOP_LEVEL = {"__init__.py", "__main__.py", "_version.py", "testing.py"}


def _sources():
    """{dotted name relative to the package ('' is mlpckpt itself, 'model' its
    __init__, 'model._mlp', ...): source text}."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path.read_text()
    return out


SOURCES = _sources()
PACKAGES = {name for name in SOURCES if (PACKAGE / name.replace(".", "/") / "__init__.py").exists()}


def imports(name, source, modules):
    """Package modules that ``source`` (the module ``name``) imports, anywhere in it.

    A name imported from a package (``from ..model import MLP``) counts as
    that package, whose ``__init__`` runs; ``from .. import X`` counts as
    ``mlpckpt`` itself unless ``X`` is a module.
    """
    package = name if name in PACKAGES else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "mlpckpt" or node.module.startswith("mlpckpt.")):
                mod = node.module[len("mlpckpt."):] if node.module != "mlpckpt" else ""
            else:
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}" if mod else alias.name
                found.add(sub if sub in modules else mod)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "mlpckpt" or alias.name.startswith("mlpckpt."):
                    parts = alias.name.split(".")[1:]
                    for i in range(len(parts) + 1):  # importing a.b runs a's __init__ too
                        found.add(".".join(parts[:i]))
    own = {".".join(package.split(".")[:i]) for i in range(len(package.split(".")) + 1)} if package else {""}
    for mod in list(found):  # the __init__ of a module's packages run first (but not the importer's own)
        parts = mod.split(".")
        found |= {".".join(parts[:i]) for i in range(1, len(parts))} & PACKAGES - own
    found.discard(name)
    return {m for m in found if m in modules}


def graph(sources):
    return {name: imports(name, text, sources) for name, text in sources.items()}


def closure(g, name):
    seen, stack = set(), [name]
    while stack:
        for dep in g[stack.pop()]:
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def room(name):
    """The subpackage a module belongs to ('' for the top-level modules)."""
    return name.split(".")[0] if name.split(".")[0] in SUBPACKAGES else ""


#: what each subpackage may reach, through any chain of imports
MAY_REACH = {
    "core": {"core"},
    "backends": {"core", "backends"},
    "training": {"core", "backends", "training"},
    # planning is data: never the executor, the model or anything above them
    "planning": {"core", "backends", "training", "planning"},
    "execution": {"core", "backends", "planning", "execution"},
    # io knows no model
    "io": {"core", "backends", "training", "io"},
    "experiments": {"core", "io", "experiments", ""},
}
#: what nothing but the command line and the benchmarks may reach
NEVER = {"cli", "bench"}
#: the model-free checker: validation primitives and its report, nothing else
MODEL_FREE = {"verification._checker": {"core._validate", "verification._report", "core", "verification"},
              "verification._report": {"core._validate", "core", "verification"}}


def violations(g):
    """Every broken layering rule of the import graph ``g``, as readable lines."""
    found = []
    for name in g:
        reach = closure(g, name)
        if name in reach:
            found.append(f"{name}: in an import cycle")
        where = room(name)
        if where in MAY_REACH:
            bad = sorted(d for d in reach if room(d) not in MAY_REACH[where])
            if bad:
                found.append(f"{name} ({where}) reaches {bad}")
        if where not in NEVER and name not in ("", "__main__"):
            bad = sorted(d for d in reach if room(d) in NEVER)
            if bad:
                found.append(f"{name} reaches the command line or the benchmarks: {bad}")
        if where == "bench" and any(room(d) == "cli" for d in reach):
            found.append(f"{name} (bench) reaches cli")
        if name in MODEL_FREE and not reach <= MODEL_FREE[name]:
            found.append(f"{name} is not model-free: {sorted(reach - MODEL_FREE[name])}")
    return found


GRAPH = graph(SOURCES)


def test_the_layering_holds():
    assert violations(GRAPH) == []


def test_no_module_lives_directly_under_the_package_but_the_entry_points():
    assert {p.name for p in PACKAGE.glob("*.py")} <= TOP_LEVEL
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(SUBPACKAGES)


def _planted(name, line):
    """The graph with ``line`` appended to module ``name`` (inside a function,
    so that function-level imports are seen too)."""
    sources = dict(SOURCES)
    sources[name] = sources[name] + f"\n\ndef _planted():\n    {line}\n"
    return graph(sources)


PLANTS = [
    ("core._activations", "from ..backends import _backends"),  # core reaches only core
    ("core._losses", "from .. import MLP"),  # through mlpckpt's __init__
    ("backends._backends", "from ..model import MLP"),  # through model's __init__, which runs model._mlp
    ("training._optimizers", "from ..planning import _plan"),
    ("planning._memory", "from ..execution import _executor"),  # planning never runs arrays
    ("planning._budget", "import mlpckpt.model._mlp"),
    ("planning._actions", "from ..model._spec import NetSpec"),
    ("execution._executor", "from ..model import _mlp"),
    ("io._records", "from ..model._mlp import MLP"),  # io knows no model
    ("experiments._sweeps", "from ..cli import main"),
    ("verification._checker", "from ..core import _losses"),  # model-free: primitives and report only
    ("verification._report", "from ..planning import _plan"),
    ("verification._gradcheck", "from .. import bench"),
    ("model._mlp", "from ..cli import _main"),
    ("bench.plots", "from ..cli import _main"),  # bench never imports cli
    ("core._validate", "from ..core import _activations"),  # a cycle: _activations imports _validate
]


@pytest.mark.parametrize("name, line", PLANTS)
def test_each_rule_catches_a_planted_violation(name, line):
    assert name in SOURCES, name
    assert violations(GRAPH) == []
    found = violations(_planted(name, line))
    assert any(f.startswith(name) for f in found), found


def test_no_function_shadows_a_module():
    import importlib

    for name in SOURCES:
        if not name or name.endswith("__main__"):
            continue
        module = importlib.import_module(f"mlpckpt.{name}")
        parent, _, leaf = f"mlpckpt.{name}".rpartition(".")
        assert getattr(importlib.import_module(parent), leaf) is module, name


def test_every_module_imports_without_the_optional_extras():
    code = """
import importlib, pathlib, sys
BLOCKED = {"numba", "torch", "cupy", "dask", "distributed", "array_api_strict", "jax"}
NEEDS_NUMBA = {"mlpckpt.execution._compiled", "mlpckpt.execution._fastmath"}
sys.modules.update(dict.fromkeys(BLOCKED))  # None: "import numba" raises ImportError, find_spec finds nothing
import mlpckpt
root = pathlib.Path(mlpckpt.__file__).parent
for path in sorted(root.rglob("*.py")):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__main__":  # runs a program
        continue
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    name = ".".join(["mlpckpt"] + parts)
    if name in NEEDS_NUMBA:  # the compiled kernels themselves: a clear ImportError
        try:
            importlib.import_module(name)
        except ImportError as error:
            assert 'pip install "mlpckpt[fast]"' in str(error), error
        else:
            raise AssertionError(name + " imported without numba")
        continue
    importlib.import_module(name)
assert all(sys.modules[m] is None for m in sys.modules if m.split(".")[0] in BLOCKED)
print("ok", mlpckpt.get_kernels())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok ('auto', 'numpy')"), done.stdout


def _module_aliases(tree):
    """Local names bound to package modules (``from . import _layers as layers`` and the like)."""
    leaves = {m.rpartition(".")[2] for m in SOURCES if m}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mlpckpt")):
            names |= {a.asname or a.name for a in node.names if a.name in leaves}
        elif isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names if a.name.startswith("mlpckpt")}
    return names


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_no_hasattr_dispatch_and_no_self_patching(name):
    tree = ast.parse(SOURCES[name])
    aliases = _module_aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hasattr":
            text = ast.unparse(node)
            assert not any(w in text for w in ("strateg", "actions", "Budget")), f"{name}: {text}"
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
                    assert t.value.id not in aliases, f"{name} patches {ast.unparse(t)}"
