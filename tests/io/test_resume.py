"""Resuming training from a file (issue 11, item 10): the optimiser's state is
saved with the model (plain npz members, checked on load), and fit resumed
from the file continues bitwise as if it had never stopped.

Shuffling: fit draws each epoch's permutation from ``seed``; an int seed
restarts the draws on every call, so a resumed run passes the same
``numpy.random.Generator`` (carried here in memory, as a user would carry
its state) to both calls."""

import zipfile

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.io import _records as mio
from mlpckpt.testing import assert_bitwise_equal, make_data

SIZES = [5, 7, 6, 3]

OPTIMIZERS = {
    "momentum": lambda: mc.SGD(lr=0.05, momentum=0.9),
    "nesterov": lambda: mc.SGD(lr=0.05, momentum=0.8, nesterov=True),
    "adam": lambda: mc.Adam(lr=3e-3, betas=(0.8, 0.99), eps=1e-7),
    "sgd": lambda: mc.SGD(lr=0.05),
}


def _fit(net, X, Y, opt, epochs, rng, fuse):
    return net.fit(X, Y, "cross_entropy", optimizer=opt, epochs=epochs, batch_size=8, shuffle=True,
                   seed=rng, fuse_update=fuse)


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert (sa["name"], sa["scalars"]) == (sb["name"], sb["scalars"])
    assert sa["blocks"].keys() == sb["blocks"].keys()
    for slot in sa["blocks"]:
        assert sa["blocks"][slot].keys() == sb["blocks"][slot].keys()
        for i, arr in sa["blocks"][slot].items():
            assert_bitwise_equal(arr, sb["blocks"][slot][i], err_msg=f"blocks[{slot!r}][{i!r}]")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fit_3_save_load_fit_2_is_fit_5_bitwise(tmp_path, name, fuse, dtype):
    X, Y = make_data(SIZES, 37, "cross_entropy", seed=2, dtype=dtype)
    whole = mc.MLP(SIZES, output="softmax", dtype=dtype, seed=1)
    whole_opt = OPTIMIZERS[name]()
    history = _fit(whole, X, Y, whole_opt, 5, np.random.default_rng(9), fuse)

    path = tmp_path / "ckpt.npz"
    opt = OPTIMIZERS[name]()
    first = mc.MLP(SIZES, output="softmax", dtype=dtype, seed=1)
    rng = np.random.default_rng(9)
    h1 = _fit(first, X, Y, opt, 3, rng, fuse)
    first.save(path, optimizer=opt)
    del first, opt

    net, opt = mc.load(path, with_optimizer=True)
    assert type(opt) is type(whole_opt)
    h2 = _fit(net, X, Y, opt, 2, rng, fuse)
    assert h1 + h2 == history
    assert_bitwise_equal(net.weights + net.biases, whole.weights + whole.biases)
    _same_state(opt, whole_opt)


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam"])
def test_resuming_without_the_state_is_not_the_same(tmp_path, name):
    # The control: a model-only file resumes with a fresh optimiser and differs.
    X, Y = make_data(SIZES, 37, "cross_entropy", seed=2)
    whole = mc.MLP(SIZES, output="softmax", seed=1)
    _fit(whole, X, Y, OPTIMIZERS[name](), 5, np.random.default_rng(9), False)
    net = mc.MLP(SIZES, output="softmax", seed=1)
    rng = np.random.default_rng(9)
    _fit(net, X, Y, OPTIMIZERS[name](), 3, rng, False)
    net.save(tmp_path / "m.npz")
    net, opt = mc.load(tmp_path / "m.npz", with_optimizer=True)
    assert opt is None
    _fit(net, X, Y, OPTIMIZERS[name](), 2, rng, False)
    assert not np.array_equal(net.weights[0], whole.weights[0])


def test_an_int_seed_restarts_the_shuffle_per_call():
    # Why the resume test carries a Generator: with seed=0 each call draws the same permutations.
    X, Y = make_data(SIZES, 37, "cross_entropy", seed=2)
    a, b = mc.MLP(SIZES, output="softmax", seed=1), mc.MLP(SIZES, output="softmax", seed=1)
    opt_a, opt_b = mc.SGD(lr=0.05), mc.SGD(lr=0.05)
    h = _fit(a, X, Y, opt_a, 5, 0, False)
    assert _fit(b, X, Y, opt_b, 3, 0, False) + _fit(b, X, Y, opt_b, 2, 0, False) != h


