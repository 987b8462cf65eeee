"""`bds`: the operator's command line (SPEC §9).

Exit codes, the same in every command:

- 0: done; nothing wrong.
- 1: the command ran and found or met a problem: an invalid or unreadable configuration
  (SPEC §9: `bds config validate` exits 1), a billing day that failed, files that do not
  match their manifest or nothing to verify, a failed demo, a billing day missing or
  failed (`bds status`), a missing or mis-sized pool (`bds pools --check`), a period
  `bds diff` finds unpublished.
- 2: the command line is wrong: an unknown command or option, a missing option, a value
  that is not a date or a time zone, `--to` before `--from`, a tenant the configuration
  does not have, days `bds run` cannot bill (before the production date, not ended yet).

Messages go to stderr in one line (`bds <command>: ...`); library warnings (Airflow's
deprecation and user warnings) are not shown unless `-v`/`PYTHONWARNINGS` asks for them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import textwrap
import warnings
from typing import Any

from bds_metrics.config import BLACKLIST, ConfigError, TenantConfig, load_config

OK, PROBLEM, USAGE = 0, 1, 2
EXIT_CODES = """exit codes (every command):
  0  done, nothing wrong
  1  a problem found or met: invalid configuration, a failed day, a file that does not
     match its manifest, nothing to verify, a day missing or failed (status), a
     missing or mis-sized pool (pools --check)
  2  a command-line mistake: unknown/missing option, a bad DATE or ZONE, --to before
     --from, an unknown TENANT, days that cannot be billed yet"""


class UsageError(Exception):
    """A command-line mistake (exit 2)."""


def _date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {s!r}") from exc


def _tenant(a: argparse.Namespace) -> TenantConfig:
    """The -t tenant of the configuration: a bad file exits 1, an unknown tenant 2."""
    cfg = load_config(a.config)
    try:
        return cfg.tenant(a.tenant)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _range(a: argparse.Namespace) -> None:
    if a.from_ and a.to and a.to < a.from_:
        raise UsageError(f"--to {a.to} is before --from {a.from_}")


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
    t = _tenant(a)
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
    from .progress import day_progress
    from .runner import RangeError, check_range, run_days

    _range(a)
    t = _tenant(a)
    last = a.to or a.from_
    try:
        days = check_range(t, a.from_, last)
    except RangeError as exc:
        raise UsageError(str(exc)) from exc
    with day_progress(t, len(days)) as echo:
        return run_days(t, a.from_, last, reextract_config=a.reextract_config,
                        verbose=a.verbose, echo=echo, force=a.force)


def cmd_pools(a: argparse.Namespace) -> int:
    from . import airflow_env, pools

    cfg = load_config(a.config)
    airflow_env.configure()  # the operator's Airflow (AIRFLOW_HOME / its metadata DB)
    if a.check:
        problems = pools.check(cfg)
        for p in problems:
            print(p)
        print(f"{len(pools.wanted(cfg))} pool(s) configured, {len(problems)} problem(s)")
        return PROBLEM if problems else OK
    for line in pools.ensure(cfg):
        print(line)
    from .assets import ensure_models

    ensure_models(cfg.tenants)  # the tenants' asset rows, before any first publication
    return OK


def cmd_verify(a: argparse.Namespace) -> int:
    from bds_metrics import storage
    from bds_metrics.verify import verify_tenant

    _range(a)
    t = _tenant(a)
    checked, problems = verify_tenant(t, a.from_, a.to)
    for p in problems:
        print(p)
    if checked == 0:
        where = storage.join(t.output_root, t.id)
        span = (f"from {a.from_ or 'the first published day'} to "
                f"{a.to or 'the last published day'}" if a.from_ or a.to else "at all")
        print(f"bds verify: nothing to verify: tenant {t.id!r} has no daily or monthly "
              f"folder {span} under {where} (not published yet, or another output_root?)",
              file=sys.stderr)
        return PROBLEM
    print(f"{checked} period folder(s) checked, {len(problems)} problem(s)")
    return PROBLEM if problems else OK


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

    t = _tenant(a)
    first = max(a.from_ or t.production_date, t.production_date)
    last = a.to or status.last_due_day(t)
    if a.to is not None and a.to < t.production_date:
        raise UsageError(f"--to {last} is before the production date {t.production_date} "
                         f"of tenant {t.id!r}: nothing is billed before it")
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
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

    t = _tenant(a)
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

    _range(a)
    t = _tenant(a)
    try:
        out = write_report(t, a.from_, a.to, a.tz or t.timezone, a.output)
    except ReportError as exc:  # a bad range or zone: the command line's
        raise UsageError(str(exc)) from exc
    print(out)
    return OK


def cmd_demo(a: argparse.Namespace) -> int:
    try:
        import pgserver  # noqa: F401
    except ImportError as exc:
        raise UsageError("the demo needs its private PostgreSQL: pip install 'bds[demo]' "
                         "(the pgserver package)") from exc
    from .demo import run_demo

    return run_demo(a.root, days=a.days, agents=a.agents, ui=a.ui, port=a.port)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="bds", formatter_class=fmt, epilog=EXIT_CODES,
        description="Billing data for contact centres: the operator's commands.\n"
                    "`bds COMMAND --help` explains each.")
    p.add_argument("--config", metavar="FILE",
                   help="the bds configuration file (default: $BDS_CONFIG)")
    # `--config` is accepted after the subcommand too (`bds run -t x --config f`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="the bds configuration file (default: $BDS_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent, name: str, summary: str, description: str, **kw):
        return parent.add_parser(name, help=summary, description=textwrap.fill(description, 88),
                                 epilog=EXIT_CODES, formatter_class=fmt, **kw)

    def tenant(q, required: bool = True) -> None:
        q.add_argument("-t", "--tenant", metavar="TENANT", required=required,
                       help="the tenant id, as in the configuration (its DAG is bds_TENANT)")

    def days(q, first_required: bool, last_required: bool, what: str) -> None:
        q.add_argument("--from", dest="from_", metavar="DATE", type=_date,
                       required=first_required,
                       help=f"first billing day{what}, YYYY-MM-DD (a local day of the tenant)")
        q.add_argument("--to", metavar="DATE", type=_date, required=last_required,
                       help=f"last billing day{what}, included, YYYY-MM-DD")

    cfg = command(sub, "config", "configuration commands", "Configuration commands.")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    v = command(cfg_sub, "validate", "load and validate the configuration",
                "Load and validate the configuration; print each tenant with its regions, "
                "locations, metrics and business units.", parents=[common])
    v.set_defaults(func=cmd_config_validate)

    u = command(sub, "units", "list a tenant's business units",
                "List the tenant's business units (id, name, DNIS rules) and the Info Mart "
                "folders detected as each (skipped when the Info Mart cannot be reached).",
                parents=[common])
    tenant(u, required=False)
    u.add_argument("-bl", "--blacklist", action="store_true",
                   help="print the names no business unit may have, and nothing else")
    u.set_defaults(func=cmd_units)

    r = command(sub, "run", "run billing days (in this process, or on a running scheduler)",
                "Run the tenant's DAG for each billing day of the range in this process "
                "(Airflow's dag.test; no scheduler needed), or, when a scheduler runs on "
                "the same metadata DB and the DAG is not paused, hand the day's run to it "
                "and wait. Prints one line per day: its status, the folder of its files "
                "and the tenant-level values billed.",
                parents=[common])
    tenant(r)
    days(r, True, False, " to bill")
    r.add_argument("--reextract-config", action="store_true",
                   help="re-read folders and Persons from the Info Mart instead of "
                        "reusing each day's stored snapshot")
    r.add_argument("-v", "--verbose", action="store_true",
                   help="show Airflow's task logs and library warnings")
    r.add_argument("--force", action="store_true",
                   help="bill a day whose data is not ready (the readiness check says so)")
    r.set_defaults(func=cmd_run)

    po = command(sub, "pools", "create or resize the Airflow pools of the source connections",
                 "Create or resize the Airflow pools that bound the concurrent queries on "
                 "each source connection (Info Mart, GVP) of the configuration, and create "
                 "the tenants' asset rows (bds://<tenant>/daily, /monthly).",
                 parents=[common])
    po.add_argument("--check", action="store_true",
                    help="only list missing or mis-sized pools (exit 1 when any)")
    po.set_defaults(func=cmd_pools)

    rep = command(sub, "report", "the usage report (XLSX)",
                  "Write the usage report (XLSX: Summary, Hourly, Daily) for a range of "
                  "billing days from the stored results; reads no database.",
                  parents=[common])
    tenant(rep)
    days(rep, True, True, " of the report")
    rep.add_argument("--tz", metavar="ZONE",
                     help="IANA time zone of the report, e.g. Asia/Kathmandu "
                          "(default: the tenant's)")
    rep.add_argument("-o", "--output", metavar="FILE", default="usage.xlsx",
                     help="the workbook to write (default: usage.xlsx)")
    rep.set_defaults(func=cmd_report)

    ver = command(sub, "verify", "re-hash files against their manifests",
                  "Re-hash every billing file of the tenant's daily folders in the range "
                  "(and of the months touching it) against its manifest; list mismatches "
                  "and missing files.", parents=[common])
    tenant(ver)
    days(ver, False, False, " to verify (default: every published one)")
    ver.set_defaults(func=cmd_verify)

    st = command(sub, "status", "each billing day's and month's state",
                 "Print the state of each billing day of the range (billed, restated, "
                 "missing, failed, running, ...) from the stored results and Airflow's runs, "
                 "then each month's; exit 1 when a day is missing or failed.",
                 parents=[common])
    tenant(st)
    st.add_argument("--from", dest="from_", metavar="DATE", type=_date,
                    help="first billing day, YYYY-MM-DD (default: the production date)")
    st.add_argument("--to", metavar="DATE", type=_date,
                    help="last billing day, included, YYYY-MM-DD (default: the last day "
                         "that has ended)")
    st.add_argument("--no-airflow", action="store_true",
                    help="stored results only; do not read Airflow's metadata")
    st.set_defaults(func=cmd_status)

    df = command(sub, "diff", "billing rows that differ between two versions",
                 "Print the billing rows of a published day or month that differ between "
                 "an earlier version (a restatement's predecessor) and the current one.",
                 parents=[common])
    tenant(df)
    df.add_argument("--period", metavar="PERIOD", type=_period, required=True,
                    help="the day (YYYY-MM-DD) or month (YYYY-MM)")
    df.add_argument("--version", metavar="N", type=int,
                    help="compare this version with the current one (default: the previous)")
    df.set_defaults(func=cmd_diff)

    d = command(sub, "demo", "the embedded demo, end to end",
                "Start a private PostgreSQL, fill a demo Info Mart and GVP databases, run the "
                "demo tenants' DAGs for every day, write the usage reports and print where "
                "everything is (needs the demo extra: pip install 'bds[demo]').",
                parents=[common])
    d.add_argument("--root", metavar="DIR", default=".bds/demo",
                   help="where the demo keeps everything (default: .bds/demo)")
    d.add_argument("--days", metavar="N", type=int, default=21,
                   help="billing days of demo data (default: 21)")
    d.add_argument("--agents", metavar="N", type=int, default=300,
                   help="agents per demo tenant (default: 300)")
    d.add_argument("--ui", action="store_true",
                   help="then keep the databases and run Airflow (UI, scheduler) until Ctrl-C")
    d.add_argument("--port", metavar="PORT", type=int, default=8080,
                   help="the Airflow UI's port with --ui (default: 8080)")
    d.set_defaults(func=cmd_demo)
    return p


def _quiet_libraries(verbose: bool) -> None:
    """Library warnings are for developers: not printed to operators (unless asked)."""
    if verbose or os.environ.get("PYTHONWARNINGS") or sys.warnoptions:
        return
    warnings.simplefilter("ignore")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage mistake (2)
        return int(exc.code or 0)
    _quiet_libraries(getattr(args, "verbose", False))
    name = args.command + (f" {args.config_command}" if args.command == "config" else "")
    if args.command == "units" and not args.blacklist and not args.tenant:
        print("bds units: -t TENANT is required (or -bl)", file=sys.stderr)
        return USAGE
    from .object_storage import install

    install()  # object-storage roots (s3://conn@bucket/…) resolve through Airflow connections
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"bds {name}: {exc}", file=sys.stderr)
        return USAGE
    except ConfigError as exc:
        print(f"bds: configuration error:\n{exc}", file=sys.stderr)
        return PROBLEM


if __name__ == "__main__":
    sys.exit(main())
