"""The variants of ``benchmarks/peers.py``: one gradient step of the same net on each side.

Every builder returns ``{name: step}``, ``step()`` running one gradient step
(forward, MSE loss, backward; no optimiser) and returning what the agreement
check reads. The net's weights are copied from one mlpckpt MLP, so every side
computes the same function on the same data.
"""

import math

import numpy as np

import mlpckpt as mc
from mlpckpt.execution._layers import layer_forward


def segments_for(n):
    """``ceil(sqrt(n))``: the checkpoint segments of the torch and JAX remat variants."""
    return math.isqrt(n - 1) + 1


def mlpckpt_variants(net, X, Y):
    """StoreAll, Sqrt, Revolve(10), Budget at Sqrt's planned peak; ``out=`` buffers
    and, where ``mc.Workspace`` exists, one workspace per variant.

    Returns
    -------
    variants : dict of name -> (step, grads)
    info : dict
        ``workspace`` (bool), ``budget_bytes``, ``sqrt_forward_evals``.
    """
    batch = X.shape[1]
    has_ws = hasattr(mc, "Workspace")
    sqrt_plan = mc.plan(net, batch, mc.Sqrt(), out=True)
    strategies = {
        "mlpckpt StoreAll": mc.StoreAll(),
        "mlpckpt Sqrt": mc.Sqrt(),
        "mlpckpt Revolve(10)": mc.Revolve(10),
        "mlpckpt Budget(Sqrt peak)": mc.Budget(sqrt_plan.peak_bytes),
    }
    variants = {}
    for name, strategy in strategies.items():
        grads = net.zeros_like_grads()
        kw = {"workspace": mc.Workspace()} if has_ws else {}

        def step(strategy=strategy, grads=grads, kw=kw):
            return net.loss_and_grad(X, Y, "mse", strategy=strategy, out=grads, **kw)[0]

        variants[name] = (step, grads)
    info = {"workspace": has_ws, "budget_bytes": int(sqrt_plan.peak_bytes),
            "sqrt_forward_evals": int(sqrt_plan.forward_evals)}
    return variants, info


def floor_variants(net, X):
    """The matmul-only floor and the one-layer forward of the recompute floor.

    ``matmul floor``: per layer the three GEMMs of a step (``W @ a``,
    ``dz @ a.T``, ``W.T @ dz``) into preallocated buffers, no elementwise
    work; one ``a`` and one ``dz`` for every layer (they stay in cache, so it
    is a floor). ``layer forward x n``: ``layer_forward`` of every hidden
    layer into one kept buffer; its time / n is one layer's forward.
    """
    Ws = net.weights
    a = X.copy()
    rng = np.random.default_rng(1)
    dz = rng.standard_normal(a.shape).astype(a.dtype)
    z, da = np.empty_like(a), np.empty_like(a)
    dW = [np.empty_like(W) for W in Ws]
    aT = a.T

    def matmuls():
        for W in Ws:
            np.matmul(W, a, out=z)
        for W, g in zip(reversed(Ws), reversed(dW)):
            np.matmul(dz, aT, out=g)
            np.matmul(W.T, dz, out=da)

    kept = np.empty_like(a)
    layers = list(zip(net.weights, net.biases))

    def forwards():
        for W, b in layers:
            layer_forward(W, b, X, "tanh", kept)

    return {"matmul floor": matmuls, "layer forward x n": forwards}


def torch_variants(net, X, Y, torch):
    """Eager autograd, plain and ``checkpoint_sequential(ceil(sqrt n))``.

    One module per layer (``Linear`` + ``Tanh``) so the checkpoint segments
    are made of whole layers, as mlpckpt's are; ``.grad`` buffers allocated by
    the warm-up step and zeroed in place. Returns ``({name: step}, dW0)``,
    ``dW0()`` the current gradient of the first weight.
    """
    n = len(net.weights)
    tdtype = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[net.dtype]
    w = X.shape[0]
    mods = []
    for k in range(n):
        lin = torch.nn.Linear(w, w, dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(net.weights[k]))
            lin.bias.copy_(torch.from_numpy(net.biases[k][:, 0]))
        mods.append(torch.nn.Sequential(lin, torch.nn.Tanh()) if k < n - 1 else lin)
    model = torch.nn.Sequential(*mods)
    xt = torch.from_numpy(np.ascontiguousarray(X.T))  # (batch, w): one sample per row
    yt = torch.from_numpy(np.ascontiguousarray(Y.T))
    params = list(model.parameters())
    segments = segments_for(n)

    def step(checkpointed):
        for p in params:
            if p.grad is not None:
                p.grad.zero_()  # in place: the buffers stay allocated
        if checkpointed:
            out = torch.utils.checkpoint.checkpoint_sequential(model, segments, xt, use_reentrant=False)
        else:
            out = model(xt)
        loss = torch.nn.functional.mse_loss(out, yt)
        loss.backward()
        return float(loss.detach())

    variants = {"torch plain": lambda: step(False),
                f"torch checkpoint({segments})": lambda: step(True)}
    return variants, lambda: model[0][0].weight.grad.numpy().copy()


