"""Deep-narrow experiments: layer statistics, sweeps, mean-field theory.

:mod:`mlpckpt.experiments.meanfield` is public (also as ``mlpckpt.meanfield``); the other modules are private."""
