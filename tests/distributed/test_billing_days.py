"""One billing day, one run, through the real scheduler, DAG processor, triggerer and
API server (LocalExecutor, metadata DB on the test PostgreSQL): SPEC §8.

- A manual trigger through the REST API names a billing day (a bare date for a New York
  tenant, a time of day for a Kathmandu tenant): its run's logical date is that day's
  first instant and it bills that day; the catch-up after unpausing skips the day that
  already has its run (one run per day).
- A backfill created ahead of the catch-up (Airflow 3.3 then moves the scheduler's next
  run past the days in between) still ends with every billing day billed, through the
  `bds_billing_days` maintenance DAG.
- `bds run` against the scheduler's metadata DB re-runs its day in place and leaves the
  next day's run untouched.

The days are the last few days before now (the scheduler only creates runs of days that
have ended), so the data is generated for them at set-up.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bds_metrics.datasets import SQL_DIR
from tests.conftest import dsn
from tests.distributed.cluster import TERMINAL, Cluster, wait_for
from tests.distributed.data import tenant_rows
from tests.gim import insert

pytestmark = pytest.mark.xdist_group("distributed")

TENANTS = {  # id: (tenant_key, tenant_dbid, zone, days back of production)
    "nyc": (201, 21, "America/New_York", 2),
    "ktm": (202, 22, "Asia/Kathmandu", 2),
    "gap": (203, 23, "America/New_York", 4),
}
CONFIG = """
defaults:
  output_root: {root}/out
  staging_root: {root}/staging
  wait_for_settle: false
  retries: 3
  retry_delay_seconds: 2
tenants:
"""
TENANT = """  - id: {id}
    name: Tenant {id}
    production_date: {production}
    timezone: {zone}
    gimdb_conn_id: bd_gim_{id}
    gim: {{tenant_key: {key}, tenant_dbid: {dbid}}}
    metrics: [seats_chat]
    regions:
      - code: all
        locations:
          - {{code: all_default, switches: []}}
