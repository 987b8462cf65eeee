"""Restatements on object storage: the same scenario as on local disk, on moto's S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import restate_scenario
from tests.distributed.cluster import BUCKET, S3_CONN_ID, Cluster

pytestmark = pytest.mark.xdist_group("distributed")


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("s3"), {}, Path("unused.yaml"))
    try:
        c.start_s3()
        yield c
    finally:
        c.stop()


@pytest.fixture
def resolver(s3, monkeypatch) -> Iterator[None]:
    from bds_airflow import object_storage

    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", s3.s3_conn_json())
    object_storage.install()
    try:
        yield
    finally:
        object_storage.uninstall()


@pytest.mark.parametrize("kind", ["daily", "monthly"])
def test_restatement_on_s3(s3, resolver, kind):
    root = f"s3://{S3_CONN_ID}@{BUCKET}/restate-{kind}"
    restate_scenario.run(root, kind)
    keys = sorted(o["Key"] for o in s3.s3_client().list_objects_v2(
        Bucket=BUCKET, Prefix=f"restate-{kind}/acme/history/")["Contents"])
    label = "2026-03-08" if kind == "daily" else "2026-03"
    assert f"restate-{kind}/acme/history/{kind}/{label}/v1/manifest.json" in keys
    assert f"restate-{kind}/acme/history/{kind}/{label}/v2/manifest.json" in keys
