"""The ``mlpckpt`` command line.

``mlpckpt`` (the console script) and ``python -m mlpckpt`` run :func:`main`."""

from ._main import main

__all__ = ["main"]
