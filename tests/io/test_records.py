"""Save / load (mlpckpt.io._records records and mc.load): round trip, no pickle, corrupt and
inconsistent files, atomic writes, refusals."""

import io
import os
import zipfile

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.io import _records as mio
from mlpckpt.testing import assert_bitwise_equal


def _fields(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _write(path, fields):
    np.savez(path, **fields)


def _tmp_leftovers(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(".tmp") or f.startswith(".mlpckpt-"))


@pytest.fixture
def saved(tmp_path):
    net = mc.MLP([3, 5, 4, 2], activation=["relu", "softplus"], output="softmax", init="he", seed=3)
    path = tmp_path / "model.npz"
    net.save(path)
    return net, path


# -- round trip ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "sizes,activation,output,init",
    [
        ([4, 6, 4, 3, 1], ["sigmoid", "tanh", "relu"], "sigmoid", "normal"),
        ([3, 7, 7, 7, 5], "leaky_relu", "softmax", "xavier"),
        ([2, 3], "tanh", "identity", "orthogonal"),  # no hidden layer
        ([5, 8, 2], ["softplus"], "identity", "he"),
    ],
)
def test_round_trip(tmp_path, dtype, sizes, activation, output, init):
    net = mc.MLP(sizes, activation=activation, output=output, init=init, dtype=dtype, seed=11)
    # make the biases non-zero so that they are really checked
    rng = np.random.default_rng(0)
    for b in net.biases:
        b += rng.standard_normal(b.shape).astype(dtype)
    path = tmp_path / "net.npz"
    net.save(path)
    net2 = mc.load(path)
    assert isinstance(net2, mc.MLP)
    assert net2.sizes == net.sizes == tuple(sizes)
    assert net2.activations == net.activations
    assert isinstance(net2.activations, list) and len(net2.activations) == len(sizes) - 2
    assert net2.output == output and net2.init == init
    assert net2.dtype == np.dtype(dtype)
    assert len(net2.weights) == len(net.weights)
    for a, b in zip(net.weights + net.biases, net2.weights + net2.biases):
        assert b.dtype == np.dtype(dtype) and b.shape == a.shape
        assert_bitwise_equal(a, b)
    X = rng.standard_normal((sizes[0], 9))
    assert np.array_equal(net.forward(X), net2.forward(X))
    assert np.array_equal(net.predict(X), net2.predict(X))
    # the loaded net trains like the original (same state, same results)
    Y = rng.standard_normal((sizes[-1], 9))
    if output == "softmax":
        Y = rng.integers(0, sizes[-1], 9)
        loss = "cross_entropy"
    elif output == "sigmoid":
        Y = (Y > 0).astype(float)
        loss = "bce"
    else:
        loss = "mse"
    la, ga = net.loss_and_grad(X, Y, loss)
    lb, gb = net2.loss_and_grad(X, Y, loss)
    assert la == lb
    assert_bitwise_equal(ga.weights, gb.weights)


def test_save_accepts_str_and_pathlike(tmp_path):
    net = mc.MLP([2, 3, 1], seed=0)
    net.save(str(tmp_path / "a.npz"))
    net.save(tmp_path / "b.npz")
    for name in ("a.npz", "b.npz"):
        assert np.array_equal(mc.load(str(tmp_path / name)).weights[0], net.weights[0])


def test_file_contents_are_plain_arrays(saved):
    net, path = saved
    fields = _fields(path)  # would raise if anything needed pickle
    assert str(fields["format"]) == mio.FORMAT
    assert fields["sizes"].tolist() == [3, 5, 4, 2]
    assert fields["activations"].tolist() == ["relu", "softplus"]
    assert str(fields["output"]) == "softmax" and str(fields["init"]) == "he"
    assert str(fields["dtype"]) == "float64"
    assert all(v.dtype != object for v in fields.values())
    assert set(fields) == {"format", "sizes", "activations", "output", "init", "dtype"} | {
        f"{c}{k}" for k in range(3) for c in "Wb"
    }


def test_load_never_unpickles(tmp_path, monkeypatch, saved):
    _, path = saved
    seen = []
    real_load = np.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("allow_pickle", False))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    mc.load(path)
    assert seen == [False]


def test_object_array_refused(tmp_path, saved):
    _, path = saved
    fields = _fields(path)
    fields["W0"] = np.array([object()] * 15, dtype=object).reshape(5, 3)
    bad = tmp_path / "object.npz"
    _write(bad, fields)  # np.savez pickles object arrays
    with pytest.raises(ValueError, match=r"^path:"):
        mc.load(bad)


def test_object_array_in_metadata_refused(tmp_path, saved):
    _, path = saved
    fields = _fields(path)
    fields["activations"] = np.array(["relu", "softplus"], dtype=object)
    bad = tmp_path / "object_meta.npz"
    _write(bad, fields)
    with pytest.raises(ValueError, match=r"^path:"):
        mc.load(bad)


# -- corrupt files -------------------------------------------------------------------


def test_truncated_file(tmp_path, saved):
    _, path = saved
    raw = path.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 30, 100, 10):
        bad = tmp_path / f"trunc{cut}.npz"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"^path:"):
            mc.load(bad)


