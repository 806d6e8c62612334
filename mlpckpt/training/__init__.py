"""Optimisers (in place) and the minibatch loop.

The modules are private; the public names are in :mod:`mlpckpt` (see docs/architecture.md)."""
