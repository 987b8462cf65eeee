"""Where files live: local paths or object-storage URLs, written atomically (SPEC §7).

Everything takes and returns `str` paths (XCom-safe). A local file is written under a
temporary name in its folder, fsynced and renamed into place; an object-store file is
one PUT of the whole content. Either way a reader sees the whole file or none.

Local files are created with mode 0666 less the process umask (0644 under the usual
022), as `open()` would: an importer under another account can read them. A temporary
file is named `.tmp-<host>.<pid>.<random>`; one whose writer is gone (a crash, a kill)
is removed by the next write into its folder (`sweep_temps`) and reported by `bds verify`.
A write that fails (a full disk, a read-only file system) raises `StorageError`, one line
naming the file.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

TEMP_PREFIX = ".tmp-"
# A temporary file of another host (or of an older naming) is stale when it is older than
# this: no atomic write of bds takes that long between creating and renaming its file.
TEMP_STALE_SECONDS = 3600
_HOST = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:40] or "host"


class StorageError(OSError):
    """A file could not be written; the message is one line naming it and the cause."""

    def __init__(self, path: str, exc: OSError):
        super().__init__(exc.errno, f"{path}: cannot write: {_cause(exc)}")
        self.path = path

    def __str__(self) -> str:
        return str(self.strerror)


def _cause(exc: OSError) -> str:
    if exc.errno:
        return os.strerror(exc.errno)
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def write_failed(path: str, exc: OSError) -> StorageError:
    """The error to raise for a failed write of `path`: pyarrow's and the OS's own
    messages name no file (`[Errno 28] No space left on device`)."""
    return exc if isinstance(exc, StorageError) else StorageError(path, exc)

# The Airflow layer may install a resolver (conn-id aware, e.g. ObjectStoragePath's
# file systems); without one, fsspec's own resolution of the URL is used.
_fs_resolver: Callable[[str], tuple[Any, str]] | None = None


def set_fs_resolver(resolver: Callable[[str], tuple[Any, str]] | None) -> None:
    global _fs_resolver
    _fs_resolver = resolver


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path.removeprefix("file://")


def _fs(path: str) -> tuple[Any, str]:
    if _fs_resolver is not None:
        return _fs_resolver(path)
    import fsspec

    return fsspec.core.url_to_fs(path)


def join(root: str, *parts: str) -> str:
    if is_url(root):
        return posixpath.join(root.rstrip("/"), *parts)
    return os.path.join(_local(root), *parts)


def write_atomic(path: str, data: bytes) -> None:
    """`data` as the whole content of `path`; raises StorageError naming `path`."""
    if is_url(path):
        fs, p = _fs(path)
        fs.pipe_file(p, data)
        return
    path = _local(path)
    folder = os.path.dirname(path) or "."
    tmp = None
    try:
        fd, tmp = _new_temp(folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException as exc:
        if tmp is not None:
            _unlink(tmp)
        if not isinstance(exc, OSError) or isinstance(exc, StorageError):
            raise
        raise StorageError(path, exc) from exc


def _new_temp(folder: str) -> tuple[int, str]:
    """Create a temporary file in `folder` (made if missing), mode 0666 less the umask;
    stale temporary files of the folder are removed first."""
    os.makedirs(folder, exist_ok=True)
    sweep_temps(folder)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{_HOST}.{os.getpid()}.{secrets.token_hex(6)}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def temp_files(folder: str) -> list[str]:
    """Names of the temporary files in a local folder, sorted (none for a URL)."""
    if is_url(folder):
        return []
    try:
        return sorted(n for n in os.listdir(_local(folder)) if n.startswith(TEMP_PREFIX))
    except (FileNotFoundError, NotADirectoryError):
        return []


def temp_in_use(folder: str, name: str) -> bool:
    """Whether a temporary file may still be written: its process (on this host) lives,
    or, written on another host or named otherwise, it is younger than TEMP_STALE_SECONDS."""
    host, _, rest = name.removeprefix(TEMP_PREFIX).partition(".")
    pid = rest.partition(".")[0]
    if host == _HOST and pid.isdigit():
        return _alive(int(pid))
    try:
        age = time.time() - os.stat(os.path.join(_local(folder), name)).st_mtime
    except FileNotFoundError:
        return False
    return age < TEMP_STALE_SECONDS


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, under another user
        return True
    return True


def sweep_temps(folder: str) -> list[str]:
    """Remove the temporary files of a crashed or killed writer; returns their paths."""
    gone = []
    for name in temp_files(folder):
        if not temp_in_use(folder, name):
            path = os.path.join(_local(folder), name)
            _unlink(path)
            gone.append(path)
    return gone


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[None]:
    """Hold an exclusive lock on the local file `path` (created if missing, its folder
    too) until the block ends, waiting for any other holder: `fcntl.flock`, released by
    the kernel however the holder ends. On object storage nothing is locked (there is no
    lock to take; there the scheduler's one month task at a time per tenant serialises
    month writes, SPEC §8)."""
    if is_url(path):
        yield
        return
    import fcntl

    local = _local(path)
    os.makedirs(os.path.dirname(local), exist_ok=True)
    with open(local, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_bytes(path: str) -> bytes:
    if is_url(path):
        fs, p = _fs(path)
        return fs.cat_file(p)
    with open(_local(path), "rb") as f:
        return f.read()


def exists(path: str) -> bool:
    if is_url(path):
        fs, p = _fs(path)
        return fs.exists(p)
    return os.path.exists(_local(path))


def remove(path: str) -> None:
    if is_url(path):
        fs, p = _fs(path)
        if fs.exists(p):
            fs.rm_file(p)
        return
    try:
        os.unlink(_local(path))
    except FileNotFoundError:
        pass


def listdir(path: str) -> list[str]:
    """Base names in a folder (empty when it does not exist), sorted."""
    if is_url(path):
        fs, p = _fs(path)
        if not fs.exists(p):
            return []
        return sorted(posixpath.basename(x.rstrip("/")) for x in fs.ls(p, detail=False))
    try:
        return sorted(n for n in os.listdir(_local(path)) if not n.startswith(TEMP_PREFIX))
    except FileNotFoundError:
        return []


def write_table(path: str, table: Any) -> None:
    """A pyarrow Table as one Parquet file, atomically."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    write_atomic(path, buf.getvalue())


def read_table(path: str, columns: list[str] | None = None) -> Any:
    """A Parquet file, only `columns` of it when given (the others are never decoded)."""
    import pyarrow.parquet as pq

    if is_url(path):
        return pq.read_table(io.BytesIO(read_bytes(path)), columns=columns)
    return pq.read_table(_local(path), columns=columns)


class LocalSink:
    """A local temporary file that becomes `path` on `commit()` (rename or one upload).

    For streaming writers (Parquet batches) that must not hold the whole file in memory.
    """

    def __init__(self, path: str):
        self.path = path
        folder = tempfile.gettempdir() if is_url(path) else os.path.dirname(_local(path))
        try:
            fd, self.tmp = _new_temp(folder)
        except OSError as exc:
            raise write_failed(path, exc) from exc
        os.close(fd)

    def commit(self) -> None:
        try:
            if is_url(self.path):
                fs, p = _fs(self.path)
                fs.put_file(self.tmp, p)
                os.unlink(self.tmp)
            else:
                os.replace(self.tmp, _local(self.path))
                _fsync_dir(os.path.dirname(_local(self.path)))
        except OSError as exc:
            raise write_failed(self.path, exc) from exc

    def discard(self) -> None:
        _unlink(self.tmp)
