"""bds_metrics.storage on `s3://conn_id@bucket/…` through bds_airflow.object_storage.

An S3-compatible server on loopback; the connection named in the URL (an Airflow
connection in the environment) supplies the endpoint and the credentials.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.distributed.cluster import BUCKET, S3_CONN_ID, Cluster

pytestmark = pytest.mark.xdist_group("distributed")


def _puts(s3: Cluster) -> list[str]:
    import re

    text = (s3.root / "s3.log").read_text(errors="replace")
    return re.findall(r'"(PUT|POST) /' + BUCKET + r'/(\S+) HTTP', text)


def test_storage_operations_on_s3(s3, resolver, tmp_path):
    import pyarrow as pa

    from bds_metrics import storage

    root = f"s3://{S3_CONN_ID}@{BUCKET}/unit"
    folder = storage.join(root, "acme", "daily", "2026-04-28")
    assert folder == f"{root}/acme/daily/2026-04-28"
    f = storage.join(folder, "a.csv")
    assert not storage.exists(f) and storage.listdir(folder) == []
    storage.write_atomic(f, b"x,y\n1,2\n")
    assert storage.exists(f) and storage.read_bytes(f) == b"x,y\n1,2\n"
    assert storage.listdir(folder) == ["a.csv"]
    assert storage.listdir(storage.join(root, "acme", "daily")) == ["2026-04-28"]

    table = pa.table({"a": [1, 2, 3]})
    storage.write_table(storage.join(folder, "t.parquet"), table)
    assert storage.read_table(storage.join(folder, "t.parquet")).equals(table)

    sink = storage.LocalSink(storage.join(folder, "big.parquet"))
    Path(sink.tmp).write_bytes(b"streamed")
    sink.commit()
    assert storage.read_bytes(storage.join(folder, "big.parquet")) == b"streamed"
    assert not Path(sink.tmp).exists()

    storage.remove(f)
    storage.remove(f)  # removing what is gone is fine
    assert not storage.exists(f)
    assert storage.listdir(folder) == ["big.parquet", "t.parquet"]

    # One PUT per file, no multipart upload: an object appears whole or not at all.
    keys = [k for _, k in _puts(s3) if k.startswith("unit/")]
    assert [m for m, k in _puts(s3) if k.startswith("unit/")] == ["PUT"] * len(keys)
    assert sorted(keys) == sorted(["unit/acme/daily/2026-04-28/a.csv",
                                   "unit/acme/daily/2026-04-28/t.parquet",
                                   "unit/acme/daily/2026-04-28/big.parquet"])


def test_the_connection_in_the_url_supplies_credentials_and_endpoint(s3, resolver,
                                                                     monkeypatch):
    from bds_metrics import storage

    # Another connection id with a wrong endpoint: the same URL under it cannot work.
    bad = json.loads(s3.s3_conn_json())
    bad["extra"]["endpoint_url"] = "http://127.0.0.1:9"  # discard port: refused
    bad["extra"]["config_kwargs"] = {"retries": {"max_attempts": 1}, "connect_timeout": 2}
    monkeypatch.setenv("AIRFLOW_CONN_BDS_BAD_S3", json.dumps(bad))
    good = f"s3://{S3_CONN_ID}@{BUCKET}/unit/conn.txt"
    storage.write_atomic(good, b"ok")
    with pytest.raises(Exception):  # noqa: B017 - botocore's or s3fs's connection error
        storage.read_bytes(f"s3://bds_bad_s3@{BUCKET}/unit/conn.txt")
    assert storage.read_bytes(good) == b"ok"


def test_without_the_resolver_storage_does_not_import_airflow():
    import subprocess
    import sys

    code = ("import sys; from bds_metrics import pipeline, storage; "
            "assert storage._fs_resolver is None; "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'airflow'], 'airflow'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
