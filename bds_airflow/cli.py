"""`bds`: the operator's command line (SPEC §9)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from bds_metrics.config import BLACKLIST, ConfigError, TenantConfig, load_config


def _date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {s!r}") from exc


def cmd_config_validate(a: argparse.Namespace) -> int:
    cfg = load_config(a.config)
    print(f"{cfg.path}: {len(cfg.tenants)} tenant(s), valid")
    for t in cfg.tenants:
        print(f"- {t.id}: {t.name} (DAG bds_{t.id}), zone {t.timezone}, "
              f"from {t.production_date}, metrics {', '.join(t.metrics)}")
        for r in t.regions:
            print(f"    region {r.code}{f' ({r.name})' if r.name else ''}")
            for loc in r.locations:
                sw = ", ".join(loc.switches) if loc.switches else "(default location)"
                gvp = f"; GVP via {loc.gvp.conn_id}" if loc.gvp else ""
                print(f"      location {loc.code}: {sw}{gvp}")
        for bu_id, name in t.scopes()[1:]:
            print(f"    business unit {bu_id}: {name}")
        for m in (t.metric(name) for name in t.metrics):
            if not m.builtin:
                media = f" media {', '.join(m.media)}" if m.media else ""
                rule = m.handled_media if m.qualifies == "handled_media" else m.qualifies
                print(f"    custom metric {m.name}: {m.sessions}{media}, qualifies {rule}, "
                      f"enabled {'daily' if m.enabled_daily else 'monthly'}, codes "
                      f"{m.channel_type}/{m.service_class}/{m.activity_type}/{m.status}")
    return 0


def cmd_units(a: argparse.Namespace) -> int:
    if a.blacklist:
        for name in BLACKLIST:
            print(name)
        return 0
    t = load_config(a.config).tenant(a.tenant)
    if not t.business_units:
        print(f"tenant {t.id}: no business units configured (tenant-level files only)")
        return 0
    print(f"{'id':<24} {'name':<24} DNIS rules")
    for b in t.business_units:
        print(f"{b.id:<24} {b.name:<24} {', '.join(b.dnis) or '-'}")
    print(f"{t.default_bu_id:<24} {'Default':<24} (everything not attributed)")
    try:
        folders = _folders(t)
    except Exception as exc:  # the DB is optional for this listing
        print(f"\n(folder detection skipped: {exc})")
        return 0
    from bds_metrics.units import detected_folders

    print("\nfolders detected as units (path from the root):")
    for bu_id, paths in detected_folders(t, folders).items():
        for path in paths or ["(none found)"]:
            print(f"  {bu_id:<22} {path}")
    return 0


def _folders(t: TenantConfig) -> Any:
    from . import airflow_env

    airflow_env.configure()
    from bds_metrics import datasets

    from .connections import get_dsn

    sql, params = datasets.bind("folder", {"tenant_dbid": t.tenant_dbid})
    import pyarrow as pa

    batches = list(datasets.query_batches(get_dsn(t.gimdb_conn_id), sql, params))
    return pa.Table.from_batches(batches, schema=None if batches else datasets.SCHEMAS["folder"]
                                 ).to_pandas()


def cmd_run(a: argparse.Namespace) -> int:
    from .runner import run_days

    t = load_config(a.config).tenant(a.tenant)
    last = a.to or a.from_
    return run_days(t, a.from_, last, reextract_config=a.reextract_config, verbose=a.verbose,
                    force=a.force)


def cmd_pools(a: argparse.Namespace) -> int:
    from . import airflow_env, pools

    cfg = load_config(a.config)
    airflow_env.configure()  # the operator's Airflow (AIRFLOW_HOME / its metadata DB)
    if a.check:
        problems = pools.check(cfg)
        for p in problems:
            print(p)
        print(f"{len(pools.wanted(cfg))} pool(s) configured, {len(problems)} problem(s)")
        return 1 if problems else 0
    for line in pools.ensure(cfg):
        print(line)
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    from bds_metrics.verify import verify_tenant

    t = load_config(a.config).tenant(a.tenant)
    checked, problems = verify_tenant(t, a.from_, a.to)
    for p in problems:
        print(p)
    print(f"{checked} period folder(s) checked, {len(problems)} problem(s)")
    return 1 if problems or checked == 0 else 0


def airflow_runs(t: TenantConfig, first: dt.date, last: dt.date) -> tuple[dict, str | None]:
    """(billing day → latest run, None) from Airflow's metadata, or ({}, why not)."""
    try:
        from . import airflow_env

        airflow_env.configure()
        from .run_states import latest_runs

        return latest_runs(t.id, t.timezone, first, last), None
    except Exception as exc:  # the stored results alone still give every day's files
        return {}, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def cmd_status(a: argparse.Namespace) -> int:
    from bds_metrics import status

    t = load_config(a.config).tenant(a.tenant)
    first = max(a.from_ or t.production_date, t.production_date)
    last = a.to or status.last_due_day(t)
    if last < first:
        print(f"bds status: --to {last} is before --from {first}", file=sys.stderr)
        return 2
    runs, why = ({}, "not asked (--no-airflow)") if a.no_airflow else airflow_runs(t, first, last)
    print(f"tenant {t.id} ({t.timezone}), billing days {first} .. {last}; Airflow runs: "
          f"{'read' if why is None else 'unknown, ' + why}")
    days = status.day_states(t, first, last, runs)
    for d in days:
        print(f"{d.day}  {d.text}")
    for m in status.month_states(t, first, last, known=days):
        print(m.text)
    bad = [d for d in days if d.state in status.BAD]
    if bad:
        print(f"{len(bad)} day(s) missing or failed: {status.ranges([d.day for d in bad])}")
    return 1 if bad else 0


