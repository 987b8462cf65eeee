"""Readiness in Airflow (SPEC §8): the wait for a billing day's data, deferred to the
triggerer so that it holds no worker slot.

`ReadinessSensor` starts directly in the triggerer (`start_from_trigger`): the scheduler
hands `ReadinessTrigger` to the triggerer without a worker ever starting the task. The
trigger polls the Info Mart's ETL mark (asyncpg, the connection resolved in the
triggerer) every `readiness_poll_seconds`, or only sleeps until the clock part is met in
`clock` mode, and ends the task itself (`TaskSuccessEvent`) when the day is ready: zero
worker starts for a day that becomes ready. A day still unready at its deadline resumes
on a worker once, in `execute_complete`, which fails the task without retry and so
raises the tenant's failure alert: the day is not billed.

Where the scheduler is not involved (`dag.test`, i.e. `bds run`), `execute` runs on the
worker as usual: it returns at once when the run's conf says `wait_for_settle: false`
(`bds run` has checked readiness itself, `bds_airflow.runner`), else defers to the same
trigger.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, StartTriggerArgs, TaskSuccessEvent, TriggerEvent

from bds_metrics.config import TenantConfig

TRIGGER = "bds_airflow.readiness.ReadinessTrigger"
# Rendered in the triggerer from the run's context (start_from_trigger renders the
# trigger kwargs that are also template fields of the operator).
INTERVAL_START = "{{ data_interval_start.isoformat() }}"
WAIT = "{{ dag_run.conf.get('wait_for_settle', true) }}"


def _tenant(tenant_id: str) -> TenantConfig:
    from .dag_factory import _config

    return _config(None).tenant(tenant_id)


class ReadinessTrigger(BaseTrigger):
    """Polls one tenant-day's readiness; yields `TaskSuccessEvent` when ready, or
    `{"status": "late", "reason": ...}` once the day is past its publish deadline.

    kwargs: `tenant_id`; `interval_start` (ISO 8601 data interval start of the run);
    `wait` ("False" skips the wait, as the run conf `wait_for_settle: false`).
    """

    def __init__(self, tenant_id: str, interval_start: str, wait: str = "True") -> None:
        super().__init__()
        self.tenant_id = tenant_id
        self.interval_start = interval_start
        self.wait = wait

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return TRIGGER, {"tenant_id": self.tenant_id, "interval_start": self.interval_start,
                         "wait": self.wait}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from bds_metrics import readiness
        from bds_metrics.days import billing_day_of

        from .connections import aget_dsn

        t = await asyncio.to_thread(_tenant, self.tenant_id)
        if str(self.wait).strip().lower() == "false":
            yield TaskSuccessEvent()
            return
        day = billing_day_of(dt.datetime.fromisoformat(self.interval_start), t.timezone)
        dsn: str | None = None
        while True:
            mark, error = None, ""
            if readiness.uses_mark(t):
                try:
                    dsn = dsn or await aget_dsn(t.gimdb_conn_id)
                    mark = await readiness.read_mark(t, day, dsn)
                except Exception as exc:  # unreachable Info Mart: keep waiting, say why
                    error = f"; {(str(exc).splitlines() or [type(exc).__name__])[0]}"
            now = time.time()
            v = readiness.judge(t, day, mark, now)
            if v.ready:
                self.log.info("%s (mark %s)", v.reason, v.mark)
                yield TaskSuccessEvent()
                return
            if v.late:
                yield TriggerEvent({"status": "late", "reason": v.reason + error,
                                    "mark": v.mark, "day_end": v.day_end})
                return
            self.log.info("%s%s", v.reason, error)
            pause = t.readiness_poll_seconds
            if not readiness.uses_mark(t) or (mark is not None and mark >= v.day_end):
                pause = max(0.0, v.ready_at - now)  # only the clock is left
            await asyncio.sleep(max(0.0, min(pause, v.deadline - now)) + 0.01)


class ReadinessSensor(BaseOperator):
    """Waits for the billing day's data (SPEC §8 Readiness) in the triggerer."""

    template_fields = ("interval_start", "wait")
    ui_color = "#fdf5e6"

    def __init__(self, *, tenant: TenantConfig, **kwargs: Any) -> None:
        kwargs.setdefault("retries", 0)
        kwargs.setdefault("execution_timeout", None)  # the trigger enforces the deadline
        super().__init__(**kwargs)
        self.tenant = tenant
        self.interval_start = INTERVAL_START
        self.wait = WAIT
        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=TRIGGER, next_method="execute_complete",
            trigger_kwargs={"tenant_id": tenant.id, "interval_start": INTERVAL_START,
                            "wait": WAIT},
            next_kwargs=None, timeout=None)

    def execute(self, context: Any) -> str | None:
        from .steps import _conf, _day, _fail_fast, run_option

        t = self.tenant
        try:
            _day(t, context)
            waiting = run_option(t, _conf(context), "wait_for_settle")
        except Exception as exc:
            raise _fail_fast(exc) from exc
        if not waiting:
            return "not waited: run conf wait_for_settle is false"
        self.defer(trigger=ReadinessTrigger(t.id, context["data_interval_start"].isoformat()),
                   method_name="execute_complete")
        return None

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> str:
        from airflow.sdk.exceptions import AirflowFailException

        if event and event.get("status") == "late":
            raise AirflowFailException(str(event["reason"]))
        return "ready"


def gate(t: TenantConfig, day: dt.date, force: bool) -> tuple[str | None, dict[str, Any]]:
    """`bds run`'s one look at a day's readiness (SPEC §9).

    Returns (refusal, conf): `refusal` is the one line to print when the day is not
    ready and not forced (else None); `conf` is added to the run's conf: with
    `--force` on an unready day, `readiness: {forced: true, mark, ...}`, which the
    day's manifest records. A mark that cannot be read is a refusal too (unless forced).
    """
    from bds_metrics import readiness

    from .connections import get_dsn

    try:
        v = readiness.check_once(t, day, get_dsn)
    except readiness.ReadinessError as exc:
        if not force:
            return f"{t.id} {day.isoformat()} REFUSED {exc} (--force bills anyway)", {}
        return None, {"readiness": {"forced": True, "mark": None, "error": str(exc)}}
    if v.ready:
        return None, {}
    if not force:
        return f"{t.id} {day.isoformat()} REFUSED {v.reason} (--force bills anyway)", {}
    return None, {"readiness": v.manifest_facts(forced=True)}
