"""Billing that survives failures: retries after a dropped connection, no retry for bad
configuration, and no partial file where an importer looks when emission is killed."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.cases import DAY, NO_DEFAULT_CONFIG, expected_for, setup_case
from tests.conftest import dsn

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.usefixtures("airflow_db")]


def _terminate_extract_when_blocked(gim_dsn: str, table: str, done: threading.Event) -> None:
    """Hold a lock on `table`; kill the first backend that waits for it; then release."""
    dbname = psycopg.conninfo.conninfo_to_dict(gim_dsn)["dbname"]
    with psycopg.connect(gim_dsn) as locker:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        with psycopg.connect(dsn("postgres"), autocommit=True) as admin:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND "
                    "wait_event_type = 'Lock' AND query ILIKE %s",
                    (dbname, f"%{table}%"),
                ).fetchone()
                if row:
                    admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    done.set()
                    break
                time.sleep(0.05)
        locker.rollback()


def test_dropped_connection_mid_extract_retries_and_finishes(tmp_path, new_db, monkeypatch):
    from bds_airflow.runner import run_days

    t, root = setup_case(tmp_path, new_db, monkeypatch, tenant="acme_retry",
                         extra_defaults="  retries: 2\n  retry_delay_seconds: 1\n")
    gim = os.environ["AIRFLOW_CONN_E2E_GIM"]
    gim_dsn = dsn(json.loads(gim)["schema"])
    killed = threading.Event()
    killer = threading.Thread(target=_terminate_extract_when_blocked,
                              args=(gim_dsn, "sm_res_session_fact", killed), daemon=True)
    killer.start()
    lines: list[str] = []
    assert run_days(t, DAY, DAY, echo=lines.append) == 0
    killer.join(timeout=60)
    assert killed.is_set(), "the extract was never caught waiting"
    folder = root / "out" / "acme_retry" / "daily" / "2026-03-08"
    for name, text in expected_for("acme_retry").items():
        assert (folder / name).read_text() == text, name

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        ti = s.query(TaskInstance).filter(
            TaskInstance.dag_id == "bds_acme_retry", TaskInstance.task_id == "extract.sm_fact",
            TaskInstance.run_id == _last_run_id(s, "bds_acme_retry")).one()
    assert (str(ti.state), ti.try_number) == ("success", 2)  # failed once, then retried


def _last_run_id(session, dag_id: str) -> str:
    from airflow.models.dagrun import DagRun

    return session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(
        DagRun.id.desc()).first().run_id




def test_session_on_unknown_switch_without_default_fails_once_naming_it(
        tmp_path, new_db, monkeypatch, capsys):
    from bds_airflow.runner import run_days

    t, root = setup_case(tmp_path, new_db, monkeypatch, config=NO_DEFAULT_CONFIG,
                         tenant="acme_nodef")
    lines: list[str] = []
    assert run_days(t, DAY, DAY, echo=lines.append) == 1
    assert "FAILED" in lines[0] and "compute.seats_chat" in lines[0]
    assert "compute.seats_outbound" in lines[0]  # SIP_X: unknown switch, no default
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        ti = s.query(TaskInstance).filter(
            TaskInstance.dag_id == "bds_acme_nodef", TaskInstance.task_id == "compute.seats_chat",
            TaskInstance.run_id == _last_run_id(s, "bds_acme_nodef")).one()
        assert (str(ti.state), ti.try_number) == ("failed", 1)  # no retry for config errors
    assert not (root / "out" / "acme_nodef" / "daily" / "2026-03-08" / "manifest.json").exists()
    from bds_metrics import pipeline
    from bds_metrics.compute import MappingError

    conns = {"e2e_gim": dsn(json.loads(os.environ["AIRFLOW_CONN_E2E_GIM"])["schema"])}
    want = r"tenant 'acme_nodef', day 2026-03-08, metric seats_chat: .*\['\(no switch\)'\]"
    with pytest.raises(MappingError, match=want):
        pipeline.run_day(t, DAY, conns.__getitem__)


EMITTER = r"""
import sys, itertools, time
from bds_metrics.config import parse_config
from bds_metrics.days import billing_day
from bds_metrics.emission import Bundle, publish
t = parse_config(open(sys.argv[1]).read(), sys.argv[1]).tenants[0]
p = billing_day(__import__("datetime").date(2026, 3, 8), t.timezone)
versions = [
    {f"f{i:03d}.csv": (f"version {v} file {i}\n" * (200 + 37 * i)) for i in range(60)}
    for v in range(2)
]
print("ready", flush=True)
for n in itertools.count():
    publish(t, p, Bundle(files=versions[n % 2]))
    print("published", flush=True)
    time.sleep(0.05)  # a published period stays a while, as between two runs
"""


def _versions() -> list[dict[str, str]]:
    return [{f"f{i:03d}.csv": (f"version {v} file {i}\n" * (200 + 37 * i)) for i in range(60)}
            for v in range(2)]


def test_sigkill_during_emission_never_leaves_a_partial_file(tmp_path):
    cfg = tmp_path / "bds.yaml"
    cfg.write_text(f"""
tenants:
  - id: acme
    name: Acme
    production_date: 2026-03-01
    metrics: [seats_chat]
    output_root: {tmp_path}/out
    staging_root: {tmp_path}/st
    regions: [{{code: us, locations: [{{code: d, switches: []}}]}}]
""")
    script = tmp_path / "emit.py"
    script.write_text(EMITTER)
    folder = tmp_path / "out" / "acme" / "daily" / "2026-03-08"
    valid = {name: {v[name].encode() for v in _versions()} for name in _versions()[0]}
    rng = random.Random(20260308)
    manifests_checked = 0
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, str(script), str(cfg)], stdout=subprocess.PIPE,
                                cwd=str(Path(__file__).resolve().parents[1]))
        assert proc.stdout.readline().strip() == b"ready"
        # one whole publication first (its length measured: a loaded machine is slower),
        # then a kill at a random moment of the publications that follow
        t0 = time.monotonic()
        assert proc.stdout.readline().strip() == b"published"
        spell = time.monotonic() - t0
        time.sleep(rng.uniform(0.0, 2.5 * spell + 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        manifests_checked += _assert_importer_safe(folder, valid)
    assert manifests_checked > 0  # the kills did not all land before the first publish
    # the next complete run leaves a verified period
    from bds_metrics.emission import verify_folder

    subprocess.run([sys.executable, "-c", EMITTER.replace("itertools.count()", "range(1)"),
                    str(cfg)], check=True, capture_output=True,
                   cwd=str(Path(__file__).resolve().parents[1]))
    assert verify_folder(str(folder)) == []


def _assert_importer_safe(folder: Path, valid: dict[str, set[bytes]]) -> int:
    """Every visible file is whole; a present manifest matches every file it names.
    Returns how many manifests were checked (0 or 1)."""
    if not folder.exists():
        return 0
    checked = 0
    for f in folder.iterdir():
        if f.name.startswith(".tmp-"):
            continue  # hidden temp names of interrupted writes: never an importer's file
        if f.name.startswith("corrections_"):
            continue  # each version's corrections: checked through the manifest below
        if f.name == "manifest.json":
            doc = json.loads(f.read_bytes())  # parses: never truncated
            for entry in doc["files"]:
                data = (folder / entry["name"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["name"]
            checked += 1
        else:
            assert f.read_bytes() in valid[f.name], f"{f.name} is partial"
    return checked
