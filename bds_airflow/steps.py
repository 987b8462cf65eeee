"""The Airflow operators of a tenant's DAG: one class per kind of day-plan step
(extract, derive, attribute, compute, emit, monthly). The readiness wait lives in
bds_airflow.readiness.

Classic operators rather than TaskFlow functions: the DAG processor builds every
tenant's DAG on each parse, and a `@task` costs three times as much to build (a closure,
signature inspection, three nested `apply_defaults`). The step's inputs are XComArgs in
the templated `inputs` field: Airflow sets the dependencies from them at parse time and
resolves them to the upstream tasks' paths at run time.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import BaseOperator

from bds_metrics.config import ConfigError, TenantConfig
from bds_metrics.plan import ACTIONS


def run_option(t: TenantConfig, conf: Mapping[str, Any] | None, key: str) -> bool:
    """A boolean run option a trigger may pass as conf (`bds run` does), else the
    scheduled run's default; a wrong type fails the task, no retry. Not DAG Params:
    Airflow deep-copies a DAG's Params into every task it builds."""
    default = {"reextract_config": False, "wait_for_settle": t.wait_for_settle}[key]
    value = (conf or {}).get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"tenant {t.id!r}: run conf key {key}: must be true or false, "
                          f"not {value!r}")
    return value


def _fail_fast(exc: BaseException) -> BaseException:
    """Configuration problems fail the task without retries; the rest may retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from bds_metrics.compute import MappingError

    if isinstance(exc, ConfigError | MappingError):
        return AirflowFailException(str(exc))
    return exc


def _day(t: TenantConfig, context: Mapping[str, Any]) -> dt.date:
    """The task's billing day. Every step calls this first, so it also routes the
    tenant's object-storage roots through Airflow's connections (object_storage)."""
    from .object_storage import install

    install()
    return run_billing_day(t, context.get("data_interval_start"), context.get("logical_date"),
                           (context.get("dag_run") and context["dag_run"].run_id) or "?")


def run_billing_day(t: TenantConfig, interval_start: Any, logical_date: Any,
                    run_id: str) -> dt.date:
    """The billing day of a run: `data_interval_start` in the tenant's zone (SPEC §8),
    checked against the run's logical date, which must name the same day.

    Raises ConfigError (the task fails without retry, nothing is billed) for a run that
    names no billing day or two different ones, e.g. `airflow dags trigger -l D`, which
    Airflow 3.3 gives the data interval of the trigger time rather than of D.
    """
    from bds_metrics.days import billing_day_of, day_start

    if interval_start is None:
        raise ConfigError(
            f"tenant {t.id!r}: run {run_id} has no logical date, so no billing day; "
            "trigger it with the day as logical date (e.g. 2026-03-05) or use bds run")
    day = billing_day_of(interval_start, t.timezone)
    if logical_date is not None and billing_day_of(logical_date, t.timezone) != day:
        named = billing_day_of(logical_date, t.timezone)
        raise ConfigError(
            f"tenant {t.id!r}: run {run_id} has logical date {named} "
            f"({logical_date.isoformat()}) but the data interval of {day} "
            f"({interval_start.isoformat()}); nothing billed. Trigger {named} from the UI, "
            f"the REST API or `bds run -t {t.id} --from {named}`")
    if day < t.production_date:
        raise ConfigError(
            f"tenant {t.id!r}: run {run_id} is of billing day {day}, before the tenant's "
            f"production date {t.production_date}: nothing billed")
    if interval_start.timestamp() != day_start(day, t.timezone).timestamp():
        raise ConfigError(
            f"tenant {t.id!r}: run {run_id}: data interval starts at "
            f"{interval_start.isoformat()}, not at the first instant of billing day {day}")
    return day


def _conf(context: Mapping[str, Any]) -> Mapping[str, Any]:
    run = context.get("dag_run")
    return getattr(run, "conf", None) or {}


def resolve_dsn(t: TenantConfig, conn_id: str) -> str:
    """The libpq DSN of an Airflow connection. One Airflow does not know is a ConfigError
    naming it, in one line: the task fails without retry (no retry storm), and `bds run`
    checks every connection of the tenant before it runs anything."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from .connections import get_dsn

    try:
        return get_dsn(conn_id)
    except AirflowNotFoundException:
        raise ConfigError(
            f"{t.source}: tenant {t.id!r}: Airflow connection {conn_id!r} is not defined "
            f"(set AIRFLOW_CONN_{conn_id.upper()}, or add it to the metadata DB or a "
            "secrets backend)") from None


