"""Schedules as data: actions, strategies, plan/pareto, the budget searches and the memory model.

The modules are private; the public names are in :mod:`mlpckpt` (see docs/architecture.md)."""
