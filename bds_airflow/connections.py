"""Airflow connection id → libpq conninfo, built by apache-airflow-providers-postgres.

The provider's `PostgresHook` turns an Airflow connection into its driver's connection
parameters: host (a Unix-socket directory included, also from a URI's `?host=`), port,
login, password, schema, every extra it does not reserve for itself (`sslmode`,
`sslrootcert`, `options`, `connect_timeout`, `application_name`, ...), and a token
instead of the password for IAM authentication (`{"iam": true, ...}` for RDS/Redshift,
`azure_conn_id` for Azure). bds does not connect through the hook: its data path is
Arrow-native (ADBC, binary COPY) and takes a libpq conninfo, which is built here from
exactly the parameters the hook hands to its driver, so every connection option the
provider supports works unchanged. Credentials never live in the bds configuration.
"""

from __future__ import annotations

from typing import Any

from bds_metrics.config import ConfigError

# psycopg.connect keyword arguments that are Python-level, not libpq parameters (the
# hook's `cursor` extra becomes one of the first two).
_DRIVER_ONLY = {"cursor_factory", "row_factory", "autocommit", "prepare_threshold", "context"}


def conninfo_from_params(conn_id: str, params: dict[str, Any]) -> str:
    """A libpq conninfo string from the hook's driver parameters.

    None values are left out (libpq defaults apply); a parameter libpq does not know
    raises ConfigError naming the connection and the parameter (it could not connect
    through the hook either).
    """
    import psycopg
    from psycopg.conninfo import make_conninfo

    kw = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()
          if v is not None and v != "" and k not in _DRIVER_ONLY}
    try:
        return make_conninfo("", **kw)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"Airflow connection {conn_id!r}: {exc}") from exc


def _hook_class():
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    class ParamsHook(PostgresHook):
        """The provider's hook with its driver call replaced by returning the parameters
        it would pass (PostgresHook.get_conn builds them, IAM token included)."""

        def _create_connection(self, conn_args: dict[str, Any]) -> Any:
            return dict(conn_args)

    return ParamsHook


def get_dsn(conn_id: str) -> str:
    """Resolve through Airflow (env `AIRFLOW_CONN_<ID>`, secrets backends, metadata DB)
    and the postgres provider; returns a libpq conninfo (contains the password)."""
    hook_cls = _hook_class()
    try:
        params = hook_cls(postgres_conn_id=conn_id).get_conn()
    except Exception as exc:
        if _in_task():
            raise
        # Outside a task (the `bds` CLI) the Task SDK has no API server to ask: the core
        # lookup reads the same environment, secrets backends and metadata DB.
        from airflow.models.connection import Connection as CoreConnection

        try:
            conn = CoreConnection.get_connection_from_secrets(conn_id)
        except Exception:
            raise exc from None
        params = hook_cls(postgres_conn_id=conn_id, connection=conn).get_conn()
    return conninfo_from_params(conn_id, params)


async def aget_dsn(conn_id: str) -> str:
    """`get_dsn` for async code (the triggerer): the lookup goes through Airflow's
    async connection API, so the triggerer's event loop is never blocked on it; the
    postgres provider then builds the parameters from it, as in `get_dsn`."""
    from airflow.sdk import Connection

    conn = await Connection.async_get(conn_id)
    params = _hook_class()(postgres_conn_id=conn_id, connection=conn).get_conn()
    return conninfo_from_params(conn_id, params)


def _in_task() -> bool:
    try:
        from airflow.sdk.execution_time import task_runner

        return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None
    except ImportError:
        return False
