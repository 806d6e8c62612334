"""Every ```python block of README.md runs (in order, each in a fresh
namespace, in a temporary directory)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_code_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
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


@pytest.mark.parametrize("line", CLI_LINES)
def test_readme_cli_line_runs(line, capsys):
    from mlpckpt.cli._main import main

    assert main(line.split()) == 0
    assert capsys.readouterr().out
