"""The values of the ``mlpckpt`` command line, checked by argparse.

Each ``type=`` callable here turns one option's text into its value or
raises ``argparse.ArgumentTypeError``, which argparse reports, naming the
option, as the command's one-line error (see :mod:`mlpckpt.cli._main`).
"""

import argparse
import functools
import math
import os
import re

from .. import bench
from ..core._validate import DTYPES, check_choice, check_positive_float, check_sizes
from ..core._activations import ACTIVATIONS, OUTPUTS
from ..core._losses import LOSSES, output_for
from ..planning._plan import parse
from ..model._spec import NetSpec
from ..verification._checker import METHODS

__all__ = ["MAX_DEPTH", "PLAN_MAX_BYTES", "BUILD_MAX_BYTES", "positive", "nonnegative", "depth", "dpi",
           "bounded", "positive_real", "nonnegative_real", "strategy", "method", "depths", "strategies",
           "png", "csv_file", "add_net_arguments", "net_description", "build_limit", "net_bytes",
           "check_plan_size", "check_build_size"]


def _argtype(convert):
    """``convert(text)`` as an argparse ``type=``: its ValueError becomes the
    option's error (argparse names the option, so the library's leading
    ``name: `` is dropped)."""

    @functools.wraps(convert)
    def checked(text):
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(re.sub(r"^\w+: ", "", str(exc))) from None

    return checked


#: the most layers a command takes: the planner's lists are O(n) (a plan of
#: 10^6 layers takes seconds, of 10^7 a minute and gigabytes)
MAX_DEPTH = 1_000_000
#: the most bytes (weights, or one batch of activations) a plan may describe:
#: its figures stay exact integers
PLAN_MAX_BYTES = 2**50
#: the most bytes a command that builds a net may ask for: 16 GiB, or the
#: machine's memory when that is less
BUILD_MAX_BYTES = 16 * 2**30


def _int_at_least(minimum, maximum=None):
    expected = f"an int >= {minimum}" if maximum is None else f"an int in [{minimum}, {maximum:,}]"

    @_argtype
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected {expected}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"expected {expected}, got {text!r}")
        return value

    return convert


positive = _int_at_least(1)
nonnegative = _int_at_least(0)
depth = _int_at_least(1, MAX_DEPTH)
dpi = _int_at_least(10, 1000)


def bounded(maximum, minimum=1):
    """An int in ``[minimum, maximum]`` (counts of work: epochs, directions, repeats)."""
    return _int_at_least(minimum, maximum)


def _real(text):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


positive_real = _argtype(lambda text: check_positive_float("value", _real(text)))
@_argtype
def nonnegative_real(text):
    value = _real(text)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"expected a finite number >= 0, got {text!r}")
    return value

strategy = _argtype(parse)
method = _argtype(lambda text: check_choice("method", text, METHODS))


@_argtype
def _sizes(text):
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise ValueError(f"got {text!r}, expected comma-separated ints") from None
    if len(sizes) > MAX_DEPTH + 1:
        raise ValueError(f"got {len(sizes) - 1:,} layers, expected at most {MAX_DEPTH:,}")
    return list(check_sizes(sizes))


@_argtype
def _activation(text):
    """``tanh``, or one name per hidden layer: ``tanh,relu``."""
    names = text.split(",")
    for name in names:
        check_choice("activation", name, ACTIVATIONS)
    return names if len(names) > 1 else names[0]


@_argtype
def depths(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1 or max(values) > MAX_DEPTH:
        raise ValueError(f"got {text!r}, expected comma-separated ints in [1, {MAX_DEPTH:,}]")
    return values


@_argtype
def strategies(text):
    return [bench.normalize_strategy(s) for s in text.split(",") if s.strip()]


@_argtype
def png(path):
    """A PNG file name in a directory that exists (checked before any work)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"directory {directory!r} does not exist")
    if not path.lower().endswith(".png"):
        raise ValueError(f"expected a .png file name, got {path!r}")
    return path


@_argtype
def csv_file(path):
    if not os.path.isfile(path):
        raise ValueError(f"no such file {path!r}")
    return path


def add_net_arguments(parser):
    """The options that describe a net: --sizes or --width/--depth, and more."""
    parser.add_argument("--sizes", type=_sizes, help="layer sizes, e.g. 8,16,16,3")
    parser.add_argument("--width", type=positive, help="uniform width (with --depth)")
    parser.add_argument("--depth", type=depth, help=f"number of layers n (with --width), at most {MAX_DEPTH:,}")
    parser.add_argument("--activation", type=_activation, default="tanh",
                        help="hidden activation, or one per hidden layer: tanh,relu (default tanh)")
    parser.add_argument("--output", choices=OUTPUTS, default=None, help="output map (default: what --loss needs)")
    parser.add_argument("--loss", choices=list(LOSSES), default="mse", help="default mse")
    parser.add_argument("--dtype", choices=list(DTYPES), default="float64", help="default float64")
    parser.add_argument("--strategy", type=strategy, default="storeall",
                        help="storeall|sqrt|segments:K|revolve:S|budget:SIZE (default storeall)")
    parser.add_argument("--seed", type=nonnegative, default=0, help="random seed, an int >= 0")


def net_description(args):
    """The :class:`~mlpckpt.NetSpec` the options give (no weights drawn)."""
    if args.sizes is not None and (args.width is not None or args.depth is not None):
        raise ValueError("give either --sizes or --width/--depth, not both")
    if args.sizes is None and (args.width is None or args.depth is None):
        raise ValueError("give --sizes 8,16,3 or both --width and --depth")
    sizes = args.sizes if args.sizes is not None else [args.width] * (args.depth + 1)
    return NetSpec(sizes, args.activation, args.output or output_for(args.loss), args.dtype)


def _gib(nbytes):
    return f"{nbytes:,} B ({nbytes / 2**30:.4g} GiB)"


def build_limit():
    """:data:`BUILD_MAX_BYTES`, or the machine's memory when that is less,
    with a description for messages."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        ram = None
    if ram is not None and 0 < ram < BUILD_MAX_BYTES:
        return ram, f"this machine's memory ({_gib(ram)})"
    return BUILD_MAX_BYTES, f"the {BUILD_MAX_BYTES // 2**30} GiB a command may build"


def net_bytes(sizes, batch, itemsize):
    """``(weights, activations)``: the bytes of the weights and biases and of
    one batch of activations at every layer (exact ints, nothing allocated)."""
    weights = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])) * itemsize
    return weights, sum(sizes) * batch * itemsize


def check_plan_size(sizes, batch, itemsize):
    """Refuse a plan whose figures would leave exact integer arithmetic."""
    weights, acts = net_bytes(sizes, batch, itemsize)
    for what, nbytes in (("weights", weights), ("activations of one batch", acts)):
        if nbytes > PLAN_MAX_BYTES:
            raise ValueError(f"the net's {what} would need {_gib(nbytes)}, more than the "
                             f"{PLAN_MAX_BYTES // 2**50} PiB a plan describes")


def check_build_size(sizes, batch, itemsize, what="the net's weights and one batch"):
    """Refuse to build a net (and its data) that needs more than :func:`build_limit`."""
    weights, acts = net_bytes(sizes, batch, itemsize)
    limit, described = build_limit()
    if weights + acts > limit:
        raise ValueError(f"{what} would need {_gib(weights + acts)} (weights {_gib(weights)}), "
                         f"more than {described}")