"""


class LocalCluster(Cluster):
    """The cluster of cluster.py with the LocalExecutor, cron scheduling on, DAGs paused
    at creation, a triggerer and no Celery workers."""

    def env(self, worker: str | None = None) -> dict[str, str]:
        env = super().env(worker)
        env.update({
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        })
        return env

    def start_airflow(self) -> None:
        af = str(Path(sys.executable).with_name("airflow"))
        self._spawn("api-server", [af, "api-server", "-H", "127.0.0.1", "-p",
                                   str(self.api_port), "-w", "1"], self.env())
        self._spawn("scheduler", [af, "scheduler"], self.env())
        self._spawn("dag-processor", [af, "dag-processor"], self.env())
        self._spawn("triggerer", [af, "triggerer"], self.env())


def _today(zone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(zone)).date()


@pytest.fixture(scope="module")
def env(tmp_path_factory, pg) -> Iterator[dict]:
    from psycopg.conninfo import conninfo_to_dict

    from bds_metrics.config import load_config
    from tests.conftest import admin, airflow_conn_json

    root = tmp_path_factory.mktemp("billing-days")
    server = {k: str(v) for k, v in conninfo_to_dict(os.environ["BDS_TEST_PG_DSN"]).items()}
    cluster = LocalCluster(root / "cluster", server, root / "bds.yaml", workers=())
    atexit.register(cluster.stop)
    made: list[str] = []
    try:
        cluster.begin_metadata_db()
        text = CONFIG.format(root=root)
        for t, (key, dbid, zone, back) in TENANTS.items():
            production = _today(zone) - dt.timedelta(days=back)
            text += TENANT.format(id=t, production=production, zone=zone, key=key, dbid=dbid)
            db = f"bdsbd_gim_{t}_{os.getpid()}"
            admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            admin(f"CREATE DATABASE {db}")
            made.append(db)
            import psycopg

            with psycopg.connect(dsn(db), autocommit=True) as c:
                c.execute((SQL_DIR / "gim" / "schema.sql").read_text())
            days = [production + dt.timedelta(days=k) for k in range(back + 1)]
            insert(dsn(db), tenant_rows(key, dbid, zone, days, seed=key))
            cluster.connections[f"bd_gim_{t}"] = airflow_conn_json(db)
        (root / "bds.yaml").write_text(text)
        cluster.finish_metadata_db()
        # the extracts' pools (bds_<conn_id>), as an operator's `bds pools` makes them
        subprocess.run([str(Path(sys.executable).with_name("bds")), "pools"],
                       env=cluster.env(), check=True, capture_output=True, timeout=300)
        cluster.start_airflow()
        cluster.wait_ready([f"bds_{t}" for t in TENANTS] + ["bds_billing_days"], timeout=240)
        yield {"cluster": cluster, "config": load_config(root / "bds.yaml"), "root": root}
    finally:
        cluster.stop()
        for name in made:
            with contextlib.suppress(Exception):
                admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _runs(cluster: Cluster, dag_id: str) -> list[dict]:
    return list(cluster.get(f"/api/v2/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])


def _unpause(cluster: Cluster, dag_id: str) -> None:
    r = cluster.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    assert r.status_code == 200, r.text


def _day_of(run: dict, zone: str) -> dt.date:
    return dt.datetime.fromisoformat(run["logical_date"]).astimezone(ZoneInfo(zone)).date()


def _wait_every_day_billed(cluster: Cluster, t, days: list[dt.date], timeout: float) -> list:
    """Every day of `days` has a finished run; no run of the DAG is still going."""
    dag_id = f"bds_{t.id}"

    def done():
        runs = _runs(cluster, dag_id)
        have = {_day_of(r, t.timezone) for r in runs}
        if set(days) <= have and all(r["state"] in TERMINAL for r in runs):
            return runs
        return None

    def report() -> str:
        states = [(r["dag_run_id"], r["state"]) for r in _runs(cluster, dag_id)]
        return f"runs: {states}\n{cluster.logs(lines=30)}"

    return wait_for(f"every billing day of {dag_id} run", done, timeout, 3, on_timeout=report)


def _why(cluster: Cluster, dag_id: str, run_id: str) -> str:
    """The run's unsuccessful tasks and the end of their logs."""
    out = []
    for ti in cluster.task_instances(dag_id, run_id):
        if ti["state"] != "success":
            out.append(f"{ti['task_id']}: {ti['state']} try {ti.get('try_number')}")
            folder = cluster.root / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / \
                f"task_id={ti['task_id']}"
            for log in sorted(folder.glob("attempt=*.log"))[-1:]:
                out.append("\n".join(log.read_text(errors="replace").splitlines()[-15:]))
    return "\n".join(out)


def _assert_one_billed_run_per_day(root: Path, t, runs: list[dict], days: list[dt.date],
                                   cluster: Cluster | None = None):
    from bds_metrics.days import billing_day

    by_day: dict[dt.date, list[dict]] = {}
    for r in runs:
        by_day.setdefault(_day_of(r, t.timezone), []).append(r)
    for day in days:
        assert len(by_day.get(day, [])) == 1, f"{t.id} {day}: {by_day.get(day)}"
        run = by_day[day][0]
        p = billing_day(day, t.timezone)
        assert run["state"] == "success", (run, cluster and _why(cluster, f"bds_{t.id}",
                                                                  run["dag_run_id"]))
        assert dt.datetime.fromisoformat(run["logical_date"]).timestamp() == p.start
        assert dt.datetime.fromisoformat(run["data_interval_start"]).timestamp() == p.start
        assert dt.datetime.fromisoformat(run["data_interval_end"]).timestamp() == p.end
        folder = root / "out" / t.id / "daily" / day.isoformat()
        assert (folder / "manifest.json").exists(), folder
    assert all(len(v) == 1 for v in by_day.values()), by_day


