"""One measurement per process: `python -m bench.measure '<json arguments>'`.

Each kind prints one line `BENCH {json}` with its seconds (imports and set-up excluded)
and the process's peak RSS. A fresh process per measurement keeps one method's memory
and caches out of another's figures.

- `extract`, method `ours`: `pipeline.extract` (SQL -> binary COPY -> Arrow -> Parquet),
  exactly what the DAG's extract task runs.
- `extract`, method `floor`: `COPY (the same SQL) TO STDOUT (FORMAT binary)` drained by
  psql into /dev/null: the server's work plus moving the bytes, nothing parsed.
- `extract`, method `pandas`: `pandas.read_sql` of the same SQL on a psycopg connection
  (into a DataFrame only; no Parquet is written, which flatters it).
- `compute`: BU attribution and the metric kernels on the extracted files, in memory.
- `generate`: the Info Mart at a scale (`infomart.generate`).
- `parse`: importing Airflow, then parsing the DAG folder for a configuration.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARK = "BENCH "


def _queries(t: Any, name: str, dsns: dict[str, str]) -> list[tuple[str, str, tuple[object, ...]]]:
    """(DSN, SQL, parameters) of each query a dataset's extract runs (GVP: per source)."""
    from bds_metrics import datasets, pipeline
    from bds_metrics.days import billing_day

    values = pipeline.bind_values(t, billing_day(_day(), t.timezone))
    sql, params = datasets.bind(name, values)
    if name == "gvp_cdrs":
        return [(dsns[conn_id], sql, params) for conn_id, _ in t.gvp_sources()]
    return [(dsns[t.gimdb_conn_id], sql, params)]


def _day() -> dt.date:
    return dt.date.fromisoformat(os.environ["BENCH_DAY"])


def _tenant(config: str) -> Any:
    from bds_metrics.config import load_config

    return load_config(config).tenants[0]


def extract(method: str, config: str, dataset: str, dsns: dict[str, str],
            psql: str = "psql") -> dict[str, Any]:
    from bds_metrics import datasets, pipeline

    t = _tenant(config)
    queries = _queries(t, dataset, dsns)
    if method == "ours":
        import adbc_driver_postgresql.dbapi  # noqa: F401  (imported once per task process)

        t0 = time.perf_counter()
        path = pipeline.extract(t, _day(), dataset, dsns.__getitem__, reextract_config=True)
        seconds = time.perf_counter() - t0
        stats = datasets.read_stats(path)
        return {"seconds": seconds, "rows": stats.rows + sum(stats.rejected.values()),
                "bytes": Path(path).stat().st_size}
    if method == "floor":
        copies = [(dsn, f"COPY ({datasets.inline(sql, params)}) TO STDOUT (FORMAT binary)")
                  for dsn, sql, params in queries]
        t0 = time.perf_counter()
        for dsn, copy in copies:
            subprocess.run([psql, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", copy],
                           stdout=subprocess.DEVNULL, check=True)
        return {"seconds": time.perf_counter() - t0}
    if method == "pandas":
        import pandas as pd
        import psycopg

        warnings.simplefilter("ignore")  # pandas warns about DBAPI2 connections
        with psycopg.connect(queries[0][0]) as conn:  # load read_sql's lazy imports
            pd.read_sql("SELECT 1", conn)
        t0 = time.perf_counter()
        rows = 0
        for dsn, sql, params in queries:
            pyformat = re.sub(r"\$(\d+)(?!\d)", r"%(p\1)s", sql.replace("%", "%%"))
            with psycopg.connect(dsn) as conn:
                frame = pd.read_sql(pyformat, conn,
                                    params={f"p{i}": v for i, v in enumerate(params, 1)})
            rows += len(frame)
        return {"seconds": time.perf_counter() - t0, "rows": rows}
    raise ValueError(method)


def compute(config: str, repeat: int) -> dict[str, Any]:
    """Attribution and metric kernels on the day's extracted files (frames in memory)."""
    import numpy as np
    import pandas as pd

    from bds_metrics import attribution, compute, pipeline, storage
    from bds_metrics.days import billing_day
    from bds_metrics.plan import derived_datasets, needed_datasets

    t, day = _tenant(config), _day()
    p = billing_day(day, t.timezone)
    paths = {n: pipeline.dataset_path(t, day, n) for n in needed_datasets(t)}
    for n in derived_datasets(t):
        paths[n] = pipeline.derive(t, day, n, paths["voice_calls"])
    f = {n: storage.read_table(path).to_pandas() for n, path in paths.items()}
    ids = np.concatenate([f["sm_fact"]["agent_id"].to_numpy(),
                          f["mm_sessions"]["agent_id"].to_numpy()])
    calls = pd.concat([f["tfn_durations"], f["pstn_durations"]], ignore_index=True)
    call_agents = calls["agent_id"].dropna().to_numpy(dtype=np.int64)

    def agent_step() -> Any:
        return attribution.agent_units(t, ids, f["agent_resource"], f["folder"])

    def cdr_step() -> Any:  # as pipeline.attribute_cdrs: the calls' agents, then the CDRs
        units = attribution.agent_units(t, call_agents, f["agent_resource"], f["folder"])
        return attribution.cdr_units(t, f["gvp_cdrs"], calls, units)

    agent_bu, cdr_bu = agent_step(), cdr_step()
    steps: dict[str, Callable[[], object]] = {"agent_bu": agent_step, "cdr_bu": cdr_step}
    maps = {"agent_bu": agent_bu, "cdr_bu": cdr_bu}
    for m in t.metrics:
        x = t.metric(m)
        steps[m] = lambda x=x: compute.compute_metric(t, p, x, f, maps[x.bu_map])
    best = {}
    for name, step in steps.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
    return {"steps": best, "rows": {n: len(v) for n, v in f.items()}}


def generate(dsns: dict[str, str], sessions: int) -> dict[str, Any]:
    """The Info Mart at a scale (here, so that the benchmark's own process stays small:
    a child process's peak RSS includes its parent's at the fork)."""
    from . import infomart

    return infomart.generate(dsns, sessions).__dict__


def _parse_file(path: str) -> tuple[int, int, int]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=path)
    return len(bag.dags), sum(len(d.tasks) for d in bag.dags.values()), len(bag.import_errors)


