"""Info Mart / GVP connections resolved by the postgres provider, read through ADBC.

Each test resolves a real Airflow connection (environment URI or JSON, metadata DB) with
`bds_airflow.connections.get_dsn` and then reads from the test PostgreSQL through the
Arrow data path (`datasets.query_batches`, ADBC), so a parameter the provider builds but
the conninfo lost would show in what the server reports about the session.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid

import pytest

from tests.conftest import dbname_of

pytestmark = pytest.mark.usefixtures("airflow_db")


def _server_side(dsn: str) -> dict[str, object]:
    """What the server says about a session opened with `dsn` through ADBC."""
    from bds_metrics import datasets

    sql = ("SELECT current_database() AS db, inet_server_addr() IS NULL AS unix_socket, "
           "current_setting('application_name') AS app, "
           "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl")
    batches = list(datasets.query_batches(dsn, sql, ()))
    return {k: v[0] for k, v in batches[0].to_pydict().items()}


def _socket_dir() -> str:
    from psycopg.conninfo import conninfo_to_dict

    host = str(conninfo_to_dict(os.environ["BDS_TEST_PG_DSN"]).get("host") or "")
    if not host.startswith("/"):
        pytest.skip("the test server is reached over TCP (BDS_TEST_PG_DSN), not a socket")
    return host


@pytest.mark.parametrize("form", ["netloc", "query"])
def test_uri_with_a_unix_socket_host(new_db, monkeypatch, form):
    from bds_airflow.connections import get_dsn

    db = dbname_of(new_db())
    sock = _socket_dir()
    conn_id = f"bds_sock_{form}"
    if form == "netloc":  # the socket directory percent-encoded as the host
        uri = f"postgresql://postgres@{urllib.parse.quote(sock, safe='')}/{db}"
    else:  # libpq's own spelling: an empty host and ?host=/dir
        uri = f"postgresql://postgres@/{db}?host={urllib.parse.quote(sock, safe='')}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)
    dsn = get_dsn(conn_id)
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(dsn)["host"] == sock
    seen = _server_side(dsn)
    assert seen["db"] == db and seen["unix_socket"] is True


def test_sslmode_and_other_extras_reach_the_session(new_db, monkeypatch):
    from psycopg.conninfo import conninfo_to_dict

    from bds_airflow.connections import get_dsn
    from tests.conftest import _server_params

    db = dbname_of(new_db())
    p = _server_params()
    base = {"conn_type": "postgres", "host": p.get("host"), "port": int(p.get("port", 5432)),
            "login": p.get("user", "postgres"), "schema": db}
    for mode in ("disable", "prefer"):
        extra = {"sslmode": mode, "application_name": f"bds-{mode}", "connect_timeout": 5}
        monkeypatch.setenv("AIRFLOW_CONN_BDS_SSL", json.dumps({**base, "extra": extra}))
        dsn = get_dsn("bds_ssl")
        assert conninfo_to_dict(dsn)["sslmode"] == mode
        seen = _server_side(dsn)
        # (a Unix-socket session never uses SSL, so `ssl` is false for both modes)
        assert seen["app"] == f"bds-{mode}" and seen["db"] == db and seen["ssl"] is False


def test_a_connection_from_the_metadata_db(new_db, monkeypatch):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from bds_airflow.connections import get_dsn
    from tests.conftest import _server_params

    db = dbname_of(new_db())
    p = _server_params()
    conn_id = f"bds_meta_{uuid.uuid4().hex[:8]}"
    monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)
    with create_session() as s:
        s.add(Connection(conn_id=conn_id, conn_type="postgres", host=p.get("host"),
                         port=int(p.get("port", 5432)), login=p.get("user", "postgres"),
                         schema=db, extra=json.dumps({"application_name": "bds-meta"})))
    try:
        seen = _server_side(get_dsn(conn_id))
        assert seen["db"] == db and seen["app"] == "bds-meta"
    finally:
        with create_session() as s:
            s.query(Connection).filter(Connection.conn_id == conn_id).delete()


def test_an_unknown_connection_and_a_bad_extra_are_named(monkeypatch):
    from bds_airflow.connections import conninfo_from_params, get_dsn
    from bds_metrics.config import ConfigError

    with pytest.raises(Exception, match="bds_nowhere"):
        get_dsn("bds_nowhere")
    with pytest.raises(ConfigError, match="'gim'.*sslmoed"):
        conninfo_from_params("gim", {"host": "h", "sslmoed": "require"})
    # Python-level driver options and unset fields are not libpq parameters.
    assert conninfo_from_params("gim", {"host": "h", "port": None, "autocommit": True,
                                        "cursor_factory": object()}) == "host=h"
