"""The production topology of docker-compose.yaml, run natively on loopback for tests.

Processes: an S3-compatible store (moto in server mode), Redis (the machine's, or a
private `redis-server` when none answers), the Airflow metadata database (its own
database on the test PostgreSQL server, migrated here), an api-server, a scheduler,
a DAG processor and two Celery workers with distinct host names. Everything listens
on 127.0.0.1 only, every wait is bounded, and `stop()` ends every process this module
started (whole process trees) and drops what it created, whatever state it is in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bds_airflow.airflow_env import DAG_PROCESSOR_SETTINGS

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
S3_CONN_ID = "bds_dist_s3"
BUCKET = "bds-dist"
API_USER, API_ROLE = "bds", "admin"
TERMINAL = {"success", "failed"}


class ClusterError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5,
             on_timeout: Callable[[], str] | None = None) -> Any:
    """Poll `check` until it returns something truthy; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(interval)
    detail = on_timeout() if on_timeout else ""
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}"
                       f"{f' (last error: {last})' if last else ''}\n{detail}")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text[-lines:])


def _tree(pid: int) -> list[Any]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a process and every descendant (task processes run in their own groups)."""
    import psutil

    for p in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            p.send_signal(sig)


@dataclass
class Cluster:
    root: Path
    server: dict[str, str]          # libpq parameters of the test PostgreSQL server
    config: Path                    # BDS_CONFIG of the cluster
    connections: dict[str, str] = field(default_factory=dict)  # AIRFLOW_CONN_<ID> values
    workers: tuple[str, ...] = ("bds-worker-a", "bds-worker-b")
    concurrency: int = 3
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_key = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.queue = f"bds_dist_{self.run_key}"
        self.metadata_db = f"bdsdist_af_{self.run_key}"
        self.password = secrets.token_urlsafe(12)
        self.s3_port = 0
        self.api_port = free_port()
        self._migrate: subprocess.Popen | None = None
        self.redis_port = 6379
        self.redis_db = 0
        self._redis_proc: Proc | None = None
        self._db_created = False
        self._token: str | None = None
        self._stopped = False
        self._dead_ok: set[str] = set()  # workers killed on purpose
        self._t0 = time.monotonic()
        self.timeline: list[tuple[float, str]] = []  # (seconds since start, event)

    def mark(self, event: str) -> None:
        """Note when something happened (the tests print the timeline on failure)."""
        self.timeline.append((round(time.monotonic() - self._t0, 1), event))

    # ------------------------------------------------------------------ services

    @property
    def s3_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.s3_port}"

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    def s3_conn_json(self) -> str:
        return json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing-secret",
            "extra": {"endpoint_url": self.s3_endpoint, "region_name": "us-east-1"},
        })

    def s3_client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing-secret")

    def start_s3(self) -> None:
        self.s3_port = free_port()
        self._spawn("s3", [sys.executable, "-m", "moto.server", "-H", LOOPBACK,
                           "-p", str(self.s3_port)], dict(os.environ))
        wait_for("the S3 server", lambda: self._alive("s3") and port_open(self.s3_port), 60,
                 on_timeout=self.logs)
        self.s3_client().create_bucket(Bucket=BUCKET)
        self.mark("s3 up")
        self.connections[S3_CONN_ID] = self.s3_conn_json()

    def start_redis(self) -> None:
        """The machine's Redis on 6379 when it answers, else a private one."""
        import redis

        if not port_open(6379):
            exe = shutil.which("redis-server")
            if not exe:
                raise ClusterError("no Redis on 127.0.0.1:6379 and no redis-server to start")
            self.redis_port = free_port()
            self._redis_proc = self._spawn("redis", [
                exe, "--bind", LOOPBACK, "--port", str(self.redis_port), "--save", "",
                "--appendonly", "no", "--dir", str(self.root)], dict(os.environ))
        wait_for("Redis", lambda: redis.Redis(LOOPBACK, self.redis_port).ping(), 30,
                 on_timeout=self.logs)
        # A database of its own: the first empty one (the queue name is unique anyway).
        for n in range(15, 0, -1):
            if redis.Redis(LOOPBACK, self.redis_port, db=n).dbsize() == 0:
                self.redis_db = n
                break
        else:
            self.redis_db = 15

    def _pg_url(self, dbname: str, scheme: str) -> str:
        p = self.server
        auth = p.get("user", "postgres") + (f":{p['password']}" if p.get("password") else "")
        return (f"{scheme}://{auth}@/{dbname}?host={p.get('host', LOOPBACK)}"
                f"&port={p.get('port', 5432)}")

    def _admin(self, sql: str) -> None:
        import psycopg
        from psycopg.conninfo import make_conninfo

        dsn = make_conninfo("", **{**self.server, "dbname": self.server.get("dbname",
                                                                            "postgres")})
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(sql)

    def begin_metadata_db(self) -> None:
        """Create the metadata database and start `airflow db migrate` (in the
        background: the other services start meanwhile; `finish_metadata_db` waits)."""
        self._admin(f"CREATE DATABASE {self.metadata_db}")
        self._db_created = True
        self._migrate_t0 = time.monotonic()
        log = self.root / "db-migrate.log"
        with open(log, "wb") as out:
            self._migrate = subprocess.Popen(
                [str(BIN / "airflow"), "db", "migrate"], env=self.env(), cwd=self.root,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def finish_metadata_db(self, timeout: float = 300) -> None:
        try:
            code = self._migrate.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(self._migrate.pid)
            raise ClusterError(f"airflow db migrate took more than {timeout:.0f}s") from None
        if code != 0:
            tail = (self.root / "db-migrate.log").read_text(errors="replace")[-3000:]
            raise ClusterError(f"airflow db migrate failed:\n{tail}")
        self.migrate_seconds = time.monotonic() - self._migrate_t0
        self.mark("metadata db migrated")

    # ------------------------------------------------------------------ airflow

    def env(self, worker: str | None = None) -> dict[str, str]:
        """The environment of every Airflow process (nothing inherited from AIRFLOW_*)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "BDS_", "PYTEST_"))}
        home = self.root / "airflow"
        home.mkdir(exist_ok=True)
        pw_file = home / "passwords.json"
        if not pw_file.exists():
            pw_file.write_text(json.dumps({API_USER: self.password}))
        if not hasattr(self, "_secrets"):
            from cryptography.fernet import Fernet

            self._secrets = (Fernet.generate_key().decode(), secrets.token_urlsafe(32))
        fernet, jwt_secret = self._secrets
        env.update({
            "PYTHONPATH": str(REPO),
            "BDS_CONFIG": str(self.config),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "bds_airflow" / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "16",
            "AIRFLOW__CORE__FERNET_KEY": fernet,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.distributed.workerhost.hostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:{API_ROLE}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw_file),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self._pg_url(self.metadata_db,
                                                                 "postgresql+psycopg2"),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{LOOPBACK}:{self.redis_port}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": self._pg_url(self.metadata_db,
                                                            "db+postgresql+psycopg2"),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            # The deployments' DAG processor settings; the heavy imports before the
            # workers fork come from the bds package itself (bds_airflow/preload.py).
            **DAG_PROCESSOR_SETTINGS,
            # Only cron runs are off: the test triggers its runs through the REST API.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # A killed worker's task is noticed in seconds, not the default 5 minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            # A task message the killed worker had taken but not started is sent again.
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.root / "logs"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        })
        env.update({f"AIRFLOW_CONN_{k.upper()}": v for k, v in self.connections.items()})
        if worker:
            env["BDS_WORKER_NAME"] = worker
        return env

    def start_airflow(self) -> None:
        af = str(BIN / "airflow")
        self._spawn("api-server", [af, "api-server", "-H", LOOPBACK, "-p", str(self.api_port),
                                   "-w", "1"], self.env())
        self._spawn("scheduler", [af, "scheduler"], self.env())
        self._spawn("dag-processor", [af, "dag-processor"], self.env())
        # the readiness wait starts in the triggerer (start_from_trigger): as every
        # deployment, the cluster runs one
        self._spawn("triggerer", [af, "triggerer"], self.env())
        for w in self.workers:
            self.start_worker(w)

    def start_worker(self, name: str) -> None:
        self._spawn(name, [str(BIN / "airflow"), "celery", "worker", "-H", f"{name}@localhost",
                           "-c", str(self.concurrency), "-q", self.queue, "--skip-serve-logs",
                           "--without-gossip", "--without-mingle"], self.env(worker=name))

    def wait_ready(self, dag_ids: list[str], timeout: float = 150) -> None:
        """api-server healthy, scheduler and DAG processor heartbeating, the DAGs
        parsed, both workers consuming the queue."""
        def healthy() -> bool:
            self._check_alive(ignore=self._dead_ok)
            h = self.get("/api/v2/monitor/health", auth=False)
            return all(h.get(k, {}).get("status") == "healthy"
                       for k in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                       if k != "triggerer" or "triggerer" in self.procs)

        wait_for("the api-server, scheduler, DAG processor and triggerer", healthy, timeout, 1,
                 on_timeout=self.logs)
        self.mark("api-server, scheduler, dag-processor, triggerer healthy")

        def parsed() -> bool:
            self._check_alive(ignore=self._dead_ok)
            return all(self.request("GET", f"/api/v2/dags/{d}").status_code == 200
                       for d in dag_ids)

        wait_for(f"the DAGs {dag_ids}", parsed, timeout, 1, on_timeout=self.logs)
        self.mark("DAGs parsed")
        for w in self.workers:
            self.wait_worker(w, timeout)
        self.mark("workers ready")

    def wait_worker(self, name: str, timeout: float = 120) -> None:
        def ready() -> bool:
            self._check_alive(ignore=self._dead_ok)
            return " ready." in self.procs[name].log.read_text(errors="replace")

        wait_for(f"Celery worker {name}", ready, timeout, 0.5, on_timeout=self.logs)

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and its whole tree (pool processes, task supervisors and
        task processes): a host that dies, nothing gets to clean up."""
        proc = self.procs[name]
        self._dead_ok.add(name)
        kill_tree(proc.popen.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)

    # ------------------------------------------------------------------ REST API v2

    def token(self) -> str:
        import requests

        r = requests.post(f"{self.api_url}/auth/token",
                          json={"username": API_USER, "password": self.password}, timeout=30)
        r.raise_for_status()
        return str(r.json()["access_token"])

    def request(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> Any:
        import requests

        headers = {}
        if auth:
            if self._token is None:
                self._token = self.token()
            headers["Authorization"] = f"Bearer {self._token}"
        return requests.request(method, f"{self.api_url}{path}", headers=headers, timeout=30,
                                **kw)

    def get(self, path: str, auth: bool = True, **params: Any) -> Any:
        r = self.request("GET", path, auth=auth, params=params or None)
        if r.status_code != 200:
            raise ClusterError(f"GET {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def trigger(self, dag_id: str, run_id: str, start: dt.datetime, end: dt.datetime,
                conf: dict[str, Any]) -> dict[str, Any]:
        """A manual run for the data interval [start, end) (logical date = start)."""
        body = {"dag_run_id": run_id, "logical_date": start.isoformat(),
                "data_interval_start": start.isoformat(), "data_interval_end": end.isoformat(),
                "conf": conf}
        r = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        if r.status_code not in (200, 201):
            raise ClusterError(f"trigger {dag_id} {run_id}: {r.status_code} {r.text[:800]}")
        return r.json()

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_runs(self, runs: list[tuple[str, str]], timeout: float) -> dict[tuple[str, str], str]:
        states: dict[tuple[str, str], str] = {}

        def done() -> bool:
            self._check_alive(ignore=self._dead_ok)
            for key in runs:
                if states.get(key) not in TERMINAL:
                    states[key] = self.run_state(*key)
            return all(s in TERMINAL for s in states.values())

        wait_for(f"dag runs {runs}", done, timeout, 2,
                 on_timeout=lambda: f"states: {states}\n{self.logs()}")
        return states

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        doc = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=200)
        return list(doc["task_instances"])

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        doc = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        return list(doc["task_instances"])

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> Proc:
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(cmd, env=env, cwd=self.root, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.procs[name] = proc = Proc(name, popen, log)
        return proc

    def _alive(self, name: str) -> bool:
        return self.procs[name].popen.poll() is None

    def _check_alive(self, ignore: set[str] | None = None) -> None:
        dead = [n for n, p in self.procs.items()
                if p.popen.poll() is not None and n not in (ignore or set())]
        if dead:
            raise ClusterError(f"processes exited: {dead}\n{self.logs(dead)}")

    def logs(self, names: list[str] | None = None, lines: int = 40) -> str:
        timeline = "timeline: " + ", ".join(f"{t}s {e}" for t, e in self.timeline)
        return "\n".join([timeline] + [p.tail(lines) for n, p in self.procs.items()
                                        if names is None or n in names])

    def stop(self) -> None:
        """End every process started here (SIGTERM, then SIGKILL of whole trees) and
        drop the metadata database and this run's Redis keys. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._migrate is not None and self._migrate.poll() is None:
            kill_tree(self._migrate.pid)
            self._migrate.wait(timeout=10)
        trees = {n: _tree(p.popen.pid) for n, p in self.procs.items()}
        for p in self.procs.values():
            if p.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 6  # then whatever is left is killed
        for p in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        import psutil

        for tree in trees.values():
            for q in tree:
                with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                    q.kill()
        for p in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=5)
        self._cleanup_redis()
        if self._db_created:
            with contextlib.suppress(Exception):
                self._admin(f"DROP DATABASE IF EXISTS {self.metadata_db} WITH (FORCE)")

    def _cleanup_redis(self) -> None:
        if self._redis_proc is not None:  # a private server: it went with the others
            return
        with contextlib.suppress(Exception):
            import redis

            r = redis.Redis(LOOPBACK, self.redis_port, db=self.redis_db, socket_timeout=5)
            mine = [k for k in r.scan_iter(count=500) if self.queue.encode() in k]
            if mine:  # the queue and its bindings
                r.delete(*mine)
            # Celery's bookkeeping keys: only when nothing else uses this database.
            left = {k for k in r.scan_iter(count=500)}
            if left and all(k.startswith((b"unacked", b"_kombu")) for k in left):
                r.delete(*left)