def test_the_file_holds_the_state_as_plain_members(tmp_path):
    X, Y = make_data(SIZES, 37, "cross_entropy", seed=2)
    net, opt = mc.MLP(SIZES, output="softmax", seed=1), mc.Adam(lr=1e-2)
    _fit(net, X, Y, opt, 1, np.random.default_rng(0), False)
    path = tmp_path / "m.npz"
    net.save(path, optimizer=opt)
    with np.load(path, allow_pickle=False) as data:
        fields = {k: data[k] for k in data.files}
    assert str(fields["format"]) == "mlpckpt-1" and str(fields["optimizer"]) == "adam"
    assert fields["optimizer.t"] == 5 and fields["optimizer.lr"] == 1e-2
    assert {k for k in fields if k.startswith("optimizer.m.")} == {f"optimizer.m.{i}" for i in range(6)}
    assert fields["optimizer.v.3"].shape == net.biases[1].shape
    assert mc.load(path).sizes == tuple(SIZES)  # a plain load ignores the state
    rec = mio.load(path)
    assert set(rec) == set(mio.FIELDS) | {"optimizer"} and isinstance(rec["optimizer"], mc.Adam)


def test_an_optimiser_before_its_first_step_round_trips(tmp_path):
    net = mc.MLP([2, 3, 1], seed=0)
    for opt in (mc.SGD(lr=0.1, momentum=0.5, nesterov=True), mc.Adam(), mc.SGD()):
        net.save(tmp_path / "m.npz", optimizer=opt)
        _, back = mc.load(tmp_path / "m.npz", with_optimizer=True)
        assert repr(back) == repr(opt) and back.state == {}
        _same_state(back, opt)


# -- refusals --------------------------------------------------------------------------


def _trained(tmp_path, opt):
    net = mc.MLP([3, 4, 2], seed=0)
    X, Y = np.ones((3, 4)), np.zeros((2, 4))
    net.fit(X, Y, "mse", optimizer=opt, epochs=1, batch_size=4)
    path = tmp_path / "m.npz"
    net.save(path, optimizer=opt)
    with np.load(path, allow_pickle=False) as data:
        return net, path, {k: data[k] for k in data.files}


def test_save_refuses_what_is_not_an_optimiser_or_belongs_to_another_net(tmp_path):
    net = mc.MLP([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match=r"^optimizer: expected an SGD or Adam"):
        net.save(tmp_path / "m.npz", optimizer="adam")
    other, opt = mc.MLP([3, 5, 2], seed=0), mc.Adam()
    other.fit(np.ones((3, 4)), np.zeros((2, 4)), "mse", optimizer=opt, epochs=1)
    with pytest.raises(ValueError, match=r"^optimizer: m of block 0 has shape \(5, 3\)"):
        net.save(tmp_path / "m.npz", optimizer=opt)
    opt.state[1][1][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^optimizer: "):
        other.save(tmp_path / "m.npz", optimizer=opt)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"^with_optimizer: expected True or False"):
        mc.load(tmp_path / "m.npz", with_optimizer="yes")


def _mutations():
    def wrong_shape(f):
        f["optimizer.m.2"] = np.zeros((3, 4))

    def wrong_dtype(f):
        f["optimizer.v.0"] = f["optimizer.v.0"].astype(np.float32)

    def no_such_block(f):
        f["optimizer.m.4"] = f["optimizer.v.4"] = np.zeros((2, 4))

    def m_without_v(f):
        del f["optimizer.v.1"]

    def negative_v(f):
        f["optimizer.v.1"] = -f["optimizer.v.1"] - 1

    def nan_moment(f):
        f["optimizer.m.1"] = np.full_like(f["optimizer.m.1"], np.nan)

    def negative_t(f):
        f["optimizer.t"] = np.array(-1)

    def t_zero_with_moments(f):
        f["optimizer.t"] = np.array(0)

    def t_float(f):
        f["optimizer.t"] = np.array(1.5)

    def lr_string(f):
        f["optimizer.lr"] = np.array("fast")

    def lr_negative(f):
        f["optimizer.lr"] = np.array(-1.0)

    def missing_scalar(f):
        del f["optimizer.eps"]

    def unknown_scalar(f):
        f["optimizer.momentum"] = np.array(0.9)

    def unknown_slot(f):
        f["optimizer.buf.0"] = f["optimizer.m.0"]

    def leading_zero_index(f):
        f["optimizer.m.01"] = f.pop("optimizer.m.1")

    def unknown_name(f):
        f["optimizer"] = np.array("rmsprop")

    def state_without_name(f):
        del f["optimizer"]

    def odd_key(f):
        f["optimizer.m.x.1"] = f["optimizer.m.1"]

    return [wrong_shape, wrong_dtype, no_such_block, m_without_v, negative_v, nan_moment, negative_t,
            t_zero_with_moments, t_float, lr_string, lr_negative, missing_scalar, unknown_scalar,
            unknown_slot, leading_zero_index, unknown_name, state_without_name, odd_key]


@pytest.mark.parametrize("mutate", _mutations(), ids=lambda f: f.__name__)
def test_an_inconsistent_optimiser_state_in_a_file_is_refused(tmp_path, mutate):
    _, path, fields = _trained(tmp_path, mc.Adam())
    mutate(fields)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **fields)
    with pytest.raises(ValueError, match=r"^path:"):
        mc.load(bad, with_optimizer=True)
    with pytest.raises(ValueError, match=r"^path:"):
        mc.load(bad)  # the state is checked even when it is not wanted


