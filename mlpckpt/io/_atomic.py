"""File primitives: file names, atomic writes that leave nothing behind a
dead writer, and the checked headers of an ``.npz`` archive's members.

A file is written to a temporary in its target's directory, synced and
renamed over the target, so the target is always absent, the old file or
the complete new one. The temporary is named
``.{target}~{host}~{pid}~{random}.mlpckpt-tmp`` (a long target name is cut
and hashed; the host keeps only ``[A-Za-z0-9.-]``), so a later write of the
same target knows which temporaries are stale: those of processes of this
host that no longer exist (``os.kill(pid, 0)`` raises ProcessLookupError)
are removed before it writes; those of live processes, of this process and
of other hosts are never touched. (On Windows nothing is removed: there
``os.kill`` terminates.)

:func:`npz_headers` reads every member's ``.npy`` header and checks that
the archive really holds the bytes it declares, so that a reader can check
shapes and dtypes before any data is allocated. This module knows no model.
"""

import hashlib
import math
import os
import re
import secrets
import socket
import zipfile

import numpy as np

__all__ = ["SUFFIX", "check_path", "write_atomic", "remove_stale", "npz_headers", "field"]

SUFFIX = ".mlpckpt-tmp"
_DEFLATE_RATIO = 1032  # the most deflate compresses (258 bytes in 2 bits)
_REST = re.compile(r"([0-9]+)~[0-9a-f]{16}" + re.escape(SUFFIX) + r"\Z")


def check_path(path, name="path"):
    """A file name as a str: ``str``, ``bytes`` or ``os.PathLike`` (decoded
    with ``os.fsdecode``); empty names and NUL characters refused."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ValueError(
            f"{name}: expected a file name (str, bytes or os.PathLike), "
            f"got {type(path).__name__} {path!r}"
        )
    try:
        path = os.fsdecode(path)
    except TypeError as exc:  # __fspath__ returned neither str nor bytes
        raise ValueError(f"{name}: expected a file name, got {path!r} ({exc})") from None
    if not path:
        raise ValueError(f"{name}: got an empty path, expected a file name")
    if "\0" in path:
        raise ValueError(f"{name}: got {path!r}, expected a file name without NUL characters")
    return path


def _host():
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "unknown"


def _prefix(target, host):
    """``.{name}~{host}~`` for the target's base name (long names cut and hashed,
    so that the whole temporary name stays under 255 bytes)."""
    raw = os.fsencode(os.path.basename(target))
    if len(raw) > 120:
        raw = raw[:60] + b"-" + hashlib.sha256(raw).hexdigest()[:16].encode()
    return f".{os.fsdecode(raw)}~{host}~"


def _alive(pid):
    if pid <= 0:
        return True  # not a writer's id: never removed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # PermissionError: it exists, under another user
    return True


def remove_stale(target):
    """Remove the temporaries of ``target`` (an absolute path) left by dead
    processes of this host; returns the names removed."""
    if os.name != "posix":
        return []
    directory = os.path.dirname(target)
    prefix = _prefix(target, _host())
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        found = _REST.match(entry, len(prefix)) if entry.startswith(prefix) else None
        if found is None or int(found.group(1)) == os.getpid() or _alive(int(found.group(1))):
            continue
        try:
            os.unlink(os.path.join(directory, entry))
            removed.append(entry)
        except OSError:  # gone already (another writer removed it), or not a file
            pass
    return removed


def write_atomic(path, write):
    """Write ``path`` (checked by :func:`check_path`; its directory must
    exist) through ``write(fh)`` into a temporary renamed over it; the mode
    is the one a new file gets under the umask."""
    target = os.path.abspath(path)
    remove_stale(target)
    stem = os.path.join(os.path.dirname(target), f"{_prefix(target, _host())}{os.getpid()}~")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = f"{stem}{secrets.token_hex(8)}{SUFFIX}"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    _sync_directory(os.path.dirname(target))


def _sync_directory(directory):
    # Make the rename durable; not every platform or file system allows it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def npz_headers(zf, archive_size):
    """``{key: (shape, dtype)}`` of every member, from its ``.npy`` header alone."""
    found = {}
    for info in zf.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key is None or key in found:
            raise ValueError(f"path: unexpected member {info.filename!r}, expected distinct .npy arrays")
        bound = {zipfile.ZIP_STORED: info.compress_size,
                 zipfile.ZIP_DEFLATED: _DEFLATE_RATIO * info.compress_size + 1024}.get(info.compress_type)
        if bound is None or info.compress_size > archive_size or info.file_size > bound:
            raise ValueError(
                f"path: member {info.filename!r} claims {info.file_size} bytes, "
                f"more than the archive of {archive_size} bytes can hold"
            )
        with zf.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"path: member {info.filename!r} has .npy version {version}, expected 1.0 or 2.0")
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(member)
            offset = member.tell()
        if dtype.hasobject:
            raise ValueError(f"path: field {key!r} holds Python objects (load never unpickles)")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise ValueError(
                f"path: field {key!r} declares shape {shape} of {dtype} ({nbytes} bytes), "
                f"but its member holds {info.file_size - offset} bytes"
            )
        found[key] = (shape, dtype)
    return found


def field(data, headers, key, kinds, ndim, what):
    """``data[key]`` (a str for a 0-d string), its header checked first."""
    if key not in headers:
        raise ValueError(f"path: missing field {key!r}")
    shape, dtype = headers[key]
    if dtype.kind not in kinds or len(shape) != ndim:
        raise ValueError(f"path: field {key!r} is not {what} (shape {shape}, dtype {dtype})")
    value = data[key]
    return str(value) if kinds == "U" and ndim == 0 else value
