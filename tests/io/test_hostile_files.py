"""Files under hostile input (issue 11, item 7): headers checked before any data
is read, save refuses what load would refuse, path types, the committed
format-1 file, and stale temporaries of dead writers."""

import hashlib
import os
import pathlib
import socket
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from mlpckpt.io import _atomic as _files
from mlpckpt.io import _records as mio
from mlpckpt.testing import assert_bitwise_equal

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


def _fields(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _npy_member(shape, descr="<f8", payload=b"\0" * 64):
    """The bytes of a .npy member whose header declares ``shape`` (data: ``payload``)."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def _archive(path, fields, raw=None):
    """An .npz of ``fields`` (arrays) plus ``raw`` members ({name: bytes})."""
    np.savez(path, **fields)
    with zipfile.ZipFile(path, "a") as zf:
        for name, data in (raw or {}).items():
            zf.writestr(name, data)


@pytest.fixture
def saved(tmp_path):
    net = mc.MLP([3, 5, 4, 2], activation=["relu", "softplus"], output="softmax", seed=3)
    path = tmp_path / "model.npz"
    net.save(path)
    return net, path


def _leftovers(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(_files.SUFFIX) or f.endswith(".tmp"))


# -- (a) headers before data ------------------------------------------------------------


def test_a_huge_declared_array_is_refused_from_its_header(tmp_path):
    # Today's main: MemoryError allocating 8e13 bytes. The header is checked first.
    fields = _fields(DATA / "model_v1.npz")
    fields["sizes"] = np.array([10**6, 10**7, 2])
    del fields["W0"], fields["W1"], fields["b0"], fields["b1"]
    bad = tmp_path / "huge.npz"
    _archive(bad, fields, {"W0.npy": _npy_member((10**7, 10**6)), "b0.npy": _npy_member((10**7, 1)),
                           "W1.npy": _npy_member((2, 10**7)), "b1.npy": _npy_member((2, 1), payload=b"\0" * 16)})
    with pytest.raises(ValueError, match=r"^path:.*'W0'.*declares shape \(10000000, 1000000\)"):
        mc.load(bad)


def test_sizes_claiming_huge_layers_are_refused_before_any_array_is_read(tmp_path, monkeypatch):
    fields = _fields(DATA / "model_v1.npz")
    fields["sizes"] = np.array([3, 10**12, 2])
    bad = tmp_path / "wide.npz"
    _archive(bad, fields)
    read = []
    real = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda fp, **kw: read.append(1) or real(fp, **kw))
    with pytest.raises(ValueError, match=r"^path: weights\[0\]: expected shape \(1000000000000, 3\)"):
        mc.load(bad)
    assert len(read) == 6  # the six metadata fields; no W or b was read


def test_a_sizes_field_longer_than_the_archive_is_refused(tmp_path):
    fields = _fields(DATA / "model_v1.npz")
    fields["sizes"] = np.full(10_000, 3)
    bad = tmp_path / "long.npz"
    _archive(bad, fields)
    with pytest.raises(ValueError, match=r"^path: field 'sizes' has 10000 entries for 10 members"):
        mc.load(bad)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    member=st.sampled_from(["W0", "b0", "W1", "b1", "sizes", "format", "activations", "dtype"]),
    shape=st.lists(st.integers(0, 10**12), min_size=0, max_size=3).map(tuple),
    descr=st.sampled_from(["<f8", "<f4", "<i8", "<U9", "|b1", "<c16"]),
    payload=st.integers(0, 200),
)
def test_any_forged_header_is_a_value_error(tmp_path, member, shape, descr, payload):
    fields = _fields(DATA / "model_v1.npz")
    del fields[member]
    bad = tmp_path / "forged.npz"
    _archive(bad, fields, {f"{member}.npy": _npy_member(shape, descr, b"\0" * payload)})
    try:
        net = mc.load(bad)
    except ValueError as exc:
        assert str(exc).startswith("path:")
    else:  # only a header that tells the truth about a valid field may load
        ref = mc.load(DATA / "model_v1.npz")
        assert net.sizes == ref.sizes


def test_a_member_that_holds_fewer_bytes_than_declared_is_refused(tmp_path):
    fields = _fields(DATA / "model_v1.npz")
    del fields["W0"]
    bad = tmp_path / "short.npz"
    _archive(bad, fields, {"W0.npy": _npy_member((4, 3), payload=b"\0" * 95)})
    with pytest.raises(ValueError, match=r"^path: field 'W0' declares shape \(4, 3\) of float64 \(96 bytes\)"):
        mc.load(bad)


@pytest.mark.parametrize("raw", [{"notes.txt": b"x"}, {"W0.npy": None}])
def test_non_npy_and_duplicate_members_are_refused(tmp_path, raw):
    fields = _fields(DATA / "model_v1.npz")
    if raw == {"W0.npy": None}:
        raw = {"W0.npy": _npy_member((4, 3), payload=fields["W0"].tobytes())}  # a second W0.npy
    bad = tmp_path / "odd.npz"
    with pytest.warns(UserWarning, match="Duplicate") if "W0.npy" in raw else _nothing():
        _archive(bad, fields, raw)
    with pytest.raises(ValueError, match=r"^path: unexpected member"):
        mc.load(bad)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_compressed_archive_of_the_same_fields_loads(tmp_path, saved):
    net, path = saved
    packed = tmp_path / "packed.npz"
    np.savez_compressed(packed, **_fields(path))
    back = mc.load(packed)
    assert_bitwise_equal(net.weights + net.biases, back.weights + back.biases)


def test_a_member_claiming_more_than_deflate_can_hold_is_refused():
    class Info:  # a central-directory entry whose sizes no archive can back
        filename, compress_type, compress_size, file_size = "W0.npy", zipfile.ZIP_DEFLATED, 100, 10**9

    class Zip:
        def infolist(self):
            return [Info()]

    with pytest.raises(ValueError, match=r"^path: member 'W0.npy' claims 1000000000 bytes"):
        _files.npz_headers(Zip(), 10**6)


# -- (b) save writes only what load accepts ----------------------------------------------


@pytest.mark.parametrize(
    "k,bad,match",
    [
        (0, np.zeros((5, 3), dtype=np.float32), r"^weights\[0\]: expected dtype float64, got float32"),
        (1, np.zeros((4, 6)), r"^weights\[1\]: expected shape \(4, 5\), got \(4, 6\)"),
        (0, np.zeros((5, 4)), r"^weights\[0\]: expected shape \(5, 3\), got \(5, 4\)"),  # chain intact
        (2, np.zeros((3, 4)), r"^weights\[2\]: expected shape \(2, 4\), got \(3, 4\)"),
    ],
)
def test_save_refuses_a_block_load_would_refuse(saved, k, bad, match):
    net, path = saved
    before = path.read_bytes()
    net.weights[k] = bad
    with pytest.raises(ValueError, match=match):
        net.save(path)
    assert path.read_bytes() == before and _leftovers(path.parent) == []


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("sizes", (3, 4, 3), r"^weights\[1\]: expected shape \(3, 4\)"),
        ("weights", [np.zeros((4, 3), dtype=np.float32)], r"^biases: expected 1 arrays"),
        ("activations", ["relu", "relu"], r"^activation"),
        ("output", "tanh", r"^output"),
        ("init", "zeros", r"^init"),
        ("dtype", "float16", r"^dtype"),
        ("biases", [np.zeros((4, 1)), np.zeros((2, 1))], r"^biases\[0\]: expected dtype float32"),
    ],
)
def test_save_refuses_a_record_load_would_refuse(tmp_path, field, value, match):
    rng = np.random.default_rng(4)
    rec = {"sizes": (3, 4, 2), "activations": ["relu"], "output": "sigmoid", "init": "normal",
           "dtype": "float32", "weights": [rng.standard_normal(s).astype(np.float32) for s in ((4, 3), (2, 4))],
           "biases": [np.zeros(s, dtype=np.float32) for s in ((4, 1), (2, 1))]}
    rec[field] = value
    with pytest.raises(ValueError, match=match):
        mio.save(tmp_path / "r.npz", rec)
    assert list(tmp_path.iterdir()) == []


# -- (c) paths ----------------------------------------------------------------------------


class _BytesPath:
    def __init__(self, path):
        self.path = os.fsencode(path)

    def __fspath__(self):
        return self.path


def test_str_bytes_and_pathlike_paths_in_save_and_load(tmp_path):
    net = mc.MLP([2, 3, 1], seed=0)
    for name, make in (("s.npz", str), ("b.npz", os.fsencode), ("p.npz", pathlib.Path), ("f.npz", _BytesPath)):
        net.save(make(tmp_path / name))
        assert np.array_equal(mc.load(make(tmp_path / name)).weights[0], net.weights[0])
    assert sorted(os.listdir(tmp_path)) == ["b.npz", "f.npz", "p.npz", "s.npz"]


@pytest.mark.parametrize("bad", [None, 3, 2.5, ["m.npz"], "", b"", "a\0b.npz"])
def test_bad_paths_are_value_errors_naming_path(tmp_path, monkeypatch, bad):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    net = mc.MLP([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match=r"^path: "):
        net.save(bad)
    with pytest.raises(ValueError, match=r"^path: "):
        mc.load(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"] and list(work.iterdir()) == []


def test_a_path_ending_in_a_separator_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^path: .* is a directory"):
        mc.MLP([2, 3, 1], seed=0).save(str(tmp_path / "new") + os.sep)
    assert list(tmp_path.iterdir()) == []


# -- (e) the committed format-1 file ------------------------------------------------------


def test_the_format_1_file_of_before_issue_11_keeps_loading():
    path = DATA / "model_v1.npz"
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] == "6f51666d79519014"
    net = mc.load(path)
    assert (net.sizes, net.activations, net.output, net.init, net.dtype) == (
        (3, 4, 2), ["tanh"], "softmax", "xavier", np.float64)
    raw = _fields(path)
    assert str(raw["format"]) == "mlpckpt-1" == mio.FORMAT
    for k in range(2):
        assert np.array_equal(net.weights[k], raw[f"W{k}"]) and np.array_equal(net.biases[k], raw[f"b{k}"])
    fresh = mc.MLP([3, 4, 2], activation="tanh", output="softmax", seed=0)
    assert_bitwise_equal(net.weights + net.biases, fresh.weights + fresh.biases)
    net2, opt = mc.load(path, with_optimizer=True)
    assert opt is None and np.array_equal(net2.weights[0], net.weights[0])
    assert set(mio.load(path)) == set(mio.FIELDS)  # no optimizer key in a model-only file


# -- (d) temporaries: named, stale ones of dead writers removed ---------------------------


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _temp_name(target, host, pid):
    return f"{_files._prefix(os.path.abspath(target), host)}{pid}~{'0' * 16}{_files.SUFFIX}"


def test_temporary_names_carry_target_host_and_pid(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    mc.MLP([2, 3, 1], seed=0).save(tmp_path / "m.npz")
    host = _files._host()
    assert len(seen) == 1 and seen[0].startswith(f".m.npz~{host}~{os.getpid()}~")
    assert seen[0].endswith(_files.SUFFIX) and _files._REST.match(seen[0], len(f".m.npz~{host}~"))


@pytest.mark.skipif(os.name != "posix", reason="stale temporaries are only removed on POSIX")
def test_a_save_removes_stale_temporaries_of_dead_writers_only(tmp_path):
    target = tmp_path / "m.npz"
    host = _files._host()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        keep = [
            _temp_name(target, host, live.pid),  # a live writer
            _temp_name(target, host, os.getpid()),  # this process (another thread's save)
            _temp_name(target, host + "x", _dead_pid()),  # another host: cannot be checked
            _temp_name(tmp_path / "other.npz", host, _dead_pid()),  # another target
            ".mlpckpt-abc.tmp",  # before issue 11: no pid to check
        ]
        stale = [_temp_name(target, host, _dead_pid()) for _ in range(3)]
        for name in keep + stale:
            (tmp_path / name).write_bytes(b"partial")
        mc.MLP([2, 3, 1], seed=0).save(target)
        assert sorted(os.listdir(tmp_path)) == sorted(keep + ["m.npz"])
    finally:
        live.kill()
        live.wait()


def test_long_target_names_give_short_temporaries(tmp_path):
    name = "é" * 120 + ".npz"  # 244 bytes: a temporary with the full name would be too long
    mc.MLP([2, 3, 1], seed=0).save(tmp_path / name)
    assert os.listdir(tmp_path) == [name]
    assert len(os.fsencode(_temp_name(name, "h" * 64, 2**22))) < 255


def test_the_host_in_a_temporary_name_has_no_separator(monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "a~b/c d.example")
    assert _files._host() == "a_b_c_d.example"
