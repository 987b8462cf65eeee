"""`make bench-scheduler`: Airflow's cost per tenant-day, through the real scheduler.

    python -m bench.scheduler [--tenants 8] [--days 2] [--parallelism 4]
                              [--waiting-tenants 50] [--idle-tenants 1000] [--window 30]
                              [--label after] [--out BENCHMARKS.md] [--work .bds/bench-scheduler]

Everything on this machine, in one run, against two private PostgreSQL servers (pgserver):
one holds Airflow's metadata DB, the other the Info Mart (the demo generator's `acme`,
about 30 agents, for `--days` billing days from 2026-03-03), so that each server's CPU
is its own line. N copies of `acme` (`t00000`, ...) make the configuration.

1. **Backfill** (`--tenants` x `--days`): `airflow api-server`, `scheduler` (LocalExecutor,
   `--parallelism`), `dag-processor` and `triggerer` start with the deployment settings
   of `DEPLOYMENT` (scheduled runs off: the DAGs catch up from their production date
   otherwise); once every DAG is parsed the idle processes are sampled for `--window`
   seconds, then one backfill per tenant is created through the REST API and the run
   ends when every run has finished. CPU-seconds are read with psutil from each process
   tree (own + reaped children + live descendants), split: task processes (the
   LocalExecutor workers' forked children), supervisors (the workers themselves), the
   scheduler's own process, DAG processor, triggerer, API server, metadata DB, Info
   Mart. Peak RSS is sampled every second per process kind.
2. **run_day**: the same tenant-days through `bds_metrics.pipeline.run_day` in one warm
   process (a first day run before, not counted; imports excluded), its CPU and the
   Info Mart's; then the COPY floor of each tenant-day's extracts (the server's work
   and the bytes, nothing parsed: bench.measure's `floor`). The billing files of the
   backfill and of run_day are hashed (SHA-256 over the sorted relative paths and
   bytes): they must be equal, and equal to the hash of the same run before a change.
3. **Waiting** (`--waiting-tenants`, 0 skips): scheduled runs on, each tenant's
   production date two days ago and `settle_hours` 72, so every ended day is settling;
   after a warm-up, `--window` seconds: task starts (task instances and reschedules
   started in the window), active runs, scheduler CPU per minute per waiting tenant-day.
4. **Idle DAG processor** (`--idle-tenants`, 0 skips): the DAG processor alone with that
   many tenants: CPU per minute over `--window` seconds once everything is parsed; then
   the configuration is changed (a tenant renamed) and the time until the new name is
   in the metadata DB is measured.

The results go to `<work>/scheduler-<label>.json`, the table to BENCHMARKS.md (the
section between the `bench-scheduler` markers; `--label before` fills the "before"
column from a run of an older commit). The last line:
`cpu_s_per_tenant_day=<x> run_day_cpu_s_per_tenant_day=<y> tenant_days_per_hour=<z>`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from bds_airflow.airflow_env import DAGS_FOLDER

from . import infomart

try:
    from bds_airflow.airflow_env import DAG_PROCESSOR_SETTINGS
except ImportError:  # a commit before the deployments set them (the "before" run)
    DAG_PROCESSOR_SETTINGS = {}

REPO = infomart.REPO
BIN = Path(sys.executable).parent
DAY = infomart.DAY
BEGIN, END = "<!-- bench-scheduler:begin -->", "<!-- bench-scheduler:end -->"

# The settings the shipped deployments use (docker-compose, the README's native recipe,
# tests/distributed, `bds demo --ui`).
DEPLOYMENT = DAG_PROCESSOR_SETTINGS
KINDS = ("tasks", "supervisors", "scheduler", "dag_processor", "triggerer", "api_server",
         "metadata_db", "infomart")


# ------------------------------------------------------------------ processes and CPU

def tree_cpu(pid: int) -> float:
    """CPU-seconds of a process tree so far: each live process's own time plus the time
    of its children it has reaped (a finished task process is in its parent's)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            c = p.cpu_times()
            total += c.user + c.system + c.children_user + c.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def own_cpu(pid: int) -> float:
    try:
        c = psutil.Process(pid).cpu_times()
        return c.user + c.system
    except psutil.NoSuchProcess:
        return 0.0


def children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []


def is_worker(p: psutil.Process) -> bool:
    """A LocalExecutor worker (its process title names it); it forks the task processes."""
    try:
        return "LocalExecutor" in " ".join(p.cmdline())
    except psutil.Error:
        return False


class Component:
    """One Airflow command (its own session) with its log."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], logs: Path):
        self.name = name
        self.log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, env=env, cwd=logs, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        try:
            procs = [psutil.Process(self.proc.pid),
                     *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=15)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        self.log.close()


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


class Meter:
    """CPU per kind between two snapshots; peak RSS per kind sampled in a thread."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids  # kind -> root pid (scheduler: its tree splits in three)
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def snapshot(self) -> dict[str, float]:
        out = {k: 0.0 for k in KINDS}
        for kind, pid in self.pids.items():
            if kind != "scheduler":
                out[kind] = tree_cpu(pid)
                continue
            out["scheduler"] = own_cpu(pid)
            for w in children(pid):
                if is_worker(w):
                    out["supervisors"] += own_cpu(w.pid)
                    out["tasks"] += tree_cpu(w.pid) - own_cpu(w.pid)
                else:  # e.g. the scheduler's log server
                    out["scheduler"] += tree_cpu(w.pid)
        return out

    def _rss(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind, pid in self.pids.items():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for p in procs:
                try:
                    if kind == "scheduler":
                        k = ("scheduler" if p.pid == pid else
                             "supervisors" if p.ppid() == pid and is_worker(p) else
                             "tasks" if p.ppid() != pid else "scheduler")
                    else:
                        k = kind
                    rss = p.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
                out[k] = max(out.get(k, 0.0), rss)
        return out

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            for k, v in self._rss().items():
                self.peak[k] = max(self.peak.get(k, 0.0), v)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: b[k] - a[k] for k in KINDS}


# ------------------------------------------------------------------ Airflow set-up

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_url(server: infomart.Server, dbname: str, scheme: str = "postgresql+psycopg2") -> str:
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(server.admin_dsn)
    return (f"{scheme}://{p.get('user', 'postgres')}@/{dbname}?host={p.get('host')}"
            f"&port={p.get('port', 5432)}")


def airflow_env(home: Path, meta: infomart.Server, dsns: dict[str, str], config: Path,
                api_port: int, parallelism: int, scheduled: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BDS_"))}
    home.mkdir(parents=True, exist_ok=True)
    api = f"http://127.0.0.1:{api_port}"
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__FERNET_KEY": "YmRzLWJlbmNoLWZlcm5ldC1rZXktY2hhbmdlLW1lISE=",
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url(meta, "airflow"),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(scheduled),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "BDS_CONFIG": str(config),
        # 1000 tenants' part files on a loaded 2-core machine may take more than the
        # default 30 s to import (the "before" commit sets nothing itself).
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "400",
        **DEPLOYMENT,
        **infomart.airflow_connections(dsns),
    })
    return env


