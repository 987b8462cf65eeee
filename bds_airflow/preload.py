"""Pay start-up once: the heavy imports before Airflow forks task processes.

The one mechanism, in every deployment (the native LocalExecutor recipe, `bds demo --ui`,
docker-compose's Celery workers, tests/distributed): this module is an Airflow *policy
plugin* (entry point group `airflow.policy`, declared in pyproject.toml), so installing
the `bds` package is all it takes. Airflow imports every policy plugin in
`airflow.settings.initialize()`, at `import airflow`, in every Airflow process, before
anything else happens there. What it does depends on the process (`role`):

- `airflow scheduler` (LocalExecutor: the executor's workers are forked from the
  scheduler, and each task process from a worker), `airflow celery worker` (Celery
  imports, then forks its pool, and each task process is forked from a pool process)
  and `airflow standalone`: import numpy, pandas, pyarrow and the whole pipeline
  (`MODULES`), and read the configuration (BDS_CONFIG) into the DAG factory's cache, so
  that a task process re-parsing its DAG file builds its one DAG without reading the YAML
  of every tenant. A forked task process finds all of it already in memory: a task
  costs its own work, not 1.5 CPU-seconds of imports.
- `airflow dag-processor`: start `ConfigWatcher`, which also creates or resizes the
  extract pools of the configuration (`bds_airflow.pools.ensure`, as `bds pools` does)
  when it starts and after each change: a task of a missing pool would otherwise stay
  "scheduled" for ever. The DAG files only read BDS_CONFIG,
  so editing the configuration does not change them; the watcher gives the DAG files the
  configuration's modification time when it changes, and the DAG processor (sort mode
  `modified_time`, its default) re-parses a file whose modification time is newer than
  its last parse at once, whatever `[dag_processor] min_file_process_interval` says. The
  shipped deployments therefore set that interval to a day: nothing is parsed while
  nothing changes, and a change shows up within `WATCH_SECONDS` plus one parse. A DAG
  file whose last parse failed (an import error in the metadata DB) is touched again
  every `RETRY_SECONDS`, so a transient failure heals without waiting a day.
- every other process (api-server, triggerer, the CLI, task processes started by exec):
  nothing; they never run a pipeline step.

`BDS_PRELOAD=1` forces the imports in any process (a scheduler started from Python,
for example), `BDS_PRELOAD=0` turns the module off. Nothing here imports Airflow: it
runs while `airflow` itself is being imported.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

# What a task process would otherwise import on its first step: the pipeline (numpy,
# pandas, pyarrow and its compute/parquet modules), the Info Mart's Arrow driver, the
# usage report (openpyxl) and the DAG factory. Airflow's own modules are already loaded.
MODULES = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.parquet",
    "adbc_driver_postgresql.dbapi",
    "psycopg",
    "bds_metrics.pipeline",
    "bds_metrics.report",
    "openpyxl",
    "bds_airflow.dag_factory",
)
WATCH_SECONDS = 10.0  # how often the DAG processor's watcher looks at the configuration
RETRY_SECONDS = 300.0  # how often it re-parses the bds DAG files whose last parse failed

_DONE: dict[str, object] = {}


def role(argv: Sequence[str] | None = None) -> str:
    """'tasks' (this process forks task processes), 'dag-processor' or 'other', from the
    `airflow` command line: `scheduler`, `celery worker`, `standalone` fork tasks."""
    argv = list(sys.argv if argv is None else argv)
    prog = argv[0] if argv else ""
    if Path(prog).name != "airflow" and not prog.endswith(os.path.join("airflow",
                                                                       "__main__.py")):
        return "other"  # not the airflow command (pytest, bds, a Python script)
    words = [a for a in argv[1:] if not a.startswith("-")]
    head = words[:2]
    if head[:1] in (["scheduler"], ["standalone"]) or head == ["celery", "worker"]:
        return "tasks"
    if head[:1] == ["dag-processor"]:
        return "dag-processor"
    return "other"


def preload() -> float:
    """Import `MODULES` and read the configuration (if BDS_CONFIG names one); returns the
    seconds it took. Idempotent. A module that cannot be imported is skipped: the task
    that needs it fails with the ImportError, in its own log."""
    if "preload" in _DONE:
        return 0.0
    t0 = time.perf_counter()
    import importlib

    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if os.environ.get("BDS_CONFIG"):
        from bds_airflow import dag_factory
        from bds_metrics.config import ConfigError

        try:
            cfg = dag_factory.warm_config()
        except (ConfigError, OSError):
            cfg = None  # the DAG processor reports a bad configuration as the DAG files' error
        if cfg is not None and any("://" in str(root) for t in cfg.tenants
                                   for root in (t.staging_root, t.output_root)):
            _object_storage()
    seconds = time.perf_counter() - t0
    _DONE["preload"] = seconds
    return seconds


# Object-storage roots (s3://conn@bucket/prefix): the amazon provider's file system,
# s3fs and boto, imported and registered once (Airflow discovers the providers' file
# systems on the first ObjectStoragePath, about a second per task process otherwise).
OBJECT_STORAGE_MODULES = (
    "s3fs",
    "airflow.providers.amazon.aws.fs.s3",
    "airflow.providers.amazon.aws.hooks.s3",
    "airflow.sdk.io.fs",
    "bds_airflow.object_storage",
)


def _object_storage() -> None:
    import importlib

    try:
        for name in OBJECT_STORAGE_MODULES:
            importlib.import_module(name)
        from airflow.sdk.io.fs import _register_filesystems

        _register_filesystems()
    except ImportError:
        pass


class ConfigWatcher(threading.Thread):
    """Gives the DAG files the configuration's modification time when it changes.

    A daemon thread of the DAG processor: every `interval` seconds one `os.stat` of the
    configuration (BDS_CONFIG); when its (mtime, size, inode) differs from the last seen,
    `os.utime` sets each `bds_tenants_*.py` of the DAG folder to now. Costs one stat per
    interval; never reads the file.
    """

    def __init__(self, config: str, dag_folder: str | None = None,
                 interval: float = WATCH_SECONDS, pools: bool = False,
                 wait_for: Sequence[str] = ()):
        super().__init__(name="bds-config-watcher", daemon=True)
        self.config, self.dag_folder, self.interval = config, dag_folder, interval
        self.pools = pools  # also keep the extract pools as the configuration says
        self.wait_for = tuple(wait_for)  # modules the process must have imported first
        self.pending_links: list[str] = []  # asset aliases the DAG processor has not made
        self.last = self._key()

    def sync_pools(self) -> list[str]:
        """Create or resize the configuration's extract pools in the metadata DB
        (`bds_airflow.pools.ensure`) and create its tenants' asset rows
        (`bds_airflow.assets.ensure_models`); returns the pools' lines, [] when the
        configuration does not load (the DAG files' parse reports that, naming file and
        key)."""
        from bds_metrics.config import ConfigError, load_config

        from . import assets, pools

        try:
            cfg = load_config(self.config)
        except (ConfigError, OSError):
            return []
        lines = pools.ensure(cfg)
        # aliases not parsed yet: linked on a later pass (run() calls again)
        self.pending_links = assets.ensure_models(cfg.tenants)
        return lines

    def _key(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.config)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def touch(self) -> int:
        """Set every bds DAG file's modification time to now; returns how many."""
        if self.dag_folder is None:
            self.dag_folder = _dag_folder()
        n = 0
        for path in sorted(Path(self.dag_folder).glob("bds_tenants_*.py")):
            try:
                os.utime(path)
                n += 1
            except OSError as exc:
                print(f"bds: cannot touch {path} after a change of {self.config}: {exc}",
                      file=sys.stderr)
        return n

    def errored(self) -> list[str]:
        """The bds DAG files (relative paths) with an import error in the metadata DB."""
        from airflow.models.errors import ParseImportError
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            names = session.scalars(select(ParseImportError.filename)).all()
        return sorted({n for n in names if Path(n).name.startswith("bds_tenants_")})

    def retry_errored(self) -> int:
        """Touch the bds DAG files whose last parse failed (a timeout on a loaded machine,
        a connection lost): with a day-long parse interval they would otherwise wait for
        the next configuration change. Returns how many were touched."""
        if self.dag_folder is None:
            self.dag_folder = _dag_folder()
        n = 0
        for name in self.errored():
            path = Path(self.dag_folder) / Path(name).name
            try:
                os.utime(path)
                n += 1
            except OSError:
                pass
        return n

    def check(self) -> bool:
        key = self._key()
        if key == self.last:
            return False
        self.last = key
        self.touch()
        return True

    def run(self) -> None:
        last_retry = time.monotonic()
        first = True
        # The thread starts while `import airflow` is still running in the main thread:
        # importing Airflow's models from here before the DAG processor has started
        # deadlocks on the import locks (seen on a loaded machine), so the first
        # database work waits for the DAG processor's manager to be imported.
        _wait_for_modules(self.wait_for)
        while True:
            # every second while an alias still waits for its link (its DAG was just
            # parsed: its first run may publish soon)
            time.sleep(min(self.interval, 1.0) if self.pending_links else self.interval)
            try:
                if (self.check() or first or self.pending_links) and self.pools:
                    self.sync_pools()
                first = False
                if time.monotonic() - last_retry >= RETRY_SECONDS:
                    last_retry = time.monotonic()
                    self.retry_errored()
            except Exception as exc:  # never let the watcher die quietly
                print(f"bds: configuration watcher: {exc!r}", file=sys.stderr)


