"""`bds run`: billing days through the tenant's real DAG, in this process (`dag.test`)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from bds_metrics.config import ConfigError, TenantConfig
from bds_metrics.days import date_range

from . import airflow_env


class RangeError(ConfigError):
    """A range of days `bds run` refuses (a command-line mistake: `bds` exits 2)."""


def check_range(t: TenantConfig, first: dt.date, last: dt.date) -> list[dt.date]:
    if last < first:
        raise RangeError(f"tenant {t.id!r}: --to {last} is before --from {first}")
    if first < t.production_date:
        raise RangeError(
            f"tenant {t.id!r}: {first} is before the production date {t.production_date} "
            f"({t.source}, key production_date)"
        )
    today = dt.datetime.now(ZoneInfo(t.timezone)).date()
    if last >= today:
        raise RangeError(
            f"tenant {t.id!r}: {last} has not ended yet in {t.timezone} (today is {today})"
        )
    return date_range(first, last)


def load_dag(t: TenantConfig):  # -> airflow DAG
    """The tenant's DAG, parsed as a worker would: its own DAG file, its DAG alone."""
    from airflow.dag_processing.dagbag import DagBag

    folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    dag_id = f"bds_{t.id}"
    before = os.environ.get(PARSING_DAG_ID)
    os.environ[PARSING_DAG_ID] = dag_id  # Airflow's parsing context: build this DAG only
    try:
        bag = DagBag(dag_folder=dag_file_of(t, folder))
    finally:
        if before is None:
            os.environ.pop(PARSING_DAG_ID, None)
        else:
            os.environ[PARSING_DAG_ID] = before
    dag = bag.get_dag(dag_id)
    if dag is None:
        errors = "; ".join(f"{k}: {v}" for k, v in bag.import_errors.items())
        raise ConfigError(f"DAG {dag_id} not found in {bag.dag_folder}. {errors}".strip())
    return dag


PARSING_DAG_ID = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"


def dag_file_of(t: TenantConfig, folder: str) -> str:
    """The bds DAG file that builds the tenant's DAG (else the whole folder)."""
    from .dag_factory import file_part, tenant_part

    for f in sorted(Path(folder).glob("bds_tenants_*_of_*.py")):
        k, n = file_part(str(f))
        if tenant_part(t.id, n) == k:
            return str(f)
    return folder


def run_after(t: TenantConfig, day: dt.date):
    """The instant whose last complete daily interval is `day` (what dag.test runs)."""
    import pendulum

    nxt = day + dt.timedelta(days=1)
    return pendulum.datetime(nxt.year, nxt.month, nxt.day, tz=t.timezone)


def run_days(
    t: TenantConfig, first: dt.date, last: dt.date, *, reextract_config: bool = False,
    verbose: bool = False, echo=print,
) -> int:
    days = check_range(t, first, last)
    os.environ["BDS_CONFIG"] = t.source
    airflow_env.configure(quiet=not verbose)
    airflow_env.ensure_migrated()
    dag = load_dag(t)
    from airflow import settings

    from bds_metrics.days import billing_day
    from bds_metrics.emission import period_folder

    failed = 0
    for day in days:
        _forget_run(dag.dag_id, run_after(t, day))
        dr = dag.test(
            logical_date=run_after(t, day),
            run_conf={"wait_for_settle": False, "reextract_config": reextract_config},
        )
        state = str(getattr(dr, "state", "unknown"))
        ok = state.endswith("success")
        failed += not ok
        where = period_folder(t, billing_day(day, t.timezone)) if ok else _failures(dr.run_id)
        settings.Session.remove()
        echo(f"{t.id} {day.isoformat()} {'ok    ' if ok else 'FAILED'} {where}")
    return 1 if failed else 0


def _forget_run(dag_id: str, logical_date) -> None:
    """Delete an earlier run of the same day before dag.test makes a new one.

    dag.test deletes it itself, but in a session where it has already loaded that run's
    task instances, whose relationship then flushes the deleted run back (a duplicate
    key on (dag_id, logical_date)). Deleting it first, in a session of its own, avoids it.
    """
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    settings.Session.remove()
    with create_session() as s:
        for dr in s.scalars(select(DagRun).where(DagRun.dag_id == dag_id,
                                                 DagRun.logical_date == logical_date)):
            s.delete(dr)
    settings.Session.remove()


def _failures(run_id: str) -> str:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        bad = sorted(
            ti.task_id for ti in s.query(TaskInstance).filter(TaskInstance.run_id == run_id)
            if str(ti.state).endswith(("failed", "upstream_failed"))
        )
    return "failed tasks: " + ", ".join(bad)
