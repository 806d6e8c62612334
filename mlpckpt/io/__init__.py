"""Records to .npz and back (no pickle), atomic files.

The modules are private; the public names are in :mod:`mlpckpt` (see docs/architecture.md)."""
