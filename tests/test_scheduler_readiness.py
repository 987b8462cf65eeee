"""Readiness, alerts, pools and assets through a real scheduler, DAG processor,
triggerer and api-server (LocalExecutor) on loopback (SPEC §8).

One Info Mart (tests/cases.py's hand-worked day) serves four tenants:
- `r_wait`: its mark is behind the day's end: the readiness task waits *deferred* in
  the triggerer; no worker ever runs it (no host, no pid, while waiting and after);
  advancing the mark lets it bill the hand-worked files;
- `r_late`: the same mark, but its deadline has passed: the alert reaches the loopback
  SMTP and HTTP servers and nothing is billed;
- `r_wait` and `r_p1` extract through one connection whose pool has one slot:
  sampling pg_stat_activity on the Info Mart never sees two extract sessions at once;
- the example importer DAG (bds_metrics/demo/importer_dag.py) runs on `r_wait`'s daily
  Asset event and reads its period and folder.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.cases import D0, D1, ROWS, expected_for
from tests.conftest import airflow_conn_json, dsn
from tests.gim import insert, set_mark
from tests.loopback import Mailbox, Webhook

pytestmark = pytest.mark.xdist_group("airflow_scheduler")
REPO = Path(__file__).resolve().parents[1]

CONFIG = """
defaults:
  gimdb_conn_id: sched_gim
  output_root: {root}/out
  staging_root: {root}/staging
  settle_hours: 0
  readiness_poll_seconds: 1
  retries: 0
  pool_size: 1
tenants:
{tenants}
"""
TENANT = """  - id: {id}
    name: "Acme, Corp"
    tier1: {{id: "R100", name: "Reseller One"}}
    production_date: 2026-03-01
    timezone: America/New_York
    gim: {{tenant_key: 101, tenant_dbid: 1}}
    metrics: [seats_chat, seats_outbound]
{extra}    regions:
      - code: us
        name: United States
        locations:
          - {{code: us_east, switches: [SIP_East_1, SIP_East_2]}}
          - {{code: us_default, switches: []}}
      - code: eu
        locations:
          - {{code: eu_west, switches: [SIP_Dublin]}}