def cmd_diff(a: argparse.Namespace) -> int:
    from bds_metrics import restate

    t = load_config(a.config).tenant(a.tenant)
    kind = "daily" if len(a.period) == 10 else "monthly"
    vs = restate.versions(t.output_root, t.id, kind, a.period)
    if not vs:
        print(f"bds diff: tenant {t.id}, period {a.period}: not published", file=sys.stderr)
        return 1
    cur = vs[-1]
    by_number = {v.number: v for v in vs}
    n = a.version if a.version is not None else cur.number - 1
    if n == cur.number:
        print(f"tenant {t.id}, {a.period}: v{n} is the current version (same version)")
        return 0
    if n not in by_number:
        have = ", ".join(f"v{v.number}" for v in vs)
        if len(vs) == 1:
            print(f"tenant {t.id}, {a.period}: one version (v{cur.number}), nothing differs")
            return 0 if a.version is None else 1
        print(f"bds diff: tenant {t.id}, period {a.period}: no version {n} (has {have})",
              file=sys.stderr)
        return 1
    rows = restate.diff(by_number[n], cur)
    print(f"tenant {t.id}, {a.period}: v{n} -> v{cur.number} (current), "
          f"{len(rows)} billing row(s) differ")
    if rows:
        print(f"{'RecordDate':<11} {'Tier3AccountID':<16} {'Region':<7} {'MetricName':<16} "
              f"{'Group':<5} v{n} -> v{cur.number}")
    for rd, tier3, region, metric, group, old, new in rows:
        print(f"{rd:<11} {tier3 or '(tenant)':<16} {region:<7} {metric:<16} {group:<5} "
              f"{old or '-'} -> {new or '-'}")
    return 0


def _period(s: str) -> str:
    for fmt, n in (("%Y-%m-%d", 10), ("%Y-%m", 7)):
        try:
            if len(s) == n:
                dt.datetime.strptime(s, fmt)
                return s
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD) or month (YYYY-MM): {s!r}")


