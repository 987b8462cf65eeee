"""`bds demo --ui`: after the demo's runs, Airflow itself on the demo (SPEC §9).

The demo's PostgreSQL keeps running and also holds Airflow's metadata DB (the demo's
runs are recorded there); `airflow standalone` (API server with the UI and the Billing
page, scheduler, DAG processor, triggerer) starts on the demo's configuration, with the
demo's connections in its environment and the bds plugin. Catch-up cannot flood the
machine: the demo's days end yesterday and are already billed, the demo's runs are
recorded as the scheduler's own, and each DAG is unpaused only once the scheduler's
next run for it is the first day after the demo's (so nothing is re-billed). Ctrl-C
stops every process started here, then the demo's PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

AIRFLOW_DB = "bds_demo_airflow"
USER = "admin"


def metadata_db(uri: str) -> str:
    """A fresh metadata database on the demo's PostgreSQL; its SQLAlchemy URL."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(uri, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {AIRFLOW_DB} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {AIRFLOW_DB}")
    p = conninfo_to_dict(uri)
    auth = p.get("user", "postgres") + (f":{p['password']}" if p.get("password") else "")
    return (f"postgresql+psycopg2://{auth}@/{AIRFLOW_DB}?host={p.get('host', '127.0.0.1')}"
            f"&port={p.get('port', 5432)}")


def _as_scheduled(dag_ids: list[str]) -> int:
    """Record the demo's runs (made by `bds run`) as the scheduler's own, so its next run
    of each DAG is the day after the demo's last."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType
    from sqlalchemy import update

    with create_session() as s:
        res = s.execute(update(DagRun).where(DagRun.dag_id.in_(dag_ids),
                                             DagRun.run_type == DagRunType.MANUAL)
                        .values(run_type=DagRunType.SCHEDULED))
        return int(res.rowcount or 0)


def _free(port: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the whole process group started for Airflow, SIGKILL after 30 s."""
    import psutil

    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for p in psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        proc.wait(timeout=10)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def serve(root: Path, cfg, uri: str, last: dt.date, port: int) -> int:
    # Ctrl-C, SIGINT (also when started in the background, where a shell ignores it) and
    # SIGTERM all stop Airflow and the demo's PostgreSQL: Airflow runs in its own
    # session, so it would otherwise outlive this process.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    dag_ids = [f"bds_{t.id}" for t in cfg.tenants]
    n = _as_scheduled(dag_ids)
    home = Path(os.environ["AIRFLOW_HOME"])
    password = secrets.token_urlsafe(9)
    pw_file = home / "demo_passwords.json"
    pw_file.write_text(json.dumps({USER: password}))
    os.chmod(pw_file, 0o600)
    port = _free(port)
    url = f"http://127.0.0.1:{port}"
    airflow = Path(sys.executable).with_name("airflow")
    env = dict(os.environ)
    env.update({
        "PATH": f"{airflow.parent}{os.pathsep}{env.get('PATH', '')}",  # standalone runs `airflow`
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw_file),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # the log servers of the scheduler and triggerer: free ports, not 8793/8794
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free(8793)),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free(8794)),
    })
    env_file = _write_env_file(home.parent / "env.sh", env)
    log_path = home / "standalone.log"
    print(f"\nbds demo --ui: {n} demo run(s) recorded as scheduled; starting Airflow "
          f"(log {log_path}) ...", flush=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(airflow), "standalone"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        token = _wait_ready(url, password, proc, log_path)
        _unpause_when_caught_up(url, token, cfg, last, proc)
        print(f"""
  Airflow UI        {url}/   (user {USER}, password {password})
  Billing page      {url}/plugin/billing   (also: the Billing entry in the navigation)
  DAGs              {', '.join(dag_ids)}: unpaused, next run the day after {last};
                    bds_billing_days and the import_* examples unpaused
  CLI               source {env_file}   (then `airflow ...`, `bds run`, `bds status`
                    reach this Airflow: its metadata DB, DAG folder and connections)
  Stop              Ctrl-C (stops Airflow and the demo's PostgreSQL)
""", flush=True)
        while proc.poll() is None:
            time.sleep(1)
        print(f"bds demo --ui: Airflow exited ({proc.returncode}); see {log_path}")
        return 1
    except KeyboardInterrupt:
        print("\nbds demo --ui: stopping Airflow ...", flush=True)
        return 0
    finally:
        _stop(proc)
        print("bds demo --ui: stopped", flush=True)


# What a shell needs to reach the demo's Airflow with the `airflow` and `bds` commands:
# Airflow's settings come from the environment here (the airflow.cfg in AIRFLOW_HOME
# holds Airflow's defaults, e.g. a SQLite metadata DB, which is not this one).
_CLI_ENV = ("AIRFLOW_HOME", "BDS_CONFIG", "AIRFLOW__CORE__LOAD_EXAMPLES",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__DAGS_FOLDER",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__API__BASE_URL",
            "AIRFLOW__CORE__EXECUTOR")


def _write_env_file(path: Path, env: dict[str, str]) -> Path:
    """`export` lines (shell-quoted) of the demo Airflow's settings and connections."""
    import shlex

    keys = [k for k in _CLI_ENV if env.get(k)] + sorted(
        k for k in env if k.startswith("AIRFLOW_CONN_"))
    path.write_text("# source this file to use `airflow` and `bds` on bds demo --ui\n" + "".join(
        f"export {k}={shlex.quote(env[k])}\n" for k in keys))
    os.chmod(path, 0o600)
    return path


def _wait_ready(url: str, password: str, proc: subprocess.Popen, log: Path,
                timeout: float = 900) -> str:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"airflow standalone exited ({proc.returncode}); see {log}")
        try:
            r = requests.post(f"{url}/auth/token", json={"username": USER, "password": password},
                              timeout=5)
            if r.ok:
                return str(r.json()["access_token"])
        except requests.RequestException:
            pass
        time.sleep(2)
    raise SystemExit(f"Airflow did not answer on {url} in {timeout:.0f} s; see {log}")