def _reference(env, t, day: dt.date) -> dict[str, bytes]:
    """The day's billing files computed in this process on a local root of its own."""
    from bds_metrics import pipeline
    from bds_metrics.config import load_config
    from tests.conftest import dsn

    ref_cfg = env["root"] / "ref.yaml"
    if not ref_cfg.exists():
        ref_cfg.write_text((env["root"] / "bds.yaml").read_text().replace(
            str(env["root"]) + "/out", str(env["root"]) + "/ref/out").replace(
            str(env["root"]) + "/staging", str(env["root"]) + "/ref/staging"))
    rt = load_config(ref_cfg).tenant(t.id)
    dbs = {f"bd_gim_{x}": dsn(f"bdsbd_gim_{x}_{os.getpid()}") for x in TENANTS}
    folder = Path(pipeline.run_day(rt, day, dbs.__getitem__))
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".csv"}


def test_manual_triggers_name_the_billing_day_and_catch_up_skips_it(env):
    cluster: Cluster = env["cluster"]
    cfg = env["config"]
    nyc, ktm = cfg.tenant("nyc"), cfg.tenant("ktm")
    d_nyc = nyc.production_date + dt.timedelta(days=1)
    d_ktm = ktm.production_date + dt.timedelta(days=1)

    # a bare date (New York, west of UTC) and a time of day (Kathmandu, +05:45)
    r1 = cluster.request("POST", "/api/v2/dags/bds_nyc/dagRuns",
                         json={"logical_date": d_nyc.isoformat(), "conf": {}})
    r2 = cluster.request("POST", "/api/v2/dags/bds_ktm/dagRuns",
                         json={"logical_date": f"{d_ktm.isoformat()}T15:30:00+05:45"})
    assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
    from bds_metrics.days import billing_day

    for resp, t, day in ((r1, nyc, d_nyc), (r2, ktm, d_ktm)):
        run = resp.json()
        p = billing_day(day, t.timezone)
        assert dt.datetime.fromisoformat(run["logical_date"]).timestamp() == p.start, run
        assert dt.datetime.fromisoformat(run["data_interval_end"]).timestamp() == p.end, run
        assert run["dag_run_id"].startswith(f"manual__{day.isoformat()}_"), run
    # a trigger that names no day is refused, in one sentence, and creates nothing
    r3 = cluster.request("POST", "/api/v2/dags/bds_nyc/dagRuns", json={"logical_date": None})
    assert r3.status_code == 400 and "logical date" in r3.json()["detail"], r3.text
    # a day before the production date: nothing to bill, refused
    early = nyc.production_date - dt.timedelta(days=1)
    r5 = cluster.request("POST", "/api/v2/dags/bds_nyc/dagRuns",
                         json={"logical_date": early.isoformat()})
    assert r5.status_code == 400, r5.text
    assert r5.json()["detail"] == (f"bds_nyc: billing day {early} is before the tenant's "
                                   f"production date {nyc.production_date}: there is "
                                   "nothing to bill"), r5.text
    # the same day again (as another instant of it): 409 naming the day's run
    r6 = cluster.request("POST", "/api/v2/dags/bds_nyc/dagRuns",
                         json={"logical_date": f"{d_nyc.isoformat()}T13:00:00-05:00"})
    assert r6.status_code == 409, r6.text
    assert r6.json()["detail"].startswith(
        f"bds_nyc: billing day {d_nyc} already has run {r1.json()['dag_run_id']} ("), r6.text
    assert r6.json()["detail"].endswith(
        f"clear that run in the UI, or run `bds run -t nyc --from {d_nyc}`"), r6.text
    # without credentials, Airflow's authentication answers first
    r4 = cluster.request("POST", "/api/v2/dags/bds_nyc/dagRuns", auth=False,
                         json={"logical_date": d_nyc.isoformat()})
    assert r4.status_code in (401, 403), r4.text

    from bds_airflow.billing_days import due_days

    now = dt.datetime.now(dt.UTC)
    for t in (nyc, ktm):
        _unpause(cluster, f"bds_{t.id}")
    for t in (nyc, ktm):
        days = due_days(t, now, grace_hours=0)
        runs = _wait_every_day_billed(cluster, t, days, timeout=900)
        _assert_one_billed_run_per_day(env["root"], t, runs, days, cluster)
    # the manually triggered day bills exactly what an in-process run of that day bills
    folder = env["root"] / "out" / "nyc" / "daily" / d_nyc.isoformat()
    got = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".csv"}
    assert got == _reference(env, nyc, d_nyc)

    # `bds run` of the day before the manual one, against the scheduler's metadata DB:
    # re-runs that day's scheduled run in place; the next day's (manual) run is untouched
    d_run = nyc.production_date
    before = {r["dag_run_id"]: r for r in _runs(cluster, "bds_nyc")}
    nxt = next(r for r in before.values() if _day_of(r, nyc.timezone) == d_nyc)
    mine = next(r for r in before.values() if _day_of(r, nyc.timezone) == d_run)
    assert d_nyc == d_run + dt.timedelta(days=1) and mine["run_type"] == "scheduled"
    proc = subprocess.run([str(Path(sys.executable).with_name("bds")), "run", "-t", "nyc",
                           "--from", d_run.isoformat()], env=cluster.env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"nyc {d_run.isoformat()} ok" in proc.stdout, proc.stdout
    after = {r["dag_run_id"]: r for r in _runs(cluster, "bds_nyc")}
    assert sorted(after) == sorted(before)  # no run created, deleted or renamed
    assert after[nxt["dag_run_id"]] == nxt
    assert after[mine["dag_run_id"]]["state"] == "success"
    assert after[mine["dag_run_id"]]["run_type"] == "scheduled"
    assert got == {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".csv"}


def test_a_backfill_ahead_of_the_catch_up_leaves_no_day_without_a_run(env):
    cluster: Cluster = env["cluster"]
    t = env["config"].tenant("gap")
    from bds_airflow.billing_days import due_days

    days = due_days(t, dt.datetime.now(dt.UTC))
    assert len(days) >= 3, days
    first, last = days[-2], days[-1]
    # a backfill of the last two days with plain dates, while the DAG is still paused
    r = cluster.request("POST", "/api/v2/backfills", json={
        "dag_id": "bds_gap", "from_date": f"{first.isoformat()}T00:00:00Z",
        "to_date": f"{last.isoformat()}T00:00:00Z", "max_active_runs": 2})
    assert r.status_code == 200, r.text
    runs = _runs(cluster, "bds_gap")
    assert sorted(_day_of(x, t.timezone) for x in runs) == [first, last], runs
    _unpause(cluster, "bds_gap")
    time.sleep(15)  # the DAG processor and scheduler settle on their next run
    # then the maintenance DAG (hourly) closes the gap; here it is triggered at once
    _unpause(cluster, "bds_billing_days")
    r = cluster.request("POST", "/api/v2/dags/bds_billing_days/dagRuns",
                        json={"logical_date": None})
    assert r.status_code == 200, r.text
    runs = _wait_every_day_billed(cluster, t, days, timeout=900)
    _assert_one_billed_run_per_day(env["root"], t, runs, days, cluster)
    kinds = {_day_of(x, t.timezone): x["run_type"] for x in runs}
    assert kinds[first] == kinds[last] == "backfill"

    # A day whose run is gone (deleted in the UI): the maintenance DAG creates it again,
    # and that run bills that day (its data interval, not the day it was created).
    lost = days[0]
    gone = next(r for r in runs if _day_of(r, t.timezone) == lost)
    r = cluster.request("DELETE", f"/api/v2/dags/bds_gap/dagRuns/{gone['dag_run_id']}")
    assert r.status_code == 204, r.text
    r = cluster.request("POST", "/api/v2/dags/bds_billing_days/dagRuns",
                        json={"logical_date": None})
    assert r.status_code == 200, r.text
    runs = _wait_every_day_billed(cluster, t, days, timeout=600)
    again = [x for x in runs if _day_of(x, t.timezone) == lost]
    assert len(again) == 1 and "__gap-" in again[0]["dag_run_id"], again
    _assert_one_billed_run_per_day(env["root"], t, runs, days, cluster)
