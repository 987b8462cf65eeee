"""The two Airflow operators of a tenant's DAG: one pipeline step, and the settle sensor.

Classic operators rather than TaskFlow functions: the DAG processor builds every
tenant's DAG on each parse, and a `@task` costs three times as much to build (a closure,
signature inspection, three nested `apply_defaults`). The step's inputs are XComArgs in
the templated `inputs` field: Airflow sets the dependencies from them at parse time and
resolves them to the upstream tasks' paths at run time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator

from bds_metrics.config import ConfigError, TenantConfig


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
    if interval_start.timestamp() != day_start(day, t.timezone).timestamp():
        raise ConfigError(
            f"tenant {t.id!r}: run {run_id}: data interval starts at "
            f"{interval_start.isoformat()}, not at the first instant of billing day {day}")
    return day


def _conf(context: Mapping[str, Any]) -> Mapping[str, Any]:
    run = context.get("dag_run")
    return getattr(run, "conf", None) or {}


# step(t, day, name, inputs, conf) -> the path (or message) the task returns as its XCom.
def _extract(t, day, name, inputs, conf):
    from bds_metrics import pipeline

    from .connections import get_dsn

    return pipeline.extract(t, day, name, get_dsn,
                            reextract_config=run_option(t, conf, "reextract_config"))


def _derive(t, day, name, inputs, conf):
    from bds_metrics import pipeline

    return pipeline.derive(t, day, name, inputs["voice_calls"])


def _agent_bu(t, day, name, inputs, conf):
    from bds_metrics import pipeline

    return pipeline.attribute_agents(t, day, inputs["datasets"])


def _cdr_bu(t, day, name, inputs, conf):
    from bds_metrics import pipeline

    return pipeline.attribute_cdrs(t, day, inputs["datasets"])


def _compute(t, day, name, inputs, conf):
    from bds_metrics import pipeline

    return pipeline.compute(t, day, name, inputs["inputs"])


def _daily_files(t, day, name, inputs, conf):
    from bds_metrics import pipeline

    return pipeline.emit_daily(t, day, inputs["metrics"], inputs["datasets"], inputs["maps"])


def _month_files(t, day, name, inputs, conf):
    from bds_metrics import pipeline

    folder = pipeline.emit_monthly(t, day)
    if folder is None:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(month_incomplete(t, day))
    return folder


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


def _month_report(t, day, name, inputs, conf):
    # The month's usage report (SPEC §10), for people: beside the month's files but not
    # in its manifest; `publish` removes only stale *.csv, so it stays.
    month_folder = inputs["month_folder"]
    from bds_metrics import report

    return report.write_month_report(t, day, month_folder)


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


STEPS: dict[str, Callable[..., str]] = {
    "extract": _extract, "derive": _derive, "agent_bu": _agent_bu, "cdr_bu": _cdr_bu,
    "compute": _compute, "daily_files": _daily_files, "month_files": _month_files,
    "month_report": _month_report,
}


class BdsStepOperator(BaseOperator):
    """One step of a tenant's billing day (`STEPS`); returns the path it wrote."""

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
            raise _fail_fast(exc) from exc
        for line in _summary(self.step, self.name, result):
            self.log.info("%s", line)
        return result


class SettledSensor(BaseSensorOperator):
    """Waits until `settle_hours` after the billing day's end (unless the run's conf says
    `wait_for_settle: false`): the Info Mart's ETL has then loaded the day."""

    def __init__(self, *, tenant: TenantConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant = tenant

    def poke(self, context: Any) -> bool:
        from bds_metrics.days import billing_day

        t = self.tenant
        try:
            day = _day(t, context)
            waiting = run_option(t, _conf(context), "wait_for_settle")
        except Exception as exc:
            raise _fail_fast(exc) from exc
        ready_at = billing_day(day, t.timezone).end + int(t.settle_hours * 3600)
        return not waiting or dt.datetime.now(dt.UTC).timestamp() >= ready_at
