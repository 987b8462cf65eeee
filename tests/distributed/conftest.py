"""Fixtures of the object-storage tests: moto's S3 server on loopback (one per test
module) and bds's `s3://conn_id@bucket/…` resolver, the connection in the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.distributed.cluster import S3_CONN_ID, Cluster


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("s3"), {}, Path("unused.yaml"))
    try:
        c.start_s3()
        yield c
    finally:
        c.stop()


@pytest.fixture
def resolver(s3, monkeypatch, airflow_db) -> Iterator[None]:
    """Each module's S3 server has its own port under the same connection id: Airflow
    keeps one object store per connection id and process (`_STORE_CACHE`), so the one
    of an earlier module's (stopped) server is dropped first."""
    from airflow.sdk.io import store

    from bds_airflow import object_storage

    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", s3.s3_conn_json())
    store._STORE_CACHE.clear()
    object_storage.install()
    try:
        yield
    finally:
        object_storage.uninstall()
        store._STORE_CACHE.clear()
