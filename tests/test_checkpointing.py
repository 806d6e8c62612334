"""Temporary home of the plan command's test (moves to tests/test_cli.py)."""

from mlpckpt.strategies import griewank_t


def test_cli_plan(capsys):
    from mlpckpt.cli import main

    assert main(["plan", "--width", "64", "--depth", "1000", "--batch", "256", "--strategy", "revolve:8"]) == 0
    text = capsys.readouterr().out
    assert f"forward evals     {griewank_t(1001, 9)}" in text and "MiB" in text
    assert main(["plan", "--sizes", "8,16,16,3", "--strategy", "sqrt", "--actions"]) == 0
    text = capsys.readouterr().out
    assert "forward layers" in text and "backward layers" in text
    assert main(["plan", "--sizes", "8,16", "--strategy", "revolve:x"]) == 2
    assert "--strategy" in capsys.readouterr().err
