"""mlpckpt: exact, memory-efficient NumPy MLPs for deep-narrow experiments.

Column-major activations (one sample per column), a backward pass that keeps
O(sqrt n), a fixed number or a byte budget's worth of activations with
gradients bitwise equal to plain backprop, and numerical gradient checks.
"""

from ._version import __version__

from .model._batch import Grads
from .model._mlp import MLP
from .core._inits import Gaussian
from .experiments._layerstats import LayerStats
from .experiments._sweeps import sweep
from .model._load import load
from .planning._budget import Budget
from .planning._plan import pareto, plan
from .planning._schedule import Schedule
from .model._spec import NetSpec
from .planning._strategies import Actions, Revolve, Segments, Sqrt, StoreAll, Strategy
from .training._optimizers import SGD, Adam, Optimizer
from .verification._gradcheck import gradcheck
from .verification._report import GradcheckReport
from .verification._checker import check_gradients
from .execution._workspace import Workspace
from .core._kernel_setting import get_kernels, set_kernels
from .experiments import meanfield  # public module: from mlpckpt import meanfield

__all__ = [
    "MLP",
    "Gaussian",
    "LayerStats",
    "sweep",
    "Grads",
    "SGD",
    "Adam",
    "Optimizer",
    "Strategy",
    "StoreAll",
    "Segments",
    "Sqrt",
    "Revolve",
    "Budget",
    "Actions",
    "Schedule",
    "Workspace",
    "get_kernels",
    "set_kernels",
    "NetSpec",
    "load",
    "plan",
    "pareto",
    "check_gradients",
    "gradcheck",
    "GradcheckReport",
    "__version__",
]