def test_random_bytes(tmp_path):
    rng = np.random.default_rng(7)
    for n in (0, 1, 64, 5000):
        bad = tmp_path / f"random{n}.npz"
        bad.write_bytes(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        with pytest.raises(ValueError, match=r"^path:"):
            mc.load(bad)


def test_corrupted_member_bytes(tmp_path, saved):
    # Flip bytes inside the archive (after the local header): a CRC or
    # format error, never a silently different model.
    _, path = saved
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 16] = bytes(16)
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(raw))
    try:
        net = mc.load(bad)
    except ValueError as exc:
        assert str(exc).startswith("path:")
    else:  # only acceptable if the damage hit padding and the model is intact
        ref = mc.load(path)
        assert_bitwise_equal(net.weights, ref.weights)


def test_not_a_zip(tmp_path):
    cases = {
        "text.npz": b"hello, this is not a model\n",
        "npy.npz": None,  # a bare .npy array
    }
    for name, content in cases.items():
        bad = tmp_path / name
        if content is None:
            with open(bad, "wb") as fh:
                np.save(fh, np.zeros((3, 3)))
        else:
            bad.write_bytes(content)
        with pytest.raises(ValueError, match=r"^path:"):
            mc.load(bad)


def test_zip_without_arrays(tmp_path):
    bad = tmp_path / "plain.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    with pytest.raises(ValueError, match=r"^path:"):
        mc.load(bad)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ValueError, match=r"^path:"):
        mc.load(tmp_path / "does_not_exist.npz")
    with pytest.raises(ValueError, match=r"^path:"):
        mc.load(tmp_path)


# -- inconsistent files ----------------------------------------------------------------


def _mutations():
    def wrong_w_shape(f):
        f["W1"] = np.zeros((4, 6))

    def wrong_b_shape(f):
        f["b0"] = np.zeros(5)

    def transposed_w(f):
        f["W0"] = f["W0"].T.copy()

    def wrong_dtype(f):
        f["W1"] = f["W1"].astype(np.float32)

    def int_weights(f):
        f["b2"] = np.zeros((2, 1), dtype=np.int64)

    def dtype_field_disagrees(f):
        f["dtype"] = np.array("float32")

    def unknown_dtype(f):
        f["dtype"] = np.array("float16")

    def missing_weight(f):
        del f["W2"]

    def missing_bias(f):
        del f["b1"]

    def missing_format(f):
        del f["format"]

    def missing_sizes(f):
        del f["sizes"]

    def missing_output(f):
        del f["output"]

    def unknown_format(f):
        f["format"] = np.array("mlpckpt-99")

    def format_not_string(f):
        f["format"] = np.array(1)

    def extra_key(f):
        f["W3"] = np.zeros((2, 2))

    def extra_unrelated_key(f):
        f["notes"] = np.array("hello")

    def sizes_too_short(f):
        f["sizes"] = np.array([3])

    def sizes_disagree(f):
        f["sizes"] = np.array([3, 5, 4, 3])

    def sizes_non_positive(f):
        f["sizes"] = np.array([3, 0, 4, 2])

    def sizes_float(f):
        f["sizes"] = np.array([3.0, 5.0, 4.0, 2.0])

    def unknown_activation(f):
        f["activations"] = np.array(["relu", "swish"])

    def wrong_activation_count(f):
        f["activations"] = np.array(["relu"])

    def activations_not_strings(f):
        f["activations"] = np.array([1, 2])

    def unknown_output(f):
        f["output"] = np.array("tanh")

    def output_not_scalar(f):
        f["output"] = np.array(["softmax"])

    def unknown_init(f):
        f["init"] = np.array("zeros")

    def nan_weight(f):
        f["W0"] = f["W0"].copy()
        f["W0"][0, 0] = np.nan

    def inf_bias(f):
        f["b1"] = np.full((4, 1), np.inf)

    return [
        wrong_w_shape, wrong_b_shape, transposed_w, wrong_dtype, int_weights,
        dtype_field_disagrees, unknown_dtype, missing_weight, missing_bias,
        missing_format, missing_sizes, missing_output, unknown_format,
        format_not_string, extra_key, extra_unrelated_key, sizes_too_short,
        sizes_disagree, sizes_non_positive, sizes_float, unknown_activation,
        wrong_activation_count, activations_not_strings, unknown_output,
        output_not_scalar, unknown_init, nan_weight, inf_bias,
    ]


@pytest.mark.parametrize("mutate", _mutations(), ids=lambda f: f.__name__)
def test_inconsistent_file(tmp_path, saved, mutate):
    _, path = saved
    fields = _fields(path)
    mutate(fields)
    bad = tmp_path / "bad.npz"
    _write(bad, fields)
    with pytest.raises(ValueError, match=r"^path:"):
        mc.load(bad)


