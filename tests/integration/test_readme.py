"""Every ```python block of README.md runs (in order, each in a fresh
namespace, in a temporary directory)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_code_blocks():
    assert len(BLOCKS) >= 3


def _depth(code):
    """The deepest net that code builds: ``[width] * n`` or ``--depth n``."""
    return max((int(a or b) for a, b in re.findall(r"\[\d+\] \* (\d+)|--depth (\d+)", code)), default=0)


def _slow(code):
    """Examples that run for many seconds: a gradient check of a PyTorch net
    (a forward pass per entry), a Budget over a thousand layers or more, the
    Pareto frontier of the command line."""
    budget = "Budget(" in code or "budget:" in code
    return ('backend="torch"' in code and "gradcheck(" in code) or (budget and _depth(code) >= 1000) \
        or "--pareto" in code


def _marked(values, codes):
    return [pytest.param(v, marks=pytest.mark.slow) if _slow(c) else v for v, c in zip(values, codes)]


@pytest.mark.parametrize("index", _marked(range(len(BLOCKS)), BLOCKS))
def test_readme_block_runs(index, tmp_path, monkeypatch):
    if "import torch" in BLOCKS[index]:
        pytest.importorskip("torch")  # the Backends example (CI installs torch)
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {"__name__": "__readme__"})


CLI_LINES = [
    line.split(None, 1)[1]
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    for line in block.splitlines()
    if line.startswith("mlpckpt plan ") or line.startswith("mlpckpt gradcheck ")
    if "--plot" not in line
]


def test_readme_has_cli_lines():
    assert len(CLI_LINES) >= 4


@pytest.mark.parametrize("line", _marked(CLI_LINES, CLI_LINES))
def test_readme_cli_line_runs(line, capsys):
    from mlpckpt.cli._main import main

    assert main(line.split()) == 0
    assert capsys.readouterr().out
