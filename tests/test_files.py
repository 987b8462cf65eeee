"""Files and runs (SPEC §7, issue 13): files honour the umask, a crash's temporary file is
removed by the next run of its period and reported by `bds verify`, a full disk names the
file, a missing Airflow connection is one line naming it, not a retry storm.

Real processes are killed, a real tmpfs is filled (the sandbox runs as root: `mount -t
tmpfs`), real Airflow runs the DAG; nothing here mocks the file system.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from bds_metrics import datasets, pipeline, storage
from bds_metrics.emission import verify_folder
from bds_metrics.verify import verify_tenant
from tests.cases import DAY, setup_case
from tests.conftest import dsn
from tests.test_config import BDS

REPO = Path(__file__).resolve().parents[1]


def _run(t, day=DAY):
    return Path(pipeline.run_day(t, day, lambda conn_id: os.environ["BDS_T_GIM"],
                                 monthly=False))


@pytest.fixture
def case(tmp_path, new_db, monkeypatch):
    """tests/cases.py's tenant-day in a fresh Info Mart; BDS_T_GIM holds its DSN."""
    t, root = setup_case(tmp_path, new_db, monkeypatch)
    monkeypatch.setenv("BDS_T_GIM", dsn(new_db.names[-1]))
    return t, root


def _modes(root: Path) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {"file": set(), "dir": set()}
    for p in root.rglob("*"):
        out["dir" if p.is_dir() else "file"].add(stat.S_IMODE(p.stat().st_mode))
    return out