def cmd_report(a: argparse.Namespace) -> int:
    from bds_metrics.report import ReportError, write_report

    t = load_config(a.config).tenant(a.tenant)
    try:
        out = write_report(t, a.from_, a.to, a.tz or t.timezone, a.output)
    except ReportError as exc:
        print(f"bds report: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(a.root, days=a.days, agents=a.agents, ui=a.ui, port=a.port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bds", description="Billing data for contact centres")
    p.add_argument("--config", help="configuration file (default: $BDS_CONFIG)")
    # `--config` is accepted after the subcommand too (`bds run -t x --config f`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    cfg = sub.add_parser("config", help="configuration commands")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    v = cfg_sub.add_parser("validate", help="load and validate the configuration", parents=[common])
    v.set_defaults(func=cmd_config_validate)

    u = sub.add_parser("units", help="list a tenant's business units", parents=[common])
    u.add_argument("-t", "--tenant", required=False)
    u.add_argument("-bl", "--blacklist", action="store_true", help="print the blacklist")
    u.set_defaults(func=cmd_units)

    r = sub.add_parser("run", help="run billing days in-process (no scheduler)", parents=[common])
    r.add_argument("-t", "--tenant", required=True)
    r.add_argument("--from", dest="from_", type=_date, required=True)
    r.add_argument("--to", type=_date)
    r.add_argument("--reextract-config", action="store_true",
                   help="re-read folders/Persons instead of each day's snapshot")
    r.add_argument("-v", "--verbose", action="store_true", help="show Airflow's task logs")
    r.add_argument("--force", action="store_true",
                   help="bill a day whose data is not ready (the manifest says so)")
    r.set_defaults(func=cmd_run)

    po = sub.add_parser("pools", help="create or resize the Airflow pools of the source "
                        "connections", parents=[common])
    po.add_argument("--check", action="store_true",
                    help="only list missing or mis-sized pools (exit 1 when any)")
    po.set_defaults(func=cmd_pools)

    rep = sub.add_parser("report", help="the usage report (XLSX)", parents=[common])
    rep.add_argument("-t", "--tenant", required=True)
    rep.add_argument("--from", dest="from_", type=_date, required=True)
    rep.add_argument("--to", type=_date, required=True)
    rep.add_argument("--tz", help="time zone of the report (default: the tenant's)")
    rep.add_argument("-o", "--output", default="usage.xlsx")
    rep.set_defaults(func=cmd_report)

    ver = sub.add_parser("verify", help="re-hash files against their manifests", parents=[common])
    ver.add_argument("-t", "--tenant", required=True)
    ver.add_argument("--from", dest="from_", type=_date)
    ver.add_argument("--to", type=_date)
    ver.set_defaults(func=cmd_verify)

    st = sub.add_parser("status", help="each billing day's and month's state",
                        parents=[common])
    st.add_argument("-t", "--tenant", required=True)
    st.add_argument("--from", dest="from_", type=_date, help="default: the production date")
    st.add_argument("--to", type=_date, help="default: the last day that has ended")
    st.add_argument("--no-airflow", action="store_true",
                    help="stored results only; do not read Airflow's metadata")
    st.set_defaults(func=cmd_status)

    df = sub.add_parser("diff", help="billing rows that differ between two versions",
                        parents=[common])
    df.add_argument("-t", "--tenant", required=True)
    df.add_argument("--period", type=_period, required=True, help="YYYY-MM-DD or YYYY-MM")
    df.add_argument("--version", type=int,
                    help="compare this version with the current one (default: the previous)")
    df.set_defaults(func=cmd_diff)

    d = sub.add_parser("demo", help="the embedded demo, end to end", parents=[common])
    d.add_argument("--root", default=".bds/demo", help="where the demo keeps everything")
    d.add_argument("--days", type=int, default=21)
    d.add_argument("--agents", type=int, default=300)
    d.add_argument("--ui", action="store_true",
                   help="then keep the databases and run Airflow (UI, scheduler) until Ctrl-C")
    d.add_argument("--port", type=int, default=8080, help="the Airflow UI's port (--ui)")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "units" and not args.blacklist and not args.tenant:
        print("bds units: -t TENANT is required (or -bl)", file=sys.stderr)
        return 2
    from .object_storage import install

    install()  # object-storage roots (s3://conn@bucket/…) resolve through Airflow connections
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"bds: configuration error:\n{exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