def _unpause_when_caught_up(url: str, token: str, cfg, last: dt.date, proc,
                            timeout: float = 300) -> None:
    """Unpause each DAG once Airflow's next run for it starts after `last`."""
    import requests

    from bds_metrics.days import local_midnight

    h = {"Authorization": f"Bearer {token}"}
    pending = {f"bds_{t.id}": local_midnight(last + dt.timedelta(days=1), t.timezone)
               for t in cfg.tenants}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline and proc.poll() is None:
        for dag_id, after in list(pending.items()):
            r = requests.get(f"{url}/api/v2/dags/{dag_id}", headers=h, timeout=10)
            nxt = r.json().get("next_dagrun_data_interval_start") if r.ok else None
            if nxt and dt.datetime.fromisoformat(nxt.replace("Z", "+00:00")).timestamp() >= after:
                requests.patch(f"{url}/api/v2/dags/{dag_id}", headers=h,
                               json={"is_paused": False}, timeout=10).raise_for_status()
                del pending[dag_id]
        time.sleep(2)
    if pending:
        print(f"  left paused (their next run is not after {last} yet): {', '.join(pending)}")
    # The maintenance DAG (every demo day has its run: it finds nothing to do) and the
    # example importers (run on each newly published day), as the README describes.
    from .billing_days import DAG_ID

    for dag_id in [DAG_ID, *(f"import_{t.id}" for t in cfg.tenants)]:
        r = requests.patch(f"{url}/api/v2/dags/{dag_id}", headers=h,
                           json={"is_paused": False}, timeout=10)
        if not r.ok and r.status_code != 404:  # 404: not parsed (e.g. no importer)
            print(f"  could not unpause {dag_id}: {r.status_code} {r.text[:200]}")
