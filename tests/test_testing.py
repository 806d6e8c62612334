"""mlpckpt.testing: assert_bitwise_equal compares bits (not values) and names
the block, the index and both values of the first difference; make_data draws
the same numbers as it always has (the suite's figures depend on them)."""

import doctest
import re

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt import testing
from mlpckpt.testing import assert_bitwise_equal, make_data


def with_bits(bits):
    """A float64 array of one element with the given bits."""
    return np.array([bits], dtype=np.uint64).view(np.float64)


def message(a, b, **kw):
    with pytest.raises(AssertionError) as caught:
        assert_bitwise_equal(a, b, **kw)
    return str(caught.value)


# -- equal inputs pass ----------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "complex128", "int64", "bool", "longdouble"])
def test_equal_arrays_pass(dtype):
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    assert_bitwise_equal(a, a.copy())
    assert_bitwise_equal(a, np.asfortranarray(a))  # the layout is not compared, the elements are
    assert_bitwise_equal(a[:, ::2], a[:, ::2].copy())


def test_equal_sequences_pass_with_none_at_the_same_places():
    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal((3, 2)), None, rng.standard_normal((2, 1)).astype(np.float32)]
    assert_bitwise_equal(blocks, [None if b is None else b.copy() for b in blocks])
    assert_bitwise_equal(tuple(blocks), list(blocks))
    assert_bitwise_equal([], ())


def test_nan_with_the_same_bits_is_equal():
    a = np.array([1.0, np.nan, -np.inf])
    assert_bitwise_equal(a, a.copy())
    assert_bitwise_equal(with_bits(0x7FF8000000000001), with_bits(0x7FF8000000000001))


def test_grads_of_two_strategies_pass():
    net = mc.MLP([4, 6, 6, 3], activation="tanh", seed=0)
    X, Y = make_data(net.sizes, 5, "mse")
    _, ref = net.loss_and_grad(X, Y)
    _, got = net.loss_and_grad(X, Y, strategy=mc.Revolve(0))
    assert_bitwise_equal(ref.weights + ref.biases, got.weights + got.biases)


# -- the message of a failure ---------------------------------------------------


def test_message_names_block_index_and_values():
    a = [np.zeros(2), np.full((2, 3), 5.0)]
    b = [np.zeros(2), np.full((2, 3), 5.0)]
    b[1][1, 2] = 5.000000000000001
    assert message(a, b) == "block 1, index (1, 2): 5.0 != 5.000000000000001"


def test_message_of_two_arrays_has_no_block():
    a, b = np.full((2, 3), 5.0), np.full((2, 3), 5.0)
    b[1, 2] = 5.000000000000001
    assert message(a, b) == "index (1, 2): 5.0 != 5.000000000000001"
    assert message(np.float64(1.5), np.float64(2.5)) == "index (): 1.5 != 2.5"


def test_message_gives_the_first_difference_and_the_count():
    a, b = np.zeros((3, 4)), np.zeros((3, 4))
    b[2, 0], b[0, 3], b[1, 1] = 1.0, 2.0, 3.0
    assert message(a, b) == "index (0, 3): 0.0 != 2.0; 3 of 12 elements differ"


def test_float32_values_are_written_as_python_floats():
    a, b = np.float32([0.1]), np.float32([0.2])
    assert message(a, b) == "index (0,): 0.10000000149011612 != 0.20000000298023224"


def test_integers():
    assert message(np.array([1, 2, 3]), np.array([1, 2, 4])) == "index (2,): 3 != 4"


def test_err_msg_is_appended_on_its_own_line():
    assert message(np.zeros(1), np.ones(1), err_msg="Sqrt()") == "index (0,): 0.0 != 1.0\nSqrt()"
    assert message([np.zeros(1)], [], err_msg="case 3") == "length 1 != 0\ncase 3"


# -- bits, not values -------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_minus_zero_is_not_zero(dtype):
    a, b = np.zeros(3, dtype=dtype), np.zeros(3, dtype=dtype)
    b[1] = -0.0
    assert message(a, b) == "index (1,): 0.0 != -0.0"
    assert message([a], [b]) == "block 0, index (1,): 0.0 != -0.0"


def test_minus_zero_in_a_complex_part():
    a = np.zeros(2, dtype=complex)
    b = a.copy()
    b.imag[1] = -0.0
    assert message(a, b) == "index (1,): 0j != -0j"


