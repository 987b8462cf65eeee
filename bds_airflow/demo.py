"""`bds demo`: everything end to end on this machine, nothing to install or configure.

A private PostgreSQL (pgserver) holds a demo Info Mart shared by two tenants and two
GVP Reporting Server databases, filled by the generator; the tenants' real DAGs run
every billing day through `dag.test`; the usage report is written; a summary is printed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import time
from importlib.resources import files
from pathlib import Path

from bds_metrics.days import billing_day, billing_month, date_range

FIRST_DAY = dt.date(2026, 2, 23)
GIM_DB, GVP_DB, GVP_EU_DB = "bds_demo_gim", "bds_demo_gvp", "bds_demo_gvp_eu"
CONN_OF_DB = {GIM_DB: "bds_demo_gim", GVP_DB: "bds_demo_gvp", GVP_EU_DB: "bds_demo_gvp_eu"}


def _server(root: Path):
    import pgserver

    return pgserver.get_server(root / "pg", cleanup_mode="stop")


def _databases(uri: str) -> dict[str, str]:
    """Fresh demo databases; returns libpq DSNs by database name."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    server = conninfo_to_dict(uri)
    with psycopg.connect(uri, autocommit=True) as c:
        for db in CONN_OF_DB:
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            c.execute(f"CREATE DATABASE {db}")
    return {db: make_conninfo("", **{**server, "dbname": db}) for db in CONN_OF_DB}


def _airflow_connections(uri: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(uri)
    for db, conn_id in CONN_OF_DB.items():
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({
            "conn_type": "postgres", "host": p.get("host"), "port": int(p.get("port") or 5432),
            "login": p.get("user", "postgres"), "schema": db,
        })


def ui_first_day(days: int) -> dt.date:
    """`bds demo --ui`: the demo's days end with the last day that has ended in every demo
    zone (New York is the latest), so a scheduler started next has nothing to catch up."""
    from zoneinfo import ZoneInfo

    last = dt.datetime.now(ZoneInfo("America/New_York")).date() - dt.timedelta(days=1)
    return last - dt.timedelta(days=days - 1)


def run_demo(root: str, days: int = 21, agents: int = 300, ui: bool = False,
             port: int = 8080) -> int:
    t0 = time.monotonic()
    root_p = Path(root).resolve()
    root_p.mkdir(parents=True, exist_ok=True)
    first_day = ui_first_day(days) if ui else FIRST_DAY
    # The demo is self-contained: its own Airflow home and metadata DB, its own DAGs.
    from . import airflow_env

    os.environ["AIRFLOW_HOME"] = str(root_p / "airflow")
    os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_dags_folder(root_p))
    airflow_env.configure()

    print(f"bds demo: working folder {root_p}")
    # A fresh demo each time: its Info Mart and metadata DB are made anew, so files of an
    # earlier demo (other days with `--ui`) would only mislead the summary and the UI.
    import shutil

    for stale in ("out", "staging"):
        shutil.rmtree(root_p / stale, ignore_errors=True)
    server = _server(root_p)
    uri = server.get_uri()
    if ui:  # the scheduler needs a metadata DB that several processes share
        from . import demo_ui

        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = demo_ui.metadata_db(uri)
        os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "True"
    airflow_env.configure()
    dsns = _databases(uri)
    from bds_metrics.demo import generator

    generator.create_schemas(dsns[GIM_DB], [dsns[GVP_DB], dsns[GVP_EU_DB]])
    counts = generator.generate(
        dsns[GIM_DB], {"bds_demo_gvp": dsns[GVP_DB], "bds_demo_gvp_eu": dsns[GVP_EU_DB]},
        first_day, days, agents_per_tenant=agents,
    )
    rows = sum(int(v) for v in counts.values() if isinstance(v, int))
    print(f"  demo Info Mart + 2 GVP databases: {rows:,} rows "
          f"({time.monotonic() - t0:.0f} s)")

    os.environ["BDS_DEMO_ROOT"] = str(root_p)
    text = ((files("bds_metrics.demo") / "demo.yaml").read_text(encoding="utf-8")
            .replace("${BDS_DEMO_ROOT}", str(root_p))
            .replace(f"production_date: {FIRST_DAY}", f"production_date: {first_day}"))
    cfg_path = root_p / "bds.yaml"
    cfg_path.write_text(text, encoding="utf-8")
    os.environ["BDS_CONFIG"] = str(cfg_path)
    _airflow_connections(uri)

    from bds_metrics.config import load_config

    from .progress import day_progress
    from .runner import run_days

    cfg = load_config(cfg_path)
    last = first_day + dt.timedelta(days=days - 1)
    failed = 0
    for t in cfg.tenants:
        t1 = time.monotonic()
        lines: list[str] = []
        with day_progress(t, days, f"{t.id}: demo billing days", lines) as echo:
            failed += run_days(t, first_day, last, echo=echo)
        bad = [line for line in lines if "FAILED" in line]
        print(f"  {t.id}: {len(lines)} billing days through DAG bds_{t.id} "
              f"({time.monotonic() - t1:.0f} s){'; ' + '; '.join(bad) if bad else ''}")
    restated = _late_data(cfg.tenant("acme"), first_day + dt.timedelta(days=min(2, days - 1)),
                          dsns[GIM_DB]) if not failed else None

    reports = _reports(cfg, first_day, last, root_p)
    print()
    for t in cfg.tenants:
        print(_summary(t, first_day, last))
    print("Where everything is:")
    print(f"  configuration      {cfg_path}")
    for t in cfg.tenants:
        print(f"  {t.id + ' files':<18} {Path(t.output_root) / t.id}")
    for path in reports:
        print(f"  usage report       {path}")
    print(f"  staging (Parquet)  {root_p / 'staging'}")
    print(f"  Info Mart data     {root_p / 'pg'} (a private PostgreSQL, stopped with the demo)")
    if restated:
        print(f"  restated day       {restated} (late Info Mart rows, re-run: see history/ and "
              "corrections_*.csv)")
    print("Try (the files stay; these need no database):")
    print(f"  BDS_CONFIG={cfg_path} .venv/bin/bds verify -t acme")
    print(f"  BDS_CONFIG={cfg_path} .venv/bin/bds status -t acme --from {first_day} --to {last}")
    if restated:
        print(f"  BDS_CONFIG={cfg_path} .venv/bin/bds diff -t acme --period {restated}")
    print(f"  BDS_CONFIG={cfg_path} .venv/bin/bds report -t acme --from {first_day} "
          f"--to {last} --tz Asia/Kathmandu -o usage_kathmandu.xlsx")
    print(f"done in {time.monotonic() - t0:.0f} s")
    if failed:
        return 1
    if ui:
        from . import demo_ui

        return demo_ui.serve(root_p, cfg, uri, last, port)
    return 0


