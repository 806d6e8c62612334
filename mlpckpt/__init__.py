"""mlpckpt: exact, memory-efficient NumPy MLPs for deep-narrow experiments.

Column-major activations (one sample per column), a backward pass that keeps
O(sqrt n), a fixed number or a byte budget's worth of activations with
gradients bitwise equal to plain backprop, and numerical gradient checks.
"""

from ._version import __version__

from .inputs import Grads
from .mlp import MLP
from .inits import Gaussian
from .layerstats import LayerStats
from .sweeps import sweep
from .netfile import load
from .budget import Budget
from .plan import pareto, plan
from .schedule import Schedule
from .spec import NetSpec
from .strategies import Actions, Revolve, Segments, Sqrt, StoreAll, Strategy
from .optim import SGD, Adam, Optimizer
from .netcheck import gradcheck
from .report import GradcheckReport
from .verify import check_gradients
from .workspace import Workspace
from .kernels import get_kernels, set_kernels

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