def _run(action: str, t: TenantConfig, day: dt.date | None, name: str | None,
         inputs: Mapping[str, Any], conf: Mapping[str, Any]) -> str:
    """One day-plan step through `pipeline.run_action` (what `run_day` calls too)."""
    from bds_metrics import pipeline

    dsn_for = reextract = None
    if action == "extract":
        dsn_for = functools.partial(resolve_dsn, t)
        reextract = run_option(t, conf, "reextract_config")
    extra = _readiness_facts(conf) if action == "daily_files" else None
    result = pipeline.run_action(action, t, day, name, inputs, dsn_for=dsn_for,
                                 reextract_config=bool(reextract), extra=extra)
    if result is None:  # month_files of an incomplete month: skipped, never green
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(month_incomplete(t, day))
    return result


def _readiness_facts(conf: Mapping[str, Any]) -> dict[str, Any]:
    """`bds run --force` passes what it saw as run conf `readiness`: the manifest says so."""
    facts = conf.get("readiness")
    return {"readiness": dict(facts)} if isinstance(facts, Mapping) else {}


# action -> step(t, day, name, inputs, conf): the path the task returns.
STEPS: dict[str, Callable[..., str]] = {a: functools.partial(_run, a) for a in ACTIONS}


def month_incomplete(t: TenantConfig, day: dt.date) -> str:
    """One line for an incomplete month: the days already due that have no billed
    result (named), and how many are still to come. The task is skipped, never green."""
    from bds_metrics import pipeline
    from bds_metrics.days import billing_day_of

    days, missing = pipeline.month_status(t, day)
    today = billing_day_of(dt.datetime.now(dt.UTC), t.timezone)
    late = [d for d in missing if d < today]
    month = day.strftime("%Y-%m")
    text = f"tenant {t.id}: month {month} not complete, no month files written: "
    if late:
        text += (f"{len(late)} of {len(days)} billing days have no billed result: "
                 + ", ".join(d.isoformat() for d in late))
    else:
        text += "every billing day so far is billed"
    if len(missing) > len(late):
        text += f"; {len(missing) - len(late)} day(s) still to come"
    return text


def _summary(step: str, name: str | None, result: str) -> list[str]:
    """What the step read, computed or wrote, for the task log (never fails the task)."""
    from bds_metrics import tasklog

    try:
        if step in ("extract", "derive"):
            return tasklog.dataset_lines(name or step, result)
        if step == "compute":
            return tasklog.result_lines(name or step, result)
        if step in ("daily_files", "month_files"):
            return tasklog.folder_lines(result)
        return [f"wrote {result}"]
    except Exception as exc:  # the log is for people; the billing result stands
        return [f"(no summary: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"]


class BdsStepOperator(BaseOperator):
    """One step of a tenant's billing day (`plan.Step`); returns the path it wrote.

    One subclass per kind of step, so the grid and the graph say what each task is.
    """

    template_fields = ("inputs",)
    ui_color = "#e8f0fe"

    def __init__(self, *, tenant: TenantConfig, step: str, name: str | None = None,
                 inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if step not in STEPS:
            raise ValueError(f"unknown bds step {step!r}")
        self.tenant = tenant
        self.step = step
        self.name = name
        self.inputs = inputs or {}

    def execute(self, context: Any) -> str:
        t = self.tenant
        try:
            day = _day(t, context)
            from bds_metrics.tasklog import day_header

            self.log.info("%s", day_header(t, day))
            result = STEPS[self.step](t, day, self.name, self.inputs, _conf(context))
        except Exception as exc:
            from .assets import after_failure  # the month deadline alert (SPEC §8)

            after_failure(self, context, t, exc)
            raise _fail_fast(exc) from exc
        for line in _summary(self.step, self.name, result):
            self.log.info("%s", line)
        from .assets import after_step  # asset events (SPEC §8)

        return after_step(self, context, t, day, result)


class BdsExtractOperator(BdsStepOperator):
    """Queries one dataset of the day into Parquet (SPEC §4)."""

    ui_color = "#dbeafe"


class BdsDeriveOperator(BdsStepOperator):
    """Derives a dataset from another dataset file (tfn/pstn durations, SPEC §4)."""

    ui_color = "#e0f2fe"


class BdsAttributeOperator(BdsStepOperator):
    """Builds an agent->BU or CDR->BU map (SPEC §6)."""

    ui_color = "#fef3c7"


class BdsComputeOperator(BdsStepOperator):
    """Computes one metric for every region and scope (SPEC §5)."""

    ui_color = "#dcfce7"


class BdsEmitOperator(BdsStepOperator):
    """Writes the day's billing files, audit and manifest (SPEC §7)."""

    ui_color = "#fce7f3"


class BdsMonthlyOperator(BdsStepOperator):
    """Writes the month's files, or its usage report, once the month is complete."""

    ui_color = "#ede9fe"


# plan.Step.kind -> operator class
OPERATORS: dict[str, type[BdsStepOperator]] = {
    "extract": BdsExtractOperator, "derive": BdsDeriveOperator,
    "attribute": BdsAttributeOperator, "compute": BdsComputeOperator,
    "emit": BdsEmitOperator, "monthly": BdsMonthlyOperator,
}
