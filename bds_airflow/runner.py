"""`bds run`: billing days through the tenant's real DAG, in this process (`dag.test`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from bds_metrics.config import ConfigError, TenantConfig
from bds_metrics.days import date_range

from . import airflow_env

log = logging.getLogger(__name__)


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


class DayRefused(RuntimeError):
    """`bds run` will not start this billing day (one line for the operator)."""


def run_days(
    t: TenantConfig, first: dt.date, last: dt.date, *, reextract_config: bool = False,
    verbose: bool = False, echo=print, force: bool = False,
) -> int:
    """Bill each day of `first..last` through the tenant's real DAG in this process.

    Shares the run identity of the scheduler (SPEC §8, §9): the run of billing day D is
    the one whose logical date is D's first instant in the tenant's zone. An existing
    run of D is cleared and run again in place (its run id, type and history kept); no
    run of another day is touched. A day already running (here, in another `bds run`,
    or under the scheduler) is refused in one line. After each run, the day it billed
    is checked against the day asked for. Returns the exit code (0: every day billed).
    """
    days = check_range(t, first, last)
    os.environ["BDS_CONFIG"] = t.source
    airflow_env.configure(quiet=not verbose)
    airflow_env.ensure_migrated()
    from .steps import resolve_dsn

    for conn_id in t.conn_ids():  # a missing connection: one line now, not N failed tasks
        resolve_dsn(t, conn_id)
    dag = load_dag(t)
    from airflow import settings

    from bds_metrics.days import billing_day
    from bds_metrics.layout import period_folder

    from .assets import ensure_models
    from .pools import ensure
    from .readiness import gate

    ensure([t])
    scheduler_dag = _sync_dag(dag)
    ensure_models([t])  # after the DAG's sync: its aliases' rows exist
    conf = {"wait_for_settle": False, "reextract_config": reextract_config}
    failed = 0
    for day in days:
        refused, ready_conf = gate(t, day, force)  # SPEC §8 Readiness, checked once
        if refused:
            failed += 1
            echo(refused)
            continue
        if ready_conf:
            echo(f"{t.id} {day.isoformat()} FORCED: billing an unready day "
                 f"(mark {ready_conf['readiness'].get('mark_utc')})")
        try:
            with _day_lock(t, day):
                dr = _run_day(dag, scheduler_dag, t, day, {**conf, **ready_conf}, echo)
        except DayRefused as exc:
            failed += 1
            echo(f"{t.id} {day.isoformat()} REFUSED {exc}")
            continue
        finally:
            settings.Session.remove()
        state = str(dr.state)
        ok = state.endswith("success")
        billed = _billed_day(t, dr)
        if ok and billed != day:
            failed += 1
            echo(f"{t.id} {day.isoformat()} WRONG  run {dr.run_id} billed {billed}, "
                 f"not {day} (files of {billed} left as written)")
            continue
        failed += not ok
        where = period_folder(t, billing_day(day, t.timezone)) if ok else _failures(dr.run_id)
        echo(f"{t.id} {day.isoformat()} {'ok    ' if ok else 'FAILED'} {where}")
    return 1 if failed else 0


def _billed_day(t: TenantConfig, dr) -> dt.date | None:
    from bds_metrics.days import billing_day_of

    start = dr.data_interval_start
    return billing_day_of(start, t.timezone) if start is not None else None


def _sync_dag(dag):
    """Write the tenant's DAG to the metadata DB as `dag.test` does (the DAG's bundle,
    walked whole so no other DAG of it looks removed), once per `bds run`; returns the
    scheduler's view of the DAG."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.models.dag_version import DagVersion
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session

    with create_session() as session:
        manager = DagBundlesManager()
        manager.sync_bundles_to_db(session=session)
        session.commit()
        existing = DagModel.get_current(dag.dag_id, session=session)
        owner = existing.bundle_name if existing else None
    bundles = list(manager.get_all_dag_bundles())
    for bundle in [b for b in bundles if b.name == owner] or bundles:
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path,
                           bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)
        if DagVersion.get_version(dag.dag_id):
            break
    return DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))


