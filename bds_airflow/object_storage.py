"""Object-storage roots (`s3://conn_id@bucket/prefix`) through Airflow's ObjectStoragePath.

`bds_metrics.storage` does every file operation; for a URL root it asks a resolver for
an fsspec file system and the path inside it. This module supplies that resolver from
Airflow's own object storage layer, so the `conn_id` in the URL names an Airflow
connection (environment `AIRFLOW_CONN_<ID>`, secrets backend or metadata DB) that holds
the credentials, region and endpoint; every scheme an installed provider registers
works (`s3://` needs `s3fs`, with the amazon provider).

`install()` is cheap (no boto, no fsspec import): the DAG's tasks call it when they
start and the CLI before it touches files. The first URL resolved imports the rest.
"""

from __future__ import annotations

from typing import Any

from bds_metrics import storage


def resolve(url: str) -> tuple[Any, str]:
    """(fsspec file system, path inside it) of an object-storage URL.

    The file system is Airflow's (cached per scheme and connection); its listing cache
    is dropped on each call, because other processes (the other workers) write the same
    bucket and a stale listing would hide their files.
    """
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(url)
    fs = path.fs
    try:
        fs.invalidate_cache()
    except Exception:  # a file system without a listing cache
        pass
    return fs, path.path


def install() -> None:
    """Route `bds_metrics.storage`'s URLs through Airflow's object storage (idempotent)."""
    storage.set_fs_resolver(resolve)


def uninstall() -> None:
    storage.set_fs_resolver(None)
