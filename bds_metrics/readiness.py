"""Is a billing day's data in? (SPEC §8 Readiness.) No Airflow import: the triggerer's
trigger (bds_airflow.readiness) and `bds run` share these rules.

`watermark` (the default): the Info Mart ETL's high-water mark — `max(MAX_CHUNK_TS)` of
`CTL_AUDIT_LOG`, read through `sql/readiness/watermark.sql` or the tenant's
`readiness_sql` — must be at or past the day's end, and the clock past the day's end
plus `settle_hours`. `clock`: the clock alone. A tenant's GVP sources have no mark: they
follow the clock. A day still unready `publish_deadline_hours` after its end is late: an
alert, never a bill.

All instants are epoch seconds UTC.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from .config import TenantConfig
from .days import billing_day, iso_utc

DEFAULT_SQL = files("bds_metrics") / "sql" / "readiness" / "watermark.sql"  # package data
BIND_NAMES = ("day_start", "day_end", "tenant_key")


class ReadinessError(RuntimeError):
    """The mark could not be read (connection, SQL, timeout)."""


@dataclass(frozen=True)
class Verdict:
    """One look at a day: `ready`, or why not (`reason`, one line for operators)."""

    ready: bool
    late: bool  # past the publish deadline and still not ready
    mark: int | None  # the ETL mark seen (None: clock mode or nothing committed)
    day_end: int
    ready_at: int  # when the clock part is met
    deadline: int
    reason: str

    def manifest_facts(self, forced: bool) -> dict[str, object]:
        """What a day's manifest records about readiness (`--force` included)."""
        out: dict[str, object] = {"mark": self.mark, "mark_utc": _iso(self.mark),
                                  "day_end_utc": iso_utc(self.day_end)}
        if forced:
            out["forced"] = True
        return out


def _iso(ts: int | None) -> str | None:
    return None if ts is None else iso_utc(ts)


def sql_of(t: TenantConfig) -> tuple[str, tuple[str, ...]]:
    """The mark query of the tenant and its bind parameter names (in `$n` order).
    Raises ValueError for a `-- params:` name outside BIND_NAMES."""
    path = Path(t.readiness_sql) if t.readiness_sql else DEFAULT_SQL
    text = path.read_text(encoding="utf-8")
    m = re.search(r"^--\s*params:(.*)$", text, flags=re.MULTILINE)
    names = tuple(p.strip() for p in m.group(1).split(",") if p.strip()) if m else ()
    bad = [n for n in names if n not in BIND_NAMES]
    if bad:
        raise ValueError(f"tenant {t.id!r}: {path}: unknown bind parameter(s) {bad}; "
                         f"known: {list(BIND_NAMES)}")
    return text, names


def bind_values(t: TenantConfig, day: dt.date) -> dict[str, int | None]:
    p = billing_day(day, t.timezone)
    return {"day_start": p.start, "day_end": p.end, "tenant_key": t.tenant_key}


def uses_mark(t: TenantConfig) -> bool:
    return t.readiness == "watermark"


def judge(t: TenantConfig, day: dt.date, mark: int | None, now: float) -> Verdict:
    """The readiness of `day` given the mark read (ignored in clock mode) at `now`."""
    p = billing_day(day, t.timezone)
    ready_at = p.end + int(t.settle_hours * 3600)
    deadline = p.end + int(t.publish_deadline_hours * 3600)
    clock_ok = now >= ready_at
    mark_ok = not uses_mark(t) or (mark is not None and mark >= p.end)
    ready = clock_ok and mark_ok
    where = f"tenant {t.id!r}, day {day.isoformat()}"
    if ready:
        reason = f"{where}: ready"
    elif not mark_ok:
        seen = "no mark (CTL_AUDIT_LOG is empty)" if mark is None else \
            f"the ETL mark is {iso_utc(mark)}"
        reason = (f"{where}: not ready: {seen}, the day ends {iso_utc(p.end)} "
                  f"({_zone_end(p.end, t.timezone)})")
    else:
        reason = (f"{where}: not ready: settling until {iso_utc(ready_at)} "
                  f"(day end {iso_utc(p.end)} + settle_hours {t.settle_hours:g})")
    late = not ready and now >= deadline
    if late:
        reason += (f"; past the deadline {iso_utc(deadline)} (publish_deadline_hours "
                   f"{t.publish_deadline_hours:g}): not billed")
    return Verdict(ready, late, mark if uses_mark(t) else None, p.end, ready_at, deadline,
                   reason)


def _zone_end(ts: int, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def asyncpg_kwargs(dsn: str, statement_timeout_seconds: int) -> dict[str, object]:
    """asyncpg.connect() keywords for a libpq DSN (key=value or URI), with the
    statement timeout set for the session (SPEC §8 Protecting the sources)."""
    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(dsn)
    kw: dict[str, object] = {
        "server_settings": {"statement_timeout": str(statement_timeout_seconds * 1000),
                            "application_name": "bds-readiness"},
        "timeout": float(d.get("connect_timeout") or 30),
    }
    for src, dst in (("host", "host"), ("port", "port"), ("user", "user"),
                     ("password", "password"), ("dbname", "database"), ("sslmode", "ssl")):
        if d.get(src) not in (None, ""):
            kw[dst] = int(d[src]) if dst == "port" else d[src]
    return kw


async def read_mark(t: TenantConfig, day: dt.date, dsn: str) -> int | None:
    """`max(MAX_CHUNK_TS)` through the tenant's mark SQL; raises ReadinessError naming the
    tenant, the connection's SQL file and the first line of the database's error."""
    import asyncpg

    sql, names = sql_of(t)
    values = bind_values(t, day)
    try:
        conn = await asyncpg.connect(**asyncpg_kwargs(dsn, t.statement_timeout_seconds))
        try:
            row = await conn.fetchrow(sql, *(values[n] for n in names))
        finally:
            await conn.close()
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ReadinessError(f"tenant {t.id!r}: reading the ETL mark ({t.gimdb_conn_id}, "
                             f"{t.readiness_sql or DEFAULT_SQL.name}): {first}") from exc
    return None if row is None or row[0] is None else int(row[0])


def check_once(t: TenantConfig, day: dt.date, dsn_for) -> Verdict:
    """One synchronous look (`bds run`): reads the mark only in watermark mode.
    `dsn_for(conn_id) -> str`."""
    import time

    mark = asyncio.run(read_mark(t, day, dsn_for(t.gimdb_conn_id))) if uses_mark(t) else None
    return judge(t, day, mark, time.time())
