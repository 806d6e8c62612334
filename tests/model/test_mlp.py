"""The model (mlpckpt.model._mlp): MLP.from_arrays and its refusals, fit_lbfgs writing
into the net's own arrays, predict / predict_proba, and out= gradient buffers."""

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from mlpckpt.core import _params as params
from mlpckpt.testing import assert_bitwise_equal


def _params(net):
    return net.weights + net.biases


# -- from_arrays -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_from_arrays_round_trip(data, dtype):
    X, labels = data
    net = mc.MLP([3, 5, 4, 2], activation=["relu", "softplus"], output="softmax", init="he",
                 dtype=dtype, seed=3)
    for b in net.biases:
        b += 0.1
    copy = mc.MLP.from_arrays(net.weights, net.biases, activation=["relu", "softplus"],
                              output="softmax", init="he")
    assert isinstance(copy, mc.MLP)
    assert copy.sizes == net.sizes == (3, 5, 4, 2)
    assert (copy.activations, copy.output, copy.init, copy.dtype) == (
        net.activations, net.output, net.init, net.dtype)
    assert_bitwise_equal(_params(net), _params(copy))
    # copies: the new net owns its arrays
    assert not any(np.shares_memory(a, b) for a in _params(net) for b in _params(copy))
    assert np.array_equal(copy.forward(X), net.forward(X))
    la, ga = net.loss_and_grad(X, labels, "cross_entropy")
    lb, gb = copy.loss_and_grad(X, labels, "cross_entropy")
    assert la == lb
    assert_bitwise_equal(ga.weights + ga.biases, gb.weights + gb.biases)


def test_from_arrays_makes_c_contiguous_copies_of_the_nets_dtype():
    rng = np.random.default_rng(0)
    W0 = np.asfortranarray(rng.standard_normal((4, 3)))
    W1 = rng.standard_normal((4, 4))[::2]  # a strided view, shape (2, 4)
    biases = [np.zeros((4, 1)), np.ones((2, 1))]
    net = mc.MLP.from_arrays([W0, W1], biases, activation="sigmoid", dtype="float32")
    assert net.sizes == (3, 4, 2) and net.activations == ["sigmoid"]
    assert net.dtype == np.float32 and net.init == "xavier" and net.output == "identity"
    for p, ref in zip(_params(net), [W0, W1] + biases):
        assert p.dtype == np.float32 and p.flags.c_contiguous and p.flags.writeable
        assert p.base is None and np.array_equal(p, ref.astype(np.float32))
    # the same array twice becomes two independent blocks
    W = np.ones((3, 3))
    net = mc.MLP.from_arrays([W, W], [np.zeros((3, 1))] * 2)
    net.weights[0][0, 0] = 5.0
    assert net.weights[1][0, 0] == 1.0 and W[0, 0] == 1.0
    # lists of numbers are arrays too
    net = mc.MLP.from_arrays([[[1.0, 2.0]]], [[[0.5]]])
    assert net.sizes == (2, 1) and net.forward([[1.0], [1.0]])[0, 0] == 3.5


def _good():
    return [np.ones((4, 3)), np.ones((2, 4))], [np.zeros((4, 1)), np.zeros((2, 1))]


def _bad(which, k, value):
    weights, biases = _good()
    (weights if which == "weights" else biases)[k] = value
    return weights, biases


