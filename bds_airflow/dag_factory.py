"""Builds one Airflow DAG per configured tenant (SPEC §8). Parse-time cheap: no DB, no
pandas; the tasks import the pipeline when they run."""

from __future__ import annotations

import datetime as dt
import os
import re
import zlib
from pathlib import Path
from typing import Any

from bds_metrics.config import GVP_METRICS, Config, TenantConfig, config_path, load_config
from bds_metrics.plan import derived_datasets, metric_inputs, needed_datasets

SENSOR_POKE_SECONDS = 300


def tenant_dags(config_file: str | None = None, dag_file: str | None = None) -> dict[str, Any]:
    """{dag_id: DAG} for the tenants of the configuration (BDS_CONFIG by default).

    `dag_file` is the calling DAG file, named `bds_tenants_<k>_of_<n>.py`: it builds the
    tenants of part k of n (`file_part`), so that the DAG processor parses the parts in
    parallel (`[dag_processor] parsing_processes`). When a worker parses a file to run
    one task, Airflow names that task's DAG in the parsing context: only that tenant's
    DAG is built then, so a task start does not pay for hundreds of other tenants.
    """
    from airflow.sdk import get_parsing_context

    cfg = _config(config_file)
    k, n = file_part(dag_file) if dag_file else (1, 1)
    wanted = get_parsing_context().dag_id
    return {f"bds_{t.id}": build_dag(t) for t in cfg.tenants
            if tenant_part(t.id, n) == k and (wanted is None or wanted == f"bds_{t.id}")}