def migrate(env: dict[str, str], logs: Path) -> None:
    with open(logs / "db-migrate.log", "wb") as out:
        subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, stdout=out,
                       stderr=subprocess.STDOUT, check=True)


def fresh_metadata_db(meta: infomart.Server) -> None:
    import psycopg

    with psycopg.connect(meta.admin_dsn, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS airflow WITH (FORCE)")
        c.execute("CREATE DATABASE airflow")


def meta_query(meta: infomart.Server, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    import psycopg

    with psycopg.connect(meta.dsn("airflow"), autocommit=True) as c:
        return c.execute(sql, params).fetchall()


def wait_for(what: str, check: Any, timeout: float, comps: list[Component],
             interval: float = 2.0) -> float:
    t0 = time.monotonic()
    while True:
        for c in comps:
            if not c.alive():
                raise RuntimeError(f"{c.name} exited while waiting for {what}; see "
                                   f"{c.log.name}")
        if check():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def parsed(meta: infomart.Server, prefix: str, n: int) -> bool:
    try:
        rows = meta_query(meta, "SELECT count(*) FROM dag d JOIN serialized_dag s USING "
                          "(dag_id) WHERE d.dag_id LIKE %s AND NOT d.is_stale",
                          (f"bds_{prefix}%",))
    except Exception:
        return False
    return rows[0][0] >= n


def start_airflow(env: dict[str, str], logs: Path, api_port: int,
                  which: tuple[str, ...] = ("api-server", "scheduler", "dag-processor",
                                            "triggerer")) -> dict[str, Component]:
    af = str(BIN / "airflow")
    cmds = {"api-server": [af, "api-server", "-H", "127.0.0.1", "-p", str(api_port), "-w", "1"],
            "scheduler": [af, "scheduler"], "dag-processor": [af, "dag-processor"],
            "triggerer": [af, "triggerer"]}
    return {name: Component(name, cmds[name], env, logs) for name in which}


def api(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def api_ready(port: int) -> bool:
    try:
        h = api(port, "GET", "/api/v2/monitor/health")
    except Exception:
        return False
    return all(h.get(k, {}).get("status") == "healthy"
               for k in ("metadatabase", "scheduler", "dag_processor"))


def local_midnight(day: dt.date, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(day, dt.time(), ZoneInfo(tz)).isoformat()


# ------------------------------------------------------------------ configurations

def write_config(work: Path, name: str, tenants: int, prefix: str = "t",
                 **overrides: Any) -> Path:
    """`tenants` copies of the demo's `acme` named <prefix>00000...; roots under work."""
    cfg = infomart._demo_config()
    acme = next(t for t in cfg["tenants"] if t["id"] == infomart.TENANT)
    copies = []
    for i in range(tenants):
        tid = f"{prefix}{i:05d}"
        units = [dict(b, id=f"{tid}_BU_{k}") for k, b in enumerate(acme["business_units"], 1)]
        copies.append(dict(acme, id=tid, name=f"Tenant {i}", business_units=units,
                           **overrides))
    cfg["tenants"] = copies
    cfg["defaults"].update(output_root=str(work / "out"), staging_root=str(work / "staging"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def hash_tree(root: Path) -> tuple[str, int]:
    """SHA-256 over the sorted relative paths and bytes of every file; and the count."""
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
    for p in files:
        h.update(str(p.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest(), len(files)


# ------------------------------------------------------------------ phases

def component_pids(comps: dict[str, Any], work: Path) -> dict[str, int]:
    """{process kind: pid} of the Airflow components started and the metadata DB."""
    return {"scheduler": comps["scheduler"].proc.pid,
            "dag_processor": comps["dag-processor"].proc.pid,
            "triggerer": comps["triggerer"].proc.pid,
            "api_server": comps["api-server"].proc.pid,
            "metadata_db": postmaster_pid(work / "pg_meta")}


def phase_backfill(args: argparse.Namespace, work: Path, meta: infomart.Server,
                   im: infomart.Server, dsns: dict[str, str]) -> dict[str, Any]:
    n, d = args.tenants, args.days
    config = write_config(work / "backfill", "bds.yaml", n,
                          production_date=DAY.isoformat())
    shutil.rmtree(work / "backfill" / "out", ignore_errors=True)
    shutil.rmtree(work / "backfill" / "staging", ignore_errors=True)
    logs = work / "backfill" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = airflow_env(work / "backfill" / "airflow", meta, dsns, config, port,
                      args.parallelism, scheduled=False)
    fresh_metadata_db(meta)
    migrate(env, logs)
    t_start = time.monotonic()
    comps = start_airflow(env, logs, port)
    try:
        pids = {**component_pids(comps, work), "infomart": postmaster_pid(work / "pg_infomart")}
        meter = Meter(pids)
        meter.start()
        lst = list(comps.values())
        wait_for("the API server", lambda: api_ready(port), 300, lst)
        parse_s = wait_for(f"{n} DAGs parsed", lambda: parsed(meta, "t", n), 600, lst)
        startup = meter.snapshot()
        print(f"  started and parsed in {time.monotonic() - t_start:.0f} s", flush=True)
        time.sleep(5)
        i0 = meter.snapshot()
        time.sleep(args.window)
        idle = {k: v * 60 / args.window for k, v in delta(i0, meter.snapshot()).items()}
        print("  idle CPU-s/min: " + ", ".join(f"{k} {v:.2f}" for k, v in idle.items() if v),
              flush=True)
        tz = "America/New_York"
        last = DAY + dt.timedelta(days=d - 1)
        c0, w0 = meter.snapshot(), time.time()
        for i in range(n):
            api(port, "POST", "/api/v2/backfills", {
                "dag_id": f"bds_t{i:05d}", "from_date": local_midnight(DAY, tz),
                "to_date": local_midnight(last, tz), "max_active_runs": 4,
                "reprocess_behavior": "none", "run_backwards": False, "dag_run_conf": {}})

        def finished() -> bool:
            rows = meta_query(meta, "SELECT state, count(*) FROM dag_run WHERE dag_id LIKE "
                              "'bds_t%%' GROUP BY state")
            states = dict(rows)
            return states.get("success", 0) + states.get("failed", 0) >= n * d
        wait_for(f"{n * d} runs", finished, 3600, lst, interval=1.0)
        c1, w1 = meter.snapshot(), time.time()
        meter.stop()
    finally:
        for c in comps.values():
            c.stop()
    states = dict(meta_query(meta, "SELECT state, count(*) FROM dag_run WHERE dag_id LIKE "
                             "'bds_t%%' GROUP BY state"))
    tis = meta_query(meta, "SELECT count(*), count(*) FILTER (WHERE state = 'success'), "
                     "extract(epoch from min(start_date)), extract(epoch from max(end_date)), "
                     "sum(try_number) FROM task_instance WHERE dag_id LIKE 'bds_t%%'")[0]
    cpu = delta(c0, c1)
    wall = w1 - w0
    out_hash, files = hash_tree(work / "backfill" / "out")
    return {"tenants": n, "days": d, "tenant_days": n * d, "wall": wall, "cpu": cpu,
            "idle_cpu_per_min": idle, "startup_cpu": startup, "parse_wait": parse_s,
            "peak_rss_mb": meter.peak, "runs": states, "task_instances": tis[0],
            "task_success": tis[1], "task_tries": int(tis[4] or 0),
            "hash": out_hash, "files": files}


def run_day_child(spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: one warm-up day, then every tenant-day through run_day."""
    import time as _t

    from bds_metrics import pipeline
    from bds_metrics.config import load_config

    dsns = spec["dsns"]
    cfg = load_config(spec["config"])
    days = [dt.date.fromisoformat(x) for x in spec["days"]]
    warm = load_config(spec["warm_config"]).tenants[0]
    pipeline.run_day(warm, days[0], dsns.__getitem__, monthly=True)
    im = spec["infomart_pid"]
    s0, c0, w0 = tree_cpu(im), _t.process_time(), _t.perf_counter()
    for t in cfg.tenants:
        for day in days:
            pipeline.run_day(t, day, dsns.__getitem__, monthly=True)
    c1, w1, s1 = _t.process_time(), _t.perf_counter(), tree_cpu(im)
    import resource

    return {"cpu": c1 - c0, "wall": w1 - w0, "infomart_cpu": s1 - s0,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def phase_run_day(args: argparse.Namespace, work: Path, im: infomart.Server,
                  dsns: dict[str, str]) -> dict[str, Any]:
    root = work / "run_day"
    shutil.rmtree(root, ignore_errors=True)
    config = write_config(root, "bds.yaml", args.tenants, production_date=DAY.isoformat())
    warm = write_config(root / "warm", "bds.yaml", 1, prefix="w",
                        production_date=DAY.isoformat())
    days = [(DAY + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
    spec = {"config": str(config), "warm_config": str(warm), "days": days, "dsns": dsns,
            "infomart_pid": postmaster_pid(work / "pg_infomart")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BDS_"))}
    proc = subprocess.run([sys.executable, "-m", "bench.scheduler", "--child", json.dumps(spec)],
                          cwd=REPO, env=env, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("CHILD ")]
    if proc.returncode or not line:
        raise RuntimeError("run_day child failed:\n" + proc.stderr[-3000:])
    res = json.loads(line[-1][6:])
    res["hash"], res["files"] = hash_tree(root / "out")
    # The COPY floor of one tenant's days (every tenant reads the same Info Mart rows).
    from bds_metrics.config import load_config
    from bds_metrics.plan import needed_datasets

    from .measure import extract

    t = load_config(config).tenants[0]
    one = write_config(root / "floor", "bds.yaml", 1, production_date=DAY.isoformat())
    floor = 0.0
    for day in days:
        os.environ["BENCH_DAY"] = day
        for name in needed_datasets(t):
            floor += extract("floor", str(one), name, dsns, infomart.psql())["seconds"]
    res["copy_floor_s_per_tenant_day"] = floor / len(days)
    return res


def phase_waiting(args: argparse.Namespace, work: Path, meta: infomart.Server,
                  dsns: dict[str, str]) -> dict[str, Any]:
    """Scheduled runs on; every ended day of every tenant is settling (72 h)."""
    from zoneinfo import ZoneInfo

    w = args.waiting_tenants
    tz = ZoneInfo("America/New_York")
    today = dt.datetime.now(tz).date()
    start = today - dt.timedelta(days=2)
    waiting_days = (today - start).days  # days start .. today-1 have ended
    root = work / "waiting"
    config = write_config(root, "bds.yaml", w, prefix="w", production_date=start.isoformat(),
                          settle_hours=72)
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = airflow_env(root / "airflow", meta, dsns, config, port, args.parallelism,
                      scheduled=True)
    fresh_metadata_db(meta)
    migrate(env, logs)
    comps = start_airflow(env, logs, port)
    try:
        pids = component_pids(comps, work)
        meter = Meter(pids)
        lst = list(comps.values())
        wait_for("the API server", lambda: api_ready(port), 300, lst)
        wait_for(f"{w} DAGs parsed", lambda: parsed(meta, "w", w), 600, lst)
        time.sleep(args.window / 2)  # the runs are created, the first pokes happen
        c0, w0 = meter.snapshot(), time.time()
        stamp = dt.datetime.now(dt.UTC)
        time.sleep(args.window)
        c1, w1 = meter.snapshot(), time.time()
    finally:
        for c in comps.values():
            c.stop()
    starts = meta_query(meta, "SELECT count(*) FROM task_instance WHERE dag_id LIKE 'bds_w%%' "
                        "AND start_date >= %s", (stamp,))[0][0]
    resched = meta_query(meta, "SELECT count(*) FROM task_reschedule WHERE start_date >= %s",
                         (stamp,))[0][0]
    runs = dict(meta_query(meta, "SELECT state, count(*) FROM dag_run WHERE dag_id LIKE "
                           "'bds_w%%' GROUP BY state"))
    deferred = meta_query(meta, "SELECT count(*) FROM task_instance WHERE dag_id LIKE "
                          "'bds_w%%' AND state = 'deferred'")[0][0]
    minutes = (w1 - w0) / 60
    cpu = {k: v / minutes for k, v in delta(c0, c1).items()}
    td = w * waiting_days
    return {"tenants": w, "waiting_tenant_days": td, "minutes": minutes,
            "cpu_per_min": cpu, "task_starts": starts, "reschedules": resched,
            "runs": runs, "deferred": deferred,
            "scheduler_cpu_per_min_per_waiting_td": cpu["scheduler"] / td}


def phase_idle(args: argparse.Namespace, work: Path, meta: infomart.Server,
               dsns: dict[str, str]) -> dict[str, Any]:
    """The DAG processor alone with --idle-tenants tenants; then a configuration change."""
    n = args.idle_tenants
    root = work / "idle"
    config = write_config(root, "bds.yaml", n, prefix="i", production_date=DAY.isoformat())
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = airflow_env(root / "airflow", meta, dsns, config, free_port(), args.parallelism,
                      scheduled=False)
    fresh_metadata_db(meta)
    migrate(env, logs)
    comps = start_airflow(env, logs, 0, which=("dag-processor",))
    dp = comps["dag-processor"]
    try:
        lst = [dp]
        parse_s = wait_for(f"{n} DAGs parsed", lambda: parsed(meta, "i", n), 1200, lst)
        time.sleep(10)  # the last part's parse finishes, its stats are written
        a, t0 = tree_cpu(dp.proc.pid), time.monotonic()
        pg0 = tree_cpu(postmaster_pid(work / "pg_meta"))
        time.sleep(args.window)
        minutes = (time.monotonic() - t0) / 60
        idle = (tree_cpu(dp.proc.pid) - a) / minutes
        idle_db = (tree_cpu(postmaster_pid(work / "pg_meta")) - pg0) / minutes
        # A configuration change: one tenant renamed.
        text = config.read_text(encoding="utf-8")
        new = text.replace("name: Tenant 7\n", "name: Tenant 7 renamed\n", 1)
        assert new != text
        config.write_text(new, encoding="utf-8")
        t1 = time.monotonic()

        def shown() -> bool:
            rows = meta_query(meta, "SELECT description FROM dag WHERE dag_id = 'bds_i00007'")
            return bool(rows) and "renamed" in (rows[0][0] or "")
        latency = wait_for("the configuration change", shown, 600, lst, interval=0.5)
        del t1
    finally:
        dp.stop()
    out = {"tenants": n, "parse_wait": parse_s, "dag_processor_cpu_per_min": idle,
           "metadata_db_cpu_per_min": idle_db, "config_change_seconds": latency}
    if args.profile:
        out["profile"] = profile_idle(args, env, logs, meta)
    return out


# Runs `airflow ...` (argv[2:]) with a CPU-time cProfile profiler that SIGUSR1 enables in
# the main thread (the DAG processor's loop); the stats go to argv[1] at exit.
PROFILED = """
import cProfile, runpy, signal, sys, time
out, sys.argv = sys.argv[1], sys.argv[2:]
prof = cProfile.Profile(time.process_time)
signal.signal(signal.SIGUSR1, lambda *a: prof.enable())
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    prof.disable()
    prof.dump_stats(out)
"""


def profile_idle(args: argparse.Namespace, env: dict[str, str], logs: Path,
                 meta: infomart.Server) -> list[list[Any]]:
    """The idle DAG processor under cProfile, with a one-tenant configuration (its idle
    loop does not depend on the tenants; the measured CPU says so): functions by
    cumulative CPU-seconds over `--window` seconds of idling, after start-up and parse."""
    import pstats

    one = write_config(logs.parent / "one", "bds.yaml", 1, prefix="i",
                       production_date=DAY.isoformat())
    env = {**env, "BDS_CONFIG": str(one)}
    prof = logs / "dag-processor.prof"
    comp = Component("dag-processor-profiled", [sys.executable, "-c", PROFILED, str(prof),
                                                str(BIN / "airflow"), "dag-processor"],
                     env, logs)
    try:
        # A fresh DAG processor parses every file once (one tenant: a second), then idles;
        # SIGUSR1 starts the CPU-time profiler, which is written when the process exits.
        time.sleep(60)
        if not comp.alive():
            raise RuntimeError(f"the profiled DAG processor exited; see {comp.log.name}")
        comp.proc.send_signal(signal.SIGUSR1)
        time.sleep(args.window)
    finally:
        comp.proc.send_signal(signal.SIGTERM)
        try:
            comp.proc.wait(60)
        except subprocess.TimeoutExpired:
            comp.stop()
        comp.log.close()
    stats = pstats.Stats(str(prof))
    rows = []
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append([f"{Path(file).name}:{line}({fn})", nc, tt, ct])
    rows.sort(key=lambda r: -r[3])
    return rows[:80]




# ------------------------------------------------------------------ report

def figures(r: dict[str, Any]) -> dict[str, float]:
    b, rd = r["backfill"], r["run_day"]
    td = b["tenant_days"]
    total = sum(b["cpu"].values())
    return {"cpu_s_per_tenant_day": total / td,
            "run_day_cpu_s_per_tenant_day": (rd["cpu"] + rd["infomart_cpu"]) / td,
            "tenant_days_per_hour": td / b["wall"] * 3600,
            "task_instances_per_minute": b["task_instances"] / b["wall"] * 60}


def render(results: dict[str, dict[str, Any]]) -> str:
    cols = [k for k in ("before", "after") if k in results]

    def row(label: str, fn: Any) -> str:
        cells = []
        for k in cols:
            try:
                cells.append(fn(results[k]))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("")
        return f"| {label} | " + " | ".join(cells) + " |"

    def per_td(kind: str) -> Any:
        return lambda r: f"{r['backfill']['cpu'][kind] / r['backfill']['tenant_days']:.2f}"

    def f(key: str, fmt: str = "{:.2f}") -> Any:
        return lambda r: fmt.format(figures(r)[key])

    lines = [BEGIN, "## Through the scheduler: Airflow's cost per tenant-day", "",
             "Measured by `make bench-scheduler` (`bench/scheduler.py`, its docstring says "
             "how). " + "; ".join(
                 f"{k}: commit {results[k]['facts']['commit']}, {results[k]['facts']['date']}, "
                 f"`{results[k]['facts']['command']}`, load average at the start "
                 f"{results[k]['facts']['load_start']:.1f}" for k in cols) + ".", "",
             "| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    lines += [
        row("tenants x days (small tenants, ~30 agents)", lambda r: f"{r['backfill']['tenants']} x "
            f"{r['backfill']['days']}"),
        row("**CPU-s per tenant-day, all processes**", f("cpu_s_per_tenant_day")),
        *(row(f"&nbsp; of which {k.replace('_', ' ')}", per_td(k)) for k in KINDS),
        row("run_day CPU-s per tenant-day, one warm process (+ Info Mart)",
            f("run_day_cpu_s_per_tenant_day")),
        row("ratio scheduler / run_day", lambda r: "{:.1f}x".format(
            figures(r)["cpu_s_per_tenant_day"] / figures(r)["run_day_cpu_s_per_tenant_day"])),
        row("COPY floor s per tenant-day (extracts)",
            lambda r: f"{r['run_day']['copy_floor_s_per_tenant_day']:.2f}"),
        row("**tenant-days per hour**", f("tenant_days_per_hour", "{:,.0f}")),
        row("task instances per minute", f("task_instances_per_minute", "{:.0f}")),
        row("backfill wall s", lambda r: f"{r['backfill']['wall']:.0f}"),
        row("runs (state: count)", lambda r: ", ".join(
            f"{k} {v}" for k, v in r["backfill"]["runs"].items())),
        row("task tries / task instances", lambda r: f"{r['backfill']['task_tries']} / "
            f"{r['backfill']['task_instances']}"),
        *(row(f"peak RSS MB, {k.replace('_', ' ')}",
              lambda r, k=k: f"{r['backfill']['peak_rss_mb'].get(k, 0):,.0f}")
          for k in KINDS),
        row("run_day peak RSS MB", lambda r: f"{r['run_day']['maxrss_mb']:,.0f}"),
        row("idle CPU-s/min (N tenants parsed, nothing running): scheduler / DAG processor "
            "/ API server / triggerer / metadata DB", lambda r: " / ".join(
                f"{r['backfill']['idle_cpu_per_min'][k]:.2f}" for k in (
                    "scheduler", "dag_processor", "api_server", "triggerer", "metadata_db"))),
        row("waiting: tenant-days settling", lambda r: str(r["waiting"]["waiting_tenant_days"])),
        row("waiting: task starts in the window / active runs / deferred tasks", lambda r:
            f"{r['waiting']['task_starts'] + r['waiting']['reschedules']} / "
            f"{r['waiting']['runs'].get('running', 0)} / {r['waiting']['deferred']}"),
        row("waiting: scheduler CPU-s/min per waiting tenant-day", lambda r:
            f"{r['waiting']['scheduler_cpu_per_min_per_waiting_td']:.3f}"),
        row("waiting: CPU-s/min scheduler / task processes / triggerer / metadata DB",
            lambda r: " / ".join(f"{r['waiting']['cpu_per_min'][k]:.2f}" for k in (
                "scheduler", "tasks", "triggerer", "metadata_db"))),
        row("idle DAG processor CPU-s/min (tenants)", lambda r:
            f"{r['idle']['dag_processor_cpu_per_min']:.2f} ({r['idle']['tenants']})"),
        row("configuration change shows up after s", lambda r:
            f"{r['idle']['config_change_seconds']:.0f}"),
        row("billing files SHA-256 (files): backfill", lambda r:
            f"`{r['backfill']['hash'][:16]}` ({r['backfill']['files']})"),
        row("billing files SHA-256 (files): run_day", lambda r:
            f"`{r['run_day']['hash'][:16]}` ({r['run_day']['files']})"),
    ]
    lines += ["", "Extrapolated on this machine from the CPU per tenant-day (2 cores, all "
              "busy) and from the measured throughput:", ""]
    lines += ["| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for label, td in (("1000 tenants x 1 day", 1000), ("100 tenants x 365 days", 36500)):
        lines.append(row(f"{label}: hours at the measured tenant-days per hour",
                         lambda r, td=td: f"{td / figures(r)['tenant_days_per_hour']:.1f}"))
        lines.append(row(f"{label}: hours of 2 cores at the CPU per tenant-day",
                         lambda r, td=td: f"{td * figures(r)['cpu_s_per_tenant_day'] / 7200:.1f}"))
    prof = results.get(cols[-1], {}).get("idle", {}).get("profile") if cols else None
    if prof:
        lines += ["", f"The idle DAG processor's profile ({cols[-1]}; `--profile`: cProfile "
                  "on CPU time, one tenant, the idle window only; cumulative CPU-seconds):",
                  "", "| function | calls | own s | cumulative s |", "|---|---:|---:|---:|"]
        loop = [r for r in prof if r[0].startswith("manager.py:")
                or "session.py:95(wrapper)" in r[0] or "dagwarning.py" in r[0]]
        lines += [f"| `{f}` | {nc:,} | {tt:.2f} | {ct:.2f} |" for f, nc, tt, ct in loop[:25]]
    notes = REPO / "bench" / "scheduler_notes.md"
    if notes.exists():
        lines += ["", notes.read_text(encoding="utf-8").rstrip()]
    lines.append(END)
    return "\n".join(lines)


def write_report(out: Path, results: dict[str, dict[str, Any]]) -> None:
    text = out.read_text(encoding="utf-8") if out.exists() else "# Benchmarks\n"
    section = render(results)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    out.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scheduler",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--tenants", type=int, default=8)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--parallelism", type=int, default=4)
    ap.add_argument("--waiting-tenants", type=int, default=50)
    ap.add_argument("--idle-tenants", type=int, default=1000)
    ap.add_argument("--window", type=float, default=30.0, help="seconds of each idle sample")
    ap.add_argument("--label", default="after", choices=("before", "after"))
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    ap.add_argument("--work", default=str(REPO / ".bds" / "bench-scheduler"))
    ap.add_argument("--render", action="store_true", help="only rewrite the section")
    ap.add_argument("--profile", action="store_true",
                    help="also profile the idle DAG processor (cProfile; a few minutes more)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print("CHILD " + json.dumps(run_day_child(json.loads(args.child))), flush=True)
        return 0

    def stop(signum: int, frame: Any) -> None:  # SIGTERM (timeout, kill): clean up too
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    stored = work / "results.json"
    results = json.loads(stored.read_text()) if stored.exists() else {}
    for label in ("before", "after"):  # a run stopped after some phases: what it measured
        partial = work / f"scheduler-{label}.partial.json"
        if label not in results and partial.exists():
            results[label] = json.loads(partial.read_text())
    if args.render:
        write_report(Path(args.out), results)
        return 0
    from .report import machine

    facts = machine(load_start=os.getloadavg())
    facts.update(load_start=os.getloadavg()[0],
                 command=" ".join(["python -m bench.scheduler", *(argv or sys.argv[1:])]))
    t0 = time.time()
    meta = infomart.start_server_at(work / "pg_meta")
    im = infomart.start_server_at(work / "pg_infomart")
    try:
        dsns = infomart.create_databases(im)
        from bds_metrics.demo import generator

        rows = generator.generate(dsns["bds_demo_gim"], {
            "bds_demo_gvp": dsns["bds_demo_gvp"], "bds_demo_gvp_eu": dsns["bds_demo_gvp_eu"]},
            DAY, args.days, agents_per_tenant=30, tenants=(infomart.TENANT,))
        print(f"bench-scheduler: Info Mart {sum(v for v in rows.values() if isinstance(v, int)):,}"
              f" rows; {args.tenants} tenants x {args.days} days", flush=True)
        r: dict[str, Any] = {"facts": facts}
        partial = work / f"scheduler-{args.label}.partial.json"
        r["backfill"] = phase_backfill(args, work, meta, im, dsns)
        partial.write_text(json.dumps(r, indent=1, default=str))
        b = r["backfill"]
        print(f"  backfill: {b['wall']:.0f} s, runs {b['runs']}; CPU-s per tenant-day: "
              + ", ".join(f"{k} {v / b['tenant_days']:.2f}" for k, v in b["cpu"].items()),
              flush=True)
        r["run_day"] = phase_run_day(args, work, im, dsns)
        partial.write_text(json.dumps(r, indent=1, default=str))
        print(f"  run_day: {r['run_day']['cpu']:.1f} CPU-s; hashes equal: "
              f"{r['run_day']['hash'] == r['backfill']['hash']}", flush=True)
        if args.waiting_tenants:
            r["waiting"] = phase_waiting(args, work, meta, dsns)
            partial.write_text(json.dumps(r, indent=1, default=str))
            print(f"  waiting: {r['waiting']}", flush=True)
        if args.idle_tenants:
            r["idle"] = phase_idle(args, work, meta, dsns)
            print(f"  idle: {r['idle']}", flush=True)
    finally:
        for s, pgdata in ((meta, work / "pg_meta"), (im, work / "pg_infomart")):
            if s.handle is not None:
                s.handle.cleanup()
            try:  # pgserver leaves a server it runs as another user (root) running
                os.kill(postmaster_pid(pgdata), signal.SIGINT)  # a fast shutdown
            except (OSError, ValueError):
                pass
    facts["minutes"] = (time.time() - t0) / 60
    results[args.label] = r
    stored.write_text(json.dumps(results, indent=1, default=str))
    (work / f"scheduler-{args.label}.json").write_text(json.dumps(r, indent=1, default=str))
    write_report(Path(args.out), results)
    for kind in KINDS:
        b = r["backfill"]
        print(f"  {kind:14} {b['cpu'][kind] / b['tenant_days']:7.2f} CPU-s per tenant-day, "
              f"peak RSS {b['peak_rss_mb'].get(kind, 0):6.0f} MB")
    x = figures(r)
    print(f"cpu_s_per_tenant_day={x['cpu_s_per_tenant_day']:.2f} "
          f"run_day_cpu_s_per_tenant_day={x['run_day_cpu_s_per_tenant_day']:.2f} "
          f"tenant_days_per_hour={x['tenant_days_per_hour']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