@pytest.mark.parametrize(
    "weights,biases,pattern",
    [
        (*_bad("weights", 0, np.ones(3)), r"^weights\[0\]: expected a non-empty 2-d"),
        (*_bad("weights", 1, np.ones((2, 4, 1))), r"^weights\[1\]: expected a non-empty 2-d"),
        (*_bad("weights", 1, np.ones((2, 0))), r"^weights\[1\]: expected a non-empty 2-d"),
        (*_bad("weights", 0, np.ones((4, 3), np.int64)), r"^weights\[0\]: .*dtype int64"),
        (*_bad("weights", 1, np.ones((2, 4), np.float16)), r"^weights\[1\]: .*dtype float16"),
        (*_bad("weights", 1, np.ones((2, 4), complex)), r"^weights\[1\]: expected a real numeric"),
        (*_bad("weights", 1, np.ones((2, 5))), r"^weights\[1\]: expected shape \(2, 4\), got \(2, 5\)"),
        (*_bad("weights", 1, np.ones((4, 2))), r"^weights\[1\]: expected shape \(4, 4\), got \(4, 2\)"),
        (*_bad("biases", 0, np.zeros((4,))), r"^biases\[0\]: expected a non-empty 2-d"),
        (*_bad("biases", 1, np.zeros((1, 2))), r"^biases\[1\]: expected shape \(2, 1\), got \(1, 2\)"),
        (*_bad("biases", 1, np.zeros((3, 1))), r"^biases\[1\]: expected shape \(2, 1\), got \(3, 1\)"),
        (*_bad("weights", 1, np.ones((2, 4), np.float32)), r"^weights\[1\]: expected dtype float64"),
        (*_bad("biases", 0, np.zeros((4, 1), np.float32)), r"^biases\[0\]: expected dtype float64"),
        (*_bad("weights", 1, np.full((2, 4), np.nan)), r"^weights\[1\]: expected finite values"),
        (*_bad("biases", 1, np.full((2, 1), -np.inf)), r"^biases\[1\]: expected finite values"),
        (*_bad("weights", 0, "abc"), r"^weights\[0\]: expected a real numeric"),
        ([], [], r"^weights: expected at least one array"),
        (_good()[0], _good()[1][:1], r"^biases: expected 2 arrays \(one per weight\), got 1"),
        (_good()[0][:1], _good()[1], r"^biases: expected 1 arrays \(one per weight\), got 2"),
    ],
)
def test_from_arrays_refuses_bad_blocks(weights, biases, pattern):
    with pytest.raises(ValueError, match=pattern):
        mc.MLP.from_arrays(weights, biases)


def test_from_arrays_checks_the_configuration_like_the_constructor():
    weights, biases = _good()
    with pytest.raises(ValueError, match=r"^activation: expected one name per hidden layer \(1\), got 2"):
        mc.MLP.from_arrays(weights, biases, activation=["tanh", "relu"])
    with pytest.raises(ValueError, match=r"^output: got 'tanh'"):
        mc.MLP.from_arrays(weights, biases, output="tanh")
    with pytest.raises(ValueError, match=r"^init: got 'zeros'"):
        mc.MLP.from_arrays(weights, biases, init="zeros")
    with pytest.raises(ValueError, match=r"^dtype: got 'float16'"):
        mc.MLP.from_arrays(weights, biases, dtype="float16")


# -- fit_lbfgs writes into the net's own arrays ----------------------------------------


def test_fit_lbfgs_keeps_the_arrays(data):
    X, labels = data
    net = mc.MLP([3, 4, 2], activation="tanh", output="softmax", seed=0)
    ws, bs = list(net.weights), list(net.biases)
    lists = (net.weights, net.biases)
    before = [p.copy() for p in _params(net)]
    result = net.fit_lbfgs(X, labels, "cross_entropy", maxiter=20)
    assert net.weights is lists[0] and net.biases is lists[1]
    assert all(a is b for a, b in zip(ws, net.weights))
    assert all(a is b for a, b in zip(bs, net.biases))
    # the references held are the trained parameters
    assert not any(np.array_equal(a, b) for a, b in zip(ws + bs, before))
    flat = np.concatenate([p.ravel() for pair in zip(ws, bs) for p in pair])
    assert np.array_equal(flat, result.x)


def test_fit_lbfgs_interrupted_leaves_the_last_point_in_the_arrays(data, monkeypatch):
    X, labels = data
    net = mc.MLP([3, 4, 2], activation="tanh", output="softmax", seed=0)
    ws = list(net.weights + net.biases)

    def interrupted(fun, x0, **kwargs):
        fun(x0 + 0.25)
        raise KeyboardInterrupt

    monkeypatch.setattr(scipy.optimize, "minimize", interrupted)
    start = np.concatenate([p.ravel() for pair in zip(net.weights, net.biases) for p in pair])
    with pytest.raises(KeyboardInterrupt):
        net.fit_lbfgs(X, labels, "cross_entropy")
    assert all(a is b for a, b in zip(ws, net.weights + net.biases))
    now = np.concatenate([p.ravel() for pair in zip(net.weights, net.biases) for p in pair])
    assert np.array_equal(now, start + 0.25)


