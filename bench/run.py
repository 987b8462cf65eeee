"""`make bench`: generate an Info Mart at each scale, measure, write BENCHMARKS.md.

    python -m bench.run [--sessions 100000,1000000,5000000] [--tenants 10,100,1000]
                        [--pg-dsn DSN] [--out BENCHMARKS.md] [--work .bds/bench] [--keep]

Per scale (sessions per day of one tenant): fresh databases filled by the demo
generator; every dataset extracted by bds, by the COPY floor and by pandas.read_sql,
interleaved and repeated (best time kept); attribution and kernels alone; one tenant-day
through `bds run` (the real DAG via dag.test, its own SQLite metadata DB), with task
times from the metadata DB and the process's peak RSS. Then DAG parsing for growing
configurations. Everything runs on this machine, one measurement per process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import infomart, report
from .billing_page import kept_section
from .measure import MARK

REPO = infomart.REPO


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return {**env, "BENCH_DAY": infomart.DAY.isoformat(), **extra}


def _airflow_env(work: Path) -> dict[str, str]:
    """A private Airflow home with a SQLite metadata DB: runs never touch the operator's."""
    return {
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "bds_airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def measure(env: dict[str, str], **args: Any) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.measure", json.dumps(args)], cwd=REPO,
                          env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
        raise RuntimeError(f"measurement {args} failed:\n{tail}")
    return json.loads(lines[-1][len(MARK):])


def bench_extract(env: dict[str, str], config: Path, dsns: dict[str, str], names: list[str],
                  repeat: int, pandas_repeat: int) -> dict[str, dict[str, Any]]:
    """Per dataset: best seconds of bds, the COPY floor and pandas, run interleaved."""
    out: dict[str, dict[str, Any]] = {}
    common = {"kind": "extract", "config": str(config), "dsns": dsns, "psql": infomart.psql()}
    for name in names:
        measure(env, method="floor", dataset=name, **common)  # warm the server's caches
        runs: dict[str, list[dict[str, Any]]] = {"floor": [], "ours": [], "pandas": []}
        for r in range(repeat):
            for method in ("floor", "ours", "pandas"):
                if method == "pandas" and r >= pandas_repeat:
                    continue
                runs[method].append(measure(env, method=method, dataset=name, **common))
        ours = min(runs["ours"], key=lambda x: x["seconds"])
        out[name] = {m: min(x["seconds"] for x in v) for m, v in runs.items()}
        out[name].update(rows=ours["rows"], bytes=ours["bytes"],
                         rss_mb={m: max(x["maxrss_mb"] for x in v) for m, v in runs.items()},
                         pandas_rows=runs["pandas"][0]["rows"])
        print(f"    {name:15} {ours['rows']:>10,} rows  bds {out[name]['ours']:7.2f} s  "
              f"floor {out[name]['floor']:7.2f} s  pandas {out[name]['pandas']:7.2f} s",
              flush=True)
    return out


def _utc(text: str | None) -> float | None:
    if not text:
        return None
    stamp = dt.datetime.fromisoformat(text)
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp()


def bench_e2e(env: dict[str, str], config: Path, dsns: dict[str, str], work: Path
              ) -> dict[str, Any]:
    """One tenant-day through `bds run`: wall time, peak RSS, task times."""
    for area in ("staging", "out"):
        shutil.rmtree(work / area, ignore_errors=True)
    env = {**env, **infomart.airflow_connections(dsns), "BDS_CONFIG": str(config)}
    bds = Path(sys.executable).with_name("bds")
    log = work / "bds_run.log"
    with open(log, "w") as sink:
        t0 = time.time()
        proc = subprocess.Popen([str(bds), "run", "-t", infomart.TENANT, "--from",
                                 infomart.DAY.isoformat()], cwd=REPO, env=env, stdout=sink,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.time() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        tail = "\n".join(log.read_text().strip().splitlines()[-20:])
        raise RuntimeError(f"bds run failed:\n{tail}")
    db = sqlite3.connect(work / "airflow" / "airflow.db")
    try:
        (run_id,) = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC "
                               "LIMIT 1", (f"bds_{infomart.TENANT}",)).fetchone()
        rows = db.execute("SELECT task_id, start_date, end_date, duration, state FROM "
                          "task_instance WHERE dag_id = ? AND run_id = ?",
                          (f"bds_{infomart.TENANT}", run_id)).fetchall()
    finally:
        db.close()
    tasks = {}
    for task_id, start, end, duration, state in rows:
        s, e = _utc(start), _utc(end)
        tasks[task_id] = {"seconds": duration if duration is not None else (e or 0) - (s or 0),
                          "start": (s or t0) - t0, "end": (e or t0) - t0, "state": state}
    return {"wall": wall, "maxrss_mb": usage.ru_maxrss / 1024, "tasks": tasks}


