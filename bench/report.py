"""BENCHMARKS.md from the results of one `bench.run`: tables, targets, the machine."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOTES = Path(__file__).with_name("notes.md")
PACKAGES = ("apache-airflow", "adbc-driver-postgresql", "pyarrow", "numpy", "pandas", "psycopg")
PHASES = ("wait_settled", "extract", "attribute", "compute", "emit", "monthly")

# The targets.
COPY_RATIO, PANDAS_SPEEDUP, COMPUTE_SHARE, PARSE_SECONDS = 1.5, 3.0, 0.10, 2.0
RSS_LIMIT_MB = {1_000_000: 1024, 5_000_000: 3 * 1024}


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine(load_start: tuple[float, ...]) -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _first("/proc/cpuinfo", "model name"), "cores": os.cpu_count(),
        "memory": _first("/proc/meminfo", "MemTotal"), "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {p: version(p) for p in PACKAGES},
        "commit": git("rev-parse", "--short", "HEAD").strip()
        + (" + uncommitted changes" if git("status", "--porcelain").strip() else ""),
        "load_start": load_start,
    }


def _n(x: float) -> str:
    """A count: 1,234 or 1.23 M."""
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x:,.0f}"


def _s(x: float) -> str:
    """Seconds: 0.12, 1.23, 12.3."""
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _scale(x: int) -> str:
    return f"{x / 1e6:g} M"


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|---|" + "|".join("---:" for _ in head[1:]) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def _phase(task_id: str) -> str:
    head = task_id.split(".")[0]
    return head if head in PHASES else "other"


def _e2e(s: dict[str, Any]) -> dict[str, float]:
    """The end-to-end split. `wait_settled` returns at once in `bds run`; its seconds are
    Airflow's start-up of the first task in the process, so they count as overhead."""
    tasks = s["e2e"]["tasks"]
    total = sum(t["seconds"] for t in tasks.values())
    first = min((t["start"] for t in tasks.values()), default=0.0)
    last = max((t["end"] for t in tasks.values()), default=0.0)
    out = {p: sum(t["seconds"] for k, t in tasks.items() if _phase(k) == p) for p in PHASES}
    wall = s["e2e"]["wall"]
    out.update(wall=wall, tasks=total - out["wait_settled"],
               overhead=wall - total + out["wait_settled"], before=first,
               between=(last - first) - total, after=wall - last, rss=s["e2e"]["maxrss_mb"],
               kernels=sum(s["compute"]["steps"].values()))
    return out


def _ratio(x: dict[str, Any], a: str, b: str) -> float:
    return x[a] / x[b]


