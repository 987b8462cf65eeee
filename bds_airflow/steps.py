"""The Airflow operator of a tenant's pipeline steps (the readiness wait lives in
bds_airflow.readiness).

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

from airflow.sdk import BaseOperator

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
    from bds_metrics.days import day_of_interval_start

    from .object_storage import install

    install()
    return day_of_interval_start(context["data_interval_start"], t.timezone)


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

    return pipeline.emit_daily(t, day, inputs["metrics"], inputs["datasets"], inputs["maps"],
                               extra=_readiness_facts(conf))


def _readiness_facts(conf: Mapping[str, Any]) -> dict[str, Any]:
    """`bds run --force` passes what it saw as run conf `readiness`: the manifest says so."""
    facts = conf.get("readiness")
    return {"readiness": dict(facts)} if isinstance(facts, Mapping) else {}


def _month_files(t, day, name, inputs, conf):
    from bds_metrics import pipeline

    folder = pipeline.emit_monthly(t, day)
    if folder is None:
        days, missing = pipeline.month_status(t, day)
        return f"month incomplete: {len(missing)} of {len(days)} days missing"
    return folder


def _month_report(t, day, name, inputs, conf):
    # The month's usage report (SPEC §10), for people: beside the month's files but not
    # in its manifest; `publish` removes only stale *.csv, so it stays.
    month_folder = inputs["month_folder"]
    if month_folder.startswith("month incomplete"):
        return f"no report: {month_folder}"
    from bds_metrics import report

    return report.write_month_report(t, day, month_folder)


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
            result = STEPS[self.step](t, day, self.name, self.inputs, _conf(context))
        except Exception as exc:
            raise _fail_fast(exc) from exc
        from .assets import after_step  # asset events, month deadline (SPEC §8)

        return after_step(self, context, t, day, result)