# ------------------------------------------------------------------------------- umask


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    before = os.umask(0o022)
    os.umask(before)
    yield os.umask
    os.umask(before)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_every_file_of_a_day_honours_the_umask(case, umask, mask: int) -> None:
    from bds_metrics.report import write_report

    t, root = case
    umask(mask)
    folder = _run(t)
    report = write_report(t, DAY, DAY, t.timezone, str(folder / "usage.xlsx"))
    umask(0o022)
    assert Path(report).exists()
    out, staging = _modes(root / "out"), _modes(root / "staging")
    # billing CSVs, audit, manifest, the report; Parquet datasets, work and results files
    assert out["file"] == staging["file"] == {0o666 & ~mask}
    assert out["dir"] == staging["dir"] == {0o777 & ~mask}
    assert len(list((root / "staging").rglob("*.parquet"))) >= 10


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_each_writer_honours_the_umask(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    storage.write_atomic(str(tmp_path / "a.csv"), b"x\n")
    storage.write_table(str(tmp_path / "b.parquet"), pa.table({"x": [1]}))
    datasets.write_batches(str(tmp_path / "c.parquet"), "folder", iter([]))
    sink = storage.LocalSink(str(tmp_path / "d.bin"))
    Path(sink.tmp).write_bytes(b"d")
    sink.commit()
    umask(0o022)
    for name in ("a.csv", "b.parquet", "c.parquet", "d.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name
    assert storage.temp_files(str(tmp_path)) == []


def test_a_replaced_file_takes_the_umask_not_the_old_mode(tmp_path: Path, umask) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"old\n")
    path.chmod(0o600)  # written by an older bds
    umask(0o022)
    storage.write_atomic(str(path), b"new\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_bytes() == b"new\n"


# ----------------------------------------------------- a temporary file left by a crash

KILLED_WRITER = """
import os, signal, sys
from bds_metrics import storage
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # die between write and rename
storage.{call}
"""


def _killed_writer(call: str) -> None:
    p = subprocess.run([sys.executable, "-c", KILLED_WRITER.format(call=call)], cwd=str(REPO),
                       capture_output=True)
    assert p.returncode == -signal.SIGKILL, p.stderr


def test_a_killed_write_leaves_a_temp_file_that_verify_reports_and_the_next_run_removes(
    case, tmp_path: Path
) -> None:
    t, root = case
    folder = _run(t)
    assert verify_tenant(t) == (1, [])
    target = folder / "acme_seats_chat_20260308.csv"
    before = target.read_bytes()
    _killed_writer(f"write_atomic({str(target)!r}, b'half a bill')")
    temps = storage.temp_files(str(folder))
    assert len(temps) == 1 and temps[0].startswith(".tmp-")
    assert target.read_bytes() == before  # the importer's file is untouched
    assert verify_tenant(t) == (1, [
        f"{folder / temps[0]}: temporary file left by an interrupted write "
        "(the next run of this period removes it)"])
    # `bds verify` prints it and exits 1
    p = subprocess.run([BDS, "verify", "-t", "acme"], capture_output=True, text=True,
                       env={**os.environ, "BDS_CONFIG": t.source}, timeout=300)
    assert p.returncode == 1
    assert p.stdout.splitlines()[-2:] == [
        f"{folder / temps[0]}: temporary file left by an interrupted write "
        "(the next run of this period removes it)",
        "1 period folder(s) checked, 1 problem(s)"]
    _run(t)  # the next run of the period
    assert storage.temp_files(str(folder)) == []
    assert verify_tenant(t) == (1, [])
    assert target.read_bytes() == before


def test_a_killed_extract_leaves_a_temp_parquet_the_next_extract_removes(case) -> None:
    t, root = case
    path = pipeline.dataset_path(t, DAY, "sm_fact")
    _killed_writer(f"LocalSink({path!r}); os.fsync(0)")
    day_folder = os.path.dirname(path)
    assert len(storage.temp_files(day_folder)) == 1
    _run(t)
    assert storage.temp_files(day_folder) == []


def test_temp_files_of_live_writers_are_kept_and_not_reported(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"files": []}')
    old = time.time() - storage.TEMP_STALE_SECONDS - 60
    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        host = storage._HOST
        names = {
            f".tmp-{host}.{live.pid}.aa": True,     # a live writer on this host: kept
            f".tmp-{host}.{dead.pid}.bb": False,    # its writer is gone: removed
            ".tmp-otherhost.1.cc": True,            # another host, young: kept
            ".tmp-otherhost.2.dd": False,           # another host, an hour old: removed
            ".tmp-k3j_x9": True,                    # an older naming (mkstemp), young
            ".tmp-q8w_z1": False,                   # the same, old
        }
        for name, _ in names.items():
            (folder / name).write_bytes(b"")
        for name in (".tmp-otherhost.2.dd", ".tmp-q8w_z1"):
            os.utime(folder / name, (old, old))
        stale = sorted(str(folder / n) for n, keep in names.items() if not keep)
        assert sorted(p.split(": ")[0] for p in verify_folder(str(folder))) == stale
        storage.write_atomic(str(folder / "x.csv"), b"x")  # any write sweeps its folder
        assert storage.temp_files(str(folder)) == sorted(n for n, keep in names.items() if keep)
        assert verify_folder(str(folder)) == []
    finally:
        live.kill()
        live.wait()


def test_listdir_never_shows_temp_files(tmp_path: Path) -> None:
    (tmp_path / ".tmp-x").write_bytes(b"")
    (tmp_path / "a.csv").write_bytes(b"")
    assert storage.listdir(str(tmp_path)) == ["a.csv"]
    assert storage.temp_files(str(tmp_path)) == [".tmp-x"]
    assert storage.temp_files(str(tmp_path / "missing")) == []
    assert storage.temp_files("s3://conn@bucket/x") == []


# ------------------------------------------------------------------------- a full disk


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root can mount one in the sandbox; else the test is skipped)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path, leave: int = 0) -> None:
    with open(disk / "filler", "wb") as f:
        try:
            f.write(b"\0" * (80 * 1024))
        except OSError:
            pass
    if leave:
        os.truncate(disk / "filler", max(0, (disk / "filler").stat().st_size - leave))


def test_full_disk_names_the_file_and_keeps_the_old_one(tiny_disk: Path) -> None:
    path = tiny_disk / "a.csv"
    storage.write_atomic(str(path), b"old\n")
    with pytest.raises(storage.StorageError) as ei:
        storage.write_atomic(str(path), b"x" * 200_000)
    assert str(ei.value) == f"{path}: cannot write: No space left on device"
    assert ei.value.errno == 28
    assert path.read_bytes() == b"old\n"
    assert storage.temp_files(str(tiny_disk)) == []


def test_full_disk_in_a_parquet_extract_names_the_file(tiny_disk: Path) -> None:
    import numpy as np

    path = tiny_disk / "st" / "folder.parquet"
    n = 50_000
    batch = pa.record_batch({"folder_id": np.arange(n), "tenant_dbid": np.ones(n, np.int64),
                             "name": [f"folder {i}" for i in range(n)],
                             "parent_id": np.arange(n), "status": np.ones(n, np.int64)})
    with pytest.raises(storage.StorageError) as ei:
        datasets.write_batches(str(path), "folder", iter([batch]))
    assert str(ei.value) == f"{path}: cannot write: No space left on device"
    assert not path.exists()
    assert storage.temp_files(str(path.parent)) == []


