"""The benchmark's Info Mart: a PostgreSQL server, its databases, demo data at a scale.

The server is a private one (pgserver, PostgreSQL 16, under `.bds/bench/pg`) unless a
DSN names one. The demo generator fills one tenant (`acme`, the demo's, with regions,
business units and two GVP databases) with exactly `sessions` SM_RES_SESSION_FACT rows
per day, loaded with binary COPY into unindexed tables that are indexed afterwards
(the indexes of `bds_metrics/sql/gim/schema.sql`: the START_TS-like columns the datasets filter on,
INTERACTION_ID, CALL_ATTEMPT_ID and the primary keys). Then every table is ANALYZEd, as
in a live Info Mart (autovacuum never analyzes the three-row dimension tables).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 3, 3)  # the benchmarked billing day (a Tuesday in New York)
TENANT = "acme"
DATABASES = {  # Airflow conn id of the demo configuration -> benchmark database
    "bds_demo_gim": "bds_bench_gim",
    "bds_demo_gvp": "bds_bench_gvp",
    "bds_demo_gvp_eu": "bds_bench_gvp_eu",
}


@dataclass
class Server:
    """A PostgreSQL server reached through `admin_dsn` (kept alive by `handle`)."""

    admin_dsn: str
    private: bool
    handle: Any = field(default=None, repr=False)

    def dsn(self, dbname: str) -> str:
        return make_conninfo(self.admin_dsn, dbname=dbname)

    def query(self, sql: str, dbname: str | None = None) -> Any:
        dsn = self.dsn(dbname) if dbname else self.admin_dsn
        with psycopg.connect(dsn, autocommit=True) as c:
            row = c.execute(sql).fetchone()
            return row[0] if row else None


def start_server(root: Path, dsn: str | None) -> Server:
    if dsn:
        return Server(dsn, private=False)
    import pgserver

    handle = pgserver.get_server(root / "pg", cleanup_mode="stop")
    return Server(handle.get_uri(), private=True, handle=handle)


def start_server_at(pgdata: Path) -> Server:
    """A private server (pgserver) with its data in `pgdata`."""
    import pgserver

    handle = pgserver.get_server(pgdata, cleanup_mode="stop")
    return Server(handle.get_uri(), private=True, handle=handle)


def psql() -> str:
    """The psql client: the one bundled with pgserver (always installed), else PATH's."""
    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    found = str(bundled) if bundled.exists() else shutil.which("psql")
    if not found:
        raise RuntimeError("no psql client found")
    return found


def create_databases(server: Server) -> dict[str, str]:
    """Fresh, empty benchmark databases with the schemas; returns conn id -> DSN."""
    from bds_metrics.demo import generator

    drop_databases(server)
    with psycopg.connect(server.admin_dsn, autocommit=True) as c:
        for db in DATABASES.values():
            c.execute(f"CREATE DATABASE {db}")
    dsns = {conn: server.dsn(db) for conn, db in DATABASES.items()}
    generator.create_schemas(dsns["bds_demo_gim"], [dsns["bds_demo_gvp"], dsns["bds_demo_gvp_eu"]])
    return dsns


def drop_databases(server: Server) -> None:
    with psycopg.connect(server.admin_dsn, autocommit=True) as c:
        for db in DATABASES.values():
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


@dataclass
class Generated:
    seconds: float  # generation and load (COPY, indexes, the generator's ANALYZE)
    analyze_seconds: float  # the benchmark's ANALYZE of every table
    rows: dict[str, int]  # rows inserted per table
    megabytes: float  # size of the three databases


def generate(dsns: dict[str, str], sessions: int) -> Generated:
    """One billing day (plus the generator's margin day and the next morning) of `acme`."""
    from bds_metrics.demo import generator

    t0 = time.perf_counter()
    rows = generator.generate(
        dsns["bds_demo_gim"],
        {"bds_demo_gvp": dsns["bds_demo_gvp"], "bds_demo_gvp_eu": dsns["bds_demo_gvp_eu"]},
        DAY, 1, sessions_per_day=sessions, tenants=(TENANT,),
    )
    t1 = time.perf_counter()
    size = 0
    for dsn in dsns.values():
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("ANALYZE")
            row = c.execute("SELECT pg_database_size(current_database())").fetchone()
            size += row[0] if row else 0
    return Generated(t1 - t0, time.perf_counter() - t1, rows, size / 2**20)


def _demo_config() -> dict[str, Any]:
    text = (files("bds_metrics.demo") / "demo.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def write_config(work: Path, tenants: int = 0) -> Path:
    """The demo's `acme` alone (tenants=0), or `tenants` copies of it (DAG parsing)."""
    cfg = _demo_config()
    acme = next(t for t in cfg["tenants"] if t["id"] == TENANT)
    if tenants:
        copies = []
        for i in range(tenants):
            tid = f"t{i:05d}"
            units = [dict(b, id=f"{tid}_BU_{k}") for k, b in
                     enumerate(acme["business_units"], start=1)]
            copies.append(dict(acme, id=tid, name=f"Tenant {i}", business_units=units))
        cfg["tenants"] = copies
    else:
        cfg["tenants"] = [acme]
    cfg["defaults"].update(output_root=str(work / "out"), staging_root=str(work / "staging"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / (f"bds_{tenants}_tenants.yaml" if tenants else "bds.yaml")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def airflow_connections(dsns: dict[str, str]) -> dict[str, str]:
    """`AIRFLOW_CONN_<ID>` environment values for the benchmark databases."""
    env = {}
    for conn_id, dsn in dsns.items():
        p = conninfo_to_dict(dsn)
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({
            "conn_type": "postgres", "host": p.get("host", "127.0.0.1"),
            "port": int(p.get("port") or 5432), "login": p.get("user", "postgres"),
            "password": p.get("password") or None, "schema": p["dbname"],
        })
    return env
