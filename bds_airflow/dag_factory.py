"""Builds one Airflow DAG per configured tenant (SPEC §8). Parse-time cheap: no DB, no
pandas; the tasks import the pipeline when they run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bds_metrics.config import GVP_METRICS, ConfigError, TenantConfig, load_config
from bds_metrics.plan import derived_datasets, metric_inputs, needed_datasets

SENSOR_POKE_SECONDS = 300


def tenant_dags(config_path: str | None = None) -> dict[str, Any]:
    """{dag_id: DAG} for every tenant of the configuration (BDS_CONFIG by default).

    When a worker parses the file to run one task, Airflow names that task's DAG in the
    parsing context: only that tenant's DAG is built then, so a task start does not pay
    for the other tenants' DAGs (hundreds at a hosting reseller).
    """
    from airflow.sdk import get_parsing_context

    cfg = load_config(config_path)
    wanted = get_parsing_context().dag_id
    return {f"bds_{t.id}": build_dag(t) for t in cfg.tenants
            if wanted is None or wanted == f"bds_{t.id}"}


def _fail_fast(exc: BaseException) -> BaseException:
    """Configuration problems fail the task without retries; the rest may retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from bds_metrics.compute import MappingError

    if isinstance(exc, ConfigError | MappingError):
        return AirflowFailException(str(exc))
    return exc


def _day(t: TenantConfig) -> dt.date:
    """The task's billing day. Every task calls this first, so it also routes the
    tenant's object-storage roots through Airflow's connections (object_storage)."""
    from airflow.sdk import get_current_context

    from bds_metrics.days import day_of_interval_start

    from .object_storage import install

    install()

    ctx = get_current_context()
    return day_of_interval_start(ctx["data_interval_start"], t.timezone)