def _floor_dags(n_dags: int, n_tasks: int) -> None:
    """Airflow's own cost for DAGs of that many tasks: the same DAG arguments, bare
    no-op operators, no groups, no dependencies. No DAG of that shape parses faster."""
    import pendulum
    from airflow.sdk import DAG, BaseOperator, CronDataIntervalTimetable

    class Noop(BaseOperator):
        def execute(self, context: Any) -> None:
            return None

    for i in range(n_dags):
        with DAG(dag_id=f"floor_{i}", schedule=CronDataIntervalTimetable(
                "0 0 * * *", timezone="America/New_York"),
                start_date=pendulum.datetime(2026, 1, 1, tz="America/New_York"),
                catchup=True, max_active_runs=4, default_args={"owner": "billing", "retries": 3},
                tags=["bds", "billing"]):
            for k in range(n_tasks):
                Noop(task_id=f"t{k}")


def parse(config: str) -> dict[str, Any]:
    """Seconds to import Airflow, then to parse the DAG folder: in this one process (a
    DagBag), and as the DAG processor does, each file in a forked process,
    `[dag_processor] parsing_processes` at a time. Then Airflow's floor for as many
    tasks, and the configuration's load alone."""
    os.environ["BDS_CONFIG"] = config
    t0 = time.perf_counter()
    import airflow.sdk  # noqa: F401  (what the DAG file needs)
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    t1 = time.perf_counter()
    folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    bag = DagBag(dag_folder=folder)
    t2 = time.perf_counter()
    from bds_metrics.config import load_config

    load_config(config)  # again, imports warm: the configuration's share of the parse
    t3 = time.perf_counter()
    dags, tasks = len(bag.dags), sum(len(d.tasks) for d in bag.dags.values())
    _floor_dags(dags, tasks // max(dags, 1))
    t4 = time.perf_counter()
    import multiprocessing

    processes = conf.getint("dag_processor", "parsing_processes")
    files = sorted(str(f) for f in Path(folder).glob("*.py"))
    t5 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_parse_file, files, chunksize=1)
    t6 = time.perf_counter()
    return {"import_seconds": t1 - t0, "parse_seconds": t2 - t1, "config_seconds": t3 - t2,
            "floor_seconds": t4 - t3, "parallel_seconds": t6 - t5, "processes": processes,
            "files": len(files), "parallel_dags": sum(p[0] for p in parts),
            "dags": dags, "tasks": tasks, "errors": len(bag.import_errors)}


KINDS: dict[str, Callable[..., dict[str, Any]]] = {
    "generate": generate, "extract": extract, "compute": compute, "parse": parse,
}


def main() -> None:
    args = json.loads(sys.argv[1])
    result = KINDS[args.pop("kind")](**args)
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
