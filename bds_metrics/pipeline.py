"""The daily steps as plain functions: what each Airflow task calls.

Every step takes the tenant, the billing day and the paths it reads, writes one file
at a deterministic staging path per (tenant, day, name) (`layout`), and returns that
path, so a retry or re-run overwrites the same partition and XCom carries only strings.
`run_action` dispatches a day-plan step (`plan.Step.action`) to its function: the DAG's
operators and `run_day` both go through it. Month files: `monthly`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import attribution, datasets, storage
from . import monthly as months
from .compute import MappingError, compute_metric
from .config import ConfigError, TenantConfig
from .days import Period, billing_day, billing_month
from .emission import Bundle, build_files, publish
from .layout import dataset_path, minutes_path, month_lock_path, results_path, work_path
from .plan import CONFIG_SNAPSHOTS, SESSION_DATASETS, day_plan, leaves, resolve

__all__ = ["dataset_path", "results_path", "work_path"]  # layout's, re-exported

DsnFor = Callable[[str], str]  # Airflow conn id -> libpq DSN

SPAN = ["start_ts", "end_ts"]  # the interval columns of the session datasets


class StepError(RuntimeError):
    """A step failed for a reason no other error names: one line with the tenant, the day,
    the step and its dataset or metric (the traceback stays in the log). SPEC §4: a bad
    row never fails a run, so this is a bug or an unreadable staging file, retried."""


F = TypeVar("F", bound=Callable[..., Any])


def _named(step: str, what: str = "") -> Callable[[F], F]:
    """Make a step's unexpected errors one line naming tenant, day and `what`.

    `what` is formatted with the step's first argument after the day (a dataset or metric
    name). Errors that already name their input (configuration, unmapped session, source)
    keep their class, so the Airflow side still fails them fast or retries them; a source
    error gains the tenant and day.
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(t: TenantConfig, day: dt.date, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(t, day, *args, **kwargs)
            except (ConfigError, MappingError, StepError):
                raise
            except datasets.SourceError as exc:
                raise datasets.SourceError(f"tenant {t.id!r}, day {day}: {exc}") from exc
            except Exception as exc:
                named = what.format(*args) if what else ""
                raise StepError(
                    f"tenant {t.id!r}, day {day}, step {step}{named}: "
                    f"{type(exc).__name__}: {datasets.first_line(exc)}") from exc

        return run  # type: ignore[return-value]

    return wrap


def bind_values(t: TenantConfig, p: Period) -> dict[str, object]:
    return {
        "day_start": p.start,
        "day_end": p.end,
        "lookback_start": p.start - t.session_lookback_days * 86400,
        "tenant_key": t.tenant_key,
        "tenant_dbid": t.tenant_dbid,
    }


# ---------------------------------------------------------------- extract


@_named("extract", ", dataset {0}")
def extract(
    t: TenantConfig, day: dt.date, name: str, dsn_for: DsnFor, *, reextract_config: bool = False
) -> str:
    """Extract one dataset of the day; config snapshots of a billed day are kept."""
    path = dataset_path(t, day, name)
    if name in CONFIG_SNAPSHOTS and not reextract_config and storage.exists(path):
        datasets.repair_file(path, name)  # kept from before text was checked (DECISIONS 33)
        return path
    values = bind_values(t, billing_day(day, t.timezone))
    if name == "gvp_cdrs":
        sql, params = datasets.bind(name, values)
        datasets.write_batches(path, name, _tagged_cdrs(t, sql, params, dsn_for))
    else:
        datasets.extract(name, dsn_for(t.gimdb_conn_id), values, path,
                         statement_timeout_seconds=t.statement_timeout_seconds)
    return path


def _tagged_cdrs(
    t: TenantConfig, sql: str, params: tuple[object, ...], dsn_for: DsnFor
) -> Iterator[pa.RecordBatch]:
    """Every GVP source's CDRs tagged with its location; the sources are read at once.
    The connections are looked up here, in the task's thread (Airflow's comms)."""

    def source(dsn: str, conn_id: str, location: str) -> Iterator[pa.RecordBatch]:
        try:
            for b in datasets.query_batches(dsn, sql, params, t.statement_timeout_seconds):
                loc = pa.array([location] * b.num_rows, pa.string())
                yield b.append_column("location", loc)
        except datasets.SourceError as exc:
            raise datasets.SourceError(datasets.timeout_hint(
                f"dataset gvp_cdrs, connection {conn_id}: {exc}",
                t.statement_timeout_seconds)) from exc

    return datasets.read_concurrently([source(dsn_for(c), c, loc) for c, loc in t.gvp_sources()])


@_named("derive", ", dataset {0}")
def derive(t: TenantConfig, day: dt.date, name: str, voice_calls: str) -> str:
    """tfn_durations / pstn_durations from the day's voice_calls (test calls left out)."""
    calls = storage.read_table(voice_calls)
    tests = pa.array(t.test_numbers, pa.string())
    is_test = pc.or_(pc.is_in(calls["ani"], value_set=tests),  # a null is in no list
                     pc.is_in(calls["dnis"], value_set=tests))
    dnis = pc.fill_null(calls["dnis"], "")
    tfn = pa.array(np.zeros(len(calls), dtype=bool))
    for prefix in t.tfn_prefixes:
        tfn = pc.or_(tfn, pc.starts_with(dnis, prefix))
    part = calls.filter(pc.and_(pc.invert(is_test), tfn if name == "tfn_durations"
                                else pc.invert(tfn)))
    part = part.append_column("duration", pc.subtract(part["end_ts"], part["start_ts"]))
    path = dataset_path(t, day, name)
    datasets.write_batches(path, name, part.select(datasets.SCHEMAS[name].names).to_batches())
    return path


# ---------------------------------------------------------------- attribute


def _frame(path: str | None, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A file as a DataFrame; each step asks only for the columns it uses."""
    if path is None:
        return None
    return storage.read_table(path, columns).to_pandas()


@_named("agent_bu", " (datasets sm_fact, mm_sessions, agent_resource, folder)")
def attribute_agents(t: TenantConfig, day: dt.date, paths: dict[str, str]) -> str:
    """agent_id → BU for every agent of the day's session datasets."""
    ids = [
        storage.read_table(paths[n], ["agent_id"]).column("agent_id").to_numpy(zero_copy_only=False)
        for n in SESSION_DATASETS
        if n in paths
    ]
    agent_ids = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64)
    if t.business_units:
        table = attribution.agent_units(
            t, agent_ids, _frame(paths["agent_resource"]), _frame(paths["folder"])
        )
    else:
        table = pd.DataFrame({"agent_id": np.unique(agent_ids), "bu_id": t.default_bu_id,
                              "reason": ""})
    path = work_path(t, day, "agent_bu")
    storage.write_table(path, pa.Table.from_pandas(table, preserve_index=False))
    return path


@_named("cdr_bu", " (datasets gvp_cdrs, tfn_durations, pstn_durations, agent_resource, "
        "folder)")
def attribute_cdrs(t: TenantConfig, day: dt.date, paths: dict[str, str]) -> str:
    """cdr_id → BU for the day's GVP CDRs.

    A call's agent counts by the folder rule (SPEC §6) whether or not the agent had a
    session in the day's session datasets (a call can end after its agent logged out,
    its CDR after midnight): so the calls' own agents are attributed here.
    """
    cdrs = _frame(paths["gvp_cdrs"], ["cdr_id", "location", "callid"])
    if t.business_units:
        keys = ["start_ts", "callid", "dnis", "agent_id"]
        calls = pd.concat([_frame(paths["tfn_durations"], keys),
                           _frame(paths["pstn_durations"], keys)], ignore_index=True)
        agents = calls["agent_id"].dropna().to_numpy(dtype=np.int64)
        agent_bu = attribution.agent_units(
            t, agents, _frame(paths["agent_resource"]), _frame(paths["folder"]))
        table = attribution.cdr_units(t, cdrs, calls, agent_bu)
    else:
        table = pd.DataFrame({"cdr_id": cdrs["cdr_id"], "location": cdrs["location"],
                              "bu_id": t.default_bu_id, "reason": ""})
    path = work_path(t, day, "cdr_bu")
    storage.write_table(path, pa.Table.from_pandas(table, preserve_index=False))
    return path


# ---------------------------------------------------------------- compute


@_named("compute", ", metric {0}")
def compute(t: TenantConfig, day: dt.date, metric: str, paths: dict[str, str]) -> str:
    """One metric's values for every region and scope; per-minute peaks beside them.

    `paths` holds the metric's registry inputs and its BU map (`Metric.inputs`,
    `Metric.bu_map`); each file is read with only the columns the kernel uses.
    """
    m = t.metric(metric)
    frames = {name: _frame(paths[name], INPUT_COLUMNS.get(name)) for name in m.inputs}
    res = compute_metric(t, billing_day(day, t.timezone), m, frames, _frame(paths.get(m.bu_map)))
    path = work_path(t, day, metric)
    storage.write_table(path, _results_table(res.rows))
    storage.write_table(minutes_path(t, day, metric),
                        pa.Table.from_pandas(res.minutes, preserve_index=False))
    return path


# The columns the compute step reads of each input dataset (all of the others).
INPUT_COLUMNS: dict[str, list[str]] = {
    "sm_fact": ["agent_id", "media", "switch_name", *SPAN],
    "mm_sessions": ["agent_id", *SPAN],
    "handled": ["agent_id", "media", "start_ts", "ocs"],
    "gvp_cdrs": ["cdr_id", "location", *SPAN],
}


_RESULTS_SCHEMA = pa.schema([
    ("metric", pa.string()), ("tier3_id", pa.string()), ("region", pa.string()),
    ("group", pa.int64()), ("value", pa.int64()), ("peak_first", pa.int64()),
    ("peak_last", pa.int64()), ("agents", pa.list_(pa.int64())),
])


def _results_table(rows: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(rows, schema=_RESULTS_SCHEMA, preserve_index=False)


# ---------------------------------------------------------------- emit


@_named("daily_files")
def emit_daily(
    t: TenantConfig, day: dt.date, metric_paths: dict[str, str], dataset_paths: dict[str, str],
    attribution_paths: dict[str, str], extra: dict[str, object] | None = None,
) -> str:
    """The day's billing files, audit and manifest; stores the results for the month.
    `extra`: facts added to the manifest (`readiness` of a forced run, SPEC §9)."""
    p = billing_day(day, t.timezone)
    results = pd.concat([_frame(metric_paths[m]) for m in t.metrics], ignore_index=True)
    minutes = pd.concat(
        [storage.read_table(minutes_path(t, day, m)).to_pandas() for m in t.metrics],
        ignore_index=True,
    )
    bundle = Bundle(files=build_files(t, p, results))
    repaired: dict[str, dict[str, int]] = {}
    for name in sorted(dataset_paths):
        stats = datasets.read_stats(dataset_paths[name])
        bundle.inputs[name] = stats.rows
        if stats.rejected:
            bundle.rejected[name] = stats.rejected
        if stats.repaired:
            repaired[name] = dict(sorted(stats.repaired.items()))
    bundle.fallbacks = _fallbacks(attribution_paths)
    if repaired:  # absent when no text needed repair (DECISIONS)
        bundle.extra["repaired"] = repaired
    bundle.extra.update(extra or {})
    storage.write_table(results_path(t, day), _results_table(results))
    storage.write_table(results_path(t, day, "usage"),
                        pa.Table.from_pandas(minutes, preserve_index=False))
    storage.write_table(results_path(t, day, "handled"),
                        _handled_minutes(_frame(dataset_paths["handled"], ["media", "start_ts"]),
                                         p))
    return publish(t, p, bundle)


def _handled_minutes(handled: pd.DataFrame, p: Period) -> pa.Table:
    """Interactions handled during the day, per media and UTC minute (usage report)."""
    day = handled[(handled["start_ts"] >= p.start) & (handled["start_ts"] < p.end)]
    counts = (day.assign(minute=day["start_ts"] - day["start_ts"] % 60)
              .groupby(["media", "minute"], sort=True).size().reset_index(name="count"))
    schema = pa.schema([("media", pa.string()), ("minute", pa.int64()), ("count", pa.int64())])
    return pa.Table.from_pandas(counts, schema=schema, preserve_index=False)


def _fallbacks(paths: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for path in paths.values():
        reasons = _frame(path)["reason"]
        for reason, n in reasons[reasons != ""].value_counts().items():
            out[str(reason)] = out.get(str(reason), 0) + int(n)
    return out


# ---------------------------------------------------------------- whole day


def run_action(action: str, t: TenantConfig, day: dt.date, name: str | None,
               inputs: Mapping[str, Any], *, dsn_for: DsnFor | None = None,
               reextract_config: bool = False, extra: dict[str, Any] | None = None
               ) -> str | None:
    """Run one day-plan step (`plan.Step.action`) on resolved inputs; returns its XCom value,
    the path it wrote, or None when the step does not apply (`month_files` of a month with
    days still unbilled: the task is skipped, and the steps after it with it)."""
    if action == "extract":
        assert dsn_for is not None and name is not None
        return extract(t, day, name, dsn_for, reextract_config=reextract_config)
    if action == "derive":
        assert name is not None
        return derive(t, day, name, inputs["voice_calls"])
    if action == "agent_bu":
        return attribute_agents(t, day, inputs["datasets"])
    if action == "cdr_bu":
        return attribute_cdrs(t, day, inputs["datasets"])
    if action == "compute":
        assert name is not None
        return compute(t, day, name, inputs["inputs"])
    if action == "daily_files":
        return emit_daily(t, day, inputs["metrics"], inputs["datasets"], inputs["maps"],
                          extra=extra)
    if action in ("month_files", "month_report"):
        # SPEC §8: monthly writes of one tenant never run at the same time, whoever runs
        # them (the scheduler's tasks, `bds run`s of other days of the month).
        with storage.exclusive(month_lock_path(t, billing_month(day, t.timezone).label)):
            if action == "month_files":
                return emit_monthly(t, day)  # None: the month is incomplete (skipped)
            # The month's usage report (SPEC §10), for people: beside the month's files
            # but not in its manifest; `publish` removes only stale *.csv, so it stays.
            from . import report

            return report.write_month_report(t, day, inputs["month_folder"])
    raise ValueError(f"unknown bds step action {action!r}")


def run_day(t: TenantConfig, day: dt.date, dsn_for: DsnFor, *, reextract_config: bool = False,
            monthly: bool = True) -> str:
    """Every step of the day plan in order, in this process: the DAG's own tasks and
    wiring (`plan.day_plan`), without Airflow. Returns the daily folder.

    For tests and benchmarks; operators run days through the DAG (`bds run`).
    """
    out: dict[str, str | None] = {}
    for step in day_plan(t):
        if step.group == "monthly" and not monthly:
            continue
        inputs = resolve(step.inputs, out)
        if None in leaves(inputs):  # an upstream step was skipped: so is this one
            out[step.task_id] = None
            continue
        out[step.task_id] = run_action(step.action, t, day, step.name, inputs,
                                       dsn_for=dsn_for, reextract_config=reextract_config)
    folder = out["emit.daily_files"]
    assert folder is not None
    return folder


emit_monthly = _named("month_files")(months.emit_monthly)  # one-line errors, as every step
month_status = months.month_status
