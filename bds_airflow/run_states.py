"""The latest DAG run of each billing day, from Airflow's metadata DB (SPEC §9 `bds
status`, §12): the Airflow half of a day's state (running, waiting for readiness, failed).

A run's billing day is its `data_interval_start` in the tenant's zone (SPEC §8); of the
runs of one day the one created last counts. A queued/running run is *waiting for
readiness* while one of its task instances is deferred or up for reschedule (the only
tasks that wait are the readiness waits).
"""

from __future__ import annotations

import datetime as dt

from bds_metrics.days import billing_day_of, local_midnight
from bds_metrics.status import RunInfo

WAIT_STATES = ("deferred", "up_for_reschedule")


def latest_runs(tenant_id: str, tz: str, first: dt.date, last: dt.date,
                session=None) -> dict[dt.date, RunInfo]:
    """billing day → its latest run, for DAG `bds_<tenant_id>` and days [first, last].

    Raises whatever SQLAlchemy raises when the metadata DB is unreachable.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    lo = dt.datetime.fromtimestamp(local_midnight(first, tz), dt.UTC)
    hi = dt.datetime.fromtimestamp(local_midnight(last + dt.timedelta(1), tz), dt.UTC)
    dag_id = f"bds_{tenant_id}"

    def query(s) -> dict[dt.date, RunInfo]:
        rows = s.execute(
            select(DagRun.id, DagRun.run_id, DagRun.state, DagRun.data_interval_start)
            .where(DagRun.dag_id == dag_id, DagRun.data_interval_start >= lo,
                   DagRun.data_interval_start < hi)
            .order_by(DagRun.id)).all()
        latest: dict[dt.date, tuple] = {}
        for r in rows:
            latest[billing_day_of(r.data_interval_start, tz)] = r  # id order: last wins
        active = [r.run_id for r in latest.values() if str(r.state) in ("queued", "running")]
        waiting = set()
        if active:
            waiting = set(s.scalars(
                select(TaskInstance.run_id).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(active),
                    TaskInstance.state.in_(WAIT_STATES))).all())
        return {d: RunInfo(r.run_id, _state(r.state), r.run_id in waiting)
                for d, r in latest.items()}

    if session is not None:
        return query(session)
    with create_session() as s:
        return query(s)


def _state(state) -> str:
    return str(getattr(state, "value", state))