def test_from_arrays_refuses_values_that_overflow_the_nets_dtype():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning escapes either
        with pytest.raises(ValueError, match=r"^weights\[0\]: expected finite values"):
            mc.MLP.from_arrays([np.full((2, 3), 1e300)], [np.zeros((2, 1))], dtype="float32")


def test_from_arrays_copies_unless_told_not_to():
    W, b = np.ones((2, 3)), np.zeros((2, 1))
    assert mc.MLP.from_arrays([W], [b]).weights[0] is not W
    shared = mc.MLP.from_arrays([W], [b], copy=False)
    assert shared.weights[0] is W and shared.biases[0] is b
    fortran = np.asfortranarray(np.ones((3, 2)).T)
    assert mc.MLP.from_arrays([fortran], [b], copy=False).weights[0].flags.c_contiguous
    with pytest.raises(ValueError, match="^copy:"):
        mc.MLP.from_arrays([W], [b], copy="no")


def test_load_holds_the_model_once(tmp_path):
    net = mc.MLP([256] * 5, seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    model_bytes = sum(a.nbytes for a in net.weights + net.biases)
    tracemalloc.start()
    try:
        loaded = mc.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_bitwise_equal(loaded.weights, net.weights)
    assert peak < 1.5 * model_bytes  # one copy of the arrays (and zip buffers), not two


# -- predict / predict_proba ------------------------------------------------------------


def test_predict_softmax():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 9))
    net = mc.MLP([4, 5, 3], output="softmax", seed=0)
    proba = net.predict_proba(X)
    labels = net.predict(X)
    assert proba.shape == (3, 9)
    np.testing.assert_allclose(proba.sum(axis=0), 1.0, rtol=1e-14)
    assert np.all(proba > 0)
    assert labels.shape == (9,) and labels.dtype.kind == "i"
    assert np.array_equal(labels, np.argmax(proba, axis=0))
    assert np.array_equal(proba, net.forward(X))


def test_predict_sigmoid():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 9))
    net = mc.MLP([4, 5, 2], output="sigmoid", seed=0)
    net.biases[-1][:] = [[3.0], [-3.0]]  # make both classes appear
    net.weights[-1] *= 10
    proba = net.predict_proba(X)
    pred = net.predict(X)
    assert proba.shape == pred.shape == (2, 9)
    assert np.all((proba > 0) & (proba < 1))
    assert set(np.unique(pred)) <= {0, 1}
    assert np.array_equal(pred, (proba > 0.5).astype(int))
    assert pred.sum() > 0 and pred.sum() < pred.size


def test_predict_identity():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 9))
    net = mc.MLP([4, 5, 2], output="identity", seed=0)
    out = net.predict(X)
    assert out.shape == (2, 9)
    assert np.array_equal(out, net.forward(X))
    assert out.min() < 0  # not squashed


def test_predict_proba_identity(data):
    X, _ = data
    net = mc.MLP([3, 4, 2], output="identity")
    with pytest.raises(ValueError, match=r"^output: predict_proba needs output='sigmoid' or 'softmax'"):
        net.predict_proba(X)

# -- out= buffers ---------------------------------------------------------------


def test_out_not_grads(net, data):
    X, labels = data
    g = net.zeros_like_grads()
    for out in ([1], (g.weights, g.biases), {"weights": g.weights}, np.zeros(3)):
        with pytest.raises(ValueError, match=r"^out: expected a Grads object"):
            net.loss_and_grad(X, labels, "cross_entropy", out=out)


