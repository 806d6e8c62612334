"""The MLP and what wires it for a user: the net, its spec, batch checks, Grads, moving between backends, loading.

The modules are private; the public names are in :mod:`mlpckpt` (see docs/architecture.md)."""