def _wait_for_modules(names: Sequence[str], timeout: float = 600.0) -> bool:
    """Wait until every module of `names` is imported and no longer initializing (its
    `__spec__._initializing` unset); True when they are, False at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mods = [sys.modules.get(n) for n in names]
        if all(m is not None and not getattr(getattr(m, "__spec__", None), "_initializing",
                                             False) for m in mods):
            return True
        time.sleep(0.5)
    return False


def _dag_folder() -> str:
    """Airflow's `[core] dags_folder` (read when first needed: Airflow is imported by
    then, whether the setting comes from the environment or airflow.cfg)."""
    from airflow.configuration import conf

    return os.path.expanduser(conf.get("core", "dags_folder"))


def start_watcher() -> ConfigWatcher | None:
    config = os.environ.get("BDS_CONFIG")
    if not config or "watcher" in _DONE:
        return None
    watcher = ConfigWatcher(config, pools=True, wait_for=(
        "airflow", "airflow.settings", "airflow.dag_processing.manager"))
    watcher.start()
    _DONE["watcher"] = watcher
    return watcher


def _on_import() -> None:
    forced = os.environ.get("BDS_PRELOAD", "").strip()
    if forced == "0":
        return
    kind = role()
    if forced == "1" or kind == "tasks":
        preload()
    if kind == "dag-processor":
        start_watcher()


_on_import()