@pytest.mark.parametrize(
    "which,k,bad,pattern",
    [
        ("weights", 0, np.zeros((4, 4)), r"^out\.weights\[0\]: expected an array of shape \(4, 3\)"),
        ("weights", 1, np.zeros((4, 2)), r"^out\.weights\[1\]: expected an array of shape \(2, 4\)"),
        ("biases", 0, np.zeros(4), r"^out\.biases\[0\]: expected an array of shape \(4, 1\)"),
        ("biases", 1, np.zeros((2, 1), np.float32), r"^out\.biases\[1\]: .*dtype float64"),
        ("weights", 0, np.zeros((4, 3), np.int64), r"^out\.weights\[0\]: .*dtype float64"),
        ("weights", 0, [[0.0] * 3] * 4, r"^out\.weights\[0\]: .*got list"),
    ],
)
def test_out_bad_buffer(net, data, which, k, bad, pattern):
    X, labels = data
    g = net.zeros_like_grads()
    getattr(g, which)[k] = bad
    with pytest.raises(ValueError, match=pattern):
        net.loss_and_grad(X, labels, "cross_entropy", out=g)


def test_out_wrong_count(net, data):
    X, labels = data
    g = net.zeros_like_grads()
    g.weights.pop()
    with pytest.raises(ValueError, match=r"^out\.weights: expected 2 arrays, got 1"):
        net.loss_and_grad(X, labels, "cross_entropy", out=g)
    g = net.zeros_like_grads()
    g.biases.append(np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"^out\.biases: expected 2 arrays, got 3"):
        net.loss_and_grad(X, labels, "cross_entropy", out=g)


def test_out_float32_net_needs_float32_buffers(data):
    X, labels = data
    net = mc.MLP([3, 4, 2], output="softmax", dtype="float32")
    g = mc.MLP([3, 4, 2], output="softmax").zeros_like_grads()  # float64 buffers
    with pytest.raises(ValueError, match=r"^out\.weights\[0\]: .*dtype float32"):
        net.loss_and_grad(X, labels, "cross_entropy", out=g)


def test_out_valid_is_written_in_place(net, data):
    X, labels = data
    g = net.zeros_like_grads()
    ids = [id(a) for a in g.weights + g.biases]
    loss, g2 = net.loss_and_grad(X, labels, "cross_entropy", out=g)
    ref_loss, ref = net.loss_and_grad(X, labels, "cross_entropy")
    assert g2 is g and [id(a) for a in g.weights + g.biases] == ids
    assert loss == ref_loss
    assert_bitwise_equal(g.weights + g.biases, ref.weights + ref.biases)


# -- out= buffers that alias (issue 11, item 1) ---------------------------------
# A [3, 3, 3, 3] net with a batch of 3: X, Y and every weight have shape (3, 3),
# so any of them fits an out= weight slot.


def _alias_setup():
    net = mc.MLP([3, 3, 3, 3], seed=0)
    rng = np.random.default_rng(11)
    X, Y = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    return net, X, Y, net.zeros_like_grads()


def _overlap_pair(shape_a, shape_b, offset):
    # Two C-contiguous views of one vector, the second starting `offset` in.
    flat = np.zeros(int(np.prod(shape_a)) + int(np.prod(shape_b)))
    a, b = int(np.prod(shape_a)), int(np.prod(shape_b))
    return flat[:a].reshape(shape_a), flat[offset : offset + b].reshape(shape_b)


def _aliasing_case(case):
    """(net, X, Y, out) where one out buffer shares memory with something."""
    net, X, Y, g = _alias_setup()
    if case == "weight":
        g.weights[1] = net.weights[0]
    elif case == "same weight":
        g.weights[2] = net.weights[2]
    elif case == "bias":
        g.biases[0] = net.biases[2]
    elif case == "X":
        g.weights[1] = X
    elif case == "Y":
        g.weights[0] = Y
    elif case == "labels":
        net = mc.MLP([3, 3, 3, 3], output="softmax", seed=0)
        g, Y = net.zeros_like_grads(), np.array([0, 2, 1, 1, 0, 2])
        X = np.ones((3, 6))
        g.biases[1] = Y.view(np.float64)[:3].reshape(3, 1)
    elif case == "buffer twice":
        g.weights[2] = g.weights[0]
    elif case == "bias twice":
        g.biases[1] = g.biases[0]
    elif case == "every weight one buffer":
        g = mc.Grads([g.weights[0]] * 3, g.biases)
    elif case == "overlapping buffers":
        g.weights[0], g.weights[1] = _overlap_pair((3, 3), (3, 3), 4)
    elif case == "bias inside weight buffer":
        g.weights[1], g.biases[2] = _overlap_pair((3, 3), (3, 1), 6)
    elif case == "view of a weight":
        net.weights[0], g.weights[2] = _overlap_pair((3, 3), (3, 3), 8)
        net.weights[0][...] = 0.5
    elif case == "view of a bias":
        g.weights[1], net.biases[0] = _overlap_pair((3, 3), (3, 1), 7)
    elif case == "view of X":
        X, g.weights[0] = _overlap_pair((3, 3), (3, 3), 1)
        X[...] = 1.0
    elif case == "view of Y":
        g.biases[2], Y = _overlap_pair((3, 1), (3, 3), 2)
    elif case == "frombuffer views":  # not plain owning arrays: the exact test
        buf = bytearray(8 * 18)
        flat = np.frombuffer(buf, dtype=np.float64)
        g.weights[0], g.weights[1] = flat[:9].reshape(3, 3), flat[8:17].reshape(3, 3)
    else:
        raise AssertionError(case)
    return net, X, Y, g


