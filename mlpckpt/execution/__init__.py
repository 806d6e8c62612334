"""Running a schedule: the executor, layer steps, elementwise kernels (NumPy and compiled), workspaces.

The modules are private; the public names are in :mod:`mlpckpt` (see docs/architecture.md)."""
