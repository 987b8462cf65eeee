"""Builds one Airflow DAG per configured tenant (SPEC §8). Parse-time cheap: no DB, no
pandas; the tasks import the pipeline when they run."""

from __future__ import annotations

import datetime as dt
import os
import re
import zlib
from pathlib import Path
from typing import Any

from bds_metrics.config import Config, TenantConfig, config_path, load_config
from bds_metrics.plan import day_plan, resolve


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


def warm_config(config_file: str | None = None) -> Config:
    """Read the configuration into this process's cache (`bds_airflow.preload` does it in
    the processes that fork task processes: a task re-parsing its DAG file then builds its
    one DAG without reading every tenant's YAML again, unless the file changed since)."""
    return _config(config_file)


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

    from . import alerts, assets, pools
    from .readiness import ReadinessSensor
    from .steps import OPERATORS
    from .timetable import BillingDayTimetable

    default_args = {
        "owner": "billing",
        "retries": t.retries,
        "retry_delay": dt.timedelta(seconds=t.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
        # SPEC §8 alerts and source protection (bds_airflow.alerts, .pools)
        "execution_timeout": dt.timedelta(seconds=t.task_timeout_seconds),
        "on_failure_callback": alerts.on_failure(t),
    }
    start = pendulum.datetime(
        t.production_date.year, t.production_date.month, t.production_date.day, tz=t.timezone
    )

    with DAG(
        dag_id=f"bds_{t.id}",
        description=f"BDS billing data for {t.name}",
        schedule=BillingDayTimetable(
            t.timezone, t.settle_hours if t.wait_for_settle else 0.0, t.production_date),
        start_date=start,
        catchup=True,
        max_active_runs=4,
        default_args=default_args,
        tags=["bds", "billing", f"tenant:{t.id}"],
        doc_md=operator_doc(t),
        deadline=alerts.deadline(t),
    ) as dag:
        settled = ReadinessSensor(task_id="wait_settled", tenant=t)

        # The day plan (bds_metrics.plan) is the wiring; `pipeline.run_day` walks it too.
        outputs: dict[str, Any] = {}
        groups: dict[str, Any] = {}
        for st in day_plan(t):
            if st.group not in groups:
                groups[st.group] = TaskGroup(st.group)
            # Monthly writes of one tenant never run at the same time: the DAG is the tenant.
            extra: dict[str, Any] = {"max_active_tis_per_dag": 1} if st.serial else {}
            if st.kind == "extract":  # tenants sharing a source queue in its pool
                extra["pool"] = pools.extract_pool(t, st.name)
            op = OPERATORS[st.kind](task_id=st.name, task_group=groups[st.group], tenant=t,
                                    step=st.action, name=st.name,
                                    inputs=resolve(st.inputs, outputs),
                                    outlets=assets.outlets(t, st.action), **extra)
            if st.kind == "extract":
                settled >> op
            outputs[st.task_id] = op.output
    return dag


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