ALIAS_CASES = ["weight", "same weight", "bias", "X", "Y", "labels", "buffer twice", "bias twice",
               "every weight one buffer", "overlapping buffers", "bias inside weight buffer",
               "view of a weight", "view of a bias", "view of X", "view of Y", "frombuffer views"]


@pytest.mark.parametrize("case", ALIAS_CASES)
@pytest.mark.parametrize("strategy", [None, mc.Sqrt(), mc.Revolve(0)])
def test_out_aliasing_is_refused_before_anything_is_written(case, strategy):
    net, X, Y, g = _aliasing_case(case)
    loss = "cross_entropy" if case == "labels" else "mse"
    arrays = net.weights + net.biases + [X, Y] + g.weights + g.biases
    before = [a.copy() for a in arrays]
    with pytest.raises(ValueError, match=r"^out\.(weights|biases)\[\d\]: shares memory with "
                                         r"(out\.)?(weights|biases|X|Y)"):
        net.loss_and_grad(X, Y, loss, strategy=strategy, out=g)
    assert_bitwise_equal(before, arrays)


def test_out_aliasing_names_both_arrays():
    net, X, Y, g = _aliasing_case("weight")
    with pytest.raises(ValueError, match=r"^out\.weights\[1\]: shares memory with weights\[0\]"):
        net.loss_and_grad(X, Y, out=g)
    net, X, Y, g = _aliasing_case("buffer twice")
    with pytest.raises(ValueError, match=r"^out\.weights\[2\]: shares memory with out\.weights"):
        net.loss_and_grad(X, Y, out=g)
    net, X, Y, g = _aliasing_case("Y")
    with pytest.raises(ValueError, match=r"^out\.weights\[0\]: shares memory with Y"):
        net.loss_and_grad(X, Y, out=g)


def test_out_the_nets_own_arrays_refused(net, data):
    X, labels = data
    weights = [w.copy() for w in net.weights]
    with pytest.raises(ValueError, match=r"^out\.weights\[0\]: shares memory with weights\[0\]"):
        net.loss_and_grad(X, labels, "cross_entropy", out=mc.Grads(net.weights, net.biases))
    assert_bitwise_equal(weights, net.weights)


@pytest.mark.parametrize("n_layers", [1, 2, 5, 40])
def test_out_disjoint_views_of_one_vector_are_accepted(n_layers):
    # Views that touch but do not overlap (the flatten layout, or a frombuffer
    # vector): no false alarm, and the gradients of the plain call.
    sizes = [3] + [4] * (n_layers - 1) + [2]
    net = mc.MLP(sizes, seed=1)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
    ref_loss, ref = net.loss_and_grad(X, Y)
    P = params.n_params(sizes)
    for flat in (np.zeros(P), np.frombuffer(bytearray(8 * P), dtype=np.float64)):
        out = mc.Grads(*params.unflatten(flat, sizes))
        loss, g = net.loss_and_grad(X, Y, out=out)
        assert loss == ref_loss and g is out
        assert_bitwise_equal(g.weights + g.biases, ref.weights + ref.biases)
        assert np.array_equal(flat, params.flatten(ref.weights, ref.biases))