def build_dag(t: TenantConfig) -> Any:
    import pendulum
    from airflow.sdk import CronDataIntervalTimetable, Param, PokeReturnValue, dag, task, task_group

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
    extracts = needed_datasets(t)

    @dag(
        dag_id=f"bds_{t.id}",
        description=f"BDS billing data for {t.name}",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone=t.timezone),
        start_date=start,
        catchup=True,
        max_active_runs=4,
        default_args=default_args,
        tags=["bds", "billing", f"tenant:{t.id}"],
        params={
            "reextract_config": Param(
                False, type="boolean",
                description="Re-read folders and Persons for this day instead of its snapshot",
            ),
            "wait_for_settle": Param(
                t.wait_for_settle, type="boolean",
                description="Wait settle_hours after the day's end before extracting",
            ),
        },
        doc_md=__doc__,
    )
    def tenant_dag() -> None:
        @task.sensor(task_id="wait_settled", mode="reschedule",
                     poke_interval=SENSOR_POKE_SECONDS, timeout=7 * 86400, retries=0)
        def wait_settled(params: dict | None = None) -> PokeReturnValue:
            from bds_metrics.days import billing_day

            p = billing_day(_day(t), t.timezone)
            ready_at = p.end + int(t.settle_hours * 3600)
            waiting = bool((params or {}).get("wait_for_settle", True))
            done = not waiting or dt.datetime.now(dt.UTC).timestamp() >= ready_at
            return PokeReturnValue(is_done=done)

        settled = wait_settled()

        @task_group(group_id="extract")
        def extract_group() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name in extracts:
                out[name] = _extract_task(t, name)()
            for name in derived_datasets(t):
                out[name] = _derive_task(t, name)(out["voice_calls"])
            return out

        paths = extract_group()
        settled >> [v for v in paths.values()]

        @task_group(group_id="attribute")
        def attribute_group() -> dict[str, Any]:
            out = {"agent_bu": attribute_agents(
                {k: paths[k] for k in ("sm_fact", "mm_sessions", "agent_resource", "folder")
                 if k in paths})}
            if any(m in GVP_METRICS for m in t.metrics):
                out["cdr_bu"] = attribute_cdrs(
                    {k: paths[k] for k in ("gvp_cdrs", "tfn_durations", "pstn_durations")},
                    out["agent_bu"])
            return out

        @task(task_id="agent_bu")
        def attribute_agents(inputs: dict[str, str]) -> str:
            from bds_metrics import pipeline
            try:
                return pipeline.attribute_agents(t, _day(t), inputs)
            except Exception as exc:
                raise _fail_fast(exc) from exc

        @task(task_id="cdr_bu")
        def attribute_cdrs(inputs: dict[str, str], agent_bu: str) -> str:
            from bds_metrics import pipeline
            try:
                return pipeline.attribute_cdrs(t, _day(t), inputs, agent_bu)
            except Exception as exc:
                raise _fail_fast(exc) from exc

        maps = attribute_group()

        @task_group(group_id="compute")
        def compute_group() -> dict[str, Any]:
            return {m: _compute_task(t, m)({**_inputs_of(m, paths), **_maps_of(m, maps)})
                    for m in t.metrics}

        results = compute_group()

        @task_group(group_id="emit")
        def emit_group() -> Any:
            @task(task_id="daily_files")
            def daily_files(metric_paths: dict[str, str], dataset_paths: dict[str, str],
                            map_paths: dict[str, str]) -> str:
                from bds_metrics import pipeline
                try:
                    return pipeline.emit_daily(t, _day(t), metric_paths, dataset_paths, map_paths)
                except Exception as exc:
                    raise _fail_fast(exc) from exc

            return daily_files(results, paths, maps)

        daily = emit_group()

        @task_group(group_id="monthly")
        def monthly_group() -> Any:
            # One monthly write per tenant at a time: the DAG is the tenant.
            @task(task_id="month_files", max_active_tis_per_dag=1)
            def month_files(daily_folder: str) -> str:
                from bds_metrics import pipeline
                folder = pipeline.emit_monthly(t, _day(t))
                if folder is None:
                    days, missing = pipeline.month_status(t, _day(t))
                    return f"month incomplete: {len(missing)} of {len(days)} days missing"
                return folder

            # The month's usage report (SPEC §10), for people: beside the month's files but
            # not in its manifest; `publish` removes only stale *.csv, so it stays.
            @task(task_id="month_report", max_active_tis_per_dag=1)
            def month_report(month_folder: str) -> str:
                if month_folder.startswith("month incomplete"):
                    return f"no report: {month_folder}"
                from bds_metrics import report
                try:
                    return report.write_month_report(t, _day(t), month_folder)
                except Exception as exc:
                    raise _fail_fast(exc) from exc

            return month_report(month_files(daily))

        monthly_group()

    return tenant_dag()


def _inputs_of(metric: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {k: paths[k] for k in metric_inputs(metric) if k in paths}


def _maps_of(metric: str, maps: dict[str, Any]) -> dict[str, Any]:
    key = "cdr_bu" if metric in GVP_METRICS else "agent_bu"
    return {key: maps[key]} if key in maps else {}


def _extract_task(t: TenantConfig, name: str) -> Any:
    from airflow.sdk import task

    @task(task_id=name)
    def extract(params: dict | None = None) -> str:
        from bds_metrics import pipeline

        from .connections import get_dsn
        try:
            return pipeline.extract(
                t, _day(t), name, get_dsn,
                reextract_config=bool((params or {}).get("reextract_config", False)),
            )
        except Exception as exc:
            raise _fail_fast(exc) from exc

    return extract


def _derive_task(t: TenantConfig, name: str) -> Any:
    from airflow.sdk import task

    @task(task_id=name)
    def derive(voice_calls: str) -> str:
        from bds_metrics import pipeline
        try:
            return pipeline.derive(t, _day(t), name, voice_calls)
        except Exception as exc:
            raise _fail_fast(exc) from exc

    return derive


def _compute_task(t: TenantConfig, metric: str) -> Any:
    from airflow.sdk import task

    @task(task_id=metric)
    def compute(inputs: dict[str, str]) -> str:
        from bds_metrics import pipeline
        try:
            return pipeline.compute(t, _day(t), metric, inputs)
        except Exception as exc:
            raise _fail_fast(exc) from exc

    return compute

