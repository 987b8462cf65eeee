"""Where files live: local paths or object-storage URLs, written atomically.

Everything takes and returns `str` paths (XCom-safe). A local file is written under a
temporary name in its folder, fsynced and renamed into place; an object-store file is
one PUT of the whole content. Either way a reader sees the whole file or none.
"""

from __future__ import annotations

import io
import os
import posixpath
import tempfile
from collections.abc import Callable
from typing import Any

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
    if is_url(path):
        fs, p = _fs(path)
        fs.pipe_file(p, data)
        return
    path = _local(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        return sorted(n for n in os.listdir(_local(path)) if not n.startswith(".tmp-"))
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
        os.makedirs(folder, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        os.close(fd)

    def commit(self) -> None:
        if is_url(self.path):
            fs, p = _fs(self.path)
            fs.put_file(self.tmp, p)
            os.unlink(self.tmp)
        else:
            os.replace(self.tmp, _local(self.path))
            _fsync_dir(os.path.dirname(_local(self.path)))

    def discard(self) -> None:
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass
