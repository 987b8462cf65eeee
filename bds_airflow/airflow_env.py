"""Prepare an Airflow environment for in-process runs (`bds run`, `bds demo`, tests).

Must run before `airflow` is imported: Airflow reads its configuration at import.
Operators who already run Airflow keep their own AIRFLOW_HOME and metadata DB; a
fresh machine gets `~/.bds/airflow` with a SQLite metadata DB, migrated once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

# The thin DAG files ship in the package (a real directory: Airflow parses paths).
DAGS_FOLDER = Path(str(files("bds_airflow") / "dags"))

# The DAG processor's settings of every deployment the project ships or documents
# (docker-compose.yaml, the README's native recipe, tests/distributed, `bds demo --ui`,
# bench/scheduler.py): the DAG set only changes with the configuration, so a DAG file is
# re-parsed when its modification time moves (`modified_time`: at once, whatever the
# interval) and otherwise once a day. bds_airflow.preload's watcher in the DAG processor
# moves the DAG files' modification time when BDS_CONFIG changes (within 10 s).
# A part file of 1000 tenants takes seconds; the timeouts leave room for a loaded machine
# (an import error is retried by the watcher every 5 minutes, not every 30 s).
DAG_PROCESSOR_SETTINGS = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "86400",
    "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE": "modified_time",
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
}


def configure(home: str | None = None, quiet: bool = True) -> Path:
    """Set the environment Airflow reads (only what the operator has not set)."""
    home = home or os.environ.get("AIRFLOW_HOME") or str(Path.home() / ".bds" / "airflow")
    os.environ["AIRFLOW_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    if quiet:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        # Asset events of a day billed with no consumer DAG registered: Airflow warns that
        # the asset has no model yet; nothing for the operator to do (SPEC §8 Assets).
        os.environ.setdefault("AIRFLOW__LOGGING__NAMESPACE_LEVELS", "airflow.assets=ERROR")
    return Path(home)


def metadata_url() -> str:
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if url:
        return url
    return f"sqlite:///{os.environ['AIRFLOW_HOME']}/airflow.db"


def ensure_migrated() -> None:
    """Run `airflow db migrate` once per metadata DB and Airflow version."""
    from importlib.metadata import version

    key = hashlib.sha256(f"{metadata_url()}|{version('apache-airflow')}".encode()).hexdigest()
    marker = Path(os.environ["AIRFLOW_HOME"]) / f".bds-migrated-{key[:16]}"
    if marker.exists():
        return
    airflow = Path(sys.executable).with_name("airflow")
    cmd = [str(airflow)] if airflow.exists() else [sys.executable, "-m", "airflow"]
    proc = subprocess.run([*cmd, "db", "migrate"], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"airflow db migrate failed for {metadata_url()}:\n{tail}")
    marker.touch()
