"""Test resources, started only when the selected tests need them.

Two tiers. A test that uses neither the `pg` nor the `airflow_db` fixture (directly,
through another fixture such as `new_db`, or by `pytest.mark.usefixtures`) is marked
`pure` at collection: `make test-fast` (`pytest -m pure`) runs those without starting
PostgreSQL or importing Airflow (a test that starts Airflow in a subprocess without
needing either is marked `airflow` to stay out of it). `make test` runs both tiers.

One real PostgreSQL and one migrated Airflow metadata DB per run, shared by every xdist
worker: the controller only makes a run directory (BDS_TEST_RUN_DIR, inherited by the
workers). The first process whose test needs the server starts a private PostgreSQL
(`pgserver`, which shares one server between processes and stops it with the last
handle) unless BDS_TEST_PG_DSN names a server; the first that needs Airflow creates and
migrates the metadata DB under a file lock, and the others find it ready. Nothing here
mocks a database or Airflow.
"""

from __future__ import annotations

import contextlib
import fcntl
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
_STATE: dict[str, object] = {}  # this process's pgserver handle, if it took one
NEEDS_SERVICES = ("pg", "airflow_db")


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
    """Cheap: a run directory and the Airflow settings that need no server (no import)."""
    if not _is_worker(config):
        run = Path(tempfile.mkdtemp(prefix="bds-test-"))
        os.environ["BDS_TEST_RUN_DIR"] = str(run)
        os.environ["BDS_TEST_AIRFLOW_DB"] = f"bdst_airflow_{os.getpid()}"
        config._bds_run = run  # type: ignore[attr-defined]
        os.environ["BDS_TEST_PG_EXTERNAL"] = "1" if os.environ.get("BDS_TEST_PG_DSN") else ""
    run = Path(os.environ["BDS_TEST_RUN_DIR"])
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ["AIRFLOW_HOME"] = str(run / "airflow")
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "bds_airflow" / "dags")
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not (set(NEEDS_SERVICES) & set(getattr(item, "fixturenames", ()))
                or item.get_closest_marker("airflow")):
            item.add_marker(pytest.mark.pure)


@contextlib.contextmanager
def _run_lock(name: str) -> Iterator[Path]:
    run = Path(os.environ["BDS_TEST_RUN_DIR"])
    with open(run / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield run
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def pg() -> str:
    """The run's PostgreSQL (started by the first process that needs it): its libpq URI."""
    if "pg" not in _STATE and not os.environ.get("BDS_TEST_PG_EXTERNAL"):
        with _run_lock("pg") as run:
            import pgserver

            server = pgserver.get_server(run / "pg", cleanup_mode="stop")
            _STATE["pg"] = server
            os.environ["BDS_TEST_PG_DSN"] = server.get_uri()
    return os.environ["BDS_TEST_PG_DSN"]


@pytest.fixture(scope="session")
def airflow_db(pg: str) -> str:
    """The run's Airflow metadata DB on the test server, migrated once for all workers."""
    name = os.environ["BDS_TEST_AIRFLOW_DB"]
    p = _server_params()
    url = (f"postgresql+psycopg2://{p.get('user', 'postgres')}"
           f"{':' + p['password'] if p.get('password') else ''}@/{name}"
           f"?host={p.get('host', '127.0.0.1')}&port={p.get('port', 5432)}")
    if "airflow.settings" in sys.modules and os.environ.get(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") != url:
        raise RuntimeError("Airflow was imported before the airflow_db fixture set it up: "
                           "give the importing test the airflow_db fixture")
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
    with _run_lock("airflow") as run:
        ready = run / "airflow.ready"
        if not ready.exists():
            admin(f"DROP DATABASE IF EXISTS {name}")
            admin(f"CREATE DATABASE {name}")
            from bds_airflow import airflow_env

            airflow_env.ensure_migrated()
            ready.write_text(os.environ["BDS_TEST_PG_DSN"])
    return url


def pytest_unconfigure(config: pytest.Config) -> None:
    if "airflow.settings" in sys.modules:  # close pooled connections before the server goes
        try:
            sys.modules["airflow.settings"].dispose_orm()
        except Exception:
            pass
    run = getattr(config, "_bds_run", None)
    if run and (run / "airflow.ready").exists() and os.environ.get("BDS_TEST_PG_EXTERNAL"):
        with contextlib.suppress(Exception):  # a server of the caller's: leave it clean
            admin(f"DROP DATABASE IF EXISTS {os.environ['BDS_TEST_AIRFLOW_DB']} WITH (FORCE)")
    server = _STATE.pop("pg", None)
    if server is not None:  # the last handle of the run stops the server
        server.cleanup()  # type: ignore[attr-defined]
    if run:
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture
def new_db(pg: str) -> Iterator:
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