def _fit(xs: list[float], ys: list[float]) -> str:
    """`a + b per M` by least squares, with the largest deviation of a point from it."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs)
    a = my - b * mx
    dev = max(abs(y - (a + b * x)) / y for x, y in zip(xs, ys, strict=True))
    return f"{a:.1f} + {b:.2f} per M (points within {dev:.0%})"


def _verdict(ok: bool, how: str = "") -> str:
    return ("met" if ok else "**missed**") + (f" ({how})" if how else "")


def targets(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    scales = results["scales"]
    if scales:
        top = scales[-1]
        ex, at = top["extract"], _scale(top["sessions"])
        over = [n for n in ex if _ratio(ex[n], "ours", "floor") > COPY_RATIO]
        worst = max(ex, key=lambda n: _ratio(ex[n], "ours", "floor"))
        rows.append([f"each extract ≤ {COPY_RATIO}× its COPY floor ({at})",
                     f"worst: {worst} {_ratio(ex[worst], 'ours', 'floor'):.2f}×",
                     _verdict(not over, ", ".join(
                         f"{n} {_ratio(ex[n], 'ours', 'floor'):.2f}× "
                         f"(+{ex[n]['ours'] - ex[n]['floor']:.3f} s)" for n in over))])
        under = [n for n in ex if _ratio(ex[n], "pandas", "ours") < PANDAS_SPEEDUP]
        least = min(ex, key=lambda n: _ratio(ex[n], "pandas", "ours"))
        rows.append([f"each extract ≥ {PANDAS_SPEEDUP:g}× faster than pandas.read_sql ({at})",
                     f"least: {least} {_ratio(ex[least], 'pandas', 'ours'):.1f}×",
                     _verdict(not under, f"{len(under)} of {len(ex)} datasets below; "
                              "see the client-side columns" if under else "")])
    by = {s["sessions"]: s for s in scales}
    if 1_000_000 in by:
        e = _e2e(by[1_000_000])
        share = e["kernels"] / e["wall"]
        rows.append([f"compute at 1 M sessions < {COMPUTE_SHARE:.0%} of end to end",
                     f"{e['kernels']:.2f} s of {e['wall']:.1f} s = {share:.1%}",
                     _verdict(share < COMPUTE_SHARE)])
    for n, limit in RSS_LIMIT_MB.items():
        if n in by:
            rss = by[n]["e2e"]["maxrss_mb"]
            rows.append([f"peak RSS at {_scale(n)} sessions < {limit / 1024:g} GB",
                         f"{rss:,.0f} MB", _verdict(rss < limit, "" if rss < limit
                                                    else f"by {rss - limit:,.0f} MB")])
    for p in results["parse"]:
        if p["tenants"] == 1000:
            sec = min(p["parse_seconds"], p["parallel_seconds"])
            how = (f"{p['parallel_seconds']:.1f} s in {p['processes']} processes, "
                   f"{p['parse_seconds']:.1f} s in one; Airflow's floor "
                   f"{p['floor_seconds']:.1f} s")
            rows.append([f"parse 1000 tenants' DAGs < {PARSE_SECONDS:g} s beyond the Airflow "
                         "import", f"{how} (the import: {p['import_seconds']:.1f} s)",
                         _verdict(sec < PARSE_SECONDS, "" if sec < PARSE_SECONDS else
                                  f"by {sec - PARSE_SECONDS:.1f} s, {sec / PARSE_SECONDS:.1f}×")])
    return rows


def extract_table(s: dict[str, Any]) -> str:
    rows = []
    tot = {"rows": 0, "ours": 0.0, "floor": 0.0, "pandas": 0.0}
    for name, x in [*s["extract"].items(), ("**all**", tot)]:
        if x is not tot:
            for k in tot:
                tot[k] += x[k]
        ours, pandas = x["ours"] - x["floor"], x["pandas"] - x["floor"]
        rows.append([name, _n(x["rows"]), _s(x["ours"]), _n(x["rows"] / x["ours"]),
                     _s(x["floor"]), _n(x["rows"] / x["floor"]),
                     f"{_ratio(x, 'ours', 'floor'):.2f}×", _s(x["pandas"]),
                     _n(x["rows"] / x["pandas"]), f"{_ratio(x, 'pandas', 'ours'):.1f}×",
                     f"{ours:.2f} / {pandas:.2f}",
                     f"{pandas / ours:.1f}×" if min(ours, pandas) > 0.005 else "",
                     "" if x is tot else
                     f"{x['rss_mb']['ours']:,.0f} / {x['rss_mb']['pandas']:,.0f}"])
    return _table(["dataset", "rows", "bds s", "bds rows/s", "floor s", "floor rows/s",
                   "bds / floor", "pandas s", "pandas rows/s", "pandas / bds",
                   "client s beyond the floor: bds / pandas", "pandas / bds there",
                   "peak RSS MB: bds / pandas"], rows)


def render(results: dict[str, Any]) -> str:
    f, scales, parse = results["facts"], results["scales"], results["parse"]
    sizes = ",".join(str(s["sessions"]) for s in scales)
    out = [
        "# Benchmarks",
        "",
        f"Measured by `make bench BENCH_SCALE={sizes}` (`{f['command']}`) on {f['date']}, "
        f"in {f['minutes']:.0f} minutes. Re-run it: `make bench` (0.1 M sessions per day, a "
        "few minutes) or `make bench BENCH_SCALE=100000,1000000,5000000` (the full scale); "
        "`BENCH_PG_DSN=postgresql://...` uses an existing server instead of a private one. "
        "Each figure is measured by `bench/measure.py` in a process of its own; the "
        "analysis after the tables is `bench/notes.md`.",
        "",
        "## Machine",
        "",
        _table(["", ""], [
            ["CPU", f"{f['cpu']}, {f['cores']} cores"], ["memory", f["memory"]],
            ["OS", f["os"]], ["Python", f["python"]],
            ["PostgreSQL", f"{f['server'].split(' on ')[0]}, "
             + ("a private pgserver on this machine (Unix socket), default settings"
                if f["private_server"] else "the server given by BENCH_PG_DSN")],
            ["server settings", ", ".join(f"{k} {v}" for k, v in f["settings"].items())],
            ["packages", ", ".join(f"{k} {v}" for k, v in f["packages"].items())],
            ["load average (1, 5, 15 min), start / end",
             f"{' '.join(f'{x:.1f}' for x in f['load_start'])} / "
             f"{' '.join(f'{x:.1f}' for x in f['load_end'])}"],
            ["code", f"commit {f['commit']}"],
        ]),
        "",
        "## Targets",
        "",
        _table(["target", "measured", "verdict"], targets(results)),
        "",
    ]
    for s in scales:
        g = s["generate"]
        out += [
            f"## Extract, {_scale(s['sessions'])} sessions per day",
            "",
            f"Info Mart generated and loaded (binary COPY, then the indexes) in "
            f"{g['seconds']:.0f} s, ANALYZE {g['analyze_seconds']:.0f} s, "
            f"{g['megabytes']:,.0f} MB; rows: "
            + ", ".join(f"{k} {_n(v)}" for k, v in g["rows"].items()) + ".",
            "",
            "Best time of the repetitions. Rows: what the query returns (rejected rows "
            "included). bds writes the Parquet file; pandas only builds a DataFrame. Client "
            "seconds beyond the floor: the method's time minus the floor's.",
            "",
            extract_table(s),
            "",
        ]
    out += ["## Compute: attribution and kernels alone", "",
            "In memory, on the day's extracted files (best of the repetitions), seconds.", ""]
    steps = list(scales[0]["compute"]["steps"]) if scales else []
    rows = []
    for s in scales:
        c, e = s["compute"], _e2e(s)
        sessions = c["rows"]["sm_fact"] + c["rows"]["mm_sessions"]
        rows.append([_scale(s["sessions"]), *(_s(c["steps"][k]) for k in steps),
                     _s(e["kernels"]), _n(sessions), _n(sessions / e["kernels"]),
                     f"{e['kernels'] / e['wall']:.1%}"])
    out += [_table(["scale", *steps, "total", "sessions in (sm_fact + mm_sessions)",
                    "sessions/s", "share of end to end"], rows), ""]
    out += ["## End to end: one tenant-day through `bds run`", "",
            "`bds run -t acme --from 2026-03-03`: the tenant's real DAG through dag.test, "
            "every task in this one process, a fresh SQLite metadata DB. Wall: the process "
            "from start to exit. bds tasks: the sum of the task instances' durations, except "
            "`wait_settled`, which returns at once here and whose seconds are Airflow's "
            "start-up of the first task in the process. Airflow overhead = wall − bds tasks: "
            "interpreter start, imports and DAG parse before the first task, that first-task "
            "start-up, dag.test's scheduling between tasks, and the exit. Peak RSS: the "
            "process's (the tasks run inside it).", ""]
    rows = []
    for s in scales:
        e = _e2e(s)
        rows.append([_scale(s["sessions"]), _s(e["wall"]), _s(e["tasks"]),
                     f"{_s(e['overhead'])} ({e['overhead'] / e['wall']:.0%})",
                     f"{_s(e['before'])} + {_s(e['wait_settled'])} + {_s(e['between'])} + "
                     f"{_s(e['after'])}", f"{e['rss']:,.0f}",
                     *(_s(e[p]) for p in PHASES[1:])])
    out += [_table(["scale", "wall s", "bds tasks s", "Airflow overhead s",
                    "= before + first-task start-up + between + after",
                    "peak RSS MB", *(f"{p} s" for p in PHASES[1:])], rows), ""]
    out += ["## Scale", "", "Cost per million sessions at each scale: flat or falling means "
            "the cost grows linearly (or better) with the sessions.", ""]
    rows = []
    for s in scales:
        e, m = _e2e(s), s["sessions"] / 1e6
        ex = s["extract"].values()
        bds, floor = sum(x["ours"] for x in ex), sum(x["floor"] for x in ex)
        rows.append([_scale(s["sessions"]), _s(bds), _s(floor), _s(e["kernels"]),
                     _s(e["tasks"]), _s(e["wall"]), _s(bds / m), _s(e["kernels"] / m),
                     _s(e["tasks"] / m), _s(e["wall"] / m), f"{e['rss']:,.0f}"])
    out += [_table(["sessions per day", "extract bds Σ s", "extract floor Σ s", "compute s",
                    "bds tasks s", "wall s", "extract s per M", "compute s per M",
                    "bds tasks s per M", "wall s per M", "peak RSS MB"], rows), ""]
    if len(scales) > 1:
        m = [s["sessions"] / 1e6 for s in scales]
        e = [_e2e(s) for s in scales]
        out += ["Straight lines through the scales (least squares): bds tasks ≈ "
                f"{_fit(m, [x['tasks'] for x in e])} s; wall ≈ "
                f"{_fit(m, [x['wall'] for x in e])} s; peak RSS ≈ "
                f"{_fit(m, [x['rss'] for x in e])} MB.", ""]
    out += ["## DAG parsing", "",
            "A fresh process per size: import Airflow (`airflow.sdk`, the DagBag), then "
            "parse `dags/` (its part files `bds_tenants_<k>_of_4.py`) with a configuration of "
            "N copies of the demo tenant (20 tasks each): in one process (`DagBag(dags/)`), "
            "then as the DAG processor does, each file in a forked process, "
            "`[dag_processor] parsing_processes` at a time. Airflow's floor: the time Airflow "
            "itself takes to build as many DAGs of as many bare no-op operators (same DAG "
            "arguments, no groups, no dependencies); no DAG of 20 tasks can be parsed faster. "
            "The configuration's load (YAML and validation) is timed again alone.", ""]
    rows = [[str(p["tenants"]), str(p["dags"]), f"{p['tasks']:,}", _s(p["import_seconds"]),
             _s(p["parse_seconds"]), f"{_s(p['parallel_seconds'])} ({p['processes']})",
             _s(p["floor_seconds"]), _s(p["config_seconds"]),
             f"{1000 * p['parse_seconds'] / max(p['dags'], 1):.1f}",
             f"{1000 * p['floor_seconds'] / max(p['dags'], 1):.1f}", str(p["errors"])]
            for p in parse]
    out += [_table(["tenants", "DAGs", "tasks", "Airflow import s", "parse s, one process",
                    "parse s, DAG processor (processes)", "Airflow's floor s",
                    "of the parse: the config s", "ms per DAG", "floor ms per DAG",
                    "import errors"], rows), ""]
    if NOTES.exists():
        out += [NOTES.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(out)
