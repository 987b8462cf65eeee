"""Start-up paid once (bds_airflow/preload.py): which Airflow processes import the
pipeline at `import airflow`, through the installed entry point, and the DAG processor's
configuration watcher. Real processes, real files; nothing mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from bds_airflow import preload

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
HEAVY = ("numpy", "pandas", "pyarrow", "pyarrow.parquet", "bds_metrics.pipeline")


@pytest.mark.parametrize("argv, expected", [
    ([AIRFLOW, "scheduler"], "tasks"),
    ([AIRFLOW, "scheduler", "--num-runs", "3"], "tasks"),
    ([AIRFLOW, "celery", "worker", "-q", "default"], "tasks"),
    ([AIRFLOW, "standalone"], "tasks"),
    (["/x/lib/python3.11/site-packages/airflow/__main__.py", "scheduler"], "tasks"),
    ([AIRFLOW, "dag-processor"], "dag-processor"),
    ([AIRFLOW, "api-server", "-p", "8080"], "other"),
    ([AIRFLOW, "triggerer"], "other"),
    ([AIRFLOW, "celery", "flower"], "other"),
    ([AIRFLOW, "tasks", "test", "bds_acme", "scheduler"], "other"),
    (["/usr/bin/pytest", "-k", "scheduler"], "other"),
    (["/x/.venv/bin/bds", "run", "-t", "acme"], "other"),
])
def test_role_from_the_airflow_command_line(argv, expected):
    assert preload.role(argv) == expected


def test_the_package_registers_the_policy_entry_point():
    eps = [ep for ep in entry_points(group="airflow.policy") if ep.value == "bds_airflow.preload"]
    assert eps, "reinstall the package (make venv): the airflow.policy entry point is missing"


def _modules_after_import_airflow(tmp_path: Path, argv0: str, args: list[str],
                                  extra_env: dict[str, str] | None = None) -> dict:
    """`import airflow` in a fresh interpreter whose command line looks like `args`;
    returns which heavy modules it loaded and whether the configuration is cached."""
    cfg = tmp_path / "bds.yaml"
    if not cfg.exists():
        demo = (REPO / "bds_metrics" / "demo" / "demo.yaml").read_text(encoding="utf-8")
        cfg.write_text(demo.replace("${BDS_DEMO_ROOT}", str(tmp_path)), encoding="utf-8")
    code = textwrap.dedent(f"""
        import json, sys
        sys.argv = [{argv0!r}, *{args!r}]
        import airflow  # settings.initialize() loads the airflow.policy entry points
        from bds_airflow import dag_factory
        print("RESULT " + json.dumps({{
            "modules": [m for m in {HEAVY!r} if m in sys.modules],
            "openpyxl": "openpyxl" in sys.modules,
            "config_cached": "config" in dag_factory._CONFIG_CACHE,
        }}))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BDS_PRELOAD")}
    env.update(BDS_CONFIG=str(cfg), **(extra_env or {}))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, out.stdout[-2000:] + out.stderr[-2000:]
    return json.loads(line[-1][7:])


def test_scheduler_and_celery_worker_import_the_pipeline_before_forking(tmp_path):
    for args in (["scheduler"], ["celery", "worker"]):
        got = _modules_after_import_airflow(tmp_path, AIRFLOW, args)
        assert got["modules"] == list(HEAVY), args
        assert got["config_cached"], args


def test_other_processes_import_nothing_heavy(tmp_path):
    got = _modules_after_import_airflow(tmp_path, AIRFLOW, ["api-server"])
    assert got == {"modules": [], "openpyxl": False, "config_cached": False}


def test_bds_preload_overrides_the_role(tmp_path):
    off = _modules_after_import_airflow(tmp_path, AIRFLOW, ["scheduler"], {"BDS_PRELOAD": "0"})
    assert off["modules"] == [] and not off["config_cached"]
    on = _modules_after_import_airflow(tmp_path, sys.executable, [], {"BDS_PRELOAD": "1"})
    assert on["modules"] == list(HEAVY) and on["config_cached"]