"""
FAR = "    publish_deadline_hours: 50000\n"  # the 2026-03-08 day is not late for these
ALERTS = ("    alerts: {email_conn_id: sched_smtp, email_to: [ops@example.com], "
          "webhook_conn_id: sched_hook, webhook_endpoint: /bds}\n")
TENANTS = {"r_wait": FAR, "r_late": ALERTS, "r_p1": FAR}
START = dt.datetime(2026, 3, 8, 5, tzinfo=dt.UTC)  # 2026-03-08 00:00 New York
END = dt.datetime(2026, 3, 9, 4, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def env(tmp_path_factory, pg):
    from psycopg.conninfo import conninfo_to_dict

    from tests.local_cluster import LocalCluster

    root = tmp_path_factory.mktemp("sched")
    server = {k: str(v) for k, v in conninfo_to_dict(os.environ["BDS_TEST_PG_DSN"]).items()}
    gim = f"bdst_sched_gim_{os.getpid()}"
    from tests.conftest import admin

    admin(f"DROP DATABASE IF EXISTS {gim} WITH (FORCE)")
    admin(f"CREATE DATABASE {gim}")
    with psycopg.connect(dsn(gim), autocommit=True) as c:
        c.execute((REPO / "bds_metrics" / "sql" / "gim" / "schema.sql").read_text())
    insert(dsn(gim), ROWS)
    set_mark(dsn(gim), D1 - 600)  # the ETL is 10 minutes short of the day's end
    cfg = root / "bds.yaml"
    cfg.write_text(CONFIG.format(root=root, tenants="".join(
        TENANT.format(id=t, extra=x) for t, x in TENANTS.items())))
    box, hook = Mailbox(), Webhook()
    cluster = LocalCluster(root / "cluster", server, cfg,
                           extra_dags=[REPO / "bds_metrics/demo/importer_dag.py"])
    atexit.register(cluster.stop)
    cluster.connections.update({"sched_gim": airflow_conn_json(gim),
                                "sched_smtp": box.conn_json(), "sched_hook": hook.conn_json()})
    try:
        cluster.begin_metadata_db()
        cluster.finish_metadata_db()
        # the pools, as an operator creates them (README Operations)
        bds = str(Path(os.sys.executable).with_name("bds"))
        out = subprocess.run([bds, "pools", "--config", str(cfg)], env=cluster.env(),
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "pool bds_sched_gim: 1 slots"
        cluster.start_airflow()
        cluster.wait_ready([f"bds_{t}" for t in TENANTS] + ["import_r_wait"], timeout=240)
        for d in ["import_r_wait", *(f"bds_{t}" for t in TENANTS)]:
            cluster.request("PATCH", f"/api/v2/dags/{d}", json={"is_paused": False})
        yield {"cluster": cluster, "gim": dsn(gim), "root": root, "box": box, "hook": hook}
    finally:
        cluster.stop()
        box.stop()
        hook.stop()
        admin(f"DROP DATABASE IF EXISTS {gim} WITH (FORCE)")


def _trigger(cluster, tenant: str) -> tuple[str, str]:
    run_id = f"manual__{tenant}_2026-03-08"
    cluster.trigger(f"bds_{tenant}", run_id, START, END, {})
    return f"bds_{tenant}", run_id


def _ti(cluster, key, task_id):
    return next(t for t in cluster.task_instances(*key) if t["task_id"] == task_id)


class Sampler(threading.Thread):
    """Counts the Info Mart's client sessions of the extracts every 20 ms (not the
    readiness trigger's, not this test's)."""

    def __init__(self, gim_dsn: str, skip_pids: set[int]) -> None:
        super().__init__(daemon=True)
        self.gim_dsn, self.skip = gim_dsn, skip_pids
        self.max = 0
        self.samples = 0
        self.seen = 0
        self.stop = threading.Event()

    def run(self) -> None:
        dbname = psycopg.conninfo.conninfo_to_dict(self.gim_dsn)["dbname"]
        with psycopg.connect(dsn("postgres"), autocommit=True) as c:
            while not self.stop.is_set():
                n = c.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                    "backend_type = 'client backend' AND application_name <> 'bds-readiness' "
                    "AND NOT (pid = ANY(%s))", (dbname, list(self.skip))).fetchone()[0]
                self.max = max(self.max, n)
                self.samples += 1
                self.seen += n > 0
                time.sleep(0.02)


def test_wait_deferred_then_bill_late_alert_pool_and_importer(env):
    cluster, gim = env["cluster"], env["gim"]
    wait = _trigger(cluster, "r_wait")
    late = _trigger(cluster, "r_late")

    # r_late: past its deadline with the mark behind: alert, run failed, nothing billed
    states = cluster.wait_runs([late], timeout=600)
    assert states[late] == "failed"
    ti = _ti(cluster, late, "wait_settled")
    assert ti["state"] == "failed"
    assert not (env["root"] / "out" / "r_late").exists()
    # The "day not published" deadline the scheduler stored for the run: the billing
    # day's end (a 23-hour day: 2026-03-09T04:00Z) + publish_deadline_hours (30)
    with psycopg.connect(dsn(cluster.metadata_db)) as c:
        stored = c.execute(
            "SELECT d.deadline_time FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id "
            "WHERE r.dag_id = %s AND r.run_id = %s", late).fetchall()
    assert [row[0] for row in stored] == [dt.datetime(2026, 3, 10, 10, tzinfo=dt.UTC)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (env["hook"].bodies and env["box"].messages):
        time.sleep(0.5)
    body = env["hook"].bodies[0]
    assert (body["kind"], body["tenant"], body["day"], body["task"]) == (
        "task_failed", "r_late", "2026-03-08", "wait_settled")
    assert body["error"] == (
        "tenant 'r_late', day 2026-03-08: not ready: the ETL mark is 2026-03-09T03:50:00Z, "
        "the day ends 2026-03-09T04:00:00Z (2026-03-09 00:00 EDT); past the deadline "
        "2026-03-10T10:00:00Z (publish_deadline_hours 30): not billed")
    assert "bds_r_late" in body["log_url"] and "wait_settled" in body["log_url"]
    subject, text = env["box"].texts()[0]
    assert subject == "[bds] r_late 2026-03-08: task failed: wait_settled"
    assert "the ETL mark is 2026-03-09T03:50:00Z" in text

    # r_wait: deferred in the triggerer; no worker has run it
    def deferred():
        return _ti(cluster, wait, "wait_settled")["state"] == "deferred"

    _until("r_wait deferred", deferred, 120, cluster)
    time.sleep(4)  # four polls of the mark later, still waiting
    ti = _ti(cluster, wait, "wait_settled")
    assert ti["state"] == "deferred" and not ti["hostname"] and ti["pid"] is None, ti
    assert all(_ti(cluster, wait, f"extract.{d}")["state"] in (None, "none")
               for d in ("sm_fact", "mm_sessions"))

    # The mark advances while the Info Mart is busy (a lock on sm_res_session_fact):
    # three tenants' extracts queue in the one-slot pool of the connection.
    with psycopg.connect(gim) as locker:
        locker.execute("LOCK TABLE sm_res_session_fact IN ACCESS EXCLUSIVE MODE")
        lock_pid = locker.info.backend_pid
        sampler = Sampler(gim, {lock_pid})
        sampler.start()
        set_mark(gim, D1 + 3600)
        p1 = _trigger(cluster, "r_p1")
        time.sleep(12)
        locker.rollback()
    states = cluster.wait_runs([wait, p1], timeout=1800)  # a loaded 2-core CI: slow
    sampler.stop.set()
    sampler.join()
    assert states == {wait: "success", p1: "success"}, states
    assert sampler.seen > 0 and sampler.max == 1, (sampler.max, sampler.seen, sampler.samples)

    for tenant in ("r_wait", "r_p1"):
        folder = env["root"] / "out" / tenant / "daily" / "2026-03-08"
        for name, text in expected_for(tenant).items():
            assert (folder / name).read_text() == text, (tenant, name)
    ti = _ti(cluster, wait, "wait_settled")
    assert ti["state"] == "success" and not ti["hostname"] and ti["pid"] is None, ti
    tis = {k: cluster.task_instances(*k) for k in (wait, p1)}
    worker_starts = {k: sum(1 for t in v if t["hostname"]) for k, v in tis.items()}
    print(f"\nworker task starts per tenant-day: {worker_starts} of "
          f"{ {k: len(v) for k, v in tis.items()} } task instances")
    for v in tis.values():  # every task that ran did so on a worker, but the wait
        ran = {t["task_id"] for t in v if t["state"] in ("success", "failed")}
        on_worker = {t["task_id"] for t in v if t["hostname"]}
        assert ran - on_worker == {"wait_settled"}, (ran, on_worker)

    # The importer runs on r_wait's daily Asset event, with the period and folder. The
    # scheduler creates asset-triggered runs only when it schedules jobs (off so far, so
    # that no catch-up runs compete): the billing DAGs are paused, then it is turned on.
    for t in TENANTS:
        cluster.request("PATCH", f"/api/v2/dags/bds_{t}", json={"is_paused": True})
    cluster.restart_scheduler(AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="True")

    def imported():
        runs = cluster.get("/api/v2/dags/import_r_wait/dagRuns")["dag_runs"]
        return runs and all(r["state"] == "success" for r in runs) and runs

    _until("the importer run", imported, 600, cluster)
    runs = cluster.get("/api/v2/dags/import_r_wait/dagRuns")["dag_runs"]
    assert [r["run_type"] for r in runs] == ["asset_triggered"]
    lines = (env["root"] / "out" / "r_wait" / "imported.txt").read_text().splitlines()
    # the day's period and folder (an importer may see one day's event more than once:
    # it keys its import by period)
    assert lines and set(lines) == {
        f"2026-03-08 {env['root'] / 'out' / 'r_wait' / 'daily' / '2026-03-08'}"}, lines
    events = cluster.get("/api/v2/assets/events", limit=50)["asset_events"]
    mine = [e for e in events if e["uri"] == "bds://r_wait/daily"]
    assert len(mine) == 1 and mine[0]["extra"]["period"] == "2026-03-08"
    assert D0 < D1  # the hand-worked day (tests/cases.py)


def test_bds_run_beside_a_live_scheduler_hands_the_day_to_it(env):
    """`bds run` of a day while a scheduler runs on the same metadata DB: the scheduler's
    executor runs the tasks (two executors of one task instance collide: deadlocks,
    "Task Instance not found"), `bds run` re-uses the day's run in place and waits;
    each task runs once more, the files are the hand-worked ones."""
    cluster = env["cluster"]
    # no catch-up runs when r_p1 is unpaused: cron scheduling off again
    cluster.restart_scheduler(AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False")
    _until("the new scheduler", lambda: cluster.get("/api/v2/monitor/health", auth=False)
           ["scheduler"]["status"] == "healthy", 120, cluster)
    cluster.request("PATCH", "/api/v2/dags/bds_r_p1", json={"is_paused": False})
    key = ("bds_r_p1", "manual__r_p1_2026-03-08")
    before = {t["task_id"]: t["try_number"] for t in cluster.task_instances(*key)}
    assert cluster.run_state(*key) == "success"
    bds = str(Path(os.sys.executable).with_name("bds"))
    out = subprocess.run([bds, "run", "-t", "r_p1", "--from", "2026-03-08", "--to",
                          "2026-03-08", "--config", str(cluster.config)],
                         env=cluster.env(), capture_output=True, text=True, timeout=900)
    cluster.request("PATCH", "/api/v2/dags/bds_r_p1", json={"is_paused": True})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    lines = out.stdout.splitlines()
    assert any("run manual__r_p1_2026-03-08: on the running scheduler" in x for x in lines)
    assert lines[-1].startswith("r_p1 2026-03-08 ok"), lines
    runs = cluster.get("/api/v2/dags/bds_r_p1/dagRuns")["dag_runs"]
    assert [r["dag_run_id"] for r in runs] == [key[1]], runs  # the same run, re-used
    after = {t["task_id"]: (t["try_number"], t["state"]) for t in cluster.task_instances(*key)}
    ran = {k: v for k, v in after.items() if v[1] == "success" and k != "wait_settled"}
    assert ran and all(v[0] == before[k] + 1 for k, v in ran.items()), (before, after)
    folder = env["root"] / "out" / "r_p1" / "daily" / "2026-03-08"
    for name, text in expected_for("r_p1").items():
        assert (folder / name).read_text() == text, name


def _until(what, check, timeout, cluster):
    from tests.distributed.cluster import wait_for

    return wait_for(what, check, timeout, 1, on_timeout=cluster.logs)
