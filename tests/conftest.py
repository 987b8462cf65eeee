"""One real PostgreSQL and one Airflow metadata DB per test run, shared by all workers.

The controller process (or the only process without xdist) starts a private PostgreSQL
(`pgserver`) unless BDS_TEST_PG_DSN names a server, creates and migrates the Airflow
metadata database on it, and exports the settings through the environment, which the
xdist workers inherit. Nothing here mocks a database or Airflow.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _server_params() -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    return {k: str(v) for k, v in conninfo_to_dict(os.environ["BDS_TEST_PG_DSN"]).items()}


def dsn(dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo("", **{**_server_params(), "dbname": dbname})


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(dsn(_server_params().get("dbname", "postgres")), autocommit=True) as c:
        c.execute(sql)


def airflow_conn_json(dbname: str) -> str:
    """An AIRFLOW_CONN_<ID> value for a database of the test server (socket dirs work)."""
    p = _server_params()
    return json.dumps({
        "conn_type": "postgres", "host": p.get("host", "127.0.0.1"),
        "port": int(p.get("port", 5432)), "login": p.get("user", "postgres"),
        "password": p.get("password") or None, "schema": dbname,
    })


def pytest_configure(config: pytest.Config) -> None:
    if _is_worker(config):
        return
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    tmp = Path(tempfile.mkdtemp(prefix="bds-test-"))
    config._bds_tmp = tmp  # type: ignore[attr-defined]
    if not os.environ.get("BDS_TEST_PG_DSN"):
        import pgserver

        server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
        config._bds_pg = server  # type: ignore[attr-defined]
        os.environ["BDS_TEST_PG_DSN"] = server.get_uri()
    _airflow_metadata(tmp)


def _airflow_metadata(tmp: Path) -> None:
    """A fresh Airflow home and metadata DB for this run, migrated once."""
    name = f"bdst_airflow_{os.getpid()}"
    admin(f"DROP DATABASE IF EXISTS {name}")
    admin(f"CREATE DATABASE {name}")
    p = _server_params()
    host = p.get("host", "127.0.0.1")
    url = (f"postgresql+psycopg2://{p.get('user', 'postgres')}"
           f"{':' + p['password'] if p.get('password') else ''}@/{name}"
           f"?host={host}&port={p.get('port', 5432)}")
    os.environ["AIRFLOW_HOME"] = str(tmp / "airflow")
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "bds_airflow" / "dags")
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    os.environ["BDS_TEST_AIRFLOW_DB"] = name
    from bds_airflow import airflow_env

    airflow_env.ensure_migrated()


def pytest_unconfigure(config: pytest.Config) -> None:
    if "airflow.settings" in sys.modules:  # close pooled connections before the server goes
        try:
            sys.modules["airflow.settings"].dispose_orm()
        except Exception:
            pass
    if _is_worker(config):
        return
    name = os.environ.get("BDS_TEST_AIRFLOW_DB")
    if name:
        try:
            admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except Exception:  # the server may already be gone
            pass
    tmp = getattr(config, "_bds_tmp", None)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def new_db() -> Iterator:
    """Factory: a fresh empty database on the test server; returns its DSN."""
    made: list[str] = []

    def make(schema: str | None = None) -> str:
        name = f"bdst_{os.getpid()}_{next(_counter)}"
        admin(f"CREATE DATABASE {name}")
        made.append(name)
        d = dsn(name)
        if schema:
            import psycopg

            with psycopg.connect(d, autocommit=True) as c:
                c.execute((REPO / "bds_metrics" / "sql" / schema / "schema.sql").read_text())
        make.names = made  # type: ignore[attr-defined]
        return d

    yield make
    for name in made:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def dbname_of(d: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(d)["dbname"])
