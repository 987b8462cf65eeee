"""`bds_billing_days`: no billing day is ever left without a run (SPEC §8).

Airflow's scheduler creates a tenant's next scheduled run after its *latest* scheduled
or backfill run (airflow/dag_processing/collection.py `_get_latest_runs_stmt`, and the
scheduler's `calculate_dagrun_date_fields`): a backfill created ahead of the catch-up
moves the next run past the days in between, and they never get a run. This small
maintenance DAG closes such gaps, whatever order catch-up, backfills and manual runs
happened in: every hour it looks, for every tenant whose DAG is not paused, at each
billing day from `production_date` to the last day whose scheduled run is due (the
day's end + `settle_hours` + `GRACE_HOURS`, so it never races the scheduler), and
creates the run of each day that has none, with Airflow's own TriggerDagRunOperator
(logical date = the day's first instant in the tenant's zone, so the run bills that
day). It never touches a run that exists, whatever its state: a failed day is an alert,
not a gap.

Cheap: one run-count request per tenant through the Task SDK (`get_dr_count`), more
only for a tenant with gaps (bisection); nothing heavy is imported.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bds_metrics.config import TenantConfig

DAG_ID = "bds_billing_days"
GRACE_HOURS = 1.0
SCHEDULE = "23 * * * *"  # hourly, off the hour


def due_days(t: TenantConfig, now: dt.datetime, grace_hours: float = GRACE_HOURS
             ) -> list[dt.date]:
    """Billing days of tenant `t` from its production date whose scheduled run is due
    by `now` (aware): the day ended `settle_hours` + `grace_hours` ago or more."""
    from bds_metrics.days import billing_day, billing_day_of, date_range

    settle = t.settle_hours if t.wait_for_settle else 0.0
    cutoff = now.timestamp() - (settle + grace_hours) * 3600
    last = billing_day_of(now, t.timezone)
    while last >= t.production_date and billing_day(last, t.timezone).end > cutoff:
        last -= dt.timedelta(days=1)
    return date_range(t.production_date, last) if last >= t.production_date else []


def missing_days(days: list[dt.date], count_runs) -> list[dt.date]:
    """The days of `days` that have no run; `count_runs(days) -> int` counts the runs
    among a list of days (one request). Bisection: one call when nothing is missing,
    about 2·k·log2(n) calls for k missing days."""
    if not days:
        return []
    have = count_runs(days)
    if have >= len(days):
        return []
    if have == 0:
        return list(days)
    half = len(days) // 2
    return missing_days(days[:half], count_runs) + missing_days(days[half:], count_runs)


def find_missing_runs(config_file: str | None = None) -> list[dict[str, Any]]:
    """The TriggerDagRunOperator arguments of every missing tenant-day (a task)."""
    import logging

    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    from bds_metrics.config import load_config

    from .timetable import day_start_of

    log = logging.getLogger(__name__)
    now = dt.datetime.now(dt.UTC)
    out: list[dict[str, Any]] = []
    for t in load_config(config_file).tenants:
        dag_id = f"bds_{t.id}"
        try:
            if RuntimeTaskInstance.get_dag(dag_id).is_paused:
                log.info("%s is paused: not looked at", dag_id)
                continue
        except Exception as exc:  # not parsed yet (a new tenant): next hour
            log.warning("%s: not in Airflow yet (%s)", dag_id, str(exc).splitlines()[0])
            continue

        def count(days: list[dt.date], dag_id: str = dag_id, t: TenantConfig = t) -> int:
            return RuntimeTaskInstance.get_dr_count(
                dag_id, logical_dates=[day_start_of(d, t.timezone) for d in days])

        days = due_days(t, now)
        gaps = missing_days(days, count)
        log.info("%s: %d billing day(s) due from %s, %d without a run%s", dag_id, len(days),
                 t.production_date, len(gaps),
                 (": " + ", ".join(d.isoformat() for d in gaps)) if gaps else "")
        for d in gaps:
            start = day_start_of(d, t.timezone)
            out.append({
                "trigger_dag_id": dag_id,
                "logical_date": start.isoformat(),
                # Airflow infers an operator-triggered run's data interval from its
                # run_after (now, when not given), not from its logical date: the day's
                # first instant here, so the run bills day d (and may start at once).
                "run_after": start.isoformat(),
                "trigger_run_id": f"manual__{d.isoformat()}_{t.timezone.replace('/', '.')}"
                                  f"__gap-{now.strftime('%Y%m%dT%H%M%SZ')}",
                "note": f"created by {DAG_ID}: billing day {d} had no run",
            })
    return out


def billing_days_dag() -> Any:
    """The maintenance DAG (see the module docstring); parse-time cheap."""
    import pendulum
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sdk import DAG
    from airflow.timetables.trigger import CronTriggerTimetable

    with DAG(
        dag_id=DAG_ID,
        description="Creates the run of every billing day that has none (bds)",
        schedule=CronTriggerTimetable(SCHEDULE, timezone="UTC"),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["bds", "billing", "maintenance"],
        default_args={"owner": "billing", "retries": 1},
        doc_md=__doc__,
    ) as dag:
        find = PythonOperator(task_id="find_days_without_run", python_callable=find_missing_runs)
        TriggerDagRunOperator.partial(
            task_id="create_run", skip_when_already_exists=True,
            wait_for_completion=False, map_index_template="{{ task.trigger_dag_id }} "
            "{{ task.logical_date }}",
        ).expand_kwargs(find.output)
    return dag
