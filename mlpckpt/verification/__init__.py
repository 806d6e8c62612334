"""Gradient checks: the model-free checker, its report, and gradcheck for a net.

The modules are private; the public names are in :mod:`mlpckpt` (see docs/architecture.md)."""
