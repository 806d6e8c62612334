"""Pure array math and the name tables every layer above may use: activations, losses, parameters and their inits, argument checks.

The modules are private; the public names are in :mod:`mlpckpt` (see docs/architecture.md)."""
