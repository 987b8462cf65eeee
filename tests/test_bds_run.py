"""`bds run` shares the run identity of the scheduler (SPEC §8, §9): it bills the day it
names (DST days whose midnight is skipped or repeated included), never deletes or
relabels another day's run, re-runs an existing run of the day in place, and refuses a
day that is already running in one line.

Cases from ../shared/cases/billing-day (copied under tests/data/cases), on the real test
PostgreSQL and the run's real Airflow metadata DB.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import airflow_conn_json, dbname_of
from tests.gim import set_mark

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.usefixtures("airflow_db")]
CASES = Path(__file__).parent / "data" / "cases" / "billing-day"
D = dt.date.fromisoformat


def _load_case(name: str, tmp_path, new_db, monkeypatch, sql: str | None = None):
    from bds_metrics.config import load_config

    gim = new_db("gim")
    with psycopg.connect(gim, autocommit=True) as c:
        c.execute(sql if sql is not None else (CASES / name / "inserts.sql").read_text())
    set_mark(gim, 2_000_000_000)  # the ETL mark (SPEC §8 readiness): past the case's days
    monkeypatch.setenv("BDS_CASE_DIR", str(tmp_path))
    monkeypatch.setenv("BDS_CONFIG", str(CASES / name / "bds.yaml"))
    for conn in ("BH_GIM", "BH_GVP"):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn}", airflow_conn_json(dbname_of(gim)))
    cfg = load_config(CASES / name / "bds.yaml")
    return cfg.tenants[0]


def _csv_values(path: Path) -> list[tuple[str, str, str]]:
    """(Region, AgentGroupName, MessageSize) of a billing CSV."""
    lines = path.read_text().splitlines()[1:]
    return [tuple(line.split(",")[i] for i in (7, 13, 14)) for line in lines]


def _runs(dag_id: str) -> list[tuple]:
    """(run_id, run_type, logical_date, data_interval_start, state) from the metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        rows = s.scalars(select(DagRun).where(DagRun.dag_id == dag_id)
                         .order_by(DagRun.logical_date)).all()
        return [(r.run_id, str(r.run_type), r.logical_date, r.data_interval_start, str(r.state))
                for r in rows]


def test_santiago_day_before_a_skipped_midnight_bills_that_day(tmp_path, new_db, monkeypatch):
    """America/Santiago: 2026-09-06 00:00 does not exist. Asking for 09-05 bills 09-05
    (one agent), 09-06 bills 09-06 (two agents), each in its own folder."""
    from bds_airflow.runner import run_days

    t = _load_case("santiago-gap", tmp_path, new_db, monkeypatch)
    out = tmp_path / "out" / t.id / "daily"
    lines: list[str] = []
    assert run_days(t, D("2026-09-05"), D("2026-09-05"), echo=lines.append) == 0
    assert lines == [f"{t.id} 2026-09-05 ok     {out / '2026-09-05'}"]
    assert sorted(p.name for p in out.iterdir()) == ["2026-09-05"]
    assert _csv_values(out / "2026-09-05" / f"{t.id}_seats_chat_20260905.csv") == \
        [("r1", "1", "1"), ("r1", "2", "1")]
    assert run_days(t, D("2026-09-06"), D("2026-09-06"), echo=lines.append) == 0
    assert _csv_values(out / "2026-09-06" / f"{t.id}_seats_chat_20260906.csv") == \
        [("r1", "1", "2"), ("r1", "2", "2")]
    manifest = json.loads((out / "2026-09-06" / "manifest.json").read_text())
    assert manifest["period"]["start"] == "2026-09-06T04:00:00Z"  # 01:00 local, -03
    runs = _runs(f"bds_{t.id}")
    assert [(r[2].isoformat(), r[3].isoformat()) for r in runs] == [
        ("2026-09-05T04:00:00+00:00", "2026-09-05T04:00:00+00:00"),
        ("2026-09-06T04:00:00+00:00", "2026-09-06T04:00:00+00:00")]
    assert [r[0].split("__")[1] for r in runs] == ["2026-09-05_America.Santiago",
                                                     "2026-09-06_America.Santiago"]