def test_a_step_imports_only_what_it_uses():
    """Without the preload (bds run, a spawned worker), the pipeline's import brings no
    openpyxl (only the month report uses it) and no Airflow."""
    code = ("import sys, bds_metrics.pipeline; "
            "print(sorted(m for m in ('openpyxl', 'airflow', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def _old(paths: list[Path]) -> None:
    for p in paths:
        os.utime(p, (1_000_000_000, 1_000_000_000))  # 2001


def test_config_watcher_touches_the_dag_files_only_when_the_config_changes(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    files = [dags / f"bds_tenants_{k}_of_2.py" for k in (1, 2)]
    other = dags / "unrelated.py"
    for p in [*files, other]:
        p.write_text("# a DAG file\n")
    _old([*files, other])
    cfg = tmp_path / "bds.yaml"
    cfg.write_text("tenants: []\n")
    w = preload.ConfigWatcher(str(cfg), str(dags), interval=0.05)
    assert w.check() is False
    assert all(p.stat().st_mtime == 1_000_000_000 for p in [*files, other])

    t0 = time.time()
    cfg.write_text("tenants: [] # edited, another size\n")
    assert w.check() is True
    assert all(p.stat().st_mtime >= t0 - 1 for p in files)
    assert other.stat().st_mtime == 1_000_000_000  # only the bds DAG files
    assert w.check() is False  # once per change

    # Replaced by a rename (editors, config management): a new inode, same size.
    _old(files)
    new = tmp_path / "bds.yaml.new"
    new.write_text("tenants: [] # edited, another size\n")
    os.replace(new, cfg)
    w.start()  # the thread notices by itself
    deadline = time.time() + 10
    while time.time() < deadline and files[0].stat().st_mtime == 1_000_000_000:
        time.sleep(0.05)
    assert all(p.stat().st_mtime > 1_000_000_000 for p in files)


def test_config_watcher_retries_the_dag_files_whose_parse_failed(tmp_path, airflow_db):
    """An import error in the (real) metadata DB for a bds DAG file gets that file
    touched again, so a parse that timed out does not wait a day for the next one."""
    import datetime as dt

    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session

    dags = tmp_path / "dags"
    dags.mkdir()
    failed, fine = dags / "bds_tenants_1_of_3.py", dags / "bds_tenants_2_of_3.py"
    for p in (failed, fine):
        p.write_text("# a DAG file\n")
    _old([failed, fine])
    cfg = tmp_path / "bds.yaml"
    cfg.write_text("tenants: []\n")
    with create_session() as session:
        err = ParseImportError(filename=failed.name, bundle_name="dags-folder",
                               stacktrace="timed out", timestamp=dt.datetime.now(dt.UTC))
        session.add(err)
        session.flush()
        err_id = err.id
    try:
        w = preload.ConfigWatcher(str(cfg), str(dags))
        assert failed.name in w.errored()
        assert w.retry_errored() >= 1
        assert failed.stat().st_mtime > 1_000_000_000
        assert fine.stat().st_mtime == 1_000_000_000
    finally:
        with create_session() as session:
            session.query(ParseImportError).filter(ParseImportError.id == err_id).delete()


def test_config_watcher_keeps_the_extract_pools_as_the_config_says(tmp_path, airflow_db):
    """The DAG processor's watcher creates the configuration's pools when it starts and
    resizes them after a change (a missing pool would leave extracts "scheduled" for
    ever); an unloadable configuration changes no pool."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session
    from sqlalchemy import select

    conn = f"pw_{os.getpid()}"
    tid = f"t{os.getpid()}"  # a tenant no other test has published

    def slots() -> int | None:
        with create_session() as s:
            p = s.query(Pool).filter(Pool.pool == f"bds_{conn}").one_or_none()
            return None if p is None else p.slots

    def config(size: int) -> str:
        return textwrap.dedent(f"""\
            defaults: {{output_root: {tmp_path}/out, staging_root: {tmp_path}/st,
                        pool_sizes: {{{conn}: {size}}}}}
            tenants:
              - id: {tid}
                name: Acme
                production_date: 2026-01-01
                gimdb_conn_id: {conn}
                metrics: [seats_chat]
                regions: [{{code: us, locations: [{{code: d, switches: []}}]}}]
            """)

    dags = tmp_path / "dags"
    dags.mkdir()
    cfg = tmp_path / "bds.yaml"
    cfg.write_text(config(3))
    assert slots() is None
    from airflow.models.asset import AssetAliasModel, AssetModel

    def assets() -> tuple[set, set]:
        with create_session() as s:
            uris = set(s.scalars(select(AssetModel.uri).where(
                AssetModel.uri.in_([f"bds://{tid}/daily", f"bds://{tid}/monthly"]))))
            links = set(s.execute(select(AssetAliasModel.name, AssetModel.uri).join(
                AssetAliasModel.assets).where(AssetModel.uri.like(f"bds://{tid}/%"))).tuples())
        return uris, links

    # the DAG processor has parsed the daily alias (from the DAG's outlets), not yet the
    # monthly one
    with create_session() as s:
        s.add(AssetAliasModel(name=f"bds_{tid}_daily", group="asset"))
    w = preload.ConfigWatcher(str(cfg), str(dags), interval=0.1, pools=True)
    try:
        w.start()
        deadline = time.time() + 20
        while time.time() < deadline and slots() != 3:
            time.sleep(0.1)
        assert slots() == 3
        # and the tenant's asset rows, linked to their aliases, exist before any task
        # emits (two first events at once would race to create them, and the loser's
        # task would be failed); the same pass, just after the pools
        deadline = time.time() + 20
        while time.time() < deadline and (len(assets()[0]) < 2 or not w.pending_links):
            time.sleep(0.1)
        uris, links = assets()
        assert uris == {f"bds://{tid}/daily", f"bds://{tid}/monthly"}
        assert links == {(f"bds_{tid}_daily", f"bds://{tid}/daily")}
        assert w.pending_links == [f"bds_{tid}_monthly"]
        with create_session() as s:  # the monthly alias is parsed: linked on a next pass
            s.add(AssetAliasModel(name=f"bds_{tid}_monthly", group="asset"))
        deadline = time.time() + 20
        while time.time() < deadline and len(assets()[1]) < 2:
            time.sleep(0.1)
        assert assets()[1] == {(f"bds_{tid}_daily", f"bds://{tid}/daily"),
                               (f"bds_{tid}_monthly", f"bds://{tid}/monthly")}
        from bds_airflow.assets import ensure_models
        from bds_metrics.config import load_config

        assert ensure_models(load_config(str(cfg)).tenants) == []  # all there
        cfg.write_text(config(7) + "# resized\n")
        deadline = time.time() + 20
        while time.time() < deadline and slots() != 7:
            time.sleep(0.1)
        assert slots() == 7
        cfg.write_text("tenants: [ {id: broken\n")
        assert w.sync_pools() == [] and slots() == 7
    finally:
        with create_session() as s:
            s.query(Pool).filter(Pool.pool == f"bds_{conn}").delete()
