"""The backend operations: the few in-place array operations the core needs,
named and typed as NumPy names them, with one table per array library.

The core (layers, activations, losses, optimisers) is written once against
these names (``o.tanh(z, out=z)``, ``o.matmul(W, a, out=z)``), so every
backend runs the same operations in the same order, hence bitwise-equal
results across strategies on each (paper_notes/backends.md, B1-B3):

* :class:`UfuncOps` -- NumPy and CuPy: their own functions, ``out=`` and all
  (for NumPy these *are* NumPy's functions: no wrapper on its path);
* :class:`TorchOps` -- PyTorch's ``out=`` and in-place methods;
* :class:`~mlpckpt.backends._array_api.ArrayAPIOps` -- any other namespace of the array
  API standard, out of place, the result copied into ``out`` (correct, not
  memory-lean; the test suite runs the core on ``array-api-strict`` with it).

Every function takes its array arguments first and ``out`` last (``None``:
a new array); scalars may stand for arrays where NumPy allows them.
"""

import functools

import numpy as np

__all__ = ["UfuncOps", "TorchOps", "NUMPY_OPS", "ELEMENTWISE"]

#: the elementwise functions of the vocabulary, by NumPy's names
ELEMENTWISE = ("add", "subtract", "multiply", "divide", "negative", "maximum", "tanh", "exp",
               "expm1", "log1p", "sign", "abs", "logaddexp", "heaviside", "copysign")


class UfuncOps:
    """NumPy (or CuPy, which has NumPy's interface): the library's own functions."""

    def __init__(self, mod):
        self.mod = mod
        for name in ELEMENTWISE + ("matmul", "where", "iscomplexobj", "sqrt", "zeros_like", "empty_like"):
            setattr(self, name, getattr(mod, name))
        if mod is np:  # np.sum without its Python wrapper, and no frame of ours (same bits)
            self.sum_rows = functools.partial(np.add.reduce, axis=1, keepdims=True)

    def copy(self, x):
        return x.copy()

    def real(self, z):
        return z.real

    def sum_rows(self, a, out):
        """Row sums of ``a`` (n, batch) into ``out`` (n, 1); call with ``out=``."""
        return self.mod.sum(a, axis=1, keepdims=True, out=out)

    def colsum(self, a, keepdims=False):
        """Column sums, shape (batch,) (or (1, batch))."""
        return a.sum(axis=0, keepdims=keepdims)

    def colmax_real(self, z):
        """The largest real part of each column, shape (1, batch)."""
        return z.real.max(axis=0, keepdims=True)

    def total(self, a):
        """Sum of every entry (a scalar)."""
        return a.sum()

    def dot_flat(self, u, v):
        """``sum(u * v)`` over all entries, no temporary, never conjugating."""
        return self.mod.dot(u.reshape(-1), v.reshape(-1))

    def colsum_product(self, u, v):
        """``sum(u * v, axis=0)``, shape (batch,)."""
        return self.mod.einsum("ij,ij->j", u, v)

    def argmax_cols(self, z):
        """Row index of each column's largest real part, int64 (batch,)."""
        return z.real.argmax(axis=0)

    def cols(self, a, idx):
        """``a[..., idx]``: the columns ``idx`` (a slice or NumPy ints) of ``a``."""
        return a[..., idx]

    def take_rows(self, z, rows):
        """``z[rows[j], j]`` for every column ``j`` (a new (batch,) array)."""
        return z[rows, self.mod.arange(z.shape[1])]

    def put_rows(self, z, rows, values):
        """``z[rows[j], j] = values[j]`` (or a scalar) in place."""
        z[rows, self.mod.arange(z.shape[1])] = values

    def sub_rows(self, z, rows, values):
        """``z[rows[j], j] -= values[j]`` in place (``values`` bool or real)."""
        z[rows, self.mod.arange(z.shape[1])] -= values

    def copyto_where(self, dst, value, where):
        self.mod.copyto(dst, value, where=where)

    def leaky_relu(self, z, slope, chunk):
        """``max(z, slope z)`` in place, in chunks (a temporary of ``chunk`` elements)."""
        flat = z.reshape(-1)
        if not self.mod.shares_memory(flat, z):  # non-contiguous: plain temporary
            return self.mod.maximum(z, slope * z, out=z)
        for i in range(0, flat.size, chunk):
            part = flat[i : i + chunk]
            self.mod.maximum(part, slope * part, out=part)
        return z


