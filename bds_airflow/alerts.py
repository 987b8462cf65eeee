"""Alerts and deadlines (SPEC §8) through Airflow's own mechanisms.

- a task that fails after its last retry: the tenant's `BdsAlert` as every task's
  `on_failure_callback` (runs in the worker, with the task's context);
- a day not published `publish_deadline_hours` after its end: a `DeadlineAlert` on the
  DAG (reference: the run's logical date = the day's first instant; interval: 24 h +
  the deadline hours), whose `AsyncCallback` runs `BdsAlert` in the triggerer. Airflow
  drops a run's deadline when the run succeeds, i.e. when the day is published;
- a month not complete by its deadline (the month's end + `publish_deadline_hours`):
  the month step (`month_overdue`) sends it, naming the missing days;
- a readiness wait past the deadline fails the readiness task (bds_airflow.readiness),
  so the failure alert carries the mark and the day's end; nothing is billed.

Transport: the SMTP provider's `SmtpNotifier` (an SMTP connection) and the HTTP
provider's `HttpNotifier` (an HTTP connection, JSON body), by connection id from the
tenant's `alerts`; no secret in the YAML. Every message names the tenant, the billing
day, the task, the error's first line and the log URL.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from airflow.sdk import BaseNotifier

from bds_metrics.config import Alerts, TenantConfig


def configured(a: Alerts) -> bool:
    return bool(a.email_conn_id or a.webhook_conn_id)


def _first_line(text: object) -> str:
    lines = [ln for ln in str(text or "").strip().splitlines() if ln.strip()]
    return lines[0].strip() if lines else ""


def _base_url() -> str:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")


class BdsAlert(BaseNotifier):
    """One alert of one tenant, by e-mail and/or webhook.

    `kind`: "task_failed" (on_failure_callback), "day_late" (deadline callback),
    "month_late" (`month_overdue`). The message (`message(context)`) is plain text,
    built here, never a template: error text is not Jinja.
    """

    template_fields = ()

    def __init__(self, *, tenant_id: str, timezone: str, kind: str = "task_failed",
                 email_conn_id: str | None = None, email_to: list[str] | None = None,
                 email_from: str | None = None, webhook_conn_id: str | None = None,
                 webhook_endpoint: str = "", context: Any = None) -> None:
        super().__init__(context=context)
        self.tenant_id = tenant_id
        self.timezone = timezone
        self.kind = kind
        self.email_conn_id = email_conn_id
        self.email_to = list(email_to or [])
        self.email_from = email_from
        self.webhook_conn_id = webhook_conn_id
        self.webhook_endpoint = webhook_endpoint

    @classmethod
    def kwargs_of(cls, t: TenantConfig, kind: str) -> dict[str, Any]:
        a = t.alerts
        return {"tenant_id": t.id, "timezone": t.timezone, "kind": kind,
                "email_conn_id": a.email_conn_id, "email_to": list(a.email_to),
                "email_from": a.email_from, "webhook_conn_id": a.webhook_conn_id,
                "webhook_endpoint": a.webhook_endpoint}

    # ---------------------------------------------------------------- the message

    def _day(self, start: Any) -> str:
        if start is None:
            return "-"
        from bds_metrics.days import billing_day_of

        if isinstance(start, str):
            start = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
        return billing_day_of(start, self.timezone).isoformat()

    def message(self, context: Any) -> dict[str, str]:
        """{tenant, day, task, error, log_url, kind, subject, text} of the alert."""
        if self.kind == "day_late":
            run = context.get("dag_run") or {}
            deadline = (context.get("deadline") or {}).get("deadline_time")
            day = self._day(run.get("data_interval_start") or run.get("logical_date"))
            task = "(the day's run)"
            error = (f"day {day} not published by its deadline {deadline} "
                     f"(run {run.get('dag_run_id')}, state {run.get('state')})")
            log_url = (f"{_base_url()}/dags/{run.get('dag_id')}/runs/"
                       f"{run.get('dag_run_id')}")
        else:
            ti = context.get("ti") or context.get("task_instance")
            day = self._day(context.get("data_interval_start"))
            task = getattr(ti, "task_id", "-")
            error = _first_line(context.get("exception")) or context.get("bds_error", "")
            log_url = getattr(ti, "log_url", "") or ""
        if self.kind == "month_late":
            error = _first_line(context.get("bds_error"))
        what = {"task_failed": "task failed", "day_late": "day not published",
                "month_late": "month not complete"}.get(self.kind, self.kind)
        subject = f"[bds] {self.tenant_id} {day}: {what}: {task}"
        text = (f"tenant: {self.tenant_id}\nbilling day: {day}\ntask: {task}\n"
                f"error: {error}\nlog: {log_url}\n")
        return {"kind": self.kind, "tenant": self.tenant_id, "day": day, "task": task,
                "error": error, "log_url": log_url, "subject": subject, "text": text}

    def _transports(self, msg: dict[str, str]) -> list[Any]:
        out: list[Any] = []
        if self.email_conn_id:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            out.append(SmtpNotifier(
                to=self.email_to, from_email=self.email_from, subject=msg["subject"],
                html_content=f"<pre>{html.escape(msg['text'])}</pre>",
                smtp_conn_id=self.email_conn_id))
        if self.webhook_conn_id:
            from airflow.providers.http.notifications.http import HttpNotifier

            out.append(HttpNotifier(
                http_conn_id=self.webhook_conn_id, endpoint=self.webhook_endpoint,
                json={k: msg[k] for k in ("kind", "tenant", "day", "task", "error",
                                           "log_url", "subject")},
                headers={"Content-Type": "application/json"}))
        return out

    def notify(self, context: Any) -> None:
        msg = self.message(context)
        self.log.warning("bds alert: %s", msg["subject"])
        for n in self._transports(msg):
            n.notify(context)

    async def async_notify(self, context: Any) -> None:
        if self.kind == "day_late" and _created_after_deadline(context):
            self.log.info("bds: no day_late alert for a run created after its deadline "
                          "(a backfill or late trigger): %s", context.get("dag_run"))
            return
        msg = self.message(context)
        self.log.warning("bds alert: %s", msg["subject"])
        for n in self._transports(msg):
            await n.async_notify(context)


def _created_after_deadline(context: Any) -> bool:
    run = context.get("dag_run") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    queued = run.get("queued_at") or run.get("run_after")
    if run.get("run_type") == "backfill":
        return True
    try:
        return bool(queued and deadline and dt.datetime.fromisoformat(str(queued))
                    > dt.datetime.fromisoformat(str(deadline)))
    except ValueError:
        return False


def on_failure(t: TenantConfig) -> BdsAlert | None:
    """The tenant's failure callback (for default_args), or None without alerts."""
    return BdsAlert(**BdsAlert.kwargs_of(t, "task_failed")) if configured(t.alerts) else None


