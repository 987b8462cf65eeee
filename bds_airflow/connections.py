"""Airflow connection id → libpq DSN (credentials never live in the bds config)."""

from __future__ import annotations

from typing import Any

# libpq keywords an Airflow connection's `extra` may carry through.
_LIBPQ_EXTRA = {
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "connect_timeout",
    "application_name", "options", "target_session_attrs", "keepalives",
    "keepalives_idle", "keepalives_interval", "keepalives_count",
}


def dsn_from_fields(
    host: str | None, port: int | None, login: str | None, password: str | None,
    schema: str | None, extra: dict[str, Any] | None,
) -> str:
    from psycopg.conninfo import make_conninfo

    kw: dict[str, Any] = {}
    if host:
        kw["host"] = host
    if port:
        kw["port"] = port
    if login:
        kw["user"] = login
    if password:
        kw["password"] = password
    if schema:
        kw["dbname"] = schema
    for k, v in (extra or {}).items():
        if k in _LIBPQ_EXTRA and v is not None:
            kw[k] = v
    return make_conninfo("", **kw)


def get_dsn(conn_id: str) -> str:
    """Resolve through Airflow: env `AIRFLOW_CONN_<ID>`, secrets backends, metadata DB."""
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception:  # outside a task (CLI): the core lookup
        from airflow.models.connection import Connection as CoreConnection

        conn = CoreConnection.get_connection_from_secrets(conn_id)
    return dsn_from_fields(conn.host, conn.port, conn.login, conn.password, conn.schema,
                           conn.extra_dejson)


async def aget_dsn(conn_id: str) -> str:
    """`get_dsn` for async code (the triggerer): the lookup goes through Airflow's
    async connection API, so the triggerer's event loop is never blocked on it."""
    from airflow.sdk import Connection

    conn = await Connection.async_get(conn_id)
    return dsn_from_fields(conn.host, conn.port, conn.login, conn.password, conn.schema,
                           conn.extra_dejson)
