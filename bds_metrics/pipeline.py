"""The daily and monthly steps as plain functions: what each Airflow task calls.

Every step takes the tenant, the billing day and the paths it reads, writes one file
at a deterministic staging path per (tenant, day, name), and returns that path, so a
retry or re-run overwrites the same partition and XCom carries only strings.

Staging layout (`staging_root/<tenant>/`):
    datasets/<YYYY-MM-DD>/<dataset>.parquet    extracted inputs (may be purged later)
    work/<YYYY-MM-DD>/<name>.parquet           attribution maps and metric results
    results/<YYYY-MM-DD>/results.parquet       the day's billed values (monthly input)
    results/<YYYY-MM-DD>/usage.parquet         per-UTC-minute peaks: metric, tier3_id, region,
                                               minute (epoch s), peak (non-zero minutes only)
    results/<YYYY-MM-DD>/handled.parquet       handled interactions of the day per media and
                                               UTC minute: media, minute, count
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import attribution, datasets, storage
from .compute import MappingError, compute_gvp, compute_seats, seat_inputs
from .config import GVP_METRICS, ConfigError, TenantConfig
from .days import Period, billing_day, billing_month, month_days
from .emission import Bundle, build_files, period_folder, publish
from .plan import CONFIG_SNAPSHOTS

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


def _stage(t: TenantConfig, area: str, day: dt.date, name: str) -> str:
    return storage.join(t.staging_root, t.id, area, day.isoformat(), f"{name}.parquet")


def dataset_path(t: TenantConfig, day: dt.date, name: str) -> str:
    return _stage(t, "datasets", day, name)


def work_path(t: TenantConfig, day: dt.date, name: str) -> str:
    return _stage(t, "work", day, name)


def results_path(t: TenantConfig, day: dt.date, name: str = "results") -> str:
    return _stage(t, "results", day, name)


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
        datasets.extract(name, dsn_for(t.gimdb_conn_id), values, path)
    return path


def _tagged_cdrs(
    t: TenantConfig, sql: str, params: tuple[object, ...], dsn_for: DsnFor
) -> Iterator[pa.RecordBatch]:
    """Every GVP source's CDRs tagged with its location; the sources are read at once.
    The connections are looked up here, in the task's thread (Airflow's comms)."""

    def source(dsn: str, conn_id: str, location: str) -> Iterator[pa.RecordBatch]:
        try:
            for b in datasets.query_batches(dsn, sql, params):
                loc = pa.array([location] * b.num_rows, pa.string())
                yield b.append_column("location", loc)
        except datasets.SourceError as exc:
            raise datasets.SourceError(f"dataset gvp_cdrs, connection {conn_id}: {exc}") from exc

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
        for n in ("sm_fact", "mm_sessions")
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
    """One metric's values for every region and scope; per-minute peaks beside them."""
    p = billing_day(day, t.timezone)
    if metric in GVP_METRICS:
        cdrs = _frame(paths["gvp_cdrs"], ["cdr_id", "location", "start_ts", "end_ts"])
        res = compute_gvp(t, p, metric, cdrs, _frame(paths.get("cdr_bu")))
    else:
        sessions, events = seat_inputs(
            metric,
            _frame(paths.get("sm_fact"), ["agent_id", "media", "switch_name", *SPAN]),
            _frame(paths.get("mm_sessions"), ["agent_id", *SPAN]),
            _frame(paths.get("agent_switch")),
            _frame(paths["handled"], ["agent_id", "media", "start_ts", "ocs"]),
        )
        res = compute_seats(t, p, metric, sessions, events, _frame(paths.get("agent_bu")))
    path = work_path(t, day, metric)
    storage.write_table(path, _results_table(res.rows))
    storage.write_table(work_path(t, day, f"{metric}.minutes"),
                        pa.Table.from_pandas(res.minutes, preserve_index=False))
    return path


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
    attribution_paths: dict[str, str],
) -> str:
    """The day's billing files, audit and manifest; stores the results for the month."""
    p = billing_day(day, t.timezone)
    results = pd.concat([_frame(metric_paths[m]) for m in t.metrics], ignore_index=True)
    minutes = pd.concat(
        [storage.read_table(work_path(t, day, f"{m}.minutes")).to_pandas() for m in t.metrics],
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


# ---------------------------------------------------------------- monthly


def billable_days(t: TenantConfig, any_day: dt.date) -> list[dt.date]:
    """The month's days the tenant is billed for (from its production date on)."""
    return [d for d in month_days(any_day) if d >= t.production_date]


def day_complete(t: TenantConfig, day: dt.date) -> bool:
    folder = period_folder(t, billing_day(day, t.timezone))
    return storage.exists(storage.join(folder, "manifest.json")) and storage.exists(
        results_path(t, day)
    )


def month_status(t: TenantConfig, any_day: dt.date) -> tuple[list[dt.date], list[dt.date]]:
    """(billable days, those still without a successful daily result)."""
    days = billable_days(t, any_day)
    return days, [d for d in days if not day_complete(t, d)]


@_named("month_files")
def emit_monthly(t: TenantConfig, any_day: dt.date) -> str | None:
    """(Re)write the month's files when every billable day has a daily result."""
    days, missing = month_status(t, any_day)
    if not days or missing:
        return None
    p = billing_month(any_day, t.timezone)
    daily = pd.concat(
        [_frame(results_path(t, d)).assign(day=d.isoformat()) for d in days], ignore_index=True
    )
    results = monthly_results(t, daily)
    bundle = Bundle(files=build_files(t, p, results))
    repaired: dict[str, dict[str, int]] = {}
    for d in days:
        doc = json.loads(storage.read_bytes(
            storage.join(period_folder(t, billing_day(d, t.timezone)), "manifest.json")))
        for name, n in doc.get("inputs", {}).items():
            bundle.inputs[name] = bundle.inputs.get(name, 0) + int(n)
        for name, reasons in doc.get("rejected", {}).items():
            slot = bundle.rejected.setdefault(name, {})
            for reason, n in reasons.items():
                slot[reason] = slot.get(reason, 0) + int(n)
        for reason, n in doc.get("fallbacks", {}).items():
            bundle.fallbacks[reason] = bundle.fallbacks.get(reason, 0) + int(n)
        for name, columns in doc.get("repaired", {}).items():
            slot = repaired.setdefault(name, {})
            for column, n in columns.items():
                slot[column] = slot.get(column, 0) + int(n)
    if repaired:
        bundle.extra["repaired"] = {k: dict(sorted(v.items())) for k, v in sorted(repaired.items())}
    bundle.extra["days"] = [d.isoformat() for d in days]
    return publish(t, p, bundle)


def monthly_results(t: TenantConfig, daily: pd.DataFrame) -> pd.DataFrame:
    """Month values from daily results (SPEC §5.1 6–7, §7): max peaks, agent unions, sums."""
    from .catalog import CATALOG

    rows = []
    keys = ["metric", "tier3_id", "region", "group"]
    groups = {k: g for k, g in daily.groupby(keys, sort=False)}
    for metric in t.metrics:
        kind = CATALOG[metric].kind
        for tier3, _ in t.scopes():
            for r in t.regions:
                for g in CATALOG[metric].groups("monthly"):
                    part = groups.get((metric, tier3, r.code, g))
                    rows.append(_month_row(metric, kind, tier3, r.code, g, part))
    return pd.DataFrame(rows)


def _month_row(metric, kind, tier3, region, group, part: pd.DataFrame | None) -> dict:
    row = {"metric": metric, "tier3_id": tier3, "region": region, "group": group,
           "value": 0, "peak_first": None, "peak_last": None, "agents": []}
    if part is None or part.empty:
        return row
    if kind == "minutes":
        row["value"] = int(part["value"].sum())
    elif group == 2:
        agents = np.unique(np.concatenate([np.asarray(a, dtype=np.int64)
                                           for a in part["agents"]] + [np.zeros(0, np.int64)]))
        row["value"], row["agents"] = len(agents), agents.tolist()
    else:
        peak = int(part["value"].max())
        row["value"] = peak
        if peak > 0:
            top = part[part["value"] == peak]
            first = top.loc[top["peak_first"].idxmin()]
            row["peak_first"] = int(first["peak_first"])
            row["peak_last"] = int(top["peak_last"].max())
            row["agents"] = [int(a) for a in first["agents"]]
    return row


# ---------------------------------------------------------------- whole day


def run_day(t: TenantConfig, day: dt.date, dsn_for: DsnFor, *, reextract_config: bool = False,
            monthly: bool = True) -> str:
    """Every step of a day in order, in this process: the DAG's tasks, without Airflow.

    For tests and benchmarks; operators run days through the DAG (`bds run`).
    """
    from .plan import derived_datasets, metric_inputs, needed_datasets

    paths = {n: extract(t, day, n, dsn_for, reextract_config=reextract_config)
             for n in needed_datasets(t)}
    for n in derived_datasets(t):
        paths[n] = derive(t, day, n, paths["voice_calls"])
    maps = {"agent_bu": attribute_agents(t, day, paths)}
    if t.has_gvp:
        maps["cdr_bu"] = attribute_cdrs(t, day, paths)
    metric_paths = {}
    for m in t.metrics:
        inputs = {k: paths[k] for k in metric_inputs(m) if k in paths}
        key = "cdr_bu" if m in GVP_METRICS else "agent_bu"
        metric_paths[m] = compute(t, day, m, {**inputs, key: maps[key]})
    folder = emit_daily(t, day, metric_paths, paths, maps)
    if monthly:
        emit_monthly(t, day)
    return folder