def test_full_disk_while_emitting_a_day_is_one_line_naming_the_file(
    case, tiny_disk: Path, monkeypatch
) -> None:
    t, root = case
    monkeypatch.setattr(t, "output_root", str(tiny_disk / "out"))
    _fill(tiny_disk)
    with pytest.raises(pipeline.StepError) as ei:  # the step names tenant, day and step
        _run(t)
    assert isinstance(ei.value.__cause__, storage.StorageError)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith("tenant 'acme', day 2026-03-08, step daily_files: StorageError: "
                          f"{tiny_disk}/out/acme/daily/2026-03-08/")
    assert msg.endswith(".csv: cannot write: No space left on device")
    os.unlink(tiny_disk / "filler")  # space again: the next run completes the period
    folder = _run(t)
    assert verify_folder(str(folder)) == []


# ----------------------------------------------------------- a missing Airflow connection

MISSING = ("{src}: tenant '{tenant}': Airflow connection 'e2e_gim' is not defined "
           "(set AIRFLOW_CONN_E2E_GIM, or add it to the metadata DB or a secrets backend)")


@pytest.mark.xdist_group("airflow")
def test_bds_run_without_the_connection_is_one_line(tmp_path, new_db, monkeypatch,
                                                    airflow_db) -> None:
    t, _ = setup_case(tmp_path, new_db, monkeypatch, tenant="noconn_cli")
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_E2E_GIM"}
    started = time.monotonic()
    p = subprocess.run([BDS, "run", "-t", "noconn_cli", "--from", DAY.isoformat()], env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        "bds: configuration error:", MISSING.format(src=t.source, tenant="noconn_cli")]
    assert "Traceback" not in p.stdout + p.stderr
    assert len((p.stdout + p.stderr).splitlines()) <= 4  # (a library warning or two)
    assert time.monotonic() - started < 120  # no task ran, nothing retried


@pytest.mark.xdist_group("airflow")
def test_a_task_without_its_connection_fails_once_without_retry(tmp_path, new_db,
                                                                 monkeypatch, airflow_db) -> None:
    """The DAG run itself (`bds run` without its check): each extract fails on its first
    try, although the tenant allows 3 retries."""
    from airflow import settings
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from bds_airflow import airflow_env, runner

    t, _ = setup_case(tmp_path, new_db, monkeypatch, tenant="noconn_task",
                      extra_defaults="  retries: 3\n  retry_delay_seconds: 1\n")
    monkeypatch.delenv("AIRFLOW_CONN_E2E_GIM")
    airflow_env.configure()
    dag = runner.load_dag(t)
    started = time.monotonic()
    try:
        dr = runner._run_day(dag, runner._sync_dag(dag), t, DAY, {"wait_for_settle": False})
        state, run_id = str(dr.state), dr.run_id
    finally:
        settings.Session.remove()
    assert state.endswith("failed")
    with create_session() as s:
        tis = {ti.task_id: (str(ti.state).rsplit(".", 1)[-1], ti.try_number)
               for ti in s.query(TaskInstance).filter(TaskInstance.dag_id == dag.dag_id,
                                                     TaskInstance.run_id == run_id)}
    extracts = {k: v for k, v in tis.items() if k.startswith("extract.") and v[1]}
    assert extracts and set(extracts.values()) == {("failed", 1)}, tis
    assert time.monotonic() - started < 300


_HOLD = """
import sys, time
from bds_metrics import storage
with storage.exclusive(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_month_writes_of_a_tenant_wait_for_each_other(tmp_path: Path) -> None:
    """SPEC §8: monthly writes of one tenant never run at the same time. Another process
    holding the month's lock (a `bds run` of another day, a scheduler task) makes the
    month step wait for it; another month does not wait."""
    from bds_metrics.config import parse_config
    from bds_metrics.layout import month_lock_path

    t = parse_config(f"""
tenants:
  - id: acme
    name: Acme
    production_date: 2026-03-01
    timezone: America/New_York
    metrics: [seats_chat]
    output_root: {tmp_path}/out
    staging_root: {tmp_path}/st
    regions: [{{code: us, locations: [{{code: d, switches: []}}]}}]
""").tenants[0]
    import datetime as dt

    lock = month_lock_path(t, "2026-03")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, lock, "2"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        # April's month step does not wait for March's lock
        assert pipeline.run_action("month_files", t, dt.date(2026, 4, 2), None, {}) is None
        assert time.monotonic() - t0 < 1.0
        # March's waits until the holder has ended (the month is incomplete: None)
        assert pipeline.run_action("month_files", t, dt.date(2026, 3, 8), None, {}) is None
        waited = time.monotonic() - t0
        assert waited >= 1.5, waited  # the holder slept 2 s with the lock
    finally:
        holder.kill()
        holder.wait()