def test_nan_payloads_differ_and_the_message_shows_the_bits():
    a, b = with_bits(0x7FF8000000000000), with_bits(0x7FF8000000000001)
    assert np.isnan(a[0]) and np.isnan(b[0])
    assert message(a, b) == "index (0,): nan != nan (bits 0x7ff8000000000000 != 0x7ff8000000000001)"
    assert message(a, -a) == "index (0,): nan != nan (bits 0x7ff8000000000000 != 0xfff8000000000000)"


def test_nan_and_a_number_differ():
    assert message(np.array([np.nan]), np.array([1.0])) == "index (0,): nan != 1.0"


# -- shape, dtype, length, None -----------------------------------------------------


def test_shape_mismatch():
    assert message(np.zeros((3, 4)), np.zeros((4, 3))) == "shape (3, 4) != (4, 3)"
    assert message([np.zeros(2), np.zeros((2, 1))], [np.zeros(2), np.zeros(2)]) == "block 1, shape (2, 1) != (2,)"


def test_dtype_mismatch_even_for_equal_values():
    assert message(np.zeros(3), np.zeros(3, dtype=np.float32)) == "dtype float64 != float32"
    assert message([np.ones(1, dtype=np.int64)], [np.ones(1)]) == "block 0, dtype int64 != float64"


def test_length_mismatch():
    assert message([np.zeros(1)] * 3, [np.zeros(1)] * 4) == "length 3 != 4"


def test_none_against_an_array():
    assert message([np.zeros(1), None], [np.zeros(1), np.zeros(2)]) == (
        "block 1, None != array of shape (2,) and dtype float64")
    assert message([np.zeros((1, 2))], [None]) == "block 0, array of shape (1, 2) and dtype float64 != None"


def test_an_array_and_a_sequence():
    assert message(np.zeros(2), [np.zeros(2)]) == (
        "an array and a sequence: array of shape (2,) and dtype float64 != list of 1")


def test_an_object_that_is_no_array_is_a_type_error():
    net = mc.MLP([2, 3, 1], seed=0)
    g = net.zeros_like_grads()
    with pytest.raises(TypeError, match=r"^expected an array or a list or tuple of arrays, got Grads$"):
        assert_bitwise_equal(g, g)


# -- make_data ------------------------------------------------------------------------


def test_make_data_draws_x_then_the_targets_from_the_seed():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 6))
    labels = rng.integers(0, 3, size=6)
    got = make_data([4, 9, 3], 6, "cross_entropy", seed=3)
    assert_bitwise_equal(list(got), [X, labels])
    assert got[1].dtype == np.int64

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((2, 5)), rng.random((3, 5))
    assert_bitwise_equal(list(make_data([2, 3], 5, "bce")), [X, Y])

    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((2, 5)).astype(np.float32), rng.standard_normal((1, 5)).astype(np.float32)
    assert_bitwise_equal(list(make_data((2, 1), 5, "mse", seed=7, dtype="float32")), [X, Y])


def test_make_data_draws_from_a_generator_it_is_given():
    rng, ref = np.random.default_rng(5), np.random.default_rng(5)
    first, second = make_data([3, 2], 4, "mse", seed=rng), make_data([3, 2], 4, "mse", seed=rng)
    assert_bitwise_equal(list(first) + list(second), [ref.standard_normal((3, 4)) if k % 2 == 0 else
                                                      ref.standard_normal((2, 4)) for k in range(4)])


def test_make_data_targets_suit_the_loss():
    X, Y = make_data([3, 4], 200, "bce", seed=1, dtype="float32")
    assert X.dtype == Y.dtype == np.float32 and Y.shape == (4, 200) and 0 <= Y.min() and Y.max() < 1
    _, labels = make_data([3, 4], 200, "cross_entropy", seed=1)
    assert labels.shape == (200,) and set(labels.tolist()) == {0, 1, 2, 3}


def test_make_data_refuses_an_unknown_loss():
    with pytest.raises(ValueError, match=re.escape("loss: expected one of 'mse', 'bce', 'cross_entropy', got 'l1'")):
        make_data([2, 2], 3, "l1")


def test_the_docstring_examples_run():
    failed, attempted = doctest.testmod(testing)
    assert attempted >= 3 and failed == 0
