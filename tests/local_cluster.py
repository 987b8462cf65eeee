"""A LocalExecutor Airflow on loopback for tests: api-server, scheduler, DAG processor
and triggerer against their own metadata database (tests.distributed.cluster, without
Celery, S3 or Redis). Only cron scheduling is off: tests trigger runs by REST."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.distributed.cluster import BIN, REPO, Cluster, kill_tree


class LocalCluster(Cluster):
    def __init__(self, *args: Any, extra_dags: list[Path] | None = None, **kw: Any) -> None:
        kw.setdefault("workers", ())
        super().__init__(*args, **kw)
        self.dags = self.root / "dags"
        self.dags.mkdir(exist_ok=True)
        for f in [*sorted((REPO / "bds_airflow" / "dags").glob("*.py")), *(extra_dags or [])]:
            shutil.copy(f, self.dags / f.name)

    def env(self, worker: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in super().env(worker).items() if "CELERY" not in k}
        env.update({
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        })
        return env

    def start_airflow(self) -> None:
        af = str(BIN / "airflow")
        env = self.env()
        self._spawn("api-server", [af, "api-server", "-H", "127.0.0.1", "-p",
                                   str(self.api_port), "-w", "1"], env)
        self._spawn("scheduler", [af, "scheduler"], env)
        self._spawn("dag-processor", [af, "dag-processor"], env)
        self._spawn("triggerer", [af, "triggerer"], env)

    def restart_scheduler(self, **env: str) -> None:
        """Stop the scheduler (and the LocalExecutor's workers with it) and start a new
        one with `env` added, e.g. AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=True: the
        scheduler creates asset-triggered runs only when it schedules jobs."""
        import signal
        import subprocess

        names = [n for n in self.procs if n == "scheduler" or n.startswith("scheduler-")]
        current = names[-1]
        old = self.procs[current]
        kill_tree(old.popen.pid, signal.SIGTERM)
        try:
            old.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_tree(old.popen.pid)
        self._dead_ok.add(current)
        self._spawn(f"scheduler-{len(names) + 1}", [str(BIN / "airflow"), "scheduler"],
                    {**self.env(), **env})