def _run_day(dag, scheduler_dag, t: TenantConfig, day: dt.date, conf: dict,
             echo: Callable[[str], None] | None = None):
    """Create or re-use the run of `day` and drive it to its end in this process, or,
    when a live scheduler will run it, let it and wait (`_live_scheduler`)."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from .timetable import day_start_of

    logical = day_start_of(day, t.timezone)
    session = settings.Session()
    dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id,
                                             DagRun.logical_date == logical))
    if dr is not None and dr.state in (DagRunState.RUNNING, DagRunState.QUEUED):
        raise DayRefused(f"run {dr.run_id} of this day is already {dr.state} "
                         "(wait for it, or stop it in the Airflow UI)")
    handoff = _live_scheduler(dag.dag_id, session)
    try:
        dr = _rerun(scheduler_dag, dr, conf, session) if dr is not None else \
            _new_run(scheduler_dag, t, day, logical, conf, session)
    except IntegrityError:
        session.rollback()
        raise DayRefused("another process created this day's run a moment ago") from None
    if handoff:
        if echo is not None:
            echo(f"{t.id} {day.isoformat()} run {dr.run_id}: on the running scheduler "
                 "(its executor runs the tasks; waiting for it)")
        _wait_for_scheduler(dr, session)
    else:
        _drive(dag, dr, session)
    return dr


def _live_scheduler(dag_id: str, session) -> bool:
    """True when a live scheduler (and triggerer) of this metadata DB will run the day:
    a scheduler heartbeating and the DAG not paused. `bds run` then leaves the tasks to
    it (two executors of one task instance collide); a paused DAG's runs the scheduler
    does not touch, so they run here. Raises DayRefused when a scheduler is live but no
    triggerer is (the readiness task starts in the triggerer: the day would never
    start)."""
    from airflow.jobs.job import most_recent_job
    from airflow.models.dag import DagModel

    job = most_recent_job("SchedulerJob", session=session)
    if job is None or not job.is_alive():
        return False
    model = DagModel.get_current(dag_id, session=session)
    if model is None or model.is_paused:
        return False
    trig = most_recent_job("TriggererJob", session=session)
    if trig is None or not trig.is_alive():
        raise DayRefused("a scheduler is running on this metadata DB but no triggerer: "
                         "start `airflow triggerer`, or pause the DAG to run the day here")
    return True


def _wait_for_scheduler(dr, session, poll: float = 2.0) -> None:
    """Wait until the live scheduler has finished the run (its tasks run on its
    executor; Ctrl-C stops waiting, not the run)."""
    import time

    from airflow.utils.state import State

    while True:
        session.expire_all()
        session.refresh(dr)
        if dr.state in State.finished_dr_states:
            return
        time.sleep(poll)


def _new_run(scheduler_dag, t: TenantConfig, day: dt.date, logical, conf: dict, session):
    import getpass

    import pendulum
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    timetable = scheduler_dag.timetable
    interval = timetable.interval(day)
    now = pendulum.now("UTC")
    return scheduler_dag.create_dagrun(
        run_id=timetable.generate_run_id(run_type=DagRunType.MANUAL, run_after=now,
                                         data_interval=interval),
        logical_date=logical, data_interval=interval, run_after=now, conf=conf,
        run_type=DagRunType.MANUAL, state=DagRunState.RUNNING,
        triggered_by=DagRunTriggeredByType.CLI, triggering_user_name=getpass.getuser(),
        start_date=now, session=session)


def _rerun(scheduler_dag, dr, conf: dict, session):
    """Clear every task of an existing run of the day and run it again in place."""
    import pendulum
    from airflow.utils.state import DagRunState

    scheduler_dag.clear(run_id=dr.run_id, dag_run_state=DagRunState.RUNNING,
                        session=session)
    session.flush()
    # What an earlier `bds run --force` recorded (`readiness`) is this run's to say
    # again or not: a normal re-run of a forced day must not stay marked forced.
    dr.conf = {**{k: v for k, v in (dr.conf or {}).items() if k != "readiness"}, **conf}
    dr.state = DagRunState.RUNNING
    dr.start_date = pendulum.now("UTC")
    dr.end_date = None
    session.commit()
    dr.dag = scheduler_dag
    return dr


def _drive(dag, dr, session) -> None:
    """Run the run's tasks in this process until it finishes: the loop of Airflow's
    `dag.test` (airflow.sdk.definitions.dag), on a run we created or re-used instead of
    one it deletes and re-creates."""
    import time

    from airflow.sdk import timezone
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    while dr.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = dr.update_state(session=session)
        for ti in schedulable:
            if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
            ti.scheduled_dttm = timezone.utcnow()
        session.commit()
        tis = set(dr.get_task_instances(session=session))
        scheduled = {ti for ti in tis if ti.state == TaskInstanceState.SCHEDULED}
        if not scheduled and {ti for ti in tis if ti.state not in State.finished}:
            time.sleep(1)  # a retry delay or a deferral running in this process
        for ti in scheduled:
            try:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
            except Exception:
                log.exception("task %s failed", ti.task_id)


@contextlib.contextmanager
def _day_lock(t: TenantConfig, day: dt.date):
    """One `bds run` of a tenant-day at a time on this machine (a lock file under
    AIRFLOW_HOME, released when the process ends, however it ends)."""
    import fcntl

    folder = Path(os.environ["AIRFLOW_HOME"]) / "bds-locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"bds_{t.id}-{day.isoformat()}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DayRefused("another bds run of this day is running on this machine") from None
        yield


def _failures(run_id: str) -> str:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        bad = sorted(
            ti.task_id for ti in s.query(TaskInstance).filter(TaskInstance.run_id == run_id)
            if str(ti.state).endswith(("failed", "upstream_failed"))
        )
    return "failed tasks: " + ", ".join(bad)
