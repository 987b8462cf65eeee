"""Readiness, alerts and source protection (SPEC §8) without a scheduler: the rules by
hand, `bds run`'s refusal and `--force`, a query cut by the statement timeout and
retried, and alerts received by real SMTP and HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import threading
import time

import psycopg
import pytest

from tests.cases import D1, DAY, NO_DEFAULT_CONFIG, expected_for, setup_case
from tests.conftest import dsn
from tests.gim import set_mark
from tests.loopback import Mailbox, Webhook

pytestmark = pytest.mark.xdist_group("airflow")


def _gim_dsn() -> str:
    return dsn(json.loads(os.environ["AIRFLOW_CONN_E2E_GIM"])["schema"])


def test_judge_by_hand(tmp_path):
    from bds_metrics.config import parse_config
    from bds_metrics.readiness import judge

    t = parse_config(f"""
defaults: {{settle_hours: 2, publish_deadline_hours: 30}}
tenants:
  - id: ny
    name: NY
    production_date: 2026-03-01
    timezone: America/New_York
    metrics: [seats_chat]
    output_root: {tmp_path}
    staging_root: {tmp_path}
    regions: [{{code: us, locations: [{{code: d, switches: []}}]}}]
""").tenants[0]
    # 2026-03-08 NY ends 2026-03-09T04:00Z = D1 (23-hour day)
    v = judge(t, DAY, D1 - 1, now=D1 + 3 * 3600)
    assert (v.ready, v.late, v.day_end) == (False, False, D1)
    assert "the ETL mark is 2026-03-09T03:59:59Z, the day ends 2026-03-09T04:00:00Z" in v.reason
    assert judge(t, DAY, D1, now=D1 + 2 * 3600).ready  # mark at the end, settled
    v = judge(t, DAY, D1 + 99, now=D1 + 2 * 3600 - 1)  # mark in, clock 1 s short
    assert not v.ready and "settling until 2026-03-09T06:00:00Z" in v.reason
    v = judge(t, DAY, None, now=D1 + 30 * 3600)
    assert v.late and "no mark" in v.reason and "past the deadline 2026-03-10T10:00:00Z" in v.reason
    assert not judge(t, DAY, None, now=D1 + 30 * 3600 - 1).late


def test_bds_run_refuses_an_unready_day_and_force_says_so_in_the_manifest(
        tmp_path, new_db, monkeypatch, airflow_db):
    from bds_airflow.runner import run_days

    t, root = setup_case(tmp_path, new_db, monkeypatch, tenant="acme_unready")
    set_mark(_gim_dsn(), D1 - 600)  # the ETL has loaded up to 10 minutes before the end
    lines: list[str] = []
    assert run_days(t, DAY, DAY, echo=lines.append) == 1
    assert lines == ["acme_unready 2026-03-08 REFUSED tenant 'acme_unready', day 2026-03-08: "
                     "not ready: the ETL mark is 2026-03-09T03:50:00Z, the day ends "
                     "2026-03-09T04:00:00Z (2026-03-09 00:00 EDT); past the deadline "
                     "2026-03-10T10:00:00Z (publish_deadline_hours 30): not billed "
                     "(--force bills anyway)"]
    folder = root / "out" / "acme_unready" / "daily" / "2026-03-08"
    assert not folder.exists()

    lines.clear()
    assert run_days(t, DAY, DAY, echo=lines.append, force=True) == 0
    assert lines[0].startswith("acme_unready 2026-03-08 FORCED")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["readiness"] == {"forced": True, "mark": D1 - 600,
                                     "mark_utc": "2026-03-09T03:50:00Z",
                                     "day_end_utc": "2026-03-09T04:00:00Z"}
    for name, text in expected_for("acme_unready").items():
        assert (folder / name).read_text() == text, name

    # The data arrives; a normal re-run of the day (the same Airflow run, re-run in
    # place) no longer says forced, and bills the same values.
    set_mark(_gim_dsn(), D1 + 3600)
    lines.clear()
    assert run_days(t, DAY, DAY, echo=lines.append) == 0, lines
    assert not any("FORCED" in line for line in lines), lines
    assert "readiness" not in json.loads((folder / "manifest.json").read_text())
    for name, text in expected_for("acme_unready").items():
        assert (folder / name).read_text() == text, name


def test_clock_mode_ignores_the_mark(tmp_path, new_db, monkeypatch, airflow_db):
    from bds_airflow.runner import run_days

    t, root = setup_case(tmp_path, new_db, monkeypatch, tenant="acme_clock",
                         extra_defaults="  readiness: clock\n")
    set_mark(_gim_dsn(), None)  # no ETL transaction at all
    lines: list[str] = []
    assert run_days(t, DAY, DAY, echo=lines.append) == 0, lines
    manifest = json.loads((root / "out" / "acme_clock" / "daily" / "2026-03-08" /
                           "manifest.json").read_text())
    assert "readiness" not in manifest


def _hold_lock(gim_dsn: str, table: str, seconds: float, held: threading.Event) -> None:
    with psycopg.connect(gim_dsn) as locker:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        held.set()
        time.sleep(seconds)
        locker.rollback()


def _lock_until_cut(gim_dsn: str, table: str, cut: threading.Event) -> None:
    """Hold a lock on `table` until a backend waiting for it has gone (cancelled by its
    statement timeout), then release it."""
    dbname = psycopg.conninfo.conninfo_to_dict(gim_dsn)["dbname"]
    waiting = ("SELECT pid FROM pg_stat_activity WHERE datname = %s AND "
               "wait_event_type = 'Lock' AND query ILIKE %s")
    with psycopg.connect(gim_dsn) as locker, \
            psycopg.connect(dsn("postgres"), autocommit=True) as admin:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        deadline = time.monotonic() + 120
        pid = None
        while time.monotonic() < deadline:
            rows = {r[0] for r in admin.execute(waiting, (dbname, f"%{table}%"))}
            if pid is None and rows:
                pid = next(iter(rows))
            elif pid is not None and pid not in rows:
                cut.set()
                break
            time.sleep(0.05)
        locker.rollback()


def test_statement_timeout_cuts_a_hung_extract_names_it_and_the_task_retries(
        tmp_path, new_db, monkeypatch, airflow_db):
    from bds_airflow.runner import run_days
    from bds_metrics import datasets, pipeline

    t, root = setup_case(tmp_path, new_db, monkeypatch, tenant="acme_hung", extra_defaults=(
        "  statement_timeout_seconds: 1\n  retries: 2\n  retry_delay_seconds: 1\n"))
    gim = _gim_dsn()
    held = threading.Event()
    locker = threading.Thread(target=_hold_lock, args=(gim, "sm_res_session_fact", 3.0, held))
    locker.start()
    held.wait(10)
    t0 = time.monotonic()
    with pytest.raises(datasets.SourceError) as err:
        pipeline.extract(t, DAY, "sm_fact", lambda _c: gim)
    assert 0.9 < time.monotonic() - t0 < 2.9  # cut by the server after 1 s, not the lock
    assert str(err.value).startswith("tenant 'acme_hung', day 2026-03-08: dataset sm_fact: ")
    assert "statement timeout" in str(err.value)
    assert "(statement_timeout_seconds 1: the query ran longer; the task retries)" in str(
        err.value)
    locker.join()

    # Through the DAG: the lock is held until the first try has been cut by the
    # timeout; the retry finds it released.
    cut = threading.Event()
    locker = threading.Thread(target=_lock_until_cut, args=(gim, "sm_res_session_fact", cut))
    locker.start()
    lines: list[str] = []
    assert run_days(t, DAY, DAY, echo=lines.append) == 0, lines
    locker.join()
    assert cut.is_set()
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from tests.test_failures import _last_run_id

    with create_session() as s:
        ti = s.query(TaskInstance).filter(
            TaskInstance.dag_id == "bds_acme_hung", TaskInstance.task_id == "extract.sm_fact",
            TaskInstance.run_id == _last_run_id(s, "bds_acme_hung")).one()
        assert (str(ti.state), ti.try_number) == ("success", 2)
    folder = root / "out" / "acme_hung" / "daily" / "2026-03-08"
    for name, text in expected_for("acme_hung").items():
        assert (folder / name).read_text() == text, name


@pytest.fixture
def loopback(monkeypatch):
    box, hook = Mailbox(), Webhook()
    monkeypatch.setenv("AIRFLOW_CONN_BDS_SMTP", box.conn_json())
    monkeypatch.setenv("AIRFLOW_CONN_BDS_HOOK", hook.conn_json())
    yield box, hook
    box.stop()
    hook.stop()


ALERTS = ("  alerts: {email_conn_id: bds_smtp, email_to: [billing@example.com], "
          "webhook_conn_id: bds_hook, webhook_endpoint: /alerts}\n")


def test_failed_task_alert_reaches_mail_and_webhook(tmp_path, new_db, monkeypatch, loopback,
        airflow_db):
    """A task failing for good (no default location for a switch: no retry) sends one
    alert naming tenant, billing day, task, the error's first line and the log URL."""
    from bds_airflow.runner import run_days

    box, hook = loopback
    t, _ = setup_case(tmp_path, new_db, monkeypatch, config=NO_DEFAULT_CONFIG,
                      tenant="acme_alert", extra_defaults=ALERTS)
    assert run_days(t, DAY, DAY, echo=lambda _s: None) == 1
    tasks = sorted(b["task"] for b in hook.bodies)
    assert tasks == ["compute.seats_chat", "compute.seats_outbound"]
    assert set(hook.paths) == {"/alerts"}
    body = next(b for b in hook.bodies if b["task"] == "compute.seats_chat")
    assert body["tenant"] == "acme_alert" and body["day"] == "2026-03-08"
    assert body["kind"] == "task_failed"
    assert body["error"].startswith("tenant 'acme_alert', day 2026-03-08, metric seats_chat:")
    assert "\n" not in body["error"]
    assert "dag_id=bds_acme_alert" in body["log_url"] or "bds_acme_alert" in body["log_url"]
    assert "task_id=compute.seats_chat" in body["log_url"] or "compute.seats_chat" in body[
        "log_url"]
    mails = box.texts()
    assert len(mails) == 2
    subject, text = next(m for m in mails if "compute.seats_chat" in m[0])
    assert subject == "[bds] acme_alert 2026-03-08: task failed: compute.seats_chat"
    assert "tenant: acme_alert" in text and "billing day: 2026-03-08" in text
    assert body["error"].replace("'", "&#x27;") in text or body["error"] in text
    assert box.messages[0]["X-Rcpt"] == "billing@example.com"


