"""A description of a net without its weights: what :func:`mlpckpt.plan`
reads, so that a net too large to allocate can be planned.

:class:`NetSpec` validates its arguments exactly as :class:`mlpckpt.MLP`'s
constructor does and names its attributes as the MLP does; it holds only
tuples and strings, so it is frozen, hashable and never allocates anything
that grows with the number of parameters (only with the number of layers).
"""

from dataclasses import dataclass

from ..core._validate import check_dtype, check_sizes
from ..core._activations import check_activations, check_output
from ..planning._costs import LIST_HEADER, list_bytes, n_params, param_bytes  # re-exported

__all__ = ["NetSpec", "n_params", "param_bytes", "list_bytes", "LIST_HEADER"]

@dataclass(frozen=True, init=False)
class NetSpec:
    """A net's architecture, no weights: sizes, activations, output, dtype.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``[n_0, n_1, ..., n_n]``.
    activation : str or list of str, default "tanh"
        One name for every hidden layer, or one per hidden layer.
    output : {"identity", "sigmoid", "softmax"}, default "identity"
    dtype : {"float64", "float32"}, default "float64"

    Attributes
    ----------
    sizes : tuple of int
    activations : tuple of str
        One name per hidden layer (length ``n - 1``).
    output : str
    dtype : str
        ``"float64"`` or ``"float32"``.

    Raises
    ------
    ValueError
        As :class:`mlpckpt.MLP` raises for the same arguments, naming
        ``sizes``, ``activation``, ``output`` or ``dtype``.

    Examples
    --------
    >>> import mlpckpt as mc
    >>> spec = mc.NetSpec([64] * 1001)
    >>> spec.n_params
    4160000
    """

    sizes: tuple
    activations: tuple
    output: str
    dtype: str

    def __init__(self, sizes, activation="tanh", output="identity", dtype="float64"):
        sizes = check_sizes(sizes)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activations", tuple(check_activations(activation, len(sizes) - 2)))
        object.__setattr__(self, "output", check_output(output))
        object.__setattr__(self, "dtype", check_dtype(dtype).name)

    def __repr__(self):
        act = self.activations[0] if len(set(self.activations)) == 1 else list(self.activations)
        sizes = list(self.sizes) if len(self.sizes) < 10 else f"[{self.sizes[0]}, ..., {self.sizes[-1]}]"
        return (f"NetSpec(sizes={sizes}, n_layers={self.n_layers}, activation={act!r}, "
                f"output={self.output!r}, dtype={self.dtype!r})")

    @property
    def n_layers(self):
        """Number of weight matrices ``n``."""
        return len(self.sizes) - 1

    @property
    def itemsize(self):
        return 8 if self.dtype == "float64" else 4

    @property
    def n_params(self):
        """Scalars in the weights and biases: ``sum n_{k+1} (n_k + 1)`` (exact int)."""
        return n_params(self.sizes)

    @property
    def param_bytes(self):
        """What an :class:`mlpckpt.MLP` of this spec holds in weights and
        biases as tracemalloc sees it: their data, :data:`ARRAY_OVERHEAD` per
        array, and the two lists (:func:`list_bytes`, an upper bound)."""
        return param_bytes(self.sizes, self.itemsize)
