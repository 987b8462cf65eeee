"""Restatements on object storage: the same scenario as on local disk, on moto's S3."""

from __future__ import annotations

import pytest

from tests import restate_scenario
from tests.distributed.cluster import BUCKET, S3_CONN_ID

pytestmark = pytest.mark.xdist_group("distributed")


@pytest.mark.parametrize("kind", ["daily", "monthly"])
def test_restatement_on_s3(s3, resolver, kind):
    root = f"s3://{S3_CONN_ID}@{BUCKET}/restate-{kind}"
    restate_scenario.run(root, kind)
    keys = sorted(o["Key"] for o in s3.s3_client().list_objects_v2(
        Bucket=BUCKET, Prefix=f"restate-{kind}/acme/history/")["Contents"])
    label = "2026-03-08" if kind == "daily" else "2026-03"
    assert f"restate-{kind}/acme/history/{kind}/{label}/v1/manifest.json" in keys
    assert f"restate-{kind}/acme/history/{kind}/{label}/v2/manifest.json" in keys