def test_an_sgd_state_with_momentum_zero_and_buffers_is_refused(tmp_path):
    _, path, fields = _trained(tmp_path, mc.SGD(lr=0.1, momentum=0.5))
    fields["optimizer.momentum"] = np.array(0.0)
    fields["optimizer.nesterov"] = np.array(False)
    np.savez(tmp_path / "bad.npz", **fields)
    with pytest.raises(ValueError, match=r"^path: .*momentum buffers given with momentum 0"):
        mc.load(tmp_path / "bad.npz")
    fields["optimizer.momentum"] = np.array(0.5)
    fields["optimizer.nesterov"] = np.array(1)  # an int is not a bool
    np.savez(tmp_path / "bad.npz", **fields)
    with pytest.raises(ValueError, match=r"^path: .*'nesterov'"):
        mc.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "cls,state,match",
    [
        (mc.SGD, None, "^state: expected name 'sgd'"),
        (mc.SGD, {"name": "adam", "scalars": {}, "blocks": {}}, "^state: expected name 'sgd'"),
        (mc.SGD, {"name": "sgd", "scalars": {"lr": 0.1, "momentum": 0.0, "nesterov": "no"}, "blocks": {}},
         "^state: scalar 'nesterov'"),
        (mc.SGD, {"name": "sgd", "scalars": {"lr": True, "momentum": 0.0, "nesterov": False}, "blocks": {}},
         "^state: scalar 'lr'"),
        (mc.SGD, {"name": "sgd", "scalars": {"lr": 0.1, "momentum": 0.5, "nesterov": False},
                  "blocks": {"buf": {-1: np.zeros(2)}}}, r"^state: buf of block -1"),
        (mc.SGD, {"name": "sgd", "scalars": {"lr": 0.1, "momentum": 0.5, "nesterov": False},
                  "blocks": {"buf": {0: [1.0]}}}, r"^state: buf of block 0"),
        (mc.Adam, {"name": "adam", "scalars": {"lr": 0.1, "beta1": 0.9, "beta2": 0.9, "eps": 1e-8, "t": 1},
                   "blocks": {"m": {0: np.zeros(2)}, "v": {0: np.zeros(3)}}}, r"^state: step count 1"),
    ],
)
def test_from_state_refuses_bad_plain_data(cls, state, match):
    with pytest.raises(ValueError, match=match):
        cls.from_state(state)


def test_from_state_copies_unless_told_not_to():
    X, Y = make_data(SIZES, 16, "cross_entropy")
    opt = mc.Adam()
    mc.MLP(SIZES, output="softmax", seed=1).fit(X, Y, "cross_entropy", optimizer=opt, epochs=1)
    copied, shared = mc.Adam.from_state(opt.state_dict()), mc.Adam.from_state(opt.state_dict(), copy=False)
    _same_state(copied, opt)
    assert not np.shares_memory(copied.state[0][0], opt.state[0][0])
    assert shared.state[0][0] is opt.state[0][0]


def test_no_member_of_a_saved_state_needs_pickle(tmp_path):
    X, Y = make_data(SIZES, 16, "cross_entropy")
    net, opt = mc.MLP(SIZES, output="softmax", seed=1), mc.SGD(lr=0.1, momentum=0.9, nesterov=True)
    net.fit(X, Y, "cross_entropy", optimizer=opt, epochs=1)
    net.save(tmp_path / "m.npz", optimizer=opt)
    with zipfile.ZipFile(tmp_path / "m.npz") as zf:
        for name in zf.namelist():
            with zf.open(name) as member:
                np.lib.format.read_magic(member)
                assert not np.lib.format.read_array_header_1_0(member)[2].hasobject, name