def deadline(t: TenantConfig) -> Any:
    """The DAG's DeadlineAlert for a day not published in time (None without alerts)."""
    if not configured(t.alerts):
        return None
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert

    from .deadlines import BillingDayEnd

    return DeadlineAlert(
        reference=BillingDayEnd(),  # the day's end, 23/24/25 hours after its start
        interval=dt.timedelta(hours=t.publish_deadline_hours),
        callback=AsyncCallback(BdsAlert, kwargs=BdsAlert.kwargs_of(t, "day_late")),
        name=f"bds_{t.id}_publish_deadline")


def month_overdue(t: TenantConfig, day: dt.date, missing: list[dt.date], context: Any,
                  now: float | None = None) -> bool:
    """Send the month alert when the month of `day` is past its deadline (month end +
    publish_deadline_hours) with days `missing`; True when sent."""
    import time

    from bds_metrics.days import billing_month, iso_utc

    p = billing_month(day, t.timezone)
    due = p.end + int(t.publish_deadline_hours * 3600)
    if not missing or not configured(t.alerts) or (now or time.time()) < due:
        return False
    days = ", ".join(d.isoformat() for d in missing)
    ctx = {**context, "bds_error": f"month {p.label} not complete by {iso_utc(due)}: "
                                   f"{len(missing)} day(s) missing: {days}"}
    BdsAlert(**BdsAlert.kwargs_of(t, "month_late")).notify(ctx)
    return True