def test_out_read_only_and_fortran_buffers_refused(net, data):
    X, labels = data
    g = net.zeros_like_grads()
    g.weights[1].flags.writeable = False
    with pytest.raises(ValueError, match=r"^out\.weights\[1\]: expected a writable array"):
        net.loss_and_grad(X, labels, "cross_entropy", out=g)
    assert not g.weights[0].any()  # nothing written
    g = net.zeros_like_grads()
    g.biases[0] = np.broadcast_to(np.zeros((1, 1)), (4, 1))
    with pytest.raises(ValueError, match=r"^out\.biases\[0\]: expected a writable array"):
        net.loss_and_grad(X, labels, "cross_entropy", out=g)
    g = net.zeros_like_grads()
    g.weights[0] = np.asfortranarray(g.weights[0])
    with pytest.raises(ValueError, match=r"^out\.weights\[0\]: expected a C-contiguous array, "
                                         r"got a Fortran-ordered float64 array of shape \(4, 3\)"):
        net.loss_and_grad(X, labels, "cross_entropy", out=g)
    g = net.zeros_like_grads()
    g.biases[1] = np.zeros((2, 2))[:, :1]
    with pytest.raises(ValueError, match=r"^out\.biases\[1\]: expected a C-contiguous array"):
        net.loss_and_grad(X, labels, "cross_entropy", out=g)


@pytest.mark.parametrize("field", ["weights", "biases"])
@pytest.mark.parametrize("bad", [None, 3, np.zeros((4, 3))])
def test_out_fields_must_be_lists(net, data, field, bad):
    X, labels = data
    g = net.zeros_like_grads()
    setattr(g, field, bad)
    with pytest.raises(ValueError, match=rf"^out\.{field}: expected a list of 2 arrays, got"):
        net.loss_and_grad(X, labels, "cross_entropy", out=g)


@st.composite
def _pooled_call(draw):
    """A net, X, Y and out= buffers, each either an array of its own or a
    C-contiguous view at a drawn offset of one shared vector."""
    depth = draw(st.integers(1, 6))
    sizes = draw(st.lists(st.integers(1, 4), min_size=depth + 1, max_size=depth + 1))
    batch = draw(st.integers(1, 3))
    shapes = ([(sizes[k + 1], sizes[k]) for k in range(depth)] + [(s, 1) for s in sizes[1:]]
              + [(sizes[0], batch), (sizes[-1], batch)])  # weights, biases, X, Y
    pool = np.zeros(draw(st.integers(1, 3)) * sum(int(np.prod(s)) for s in shapes))

    def place(shape, own_p):
        size = int(np.prod(shape))
        if draw(st.floats(0, 1)) < own_p:
            return np.zeros(shape)
        off = draw(st.integers(0, len(pool) - size))
        return pool[off : off + size].reshape(shape)

    params = [place(s, 0.5) for s in shapes]
    outs = [place(s, 0.6) for s in shapes[: 2 * depth]]
    return sizes, params, outs


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_pooled_call())
def test_out_refused_exactly_when_a_buffer_shares_memory(case):
    sizes, params, outs = case
    depth = len(sizes) - 1
    rng = np.random.default_rng(0)
    for a in params:
        a[...] = rng.uniform(-1, 1, a.shape)  # overlapping views agree
    net = mc.MLP(sizes, seed=0)
    net.weights, net.biases = params[:depth], params[depth : 2 * depth]
    X, Y = params[-2:]
    aliased = any(np.shares_memory(o, a) for i, o in enumerate(outs)
                  for a in params + outs[:i])
    ref = mc.MLP.from_arrays(net.weights, net.biases).loss_and_grad(X.copy(), Y.copy())
    before = [a.copy() for a in params + outs]
    g = mc.Grads(outs[:depth], outs[depth:])
    if aliased:
        with pytest.raises(ValueError, match=r"^out\.(weights|biases)\[\d\]: shares memory with"):
            net.loss_and_grad(X, Y, out=g)
        assert_bitwise_equal(before, params + outs)
    else:
        loss, got = net.loss_and_grad(X, Y, out=g)
        assert loss == ref[0]
        assert_bitwise_equal(got.weights + got.biases, ref[1].weights + ref[1].biases)
