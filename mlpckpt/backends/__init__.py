"""The array libraries a net can live on (NumPy, PyTorch, CuPy, any array-API namespace).

The modules are private; the public names are in :mod:`mlpckpt` (see docs/architecture.md)."""