def _config(path: str | None) -> Config:
    """The configuration, read once per process while the file is unchanged: a DagBag
    of the folder parses the part files one after another in one process."""
    src = config_path(path)
    try:
        st = os.stat(src)
        key = (os.path.realpath(src), st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        return load_config(src)  # load_config names the file and the problem
    if _CONFIG_CACHE.get("key") != key:
        _CONFIG_CACHE.update(key=key, config=load_config(src))
    return _CONFIG_CACHE["config"]


_CONFIG_CACHE: dict[str, Any] = {}


def file_part(dag_file: str) -> tuple[int, int]:
    """(k, n) from a DAG file named `..._<k>_of_<n>.py`."""
    m = re.search(r"_(\d+)_of_(\d+)\.py$", Path(dag_file).name)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise ValueError(f"{dag_file}: a bds DAG file is named bds_tenants_<k>_of_<n>.py "
                         "with 1 <= k <= n")
    return int(m[1]), int(m[2])


def tenant_part(tenant_id: str, n: int) -> int:
    """The part (1..n) a tenant's DAG is built in: a stable hash of its id, so a DAG stays
    in its file whatever other tenants are added or removed."""
    return zlib.crc32(tenant_id.encode()) % n + 1


def build_dag(t: TenantConfig) -> Any:
    import pendulum
    from airflow.sdk import DAG, TaskGroup

    from .steps import BdsStepOperator, SettledSensor
    from .timetable import BillingDayTimetable

    default_args = {
        "owner": "billing",
        "retries": t.retries,
        "retry_delay": dt.timedelta(seconds=t.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
    }
    start = pendulum.datetime(
        t.production_date.year, t.production_date.month, t.production_date.day, tz=t.timezone
    )

    def step(task_id: str, step: str, name: str | None = None,
             inputs: dict[str, Any] | None = None, **kw: Any) -> Any:
        return BdsStepOperator(task_id=task_id, tenant=t, step=step, name=name,
                               inputs=inputs, **kw)

    with DAG(
        dag_id=f"bds_{t.id}",
        description=f"BDS billing data for {t.name}",
        schedule=BillingDayTimetable(
            t.timezone, t.settle_hours if t.wait_for_settle else 0.0),
        start_date=start,
        catchup=True,
        max_active_runs=4,
        default_args=default_args,
        tags=["bds", "billing", f"tenant:{t.id}"],
        doc_md=operator_doc(t),
    ) as dag:
        settled = SettledSensor(task_id="wait_settled", tenant=t, mode="reschedule",
                                poke_interval=SENSOR_POKE_SECONDS, timeout=7 * 86400,
                                retries=0)

        paths: dict[str, Any] = {}
        with TaskGroup("extract"):
            for name in needed_datasets(t):
                op = step(name, "extract", name)
                settled >> op
                paths[name] = op.output
            for name in derived_datasets(t):
                paths[name] = step(name, "derive", name,
                                   {"voice_calls": paths["voice_calls"]}).output

        with TaskGroup("attribute"):
            maps = {"agent_bu": step("agent_bu", "agent_bu", inputs={"datasets": {
                k: paths[k] for k in ("sm_fact", "mm_sessions", "agent_resource", "folder")
                if k in paths}}).output}
            if t.has_gvp:
                maps["cdr_bu"] = step("cdr_bu", "cdr_bu", inputs={"datasets": {
                    k: paths[k] for k in ("gvp_cdrs", "tfn_durations", "pstn_durations",
                                          "agent_resource", "folder")}}).output

        with TaskGroup("compute"):
            results = {m: step(m, "compute", m, {"inputs": {**_inputs_of(m, paths),
                                                            **_maps_of(m, maps)}}).output
                       for m in t.metrics}

        with TaskGroup("emit"):
            daily = step("daily_files", "daily_files",
                         inputs={"metrics": results, "datasets": paths, "maps": maps}).output

        with TaskGroup("monthly"):
            # One monthly write per tenant at a time: the DAG is the tenant.
            month = step("month_files", "month_files", inputs={"daily_folder": daily},
                         max_active_tis_per_dag=1).output
            step("month_report", "month_report", inputs={"month_folder": month},
                 max_active_tis_per_dag=1)
    return dag


def _inputs_of(metric: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {k: paths[k] for k in metric_inputs(metric) if k in paths}


def _maps_of(metric: str, maps: dict[str, Any]) -> dict[str, Any]:
    key = "cdr_bu" if metric in GVP_METRICS else "agent_bu"
    return {key: maps[key]} if key in maps else {}


def operator_doc(t: TenantConfig) -> str:
    """The DAG's documentation as the Airflow UI shows it: for billing operators."""
    settle = f"{t.settle_hours:g} h" if t.wait_for_settle else "no wait"
    return f"""### Billing data for {t.name} (`{t.id}`)

One run bills **one billing day**: local midnight to midnight in **{t.timezone}**
(23 or 25 hours on a DST change). The run's *logical date* is that day; its run id
names it (`scheduled__2026-03-05_{t.timezone.replace('/', '.')}`). Billing starts on
{t.production_date.isoformat()}.

**What a run does.** It waits until the day's data is in (scheduled runs are created
{settle} after the day ends), extracts the day from the Info Mart (`extract`),
attributes agents and IVR calls to business units (`attribute`), computes every
metric (`compute`), writes the billing files, audit file and manifest of the day
(`emit`), and, once every day of the month has been billed, the month's files
(`monthly`; the task log lists the days still missing). Every task's log states the
billing day with its local and UTC bounds, the rows read and rejected, the values
computed and the files written with their SHA-256.

**Bill or re-bill one day.** *Trigger DAG* with the day as logical date (a date such
as `2026-03-05` is enough: it bills that local day, never the day before). A day that
already has a run: open it and *Clear* it (all tasks) to bill it again. From a shell:
`bds run -t {t.id} --from 2026-03-05`.

**Backfill a range.** *Backfill* (or `airflow backfill create --dag-id bds_{t.id}
--from-date 2026-03-01 --to-date 2026-03-05`): plain dates D1..D2 bill exactly the
days D1 to D2. Days between {t.production_date.isoformat()} and yesterday that have no
run are created by the `bds_billing_days` DAG, whatever order catch-up and backfills
ran in.

**Where things are.** Files: `{t.output_root}/{t.id}/daily/<day>/` and
`.../monthly/<month>/`; `bds verify -t {t.id}` re-checks them; `bds status -t {t.id}`
lists published, failed and missing days.
"""