def test_a_block_of_the_wrong_dtype_is_named(tmp_path, saved):
    _, path = saved
    fields = _fields(path)
    fields["W0"] = fields["W0"].astype(np.float32)
    bad = tmp_path / "bad.npz"
    _write(bad, fields)
    with pytest.raises(ValueError, match=r"^path:.*weights\[0\]: expected dtype float64, got float32"):
        mc.load(bad)


def test_unmodified_rewrite_loads(tmp_path, saved):
    # Control for test_inconsistent_file: re-writing the fields unchanged loads.
    net, path = saved
    again = tmp_path / "again.npz"
    _write(again, _fields(path))
    net2 = mc.load(again)
    assert_bitwise_equal(net.weights, net2.weights)


# -- atomic save ------------------------------------------------------------------------


def test_failed_save_keeps_old_file(tmp_path, monkeypatch, saved):
    net, path = saved
    before = path.read_bytes()
    other = mc.MLP([3, 5, 4, 2], activation=["relu", "softplus"], output="softmax", seed=99)

    def broken_savez(file, **arrays):
        # write part of an archive, then fail, as a full disk would
        file.write(b"PK\x03\x04 partial garbage")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="simulated"):
        other.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _tmp_leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    loaded = mc.load(path)
    assert_bitwise_equal(loaded.weights, net.weights)


def test_failed_save_interrupt_keeps_old_file(tmp_path, monkeypatch, saved):
    # Even a KeyboardInterrupt mid-write leaves no temporary behind.
    _, path = saved
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"x" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mc.MLP([3, 5, 4, 2], seed=1).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_failed_rename_keeps_old_file(tmp_path, monkeypatch, saved):
    _, path = saved
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("rename failed (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        mc.MLP([3, 5, 4, 2], seed=1).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_successful_save_replaces_and_leaves_no_temporary(tmp_path, saved):
    _, path = saved
    other = mc.MLP([2, 2], output="sigmoid", dtype="float32", seed=5)
    other.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    loaded = mc.load(path)
    assert loaded.sizes == (2, 2) and loaded.dtype == np.float32
    assert np.array_equal(loaded.weights[0], other.weights[0])


def test_save_to_buffer_roundtrip_through_bytes(tmp_path, saved):
    # The saved file is a standard .npz readable from memory without pickle.
    _, path = saved
    with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
        assert "W0" in data.files and data["W0"].shape == (5, 3)


def test_corrupt_file_closes_its_handle(tmp_path, saved):
    # np.load(path) leaks the open file when the archive is damaged; load()
    # must not (an open handle keeps the file from being deleted on Windows).
    import gc
    import warnings

    _, path = saved
    bad = tmp_path / "trunc.npz"
    bad.write_bytes(path.read_bytes()[:200])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with pytest.raises(ValueError, match=r"^path:"):
                mc.load(bad)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


# -- records: mlpckpt.io._records reads and writes plain data, no model ------------------------


def _record():
    rng = np.random.default_rng(4)
    return {
        "sizes": (3, 4, 2),
        "activations": ["relu"],
        "output": "sigmoid",
        "init": "normal",
        "dtype": "float32",
        "weights": [rng.standard_normal(s).astype(np.float32) for s in ((4, 3), (2, 4))],
        "biases": [rng.standard_normal(s).astype(np.float32) for s in ((4, 1), (2, 1))],
    }


def test_record_round_trip(tmp_path):
    rec = _record()
    path = tmp_path / "r.npz"
    mio.save(path, rec)
    back = mio.load(path)
    assert set(back) == set(mio.FIELDS)
    assert back["sizes"] == (3, 4, 2) and back["activations"] == ["relu"]
    assert (back["output"], back["init"], back["dtype"]) == ("sigmoid", "normal", "float32")
    for key in ("weights", "biases"):
        assert len(back[key]) == 2
        for a, b in zip(rec[key], back[key]):
            assert b.dtype == np.float32 and b.flags.c_contiguous and np.array_equal(a, b)
    # mc.load builds the model the record describes
    net = mc.load(path)
    assert (net.sizes, net.activations, net.output, net.init) == ((3, 4, 2), ["relu"], "sigmoid", "normal")
    assert net.dtype == np.float32
    assert_bitwise_equal(net.weights + net.biases, back["weights"] + back["biases"])


def test_record_missing_fields_refused(tmp_path):
    rec = _record()
    del rec["init"], rec["biases"]
    with pytest.raises(ValueError, match=r"^record: missing fields \['init', 'biases'\]"):
        mio.save(tmp_path / "r.npz", rec)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_file_mode_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        mc.MLP([2, 3, 1], seed=0).save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == mode


def test_save_refuses_nan_weights_and_missing_directories(tmp_path):
    net = mc.MLP([2, 3, 1], seed=0)
    target = tmp_path / "m.npz"
    net.save(target)
    before = target.read_bytes()
    net.weights[0][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^weights\[0\]:"):
        net.save(target)
    assert target.read_bytes() == before  # untouched
    net.weights[0][0, 0] = 0.0
    with pytest.raises(ValueError, match="^path:.*does not exist"):
        net.save(tmp_path / "missing" / "m.npz")
    with pytest.raises(ValueError, match="^path:.*directory"):
        net.save(tmp_path)
