"""Bad input -> ValueError naming the argument (issue 3, item 9).

One test (or parametrized group) per class of bad input. Every message is
checked to start with the argument's name, ``"X:"``, ``"Y:"``, ``"loss:"``
and so on, which is the convention of :mod:`mlpckpt.core._validate`.
"""

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.core._validate import parse_bytes
from mlpckpt.testing import assert_bitwise_equal


# -- X -------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [(3,), (5, 3), (2, 5), (3, 5, 1), (3, 0), ()],
    ids=["1d", "transposed", "wrong_n_in", "3d", "empty_batch", "scalar"],
)
def test_x_wrong_shape(net, shape):
    with pytest.raises(ValueError, match=r"^X: expected shape \(3, batch\)"):
        net.forward(np.zeros(shape))
    with pytest.raises(ValueError, match=r"^X:"):
        net.loss_and_grad(np.zeros(shape), np.zeros(5, dtype=int), "cross_entropy")


def test_x_transposed_hint(net):
    with pytest.raises(ValueError, match=r"pass X\.T"):
        net.forward(np.zeros((5, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_x_not_finite(net, data, bad, unchanged):
    X, labels = data
    X = X.copy()
    X[1, 2] = bad
    with pytest.raises(ValueError, match=r"^X: expected finite values"):
        net.forward(X)
    with pytest.raises(ValueError, match=r"^X: expected finite values"):
        net.loss_and_grad(X, labels, "cross_entropy")
    w0 = [W.copy() for W in net.weights]
    with pytest.raises(ValueError, match=r"^X:"):
        net.fit(X, labels, "cross_entropy", epochs=1)
    unchanged(net, w0)


def test_x_not_finite_float32_overflowing_sum():
    # Large finite values whose sum overflows must still be accepted.
    net = mc.MLP([2, 1], dtype="float32")
    X = np.full((2, 4), 3e38, dtype=np.float32)
    assert net.forward(X).shape == (1, 4)


@pytest.mark.parametrize(
    "X",
    [
        np.full((3, 5), "a"),
        np.zeros((3, 5), dtype=object),
        np.zeros((3, 5), dtype=complex),
        np.zeros((3, 5), dtype=np.complex64),
        np.zeros((3, 5), dtype="S1"),
        None,
    ],
    ids=["str", "object", "complex128", "complex64", "bytes", "None"],
)
def test_x_bad_dtype(net, X):
    with pytest.raises(ValueError, match=r"^X: expected a real numeric array"):
        net.forward(X)


def test_x_ragged(net):
    with pytest.raises(ValueError, match=r"^X:"):
        net.forward([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("int_dtype", [np.int64, np.int32, np.uint8])
def test_x_integer_accepted_and_cast(dtype, int_dtype):
    net = mc.MLP([3, 4, 2], output="softmax", dtype=dtype, seed=1)
    Xi = np.arange(15, dtype=int_dtype).reshape(3, 5) % 4
    Xf = Xi.astype(dtype)
    out_i, out_f = net.forward(Xi), net.forward(Xf)
    assert out_i.dtype == np.dtype(dtype)
    assert np.array_equal(out_i, out_f)
    li, gi = net.loss_and_grad(Xi, [0, 1, 1, 0, 1], "cross_entropy")
    lf, gf = net.loss_and_grad(Xf, [0, 1, 1, 0, 1], "cross_entropy")
    assert li == lf
    assert_bitwise_equal(gi.weights, gf.weights)
    assert all(g.dtype == np.dtype(dtype) for g in gi.weights + gi.biases)


# -- Y -------------------------------------------------------------------


@pytest.mark.parametrize(
    "loss,output,Y,pattern",
    [
        ("mse", "identity", np.zeros((3, 5)), r"^Y: expected shape \(2, 5\)"),
        ("mse", "identity", np.zeros((5, 2)), r"^Y: expected shape \(2, 5\)"),
        ("mse", "identity", np.zeros(5), r"^Y: expected shape \(2, 5\)"),
        ("mse", "identity", np.zeros((2, 5, 1)), r"^Y: expected shape \(2, 5\)"),
        ("bce", "sigmoid", np.zeros((1, 5)), r"^Y: expected shape \(2, 5\)"),
        ("cross_entropy", "softmax", np.zeros((5, 1), int), r"^Y: expected shape \(2, 5\)"),
        ("cross_entropy", "softmax", np.zeros((3, 5)), r"^Y: expected shape \(2, 5\)"),
    ],
)
def test_y_wrong_shape(data, loss, output, Y, pattern):
    X, _ = data
    net = mc.MLP([3, 4, 2], output=output)
    with pytest.raises(ValueError, match=pattern):
        net.loss_and_grad(X, Y, loss)


@pytest.mark.parametrize(
    "loss,output,Y",
    [
        ("mse", "identity", np.zeros((2, 4))),
        ("mse", "identity", np.zeros((2, 6))),
        ("bce", "sigmoid", np.zeros((2, 4))),
        ("cross_entropy", "softmax", np.zeros(4, dtype=int)),
        ("cross_entropy", "softmax", np.zeros(6, dtype=int)),
        ("cross_entropy", "softmax", np.zeros((2, 4))),
    ],
)
def test_xy_batch_mismatch(data, loss, output, Y):
    X, _ = data
    net = mc.MLP([3, 4, 2], output=output)
    with pytest.raises(ValueError, match=r"^Y: expected .*5"):
        net.loss_and_grad(X, Y, loss)
    with pytest.raises(ValueError, match=r"^Y:"):
        net.fit(X, Y, loss, epochs=1)


def test_y_single_output_flat_accepted(data):
    X, _ = data
    net = mc.MLP([3, 4, 1], output="sigmoid")
    y = np.array([0, 1, 1, 0, 1])
    l1, _ = net.loss_and_grad(X, y, "bce")
    l2, _ = net.loss_and_grad(X, y.reshape(1, 5).astype(float), "bce")
    assert l1 == l2
    with pytest.raises(ValueError, match=r"^Y: expected shape \(1, 5\)"):
        net.loss_and_grad(X, y[:4], "bce")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    "loss,output,Y",
    [
        ("mse", "identity", np.zeros((2, 5))),
        ("bce", "sigmoid", np.zeros((2, 5))),
        ("cross_entropy", "softmax", np.eye(2)[[0, 1, 1, 0, 1]].T.copy()),
        ("cross_entropy", "softmax", np.array([0.0, 1, 1, 0, 1])),
    ],
    ids=["mse", "bce", "ce_onehot", "ce_labels"],
)
def test_y_not_finite(data, loss, output, Y, bad):
    X, _ = data
    net = mc.MLP([3, 4, 2], output=output)
    Y = Y.copy()
    Y.flat[2] = bad
    with pytest.raises(ValueError, match=r"^Y: expected finite values"):
        net.loss_and_grad(X, Y, loss)


@pytest.mark.parametrize(
    "Y",
    [
        np.full((2, 5), "a"),
        np.zeros((2, 5), dtype=object),
        np.zeros((2, 5), dtype=complex),
        np.array(["0", "1", "1", "0", "1"]),
        np.zeros(5, dtype=complex),
    ],
    ids=["str", "object", "complex", "str_labels", "complex_labels"],
)
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_y_bad_dtype(data, loss, Y):
    X, _ = data
    net = mc.MLP([3, 4, 2], output="softmax")
    with pytest.raises(ValueError, match=r"^Y: expected a real numeric array"):
        net.loss_and_grad(X, Y, loss)


@pytest.mark.parametrize(
    "labels,lo,hi",
    [
        ([0, 1, -1, 0, 1], "-1", "1"),
        ([0, 1, 2, 0, 1], "0", "2"),
        ([0, 1, 7, 0, 1], "0", "7"),
        ([0.0, 1.0, -3.0, 0.0, 1.0], r"-3\.0", r"1\.0"),
        ([0.0, 1.0, 1e30, 0.0, 1.0], r"0\.0", r"1e\+30"),
    ],
)
def test_labels_out_of_range(data, labels, lo, hi):
    X, _ = data
    net = mc.MLP([3, 4, 2], output="softmax")
    with pytest.raises(
        ValueError, match=rf"^Y: labels out of range: got values in \[{lo}, {hi}\], expected 0\.\.1"
    ):
        net.loss_and_grad(X, np.array(labels), "cross_entropy")


def test_labels_out_of_range_uint64_does_not_wrap(data):
    # A cast to int64 first would turn 2**64 - 1 into -1 and report [-1, 1].
    X, _ = data
    net = mc.MLP([3, 4, 2], output="softmax")
    y = np.array([0, 1, 1, 0, 2**64 - 1], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"^Y: labels out of range: got values in \[0, 18446744073709551615\]"):
        net.loss_and_grad(X, y, "cross_entropy")


def test_labels_at_edge_of_range_accepted(data):
    X, _ = data
    net = mc.MLP([3, 4, 2], output="softmax")
    ref, _ = net.loss_and_grad(X, np.array([0, 1, 1, 0, 1]), "cross_entropy")
    for y in (
        np.array([0, 1, 1, 0, 1], dtype=np.uint8),
        np.array([0.0, 1.0, 1.0, 0.0, 1.0]),
        np.array([False, True, True, False, True]),
        [0, 1, 1, 0, 1],
    ):
        assert net.loss_and_grad(X, y, "cross_entropy")[0] == ref


@pytest.mark.parametrize("labels", [[0, 1, 0.5, 0, 1], [0, 1, 1, 0, 1.0000001], [0, -0.5, 1, 0, 1]])
def test_labels_non_integer(data, labels):
    X, _ = data
    net = mc.MLP([3, 4, 2], output="softmax")
    with pytest.raises(ValueError, match=r"^Y: expected integer class labels"):
        net.loss_and_grad(X, np.array(labels), "cross_entropy")


def test_bce_targets_outside_unit_interval(data):
    X, _ = data
    net = mc.MLP([3, 4, 2], output="sigmoid")
    for Y in (np.full((2, 5), 2.0), np.full((2, 5), -0.5)):
        with pytest.raises(ValueError, match=r"^Y: bce targets must lie in \[0, 1\]"):
            net.loss_and_grad(X, Y, "bce")


def test_cross_entropy_negative_probabilities(data):
    X, _ = data
    net = mc.MLP([3, 4, 2], output="softmax")
    with pytest.raises(ValueError, match=r"^Y: class probabilities must be >= 0"):
        net.loss_and_grad(X, -np.ones((2, 5)), "cross_entropy")


# -- names -----------------------------------------------------------------


@pytest.mark.parametrize("activation", ["gelu", "Tanh", "", None, 3, ["tanh"], ["tanh", "foo"]])
def test_unknown_activation(activation):
    with pytest.raises(ValueError, match=r"^activation:"):
        mc.MLP([3, 4, 4, 2], activation=activation)


def test_activation_message_lists_choices():
    with pytest.raises(ValueError, match=r"^activation: got 'gelu', expected one of \[.*'tanh'"):
        mc.MLP([3, 4, 2], activation="gelu")
    with pytest.raises(ValueError, match=r"^activation: expected one name per hidden layer \(2\), got 1"):
        mc.MLP([3, 4, 4, 2], activation=["relu"])


@pytest.mark.parametrize("output", ["tanh", "Softmax", "", None, 1])
def test_unknown_output(output):
    with pytest.raises(ValueError, match=r"^output: got .*expected one of"):
        mc.MLP([3, 2], output=output)


@pytest.mark.parametrize("init", ["zeros", "glorot", "", None])
def test_unknown_init(init):
    with pytest.raises(ValueError, match=r"^init: got .*expected one of"):
        mc.MLP([3, 2], init=init)


@pytest.mark.parametrize("loss", ["hinge", "MSE", "", None, 0])
def test_unknown_loss(net, data, loss):
    X, labels = data
    with pytest.raises(ValueError, match=r"^loss: got .*expected one of"):
        net.loss_and_grad(X, labels, loss)
    with pytest.raises(ValueError, match=r"^loss:"):
        net.fit(X, labels, loss, epochs=1)


@pytest.mark.parametrize(
    "loss,output",
    [
        ("bce", "identity"),
        ("bce", "softmax"),
        ("cross_entropy", "identity"),
        ("cross_entropy", "sigmoid"),
    ],
)
def test_loss_needs_matching_output(data, loss, output):
    X, _ = data
    net = mc.MLP([3, 4, 2], output=output)
    need = "sigmoid" if loss == "bce" else "softmax"
    with pytest.raises(
        ValueError, match=rf"^loss: '{loss}' needs output='{need}', got output='{output}'"
    ):
        net.loss_and_grad(X, np.zeros((2, 5)), loss)
    with pytest.raises(ValueError, match=r"^loss:"):
        net.fit_lbfgs(X, np.zeros((2, 5)), loss)


# -- sizes, dtype, seed ------------------------------------------------------


@pytest.mark.parametrize("sizes", [[], [3], (5,), np.array([4])])
def test_sizes_too_short(sizes):
    with pytest.raises(ValueError, match=r"^sizes: expected at least 2 entries"):
        mc.MLP(sizes)


@pytest.mark.parametrize("sizes", [[3, 0, 2], [3, -1, 2], [0, 2], [3, 0]])
def test_sizes_non_positive(sizes):
    with pytest.raises(ValueError, match=r"^sizes: expected positive ints"):
        mc.MLP(sizes)


@pytest.mark.parametrize(
    "sizes", [[3, 2.0, 2], [3, 2.5], ["3", "2"], "32", [3, True, 2], [3, None], 3, None]
)
def test_sizes_not_ints(sizes):
    with pytest.raises(ValueError, match=r"^sizes:"):
        mc.MLP(sizes)


def test_sizes_numpy_ints_accepted():
    net = mc.MLP(np.array([3, 4, 2]))
    assert net.sizes == (3, 4, 2)
    assert [W.shape for W in net.weights] == [(4, 3), (2, 4)]


@pytest.mark.parametrize(
    "dtype", ["float16", "int64", int, "complex128", np.complex64, "garbage", object(), "f8x"]
)
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match=r"^dtype: got .*expected 'float64' or 'float32'"):
        mc.MLP([3, 2], dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", np.float32, np.dtype("float32")])
def test_dtype_spellings(dtype):
    net = mc.MLP([3, 2], dtype=dtype)
    assert net.weights[0].dtype == np.float32


@pytest.mark.parametrize("seed", ["a", 1.5, True, -1, np.random.RandomState(0), [1, 2]])
def test_bad_seed(seed, data, net):
    with pytest.raises(ValueError, match=r"^seed: expected an int"):
        mc.MLP([3, 2], seed=seed)
    X, labels = data
    with pytest.raises(ValueError, match=r"^seed:"):
        net.fit(X, labels, "cross_entropy", epochs=1, seed=seed)


def test_seed_generator_accepted():
    a = mc.MLP([3, 4, 2], seed=np.random.default_rng(5))
    b = mc.MLP([3, 4, 2], seed=5)
    assert_bitwise_equal(a.weights, b.weights)


# -- found in review -------------------------------------------------------------


@pytest.mark.parametrize("text", ["inf", "1e400", "0.5B", "0", "nan"])
def test_budget_sizes_must_be_finite_and_at_least_one_byte(text):
    with pytest.raises(ValueError, match="^size:"):
        parse_bytes(text)
    with pytest.raises(ValueError, match=r"^max_bytes: got .*, expected a (finite|positive)"):  # issue 11
        mc.Budget(text)


@pytest.mark.parametrize("activation", [{"tanh": 1}, {"tanh"}, {"tanh": 1, "relu": 2}, iter(["tanh", "relu"]),
                                        np.array(["tanh", "relu"]), "tanh,relu", b"tanh"])
def test_activation_is_a_name_or_a_list_of_names(activation):
    # a dict used to be accepted (its keys taken as the names, in dict order)
    with pytest.raises(ValueError, match=r"^activation:"):
        mc.MLP([3, 4, 4, 2], activation=activation)
    assert mc.MLP([3, 4, 4, 2], activation=("tanh", "relu")).activations == ["tanh", "relu"]
