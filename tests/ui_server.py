"""A real `airflow api-server` on loopback with the bds plugin, for the Billing page tests.

It uses the test run's migrated metadata DB (tests/conftest.py), Airflow's simple auth
manager with two users (`bds`: admin, `viewer`: viewer) whose passwords are in a file,
and `BDS_CONFIG` = the given configuration. `stop()` ends the whole process tree.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.distributed.cluster import LOOPBACK, free_port, kill_tree, port_open

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


@dataclass
class ApiServer:
    root: Path
    config: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 180) -> ApiServer:
        import requests

        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.passwords = {"bds": secrets.token_urlsafe(10), "viewer": secrets.token_urlsafe(10)}
        pw = self.root / "passwords.json"
        pw.write_text(json.dumps(self.passwords))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update({
            "PYTHONPATH": str(REPO),
            "BDS_CONFIG": str(self.config),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "bds:admin,viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            **self.extra_env,
        })
        log = open(self.root / "api-server.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [str(BIN / "airflow"), "api-server", "-H", LOOPBACK, "-p", str(self.port), "-w", "1"],
            env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api-server exited:\n{self.log_tail()}")
            if port_open(self.port):
                try:
                    if requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).ok:
                        return self
                except requests.RequestException:
                    pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"api-server not healthy in {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        p = self.root / "api-server.log"
        return p.read_text(errors="replace")[-n:] if p.exists() else ""

    def token(self, user: str = "bds") -> str:
        import requests

        r = requests.post(f"{self.url}/auth/token",
                          json={"username": user, "password": self.passwords[user]}, timeout=30)
        r.raise_for_status()
        return str(r.json()["access_token"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            kill_tree(self.proc.pid)
            self.proc.wait(timeout=30)
        self.proc = None