def test_day_late_deadline_callback_and_month_alert(tmp_path, loopback, monkeypatch, airflow_db):
    """The DeadlineAlert's callback as the triggerer runs it (CallbackTrigger awaits the
    notifier class with its kwargs and the scheduler's simple context), and the month
    alert with the missing days named."""
    from airflow.triggers.callback import CallbackTrigger

    from bds_airflow.alerts import BdsAlert, deadline, month_overdue
    from bds_metrics.config import parse_config

    box, hook = loopback
    t = parse_config(f"""
defaults:
{ALERTS}tenants:
  - id: ny
    name: NY
    production_date: 2026-03-01
    timezone: America/New_York
    metrics: [seats_chat]
    output_root: {tmp_path}
    staging_root: {tmp_path}
    regions: [{{code: us, locations: [{{code: d, switches: []}}]}}]
""").tenants[0]
    alert = deadline(t)
    assert alert.interval == dt.timedelta(hours=30)  # after the day's end (SPEC §8)
    context = {"dag_run": {"dag_id": "bds_ny", "dag_run_id": "scheduled__2026-03-08",
                           "data_interval_start": "2026-03-08T05:00:00+00:00",
                           "logical_date": "2026-03-08T05:00:00+00:00",
                           "queued_at": "2026-03-09T06:00:00+00:00", "run_type": "scheduled",
                           "state": "running"},
               "deadline": {"id": "x", "deadline_time": "2026-03-10T11:00:00+00:00"}}
    trig = CallbackTrigger(alert.callback.path, {**alert.callback.kwargs, "context": context})

    async def drain():
        return [e.payload async for e in trig.run()]

    events = asyncio.run(drain())
    assert events[-1]["state"] == "success", events
    assert hook.bodies[-1]["kind"] == "day_late" and hook.bodies[-1]["day"] == "2026-03-08"
    assert hook.bodies[-1]["error"].startswith(
        "day 2026-03-08 not published by its deadline 2026-03-10T11:00:00+00:00")
    assert hook.bodies[-1]["log_url"].endswith("/dags/bds_ny/runs/scheduled__2026-03-08")
    assert box.texts()[-1][0] == "[bds] ny 2026-03-08: day not published: (the day's run)"

    # a backfill run created after its deadline: no alert (its failure alert covers it)
    n = len(hook.bodies)
    late = {**context, "dag_run": {**context["dag_run"], "run_type": "backfill"}}
    async def backfill():
        await BdsAlert(**BdsAlert.kwargs_of(t, "day_late"), context=late)

    asyncio.run(backfill())
    assert len(hook.bodies) == n

    class Ti:
        task_id = "monthly.month_files"
        log_url = "http://x/log"

    ctx = {"ti": Ti(), "data_interval_start": dt.datetime(2026, 3, 31, 4, tzinfo=dt.UTC)}
    missing = [dt.date(2026, 3, 8), dt.date(2026, 3, 9)]
    # March ends 2026-04-01T04:00Z; + 30 h = 2026-04-02T10:00Z
    due = int(dt.datetime(2026, 4, 2, 10, tzinfo=dt.UTC).timestamp())
    assert not month_overdue(t, dt.date(2026, 3, 31), missing, ctx, now=due - 1)
    assert month_overdue(t, dt.date(2026, 3, 31), missing, ctx, now=due)
    assert hook.bodies[-1]["kind"] == "month_late"
    assert hook.bodies[-1]["error"] == ("month 2026-03 not complete by 2026-04-02T10:00:00Z: "
                                        "2 day(s) missing: 2026-03-08, 2026-03-09")
    assert hook.bodies[-1]["day"] == "2026-03-31"