def _utc(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


# America/Havana 2026-11-01 repeats midnight (01:00 CDT -> 00:00 CST): the billing day is
# [2026-11-01T04:00Z, 2026-11-02T05:00Z), 25 hours; 10-31 is [10-31T04:00Z, 11-01T04:00Z).
HAVANA_SESSIONS = [  # (id, agent, start UTC, end UTC, chat UTC): local times in comments
    (1, 1002, "2026-10-31T02:40", "2026-10-31T03:40", "2026-10-31T02:50"),  # 10-30 22:40
    (2, 1002, "2026-10-31T04:40", "2026-10-31T05:40", "2026-10-31T04:45"),  # 10-31 00:40
    (3, 1001, "2026-11-01T03:45", "2026-11-01T04:10", "2026-11-01T03:46:40"),  # 23:45..00:10
    (4, 1001, "2026-11-02T04:20", "2026-11-02T05:20", "2026-11-02T04:26:40"),  # 11-01 23:20
]


def _havana_sql() -> str:
    rows = ["INSERT INTO media_type VALUES (1, 'Voice', 'VOICE'), (2, 'Chat', 'CHAT');",
            "INSERT INTO interaction_type VALUES (1, 'INBOUND');",
            "INSERT INTO resource_ (resource_key, tenant_key, resource_type_code, "
            "resource_name, employee_id, switch_name, resource_cfg_dbid) VALUES "
            "(10, 1, 'AGENT', 'a1', 'e1', 'SW1', 1001), (11, 1, 'AGENT', 'a2', 'e2', 'SW1', 1002);"]
    for sid, agent, start, end, chat in HAVANA_SESSIONS:
        rows.append("INSERT INTO gidb_g_login_session_mm (id, loginsessionid, agentid, tenantid, "
                    f"created_ts, terminated_ts) VALUES ({sid}, 'L{sid}', {agent}, 1, "
                    f"{_utc(start)}, {_utc(end)});")
        rows.append("INSERT INTO interaction_resource_fact (interaction_resource_id, "
                    "interaction_id, tenant_key, resource_key, media_type_key, start_ts, end_ts, "
                    f"talk_duration, call_attempt_id) VALUES ({sid}, {sid}, 1, "
                    f"{10 if agent == 1001 else 11}, 2, {_utc(chat)}, NULL, 60, NULL);")
    return "\n".join(rows)


def test_havana_day_whose_midnight_repeats_is_billed_once(tmp_path, new_db, monkeypatch):
    """America/Havana 2026-11-01 (25 h, midnight repeated) and the day before, each in
    its own folder with its own sessions, worked by hand:

    - 10-31: L2 (1002, its chat inside) and L3 up to the day's end (1001, its chat at
      23:46:40 local is inside): 2 enabled; they never overlap: peak 1. L1 is 10-30's.
    - 11-01: L3's last ten minutes (a qualifying session counts whole) and L4 clipped to
      the day's end: agent 1001 only: 1 and 1.
    """
    from bds_airflow.runner import run_days
    from bds_metrics.config import load_config
    from bds_metrics.days import billing_day

    cfg = (CASES / "santiago-gap" / "bds.yaml").read_text().replace(
        "America/Santiago", "America/Havana").replace("- id: scl", "- id: hav")
    _load_case("santiago-gap", tmp_path, new_db, monkeypatch, sql=_havana_sql())
    (tmp_path / "bds.yaml").write_text(cfg)
    monkeypatch.setenv("BDS_CONFIG", str(tmp_path / "bds.yaml"))
    t = load_config(tmp_path / "bds.yaml").tenant("hav")
    p = billing_day(D("2026-11-01"), t.timezone)
    assert (p.start, p.end) == (_utc("2026-11-01T04:00"), _utc("2026-11-02T05:00"))
    assert run_days(t, D("2026-10-31"), D("2026-11-01"), echo=lambda s: None) == 0
    out = tmp_path / "out" / "hav" / "daily"
    assert sorted(x.name for x in out.iterdir()) == ["2026-10-31", "2026-11-01"]
    assert _csv_values(out / "2026-10-31" / "hav_seats_chat_20261031.csv") == \
        [("r1", "1", "1"), ("r1", "2", "2")]
    assert _csv_values(out / "2026-11-01" / "hav_seats_chat_20261101.csv") == \
        [("r1", "1", "1"), ("r1", "2", "1")]


def test_bds_run_never_touches_another_days_run(tmp_path, new_db, monkeypatch):
    """The shared case `next-day-run`: `bds run` 11-01, a backfill of 11-03, `bds run`
    11-02: the backfill's run of 11-03 survives untouched, a dry-run backfill over
    11-02..11-03 knows both days, and `bds run` of 11-03 while its backfill run is
    queued is refused in one line. A second `bds run` of 11-02 re-runs its run in place."""
    from bds_airflow.runner import _day_lock, run_days

    t = _load_case("next-day-run", tmp_path, new_db, monkeypatch)
    dag_id = f"bds_{t.id}"
    lines: list[str] = []
    assert run_days(t, D("2026-11-01"), D("2026-11-01"), echo=lines.append) == 0
    airflow = str(Path(sys.executable).with_name("airflow"))

    def backfill(first: str, last: str, *extra: str) -> str:
        proc = subprocess.run([airflow, "backfill", "create", "--dag-id", dag_id,
                               "--from-date", first, "--to-date", last, *extra],
                              env=dict(os.environ), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    backfill("2026-11-03", "2026-11-03")  # plain dates: exactly 11-03
    before = _runs(dag_id)
    assert [(r[1], r[2].date().isoformat()) for r in before] == [
        ("manual", "2026-11-01"), ("backfill", "2026-11-03")]
    assert run_days(t, D("2026-11-02"), D("2026-11-02"), echo=lines.append) == 0
    after = _runs(dag_id)
    assert after[-1] == before[-1]  # the backfill's run of 11-03, as it was
    assert [r[2].date().isoformat() for r in after] == ["2026-11-01", "2026-11-02",
                                                          "2026-11-03"]
    dry = backfill("2026-11-02", "2026-11-03", "--dry-run")
    attempted = dry.split("Runs to be attempted:")[1]
    assert "2026-11" not in attempted, dry  # both days have their run

    # the day whose backfill run waits for a scheduler: refused, one line
    lines.clear()
    assert run_days(t, D("2026-11-03"), D("2026-11-03"), echo=lines.append) == 1
    assert len(lines) == 1 and lines[0].startswith(f"{t.id} 2026-11-03 REFUSED run backfill__")
    assert "already queued" in lines[0]

    # re-running 11-02 keeps its run (id and type) and runs its tasks again
    run_02 = next(r for r in after if r[2].date() == D("2026-11-02"))
    assert run_days(t, D("2026-11-02"), D("2026-11-02"), echo=lines.append) == 0
    again = next(r for r in _runs(dag_id) if r[2].date() == D("2026-11-02"))
    assert again[:4] == run_02[:4] and again[4] == "success"
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        tries = {ti.task_id: ti.try_number for ti in s.query(TaskInstance)
                 .filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_02[0])}
    assert tries["emit.daily_files"] == 2, tries

    # another bds run of the same day on this machine at the same moment: refused
    with _day_lock(t, D("2026-11-02")):
        lines.clear()
        assert run_days(t, D("2026-11-02"), D("2026-11-02"), echo=lines.append) == 1
    assert lines == [f"{t.id} 2026-11-02 REFUSED another bds run of this day is running "
                     "on this machine"]
