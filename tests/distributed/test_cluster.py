"""The distributed topology, natively: Celery workers, staging and output on S3.

One cluster per module (see cluster.py): PostgreSQL metadata DB, Redis broker, an
api-server, a scheduler, a DAG processor and two Celery workers, with `staging_root`
and `output_root` in a bucket of an S3-compatible server on loopback. Runs are
triggered through the REST API v2 for given data intervals; the billing files in the
bucket must equal, byte for byte, those `pipeline.run_day` writes on local disk for
the same days and data.
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
from tests.distributed.cluster import (
    BUCKET,
    S3_CONN_ID,
    TERMINAL,
    Cluster,
    ClusterError,
    wait_for,
)
from tests.distributed.data import slow_source_sql, tenant_rows
from tests.gim import insert

pytestmark = pytest.mark.xdist_group("distributed")

DAYS = [dt.date(2026, 4, 28), dt.date(2026, 4, 29), dt.date(2026, 4, 30)]
SLOW_DAY = dt.date(2026, 4, 30)
SLOW_SECONDS = 12
MONTH = "2026-04"
BACK_DAYS = [dt.date(2026, 4, 29), dt.date(2026, 4, 30), dt.date(2026, 5, 1),
             dt.date(2026, 5, 2)]

CONFIG = """
defaults:
  output_root: {root}/out
  staging_root: {root}/staging
  wait_for_settle: false
  retries: 2
{extra}
tenants:
  - id: acme
    name: "Acme, Corp"
    tier1: {{id: "R100", name: "Reseller One"}}
    production_date: 2026-04-28
    timezone: America/New_York
    gimdb_conn_id: dist_gim_acme
    gim: {{tenant_key: 101, tenant_dbid: 1}}
    metrics: [seats_chat, seats_outbound]
    regions:
      - code: us
        locations:
          - {{code: us_a, switches: [SIP_A]}}
          - {{code: us_default, switches: []}}
      - code: eu
        locations:
          - {{code: eu_b, switches: [SIP_B]}}
    business_units:
      - {{id: acme_BU_1, name: Sales}}
      - {{id: acme_BU_2, name: Support}}
  - id: globex
    name: Globex
    production_date: 2026-04-28
    timezone: UTC
    gimdb_conn_id: dist_gim_globex
    gim: {{tenant_key: 102, tenant_dbid: 2}}
    metrics: [seats_chat, seats_outbound]
    regions:
      - code: emea
        locations:
          - {{code: lon, switches: [SIP_A, SIP_B]}}
          - {{code: emea_default, switches: []}}
  - id: backco
    name: Back Co
    production_date: 2026-04-29
    timezone: America/New_York
    gimdb_conn_id: dist_gim_backco
    gim: {{tenant_key: 104, tenant_dbid: 4}}
    metrics: [seats_chat, seats_outbound]
    regions:
      - code: us
        locations:
          - {{code: us_default, switches: []}}
  - id: slowco
    name: Slow Co
    production_date: 2026-04-30
    timezone: UTC
    gimdb_conn_id: dist_gim_slowco
    gim: {{tenant_key: 103, tenant_dbid: 3}}
    metrics: [seats_chat, seats_outbound]
    regions:
      - code: all
        locations:
          - {{code: all_default, switches: []}}
