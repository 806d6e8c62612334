"""Optimisers (mlpckpt.training._optimizers): PyTorch's update rules written out as references,
the names and defaults of make_optimizer, and the argument errors of SGD, Adam
and make_optimizer."""

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.training._optimizers import Optimizer, make_optimizer
from mlpckpt.testing import assert_bitwise_equal

# -- reference update rules (torch.optim.SGD / torch.optim.Adam, written out) ---------

class RefSGD:
    """torch.optim.SGD with dampening=0, weight_decay=0."""

    def __init__(self, lr, momentum=0.0, nesterov=False):
        self.lr, self.mu, self.nesterov = lr, momentum, nesterov
        self.buf = {}

    def step(self, params, grads):
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            d = g
            if self.mu != 0:
                if i not in self.buf:
                    self.buf[i] = g.copy()  # torch.clone(d_p).detach()
                else:
                    self.buf[i] = self.mu * self.buf[i] + g
                d = g + self.mu * self.buf[i] if self.nesterov else self.buf[i]
            out.append(p - self.lr * d)
        return out

class RefAdam:
    """torch.optim.Adam with amsgrad=False, weight_decay=0."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.t = 0
        self.m, self.v = {}, {}

    def step(self, params, grads):
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            m = self.m.get(i, np.zeros_like(p))
            v = self.v.get(i, np.zeros_like(p))
            m = self.b1 * m + (1 - self.b1) * g
            v = self.b2 * v + (1 - self.b2) * g * g
            self.m[i], self.v[i] = m, v
            c1 = 1 - self.b1**self.t
            c2 = 1 - self.b2**self.t
            step_size = self.lr / c1
            denom = np.sqrt(v) / np.sqrt(c2) + self.eps
            out.append(p - step_size * (m / denom))
        return out


OPTIMIZERS = [
    ("sgd", lambda: mc.SGD(lr=0.05), lambda: RefSGD(0.05)),
    ("momentum", lambda: mc.SGD(lr=0.05, momentum=0.9), lambda: RefSGD(0.05, 0.9)),
    ("nesterov", lambda: mc.SGD(lr=0.05, momentum=0.8, nesterov=True), lambda: RefSGD(0.05, 0.8, True)),
    ("adam", lambda: mc.Adam(lr=0.01), lambda: RefAdam(0.01)),
    ("adam_betas", lambda: mc.Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-6),
     lambda: RefAdam(0.02, (0.8, 0.99), 1e-6)),
]


@pytest.mark.parametrize("name,make,make_ref", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_matches_torch_rules_on_fixed_gradients(name, make, make_ref):
    rng = np.random.default_rng(7)
    params = [rng.standard_normal((3, 4)), rng.standard_normal((3, 1)), rng.standard_normal((2, 3))]
    ours = [p.copy() for p in params]
    ref = [p.copy() for p in params]
    opt, ref_opt = make(), make_ref()
    for step in range(3):
        grads = [rng.standard_normal(p.shape) for p in params]
        opt.start_step()
        for i, (p, g) in enumerate(zip(ours, grads)):
            opt.update(i, p, g)
        ref = ref_opt.step(ref, grads)
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-16)
    # and the parameters really moved
    assert all(not np.allclose(a, p) for a, p in zip(ours, params))


@pytest.mark.parametrize("name,make,make_ref", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_fit_matches_reference_loop(problem, name, make, make_ref, blocks, make_net):
    # Three full-batch epochs of fit == three loss_and_grad + reference updates.
    X, Y = problem
    net, ref_net = make_net(), make_net()
    hist = net.fit(X, Y, "mse", epochs=3, batch_size=None, optimizer=make(), shuffle=False)
    ref_opt, losses = make_ref(), []
    for _ in range(3):
        loss, g = ref_net.loss_and_grad(X, Y, "mse")
        losses.append(loss)
        blocks.set(ref_net, ref_opt.step(blocks.of(ref_net), blocks.of_grads(g)))
    np.testing.assert_allclose(hist, losses, rtol=1e-14)
    for a, b in zip(blocks.of(net), blocks.of(ref_net)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)

# -- names and defaults ----------------------------------------------------------------


def test_default_optimizer_is_sgd_lr_001(problem, blocks, make_net):
    X, Y = problem
    net, ref = make_net(), make_net()
    _, g = ref.loss_and_grad(X, Y, "mse")
    net.fit(X, Y, "mse", epochs=1, batch_size=None, shuffle=False)
    expect = [p - 0.01 * d for p, d in zip(blocks.of(ref), blocks.of_grads(g))]
    assert_bitwise_equal(blocks.of(net), expect)
    # and not some other rate
    other = [p - 0.02 * d for p, d in zip(blocks.of(ref), blocks.of_grads(g))]
    assert blocks.differ(blocks.of(net), other)


def test_named_sgd_with_lr(problem, blocks, make_net):
    X, Y = problem
    net, ref = make_net(), make_net()
    _, g = ref.loss_and_grad(X, Y, "mse")
    net.fit(X, Y, "mse", epochs=1, batch_size=None, shuffle=False, optimizer="sgd", lr=0.3)
    assert_bitwise_equal(blocks.of(net), [p - 0.3 * d for p, d in zip(blocks.of(ref), blocks.of_grads(g))])


def test_default_adam_lr_is_1e_3(problem, blocks, make_net):
    X, Y = problem
    a, b = make_net(), make_net()
    a.fit(X, Y, "mse", epochs=3, batch_size=5, shuffle=False, optimizer="adam")
    b.fit(X, Y, "mse", epochs=3, batch_size=5, shuffle=False, optimizer=mc.Adam(lr=1e-3))
    assert_bitwise_equal(blocks.of(a), blocks.of(b))
    # the first Adam step moves every (non-zero-gradient) entry by about lr
    c, d = make_net(), make_net()
    c.fit(X, Y, "mse", epochs=1, batch_size=None, shuffle=False, optimizer="adam")
    step = np.abs(c.weights[0] - d.weights[0])
    np.testing.assert_allclose(step, 1e-3, rtol=1e-4)


def test_momentum_name_is_sgd_momentum_09(problem, blocks, make_net):
    X, Y = problem
    a, b = make_net(), make_net()
    a.fit(X, Y, "mse", epochs=3, batch_size=4, shuffle=False, optimizer="momentum", lr=0.05)
    b.fit(X, Y, "mse", epochs=3, batch_size=4, shuffle=False,
          optimizer=mc.SGD(lr=0.05, momentum=0.9))
    assert_bitwise_equal(blocks.of(a), blocks.of(b))
    c = make_net()
    c.fit(X, Y, "mse", epochs=3, batch_size=4, shuffle=False, optimizer="sgd", lr=0.05)
    assert blocks.differ(blocks.of(a), blocks.of(c))


def test_make_optimizer_names_and_objects():
    sgd = make_optimizer("sgd", None)
    assert type(sgd) is mc.SGD and (sgd.lr, sgd.momentum) == (0.01, 0.0)
    mom = make_optimizer("momentum", 0.2)
    assert type(mom) is mc.SGD and (mom.lr, mom.momentum, mom.nesterov) == (0.2, 0.9, False)
    adam = make_optimizer("adam", 0.5)
    assert type(adam) is mc.Adam and adam.lr == 0.5
    given = mc.Adam(lr=0.3)
    assert make_optimizer(given, None) is given

class SignSGD(Optimizer):
    """A user optimiser: p -= lr * sign(g)."""

    def __init__(self, lr):
        self.lr, self.steps = lr, 0

    def start_step(self):
        self.steps += 1

    def update(self, i, param, grad):
        param -= self.lr * np.sign(grad)


@pytest.mark.parametrize("fuse", [False, True])
def test_optimizer_subclass_drives_fit(problem, fuse, blocks, make_net):
    X, Y = problem
    net, ref = make_net(), make_net()
    opt = SignSGD(0.01)
    net.fit(X, Y, "mse", epochs=1, batch_size=None, shuffle=False, optimizer=opt, fuse_update=fuse)
    _, g = ref.loss_and_grad(X, Y, "mse")
    assert opt.steps == 1
    assert_bitwise_equal(blocks.of(net), [p - 0.01 * np.sign(d) for p, d in zip(blocks.of(ref), blocks.of_grads(g))])


def test_base_optimizer_has_no_update_rule():
    with pytest.raises(NotImplementedError):
        Optimizer().update(0, np.zeros(2), np.ones(2))

# -- argument errors ---------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["rmsprop", "SGD", "", 42, None])
def test_unknown_optimizer(net, data, optimizer, unchanged):
    X, labels = data
    w0 = [W.copy() for W in net.weights]
    with pytest.raises(ValueError, match=r"^optimizer: got"):
        net.fit(X, labels, "cross_entropy", epochs=1, optimizer=optimizer)
    unchanged(net, w0)


@pytest.mark.parametrize("opt", [mc.SGD(lr=0.1), mc.SGD(0.1, momentum=0.9), mc.Adam()])
@pytest.mark.parametrize("lr", [0.1, 1e-3])
def test_optimizer_object_and_lr(net, data, opt, lr, unchanged):
    X, labels = data
    w0 = [W.copy() for W in net.weights]
    with pytest.raises(ValueError, match=r"^lr: got .* together with the optimiser object"):
        net.fit(X, labels, "cross_entropy", epochs=1, optimizer=opt, lr=lr)
    unchanged(net, w0)


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_lr(net, data, lr):
    X, labels = data
    with pytest.raises(ValueError, match=r"^lr: expected a finite number > 0"):
        net.fit(X, labels, "cross_entropy", epochs=1, lr=lr)
    with pytest.raises(ValueError, match=r"^lr:"):
        mc.SGD(lr=lr)
    with pytest.raises(ValueError, match=r"^lr:"):
        mc.Adam(lr=lr)


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5, "a", True, None])
def test_bad_momentum(momentum):
    with pytest.raises(ValueError, match=r"^momentum:"):
        mc.SGD(0.1, momentum=momentum)


def test_nesterov_without_momentum():
    with pytest.raises(ValueError, match=r"^nesterov:"):
        mc.SGD(0.1, nesterov=True)


@pytest.mark.parametrize("betas", [(0.9,), (0.9, 1.0), (-0.1, 0.9), "ab", None])
def test_bad_betas(betas):
    with pytest.raises(ValueError, match=r"^betas:"):
        mc.Adam(betas=betas)


@pytest.mark.parametrize("eps", [0, -1e-8, float("nan")])
def test_bad_eps(eps):
    with pytest.raises(ValueError, match=r"^eps:"):
        mc.Adam(eps=eps)


@pytest.mark.parametrize("bad", [mc.SGD, mc.Adam, Optimizer, SignSGD, object()])
def test_fit_refuses_classes_and_non_optimizers(bad):
    net = mc.MLP([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="^optimizer:"):
        net.fit(np.ones((2, 4)), np.ones((1, 4)), epochs=1, optimizer=bad)


def test_the_optimiser_base_is_public():
    assert mc.Optimizer is Optimizer and isinstance(mc.SGD(), mc.Optimizer) and isinstance(mc.Adam(), mc.Optimizer)


@pytest.mark.parametrize("nesterov", ["no", "", 1, 0, None, np.array([True])])
def test_nesterov_must_be_a_bool(nesterov):
    # "no" is truthy: it used to switch Nesterov on
    with pytest.raises(ValueError, match=r"^nesterov: expected True or False, got"):
        mc.SGD(0.1, momentum=0.9, nesterov=nesterov)
    assert mc.SGD(0.1, momentum=0.9, nesterov=np.bool_(True)).nesterov is True


@pytest.mark.parametrize("betas", [("0.9", "0.99"), (True, 0.9), (0.9, False), {0.9, 0.5},
                                   (0.9, 0.99, 0.5), 0.9, (float("nan"), 0.9)])
def test_betas_must_be_two_real_numbers(betas):
    with pytest.raises(ValueError, match=r"^betas: expected two numbers in \[0, 1\)"):
        mc.Adam(betas=betas)
    assert mc.Adam(betas=np.array([0.5, 0.25])).betas == (0.5, 0.25)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_update_allocates_nothing_layer_sized(dtype):
    # the bias correction divides by a Python float: float32 stays float32,
    # no float64 casting buffers (issue 12's note; 128 KiB each before)
    import tracemalloc

    rng = np.random.default_rng(0)
    param = rng.standard_normal((300, 200)).astype(dtype)
    grad = rng.standard_normal((300, 200)).astype(dtype)
    opt = mc.Adam()
    opt.start_step()
    opt.update(0, param, grad)  # state and scratch made
    opt.start_step()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        opt.update(0, param, grad)
        assert tracemalloc.get_traced_memory()[1] - start < 4096
    finally:
        tracemalloc.stop()
    assert param.dtype == np.dtype(dtype)