def migrate(env: dict[str, str]) -> None:
    code = "from bds_airflow import airflow_env as a; a.configure(); a.ensure_migrated()"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)


def bench_scale(server: infomart.Server, sessions: int, work: Path, env: dict[str, str],
                args: argparse.Namespace) -> dict[str, Any]:
    from bds_metrics.config import load_config
    from bds_metrics.plan import needed_datasets

    print(f"== {sessions:,} sessions per day", flush=True)
    dsns = infomart.create_databases(server)
    try:
        gen = measure(env, kind="generate", dsns=dsns, sessions=sessions)
        print(f"  generated in {gen['seconds']:.0f} s (+ ANALYZE {gen['analyze_seconds']:.0f} s)"
              f", {gen['megabytes']:,.0f} MB", flush=True)
        config = infomart.write_config(work)
        names = needed_datasets(load_config(config).tenants[0])
        big = sessions >= 1_000_000
        extract = bench_extract(env, config, dsns, names, repeat=2 if big else args.repeat,
                                pandas_repeat=1 if big else 2)
        comp = measure(env, kind="compute", config=str(config), repeat=args.repeat)
        print(f"  compute {sum(comp['steps'].values()):.2f} s", flush=True)
        e2e = bench_e2e(env, config, dsns, work)
        print(f"  bds run {e2e['wall']:.1f} s, peak RSS {e2e['maxrss_mb']:,.0f} MB", flush=True)
    finally:
        if not args.keep:
            infomart.drop_databases(server)
    return {"sessions": sessions, "generate": gen, "extract": extract,
            "compute": comp, "e2e": e2e}


def _write(out: Path, text: str) -> None:
    """BENCHMARKS.md, keeping the sections `make bench-ui` (bench.billing_page) and `make
    bench-scheduler` (bench.scheduler) wrote."""
    from .scheduler import BEGIN, END

    old = out.read_text(encoding="utf-8") if out.exists() else ""
    text += kept_section(out)
    if BEGIN in old and END in old and BEGIN not in text:
        text = text.rstrip() + "\n\n" + old[old.index(BEGIN):old.index(END) + len(END)] + "\n"
    out.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=_ints, default=[100_000],
                    help="sessions per day of the tenant, comma-separated scales")
    ap.add_argument("--tenants", type=_ints, default=[10, 100, 1000],
                    help="configuration sizes for the DAG parsing measurement")
    ap.add_argument("--pg-dsn", default=os.environ.get("BENCH_PG_DSN") or None,
                    help="an existing PostgreSQL server (default: a private pgserver)")
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    ap.add_argument("--work", default=str(REPO / ".bds" / "bench"))
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (best time kept)")
    ap.add_argument("--keep", action="store_true", help="keep the last scale's databases")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite --out from the last run's results.json (edited notes)")
    args = ap.parse_args(argv)
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.render:
        results = json.loads((work / "results.json").read_text())
        _write(Path(args.out), report.render(results))
        return 0
    env = _env(**_airflow_env(work))
    started = time.time()
    facts = report.machine(load_start=os.getloadavg())
    server = infomart.start_server(work, args.pg_dsn)
    facts["server"] = server.query("SELECT version()")
    facts["private_server"] = server.private
    facts["settings"] = {k: server.query(f"SHOW {k}") for k in
                         ("shared_buffers", "work_mem", "jit", "max_parallel_workers_per_gather")}
    print(f"bench: {facts['server'].split(',')[0]} "
          f"({'private pgserver' if server.private else 'given server'}), work in {work}")
    migrate(env)
    scales = [bench_scale(server, n, work, env, args) for n in args.sessions]
    parse = []
    for n in args.tenants:
        cfg = infomart.write_config(work / "parse", tenants=n)
        parse.append({"tenants": n, **measure(env, kind="parse", config=str(cfg))})
        print(f"== parse {n} tenants: {parse[-1]['parse_seconds']:.2f} s "
              f"(import {parse[-1]['import_seconds']:.2f} s)", flush=True)
    facts.update(load_end=os.getloadavg(), minutes=(time.time() - started) / 60,
                 command=" ".join(["python -m bench.run", *(argv or sys.argv[1:])]))
    results = {"facts": facts, "scales": scales, "parse": parse}
    (work / "results.json").write_text(json.dumps(results, indent=1))
    _write(Path(args.out), report.render(results))
    print(f"wrote {args.out} ({facts['minutes']:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