"""
TENANTS = {  # id: (tenant_key, tenant_dbid, zone, days, seed)
    "acme": (101, 1, "America/New_York", DAYS, 11),
    "globex": (102, 2, "UTC", DAYS, 22),
    "slowco": (103, 3, "UTC", [SLOW_DAY], 33),
    "backco": (104, 4, "America/New_York", BACK_DAYS, 44),
}


def _extra_defaults() -> str:
    from bds_metrics.config import Defaults

    # Retries come quickly where the configuration allows it (retry_delay_seconds).
    return "  retry_delay_seconds: 1" if "retry_delay_seconds" in Defaults.model_fields else ""


def _interval(tenant: str, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = ZoneInfo(TENANTS[tenant][2])
    nxt = day + dt.timedelta(days=1)
    return (dt.datetime(day.year, day.month, day.day, tzinfo=zone),
            dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone))


def _admin(sql: str) -> None:
    from tests.conftest import admin

    admin(sql)


@pytest.fixture(scope="module")
def env(tmp_path_factory, pg) -> Iterator[dict]:
    """Info Marts, the local-disk reference results, and the running cluster."""
    from psycopg.conninfo import conninfo_to_dict

    from bds_metrics import pipeline
    from bds_metrics.config import load_config
    from tests.conftest import airflow_conn_json

    root = tmp_path_factory.mktemp("dist")
    server = {k: str(v) for k, v in conninfo_to_dict(os.environ["BDS_TEST_PG_DSN"]).items()}
    key = f"{os.getpid()}"
    dbs = {t: f"bdsdist_gim_{t}_{key}" for t in TENANTS}
    cluster = Cluster(root / "cluster", server, root / "dist.yaml")
    atexit.register(cluster.stop)  # also when the session is interrupted
    made: list[str] = []
    try:
        cluster.begin_metadata_db()  # `airflow db migrate` runs while the rest is set up
        for t, (tkey, dbid, zone, days, seed) in TENANTS.items():
            _admin(f"DROP DATABASE IF EXISTS {dbs[t]} WITH (FORCE)")
            _admin(f"CREATE DATABASE {dbs[t]}")
            made.append(dbs[t])
            import psycopg

            with psycopg.connect(dsn(dbs[t]), autocommit=True) as c:
                c.execute((SQL_DIR / "gim" / "schema.sql").read_text())
            insert(dsn(dbs[t]), tenant_rows(tkey, dbid, zone, days, seed=seed))
            cluster.connections[f"dist_gim_{t}"] = airflow_conn_json(dbs[t])

        extra = _extra_defaults()
        (root / "local.yaml").write_text(CONFIG.format(root=root / "local", extra=extra))
        s3_root = f"s3://{S3_CONN_ID}@{BUCKET}"
        (root / "dist.yaml").write_text(CONFIG.format(root=s3_root, extra=extra))

        cluster.start_s3()
        cluster.start_redis()
        cluster.finish_metadata_db()
        # the extracts' pools (bds_<conn_id>), as docker-compose's airflow-init makes them
        subprocess.run([str(Path(sys.executable).with_name("bds")), "pools"],
                       env=cluster.env(), check=True, capture_output=True, timeout=300)
        cluster.start_airflow()
        cluster.mark("airflow started")

        # The reference, on local disk, while the cluster boots: the same steps in-process.
        t0 = time.monotonic()
        local = load_config(root / "local.yaml")
        dsns = {f"dist_gim_{t}": dsn(dbs[t]) for t in TENANTS}
        for t, (_, _, _, days, _) in TENANTS.items():
            for day in days:
                pipeline.run_day(local.tenant(t), day, dsns.__getitem__)
        reference_seconds = time.monotonic() - t0
        cluster.mark(f"local reference done ({reference_seconds:.0f}s)")
        # Then slowco's Info Mart answers slowly: its `folder` extract is surely running
        # when the kill test looks.
        import psycopg

        with psycopg.connect(dsn(dbs["slowco"]), autocommit=True) as c:
            c.execute(slow_source_sql("gidb_gc_folder", SLOW_SECONDS))

        cluster.wait_ready([f"bds_{t}" for t in TENANTS])
        print("\ncluster " + ", ".join(f"{t}s {e}" for t, e in cluster.timeline))
        yield {"cluster": cluster, "local": root / "local" / "out",
               "reference_seconds": reference_seconds}
    finally:
        cluster.stop()
        for name in made:
            with contextlib.suppress(Exception):
                _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _bucket_files(cluster: Cluster, prefix: str) -> dict[str, bytes]:
    s3 = cluster.s3_client()
    out: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix):]
            out[name] = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
    return out


def _local_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _billing(files: dict[str, bytes]) -> dict[str, bytes]:
    """What the manifest covers: the CSVs and the manifest (the DAG may add a report)."""
    return {n: b for n, b in files.items() if n.endswith(".csv") or n == "manifest.json"}


def _assert_same_as_local(cluster: Cluster, local: Path, tenant: str, days: list[dt.date]):
    for day in days:
        got = _bucket_files(cluster, f"out/{tenant}/daily/{day.isoformat()}/")
        want = _local_files(local / tenant / "daily" / day.isoformat())
        assert "manifest.json" in got, f"{tenant} {day}: no manifest in the bucket"
        assert sorted(got) == sorted(want), f"{tenant} {day}"
        for name in want:
            assert got[name] == want[name], f"{tenant} {day} {name} differs from local disk"
    got = _billing(_bucket_files(cluster, f"out/{tenant}/monthly/{MONTH}/"))
    want = _billing(_local_files(local / tenant / "monthly" / MONTH))
    assert sorted(got) == sorted(want) and "manifest.json" in want, f"{tenant} {MONTH}"
    for name in want:
        assert got[name] == want[name], f"{tenant} {MONTH} {name} differs from local disk"


def _assert_published_manifest_last(cluster: Cluster, prefix: str) -> None:
    """Each publication of the folder: one PUT per file (no multipart upload, no
    rename), every billing file before the manifest that lists it."""
    import json
    import re

    log = (cluster.root / "s3.log").read_text(errors="replace")
    writes = [(m, k[len(prefix):]) for m, k in re.findall(
        r'"(?:\x1b\[[0-9;]*m)*(PUT|POST|COPY) /' + BUCKET + r'/(\S+) HTTP', log)
        if k.startswith(prefix)]
    assert writes and {m for m, _ in writes} == {"PUT"}, writes
    listed = {f["name"] for f in json.loads(
        _bucket_files(cluster, prefix)["manifest.json"])["files"]}
    since: set[str] = set()
    publications = 0
    for _, name in writes:
        if name == "manifest.json":
            assert listed <= since, f"{prefix}: manifest written before {listed - since}"
            since, publications = set(), publications + 1
        else:
            since.add(name)
    assert publications >= 1 and not (since & listed), f"{prefix}: {writes}"


def _failure_report(cluster: Cluster, runs: list[tuple[str, str]]) -> str:
    lines = []
    for dag_id, run_id in runs:
        with contextlib.suppress(Exception):
            for ti in cluster.task_instances(dag_id, run_id):
                if ti["state"] != "success":
                    lines.append(f"{dag_id} {run_id} {ti['task_id']}: {ti['state']} "
                                 f"on {ti.get('hostname')} try {ti.get('try_number')}")
    return "\n".join(lines) + "\n" + cluster.logs(lines=25)


def test_runs_on_two_workers_write_the_local_results_to_s3(env):
    cluster: Cluster = env["cluster"]
    runs = []
    for tenant in ("acme", "globex"):
        for day in DAYS:
            start, end = _interval(tenant, day)
            run_id = f"dist__{day.isoformat()}"
            cluster.trigger(f"bds_{tenant}", run_id, start, end, {"wait_for_settle": False})
            runs.append((f"bds_{tenant}", run_id))
    states = cluster.wait_runs(runs, timeout=300)
    cluster.mark("6 runs done")
    assert set(states.values()) == {"success"}, f"{states}\n{_failure_report(cluster, runs)}"

    for tenant in ("acme", "globex"):
        _assert_same_as_local(cluster, env["local"], tenant, DAYS)
        for day in DAYS:
            _assert_published_manifest_last(cluster, f"out/{tenant}/daily/{day.isoformat()}/")
        _assert_published_manifest_last(cluster, f"out/{tenant}/monthly/{MONTH}/")

    # Tasks ran on both workers, and inside one run, too.
    workers = set(cluster.workers)
    # The readiness wait ends in the triggerer (no worker, no hostname), and a task the
    # scheduler skips (a month not yet complete) runs nowhere; every other task ran on a
    # worker.
    tis = {run: cluster.task_instances(*run) for run in runs}
    assert all(not ti["hostname"] for run in runs for ti in tis[run]
               if ti["task_id"] == "wait_settled"), tis
    by_run = {run: {ti["hostname"] for ti in tis[run]
                    if ti["task_id"] != "wait_settled" and ti["state"] != "skipped"}
              for run in runs}
    assert set().union(*by_run.values()) == workers, by_run
    assert any(h == workers for h in by_run.values()), by_run

    # XCom carries the URLs; staging lives in the bucket, nothing on local disk.
    dag_id, run_id = runs[0]
    xcom = cluster.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/attribute.agent_bu"
                       "/xcomEntries/return_value")
    assert str(xcom["value"]).startswith(f"s3://{S3_CONN_ID}@{BUCKET}/staging/acme/work/"), xcom
    staged = _bucket_files(cluster, "staging/globex/results/2026-04-29/")
    assert "results.parquet" in staged
    assert not list(cluster.root.rglob("*.parquet")) and not list(cluster.root.rglob("*.csv"))

    # The operator's CLI reads the same bucket through the same connection.
    import subprocess

    proc = subprocess.run([str(Path(sys.executable).with_name("bds")), "verify", "-t", "acme"],
                          env=cluster.env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 period folder(s) checked, 0 problem(s)" in proc.stdout, proc.stdout


def test_a_worker_killed_mid_task_is_retried_on_the_other(env):
    cluster: Cluster = env["cluster"]
    dag_id, run_id, task_id = "bds_slowco", "dist__kill", "extract.folder"
    start, end = _interval("slowco", SLOW_DAY)
    cluster.trigger(dag_id, run_id, start, end, {"wait_for_settle": False})

    def running_on() -> str | None:
        ti = cluster.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        if ti["state"] == "running" and ti.get("hostname") in cluster.workers:
            return str(ti["hostname"])
        if ti["state"] in ("success", "failed"):
            raise ClusterError(f"{task_id} ended before it could be killed: {ti['state']}")
        return None

    victim = wait_for(f"{task_id} running", running_on, 120, 0.3, on_timeout=cluster.logs)
    time.sleep(2)  # inside the slow query by now (it takes SLOW_SECONDS)
    cluster.kill_worker(victim)
    survivor = next(w for w in cluster.workers if w != victim)

    cluster.mark(f"killed {victim}")
    states = cluster.wait_runs([(dag_id, run_id)], timeout=240)
    cluster.mark("run with the killed worker done")
    print("\ncluster " + ", ".join(f"{t}s {e}" for t, e in cluster.timeline))
    assert states[(dag_id, run_id)] == "success", _failure_report(cluster, [(dag_id, run_id)])
    tries = sorted(cluster.task_tries(dag_id, run_id, task_id), key=lambda t: t["try_number"])
    assert len(tries) >= 2, tries
    assert tries[0]["hostname"] == victim and tries[0]["state"] != "success", tries
    assert tries[-1]["hostname"] == survivor and tries[-1]["state"] == "success", tries
    _assert_same_as_local(cluster, env["local"], "slowco", [SLOW_DAY])


def test_airflow_backfill_over_a_month_end(env):
    """`airflow backfill create` through the real scheduler: four New York billing days
    across a month end; every daily file and the completed April equal local disk."""
    import re
    import subprocess

    cluster: Cluster = env["cluster"]
    airflow = str(Path(sys.executable).with_name("airflow"))

    def backfill(*bounds: str, dry: bool = False) -> subprocess.CompletedProcess:
        cmd = [airflow, "backfill", "create", "--dag-id", "bds_backco", "--from-date", bounds[0],
               "--to-date", bounds[1], *(["--dry-run"] if dry else [])]
        return subprocess.run(cmd, env=cluster.env(), capture_output=True, text=True,
                              timeout=240)

    # Plain dates bill exactly those days, for a tenant west of UTC too (the billing-day
    # timetable reads a bare date as that date, not as a UTC midnight).
    dry = backfill("2026-04-29", "2026-05-02", dry=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    # Airflow prints each logical date with its offset (in the DAG's zone or in UTC):
    # each must be the first instant of one New York day, and the days exactly D1..D2.
    listed = re.findall(r"(2026-0[45]-\d\d)[ T](\d\d:\d\d)(?::\d\d)?([+-]\d\d:\d\d|Z)?",
                        dry.stdout.split("attempted:")[1])
    zone = ZoneInfo("America/New_York")
    firsts = set()
    for day, hm, off in listed:
        at = dt.datetime.fromisoformat(f"{day}T{hm}{'+00:00' if off in ('', 'Z') else off}")
        local = at.astimezone(zone)
        assert (local.hour, local.minute) == (0, 0), dry.stdout
        firsts.add(local.date())
    assert sorted(firsts) == BACK_DAYS, dry.stdout
    proc = backfill("2026-04-29", "2026-05-02")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def runs() -> list[dict]:
        doc = cluster.get("/api/v2/dags/bds_backco/dagRuns", limit=50)
        found = [r for r in doc["dag_runs"] if r["run_type"] == "backfill"]
        return found if len(found) == 4 and all(r["state"] in TERMINAL for r in found) else []

    done = wait_for("4 backfill runs of bds_backco", runs, 420, 3,
                    on_timeout=lambda: cluster.logs(lines=25))
    keys = [("bds_backco", r["dag_run_id"]) for r in done]
    assert {r["state"] for r in done} == {"success"}, _failure_report(cluster, keys)
    starts = sorted(dt.datetime.fromisoformat(r["data_interval_start"])
                    .astimezone(ZoneInfo("America/New_York")).date() for r in done)
    assert starts == BACK_DAYS
    _assert_same_as_local(cluster, env["local"], "backco", BACK_DAYS)
    # May is not complete: no month files for it
    assert _bucket_files(cluster, "out/backco/monthly/2026-05/") == {}