@pytest.mark.parametrize("extra, message", [
    ("readiness: tide", "key readiness: Input should be 'watermark' or 'clock'"),
    ("alerts: {email_to: [a@b.c]}", "key alerts.email_conn_id: email_to is set but"),
    ("alerts: {email_conn_id: smtp}", "key alerts.email_to: email_conn_id is set but"),
    ("readiness_sql: nowhere.sql", "key readiness_sql: no file"),
    ("statement_timeout_seconds: 0", "key statement_timeout_seconds: Input should be greater"),
])
def test_bad_readiness_and_alert_keys_fail_at_load(tmp_path, extra, message):
    from bds_metrics.config import ConfigError, parse_config

    text = f"""
tenants:
  - id: x
    name: X
    production_date: 2026-03-01
    metrics: [seats_chat]
    {extra}
    regions: [{{code: us, locations: [{{code: d, switches: []}}]}}]
"""
    with pytest.raises(ConfigError, match="tenant 'x': " + message.replace("(", r"\(")):
        parse_config(text, str(tmp_path / "bds.yaml"))


def test_replaced_mark_sql_binds_only_known_parameters(tmp_path, new_db):
    """An operator's mark query (readiness_sql) with bind parameters, read for real."""
    from bds_metrics.config import parse_config
    from bds_metrics.readiness import read_mark

    gim = new_db("gim")
    with psycopg.connect(gim, autocommit=True) as c:
        c.execute("INSERT INTO ctl_audit_log VALUES (1, 'etl_a', %s, 0), (2, 'etl_b', %s, 0)",
                  (D1 + 50, D1 - 50))
    (tmp_path / "mark.sql").write_text(
        "-- params: day_end\nSELECT min(max_chunk_ts) FROM ctl_audit_log "
        "WHERE max_chunk_ts < $1 + 86400\n")
    cfg = tmp_path / "bds.yaml"
    t = parse_config("""
tenants:
  - id: x
    name: X
    production_date: 2026-03-01
    timezone: America/New_York
    metrics: [seats_chat]
    readiness_sql: mark.sql
    regions: [{code: us, locations: [{code: d, switches: []}]}]
""", str(cfg)).tenants[0]
    assert asyncio.run(read_mark(t, DAY, gim)) == D1 - 50  # the slower of two ETL jobs
    (tmp_path / "mark.sql").write_text("-- params: password\nSELECT 1\n")
    with pytest.raises(ValueError, match=r"unknown bind parameter\(s\) \['password'\]"):
        asyncio.run(read_mark(t, DAY, gim))