#: NumPy's table: the one instance (the core takes its compiled fast paths only for it)
NUMPY_OPS = UfuncOps(np)


class TorchOps:
    """PyTorch: ``out=`` keywords and in-place methods (scalars allowed)."""

    def __init__(self, torch):
        self.torch = torch
        t = torch
        self._binary = {"add": t.add, "subtract": t.sub, "multiply": t.mul, "divide": t.div,
                        "maximum": t.maximum, "logaddexp": t.logaddexp,
                        "heaviside": t.heaviside, "copysign": t.copysign}
        self.zeros_like, self.empty_like = torch.zeros_like, torch.empty_like
        for name in ("tanh", "exp", "expm1", "log1p", "sign", "abs", "negative", "sqrt"):
            setattr(self, name, self._unary(getattr(t, "neg" if name == "negative" else name)))
        for name, fn in self._binary.items():
            setattr(self, name, self._binary_op(fn))

    def _tensor(self, x, like):
        if isinstance(x, self.torch.Tensor):
            return x
        return self.torch.tensor(x, dtype=like.dtype, device=like.device)

    def _unary(self, fn):
        def op(x, out=None):
            return fn(x) if out is None else fn(x, out=out)
        return op

    def _binary_op(self, fn):
        def op(x, y, out=None):
            like = x if isinstance(x, self.torch.Tensor) else y
            x, y = self._tensor(x, like), self._tensor(y, like)
            return fn(x, y) if out is None else fn(x, y, out=out)
        return op

    def copy(self, x):
        return x.clone()

    def matmul(self, a, b, out=None):
        return self.torch.matmul(a, b, out=out)

    def where(self, cond, x, y):
        like = x if isinstance(x, self.torch.Tensor) else y
        return self.torch.where(cond, self._tensor(x, like), self._tensor(y, like))

    def iscomplexobj(self, z):
        return z.is_complex()

    def real(self, z):
        return z.real if z.is_complex() else z

    def sum_rows(self, a, out):
        return self.torch.sum(a, dim=1, keepdim=True, out=out)

    def colsum(self, a, keepdims=False):
        return a.sum(dim=0, keepdim=keepdims)

    def colmax_real(self, z):
        return self.real(z).amax(dim=0, keepdim=True)

    def total(self, a):
        return a.sum()

    def dot_flat(self, u, v):
        return self.torch.dot(u.reshape(-1), v.reshape(-1))  # torch.dot never conjugates

    def colsum_product(self, u, v):
        return self.torch.einsum("ij,ij->j", u, v)

    def argmax_cols(self, z):
        return self.real(z).argmax(dim=0)

    def _cols(self, z):
        return self.torch.arange(z.shape[1], device=z.device)

    def cols(self, a, idx):
        if isinstance(idx, slice):
            return a[..., idx]
        return a[..., self.torch.as_tensor(idx, device=a.device)]

    def take_rows(self, z, rows):
        return z[rows, self._cols(z)]

    def put_rows(self, z, rows, values):
        z[rows, self._cols(z)] = values

    def sub_rows(self, z, rows, values):
        z[rows, self._cols(z)] -= values.to(z.dtype) if values.dtype == self.torch.bool else values

    def copyto_where(self, dst, value, where):
        dst.masked_fill_(where, value) if not isinstance(value, self.torch.Tensor) else \
            dst.copy_(self.torch.where(where, value, dst))

    def leaky_relu(self, z, slope, chunk):
        # z > 0 ? z : slope z -- the value of max(z, slope z) for every non-NaN z
        return self.torch.nn.functional.leaky_relu(z, slope, inplace=True)