def torch_backend_variants(net, X, Y, torch):
    """mlpckpt itself on PyTorch tensors (``net.to("torch")``): StoreAll and Sqrt,
    whose segments are those of ``checkpoint_sequential(ceil(sqrt n))`` where
    ``ceil(sqrt n)`` divides ``n`` (256, 1024). Returns ``{name: (step, grads)}``."""
    tnet = net.to("torch")
    Xt, Yt = torch.from_numpy(X.copy()), torch.from_numpy(Y.copy())
    variants = {}
    for name, strategy in (("mlpckpt[torch] StoreAll", mc.StoreAll()), ("mlpckpt[torch] Sqrt", mc.Sqrt())):
        grads = tnet.zeros_like_grads()

        def step(strategy=strategy, grads=grads):
            return tnet.loss_and_grad(Xt, Yt, "mse", strategy=strategy, out=grads)[0]

        variants[name] = (step, grads)
    return variants


def jax_variants(net, X, Y, jax):
    """``jit(value_and_grad)`` of a ``lax.scan`` over stacked weights, plain and
    with sqrt(n) nested remat.

    Remat: the n - 1 tanh layers in segments of ``L = ceil(sqrt n)`` layers
    (an outer scan over the full segments, then one remainder segment), each
    segment a ``jax.checkpoint``ed inner scan; the identity layer last. So
    every layer runs once forward, once more in the backward recompute, and
    there are ``ceil(sqrt n)`` segments, as with torch's. JAX allocates its
    gradients itself (no ``out=``). Returns ``({name: step}, dW0)``.
    """
    jnp = jax.numpy
    n, w = len(net.weights), X.shape[0]
    Ws = np.stack(net.weights[:-1])
    bs = np.stack(net.biases[:-1])  # (n - 1, w, 1)
    last = (jnp.asarray(net.weights[-1]), jnp.asarray(net.biases[-1]))
    x, y = jnp.asarray(X), jnp.asarray(Y)

    def layer(a, wb):
        return jnp.tanh(wb[0] @ a + wb[1]), None

    def run(a, Ws, bs):
        return jax.lax.scan(layer, a, (Ws, bs))[0]

    def mse(a, Wl, bl, y):
        return jnp.mean((Wl @ a + bl - y) ** 2)

    def loss_plain(p, x, y):
        return mse(run(x, p[0], p[1]), *p[2:], y)

    L = segments_for(n)
    full = (n - 1) // L
    split = full * L
    seg = jax.checkpoint(run)

    def loss_remat(p, x, y):
        Wf, bf, Wr, br, Wl, bl = p
        a = jax.lax.scan(lambda a, wb: (seg(a, *wb), None), x, (Wf, bf))[0]
        if Wr.shape[0]:
            a = seg(a, Wr, br)
        return mse(a, Wl, bl, y)

    # the segmented layout is made outside jit, so no step copies weights
    p_plain = (jnp.asarray(Ws), jnp.asarray(bs)) + last
    p_remat = (jnp.asarray(Ws[:split].reshape(full, L, w, w)), jnp.asarray(bs[:split].reshape(full, L, w, 1)),
               jnp.asarray(Ws[split:]), jnp.asarray(bs[split:])) + last
    f_plain = jax.jit(jax.value_and_grad(loss_plain))
    f_remat = jax.jit(jax.value_and_grad(loss_remat))
    state = {}

    def step(f, p, first):
        v, g = jax.block_until_ready(f(p, x, y))
        state["dW0"] = lambda: np.asarray(g[0][0] if not first else g[0][0, 0])
        return float(v)

    segs = full + (split < n - 1)
    variants = {"jax plain": lambda: step(f_plain, p_plain, False),
                f"jax remat({segs})": lambda: step(f_remat, p_remat, True)}
    return variants, lambda: state["dW0"]()