def _late_data(t, day: dt.date, gim_dsn: str) -> str | None:
    """Late Info Mart rows for one billed day of `t`, then that day re-run: a restatement
    (SPEC §7) the demo can show. Returns the day when it was restated."""
    import psycopg

    from bds_metrics.days import billing_day

    from .runner import run_days

    p = billing_day(day, t.timezone)
    sql = (files("bds_metrics") / "sql" / "demo" / "late_chats.sql").read_text(encoding="utf-8")
    with psycopg.connect(gim_dsn, autocommit=True) as c:
        c.execute(sql, {"tenant_key": t.tenant_key, "tenant_dbid": t.tenant_dbid, "n": 6,
                        "day_start": p.start, "day_end": p.end,
                        "login_start": p.start + 14 * 3600, "login_end": p.start + 16 * 3600,
                        "chat_at": p.start + 15 * 3600})
    lines: list[str] = []
    if run_days(t, day, day, echo=lines.append):
        print(f"  late data for {t.id} {day}: re-run failed: {'; '.join(lines)}")
        return None
    from bds_metrics import restate

    vs = restate.versions(t.output_root, t.id, "daily", day.isoformat())
    print(f"  {t.id}: late Info Mart rows for {day}, re-run: now v{vs[-1].number if vs else '?'}")
    return day.isoformat() if vs and vs[-1].number > 1 else None


def _reports(cfg, first: dt.date, last: dt.date, root: Path) -> list[str]:
    out = []
    try:
        from bds_metrics.report import write_report
    except ImportError:
        return out
    for t in cfg.tenants:
        path = str(root / f"usage_{t.id}.xlsx")
        try:
            out.append(write_report(t, first, last, t.timezone, path))
        except Exception as exc:  # the report is for people; the billing files stand
            print(f"  usage report for {t.id} failed: {exc}")
    return out


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def _summary(t, first: dt.date, last: dt.date) -> str:
    """Per scope and metric: the largest daily value of the range, and complete months."""
    out_root = Path(t.output_root) / t.id
    lines = [f"{t.name} ({t.id}, {t.timezone}), billing days {first} .. {last}:"]
    from bds_metrics.catalog import CONCURRENT, ENABLED
    from bds_metrics.layout import billing_file, period_folder

    conc, enab = str(CONCURRENT), str(ENABLED)
    width = max(len(m) for m in t.metrics)
    header = f"  {'scope':<14} {'region':<7} {'metric':<{width}} {'max daily':>9}"
    months = sorted(p.name for p in (out_root / "monthly").glob("*") if p.is_dir())
    for m in months:
        header += f" {m + ' conc':>13} {m + ' enab':>13}"
    lines.append(header)
    days = [billing_day(d, t.timezone) for d in date_range(first, last)]
    for tier3, name in t.scopes():
        owner = tier3 or t.id
        for metric in t.metrics:
            for region in t.regions:
                best = 0
                for d in days:
                    f = Path(period_folder(t, d)) / billing_file(owner, metric, d)
                    for r in _read_csv(f):
                        if r["Region"] == region.code and r["AgentGroupName"] == conc:
                            best = max(best, int(r["MessageSize"]))
                row = f"  {(name or 'tenant'):<14} {region.code:<7} {metric:<{width}} {best:>9}"
                for m in months:
                    p = billing_month(dt.date.fromisoformat(m + "-01"), t.timezone)
                    f = Path(period_folder(t, p)) / billing_file(owner, metric, p)
                    vals = {r["AgentGroupName"]: r["MessageSize"] for r in _read_csv(f)
                            if r["Region"] == region.code}
                    row += f" {vals.get(conc, '-'):>13} {vals.get(enab, '-'):>13}"
                lines.append(row)
    return "\n".join(lines) + "\n"


def _dags_folder(root: Path) -> Path:
    """The demo's DAG folder: the bds DAG files and the example importer DAG
    (bds_metrics/demo/importer_dag.py: one `import_<tenant>` scheduled on the tenant's
    daily Asset, SPEC §8), copied fresh on each start."""

    from . import airflow_env

    folder = root / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*.py"):
        f.unlink()
    for f in [*sorted(airflow_env.DAGS_FOLDER.glob("*.py")),
              files("bds_metrics.demo") / "importer_dag.py"]:
        (folder / f.name).write_bytes(f.read_bytes())
    return folder
