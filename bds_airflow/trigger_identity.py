"""Manual triggers of bds DAGs name a billing day (SPEC §8 "One billing day, one run").

Airflow stores a manual run's logical date exactly as the trigger gave it (the UI's
trigger form defaults to "now"), while a bds run's logical date must be the first
instant of its billing day, so that the day has one run whatever starts it (a later
backfill or `bds run` finds it by logical date). This ASGI middleware, installed on
the API server by the project's plugin, rewrites `POST /api/v2/dags/<bds DAG>/dagRuns`
before Airflow reads it:

- `logical_date` becomes the first instant of the billing day it names
  (`BillingDayTimetable.day_of`: a plain date is that date, any other instant the
  tenant-local day containing it);
- a trigger without a logical date, of a day before the production date, or with an
  explicit data interval other than that day, is refused with 400 and one sentence
  saying what to send; a trigger of a day that already has a run gets 409 naming that
  run and how to bill the day again.

Only DAGs whose timetable is the billing-day timetable are touched; every other request
passes through unchanged. Authentication and authorisation stay Airflow's: the request
goes on to Airflow's own endpoint (a refused request never reaches it, so it never
creates anything).
"""

from __future__ import annotations

import json
import re
from typing import Any

_TRIGGER = re.compile(r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")


class BillingDayTriggerMiddleware:
    """Pure ASGI middleware (no Starlette import at plugin load)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        m = _TRIGGER.search(scope.get("path", ""))
        if not m or not m["dag_id"].startswith("bds_"):
            return await self.app(scope, receive, send)
        if not _has_credentials(scope):
            return await self.app(scope, receive, send)  # Airflow answers 401
        body = await _read_body(receive)
        from anyio import to_thread

        try:
            new_body = await to_thread.run_sync(rewrite_trigger, m["dag_id"], body)
        except TriggerRefused as exc:
            return await _reply(send, exc.status, {"detail": str(exc)})
        if new_body is None:
            new_body = body
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(new_body)).encode()))
        scope = {**scope, "headers": headers}
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": new_body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


class TriggerRefused(ValueError):
    """A manual trigger of a bds DAG that names no single billing day."""

    status = 400


class TriggerConflict(TriggerRefused):
    """A manual trigger of a billing day that already has a run (Airflow's own answer is
    a 409 "Unique constraint violation" with a traceback in the API server's log)."""

    status = 409


def rewrite_trigger(dag_id: str, body: bytes) -> bytes | None:
    """The trigger body with its logical date set to its billing day's first instant;
    None to leave the request alone (not a bds timetable, or a body Airflow will reject
    anyway). Raises TriggerRefused (one line for the operator)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    timetable = _timetable_of(dag_id)
    if timetable is None:
        return None
    raw = data.get("logical_date")
    if raw is None:
        raise TriggerRefused(
            f"{dag_id} bills one billing day per run: give the day as the logical date "
            f"(a date such as 2026-03-05; days are local to {timetable.timezone})")
    instant = _aware(raw)
    if instant is None:
        return None  # Airflow's own validation answers
    day = timetable.day_of(instant)
    if timetable.first_day is not None and day < timetable.first_day:
        raise TriggerRefused(
            f"{dag_id}: billing day {day} is before the tenant's production date "
            f"{timetable.first_day}: there is nothing to bill")
    interval = timetable.interval(day)
    given = (data.get("data_interval_start"), data.get("data_interval_end"))
    if any(v is not None for v in given):
        start, end = (_aware(v) for v in given)
        if start != interval.start or end != interval.end:
            raise TriggerRefused(
                f"{dag_id}: the data interval of billing day {day} is "
                f"{interval.start.isoformat()} .. {interval.end.isoformat()}; leave "
                "data_interval_start/end out and give the day as the logical date")
    existing = _run_of(dag_id, interval.start)
    if existing is not None:
        run_id, state = existing
        tenant = dag_id.removeprefix("bds_")
        raise TriggerConflict(
            f"{dag_id}: billing day {day} already has run {run_id} ({state}); to bill "
            f"it again clear that run in the UI, or run `bds run -t {tenant} --from {day}`")
    data["logical_date"] = interval.start.isoformat()
    return json.dumps(data).encode()


def _run_of(dag_id: str, logical_date) -> tuple[str, str] | None:
    """(run id, state) of the DAG's run with this logical date, if any."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(select(DagRun.run_id, DagRun.state).where(
            DagRun.dag_id == dag_id, DagRun.logical_date == logical_date)).first()
    return None if row is None else (str(row[0]), str(row[1]))


def _aware(raw: Any):
    import datetime as dt

    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    if len(raw) == 10:  # a bare date: the plain-date rule reads it as that UTC midnight
        try:
            d = dt.date.fromisoformat(raw)
        except ValueError:
            return None
        return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _timetable_of(dag_id: str):
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    from .timetable import BillingDayTimetable

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
    if dag is None or not isinstance(dag.timetable, BillingDayTimetable):
        return None
    return dag.timetable


def _has_credentials(scope: dict) -> bool:
    headers = dict(scope.get("headers", []))
    return b"authorization" in headers or b"_token" in headers.get(b"cookie", b"")


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _reply(send: Any, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
