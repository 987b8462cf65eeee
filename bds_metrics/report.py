"""The usage report (SPEC §10): an XLSX workbook for people, built from stored daily results.

Nothing here reads the Info Mart. Each daily run stores, beside the day's billed values
(`results.parquet`), the peak per UTC minute of every concurrency metric (`usage.parquet`)
and the handled interactions per media and UTC minute (`handled.parquet`). The report
reads those files for the billing days it needs and shifts the minutes into the zone the
reader chose. Every zone offset in use today is a whole number of minutes, so a UTC
minute lies inside exactly one local hour and hours shift exactly, for +05:45
(Asia/Kathmandu), +09:30/+10:30 (Australia/Adelaide) and across DST changes alike.

Range
    `--from D1 --to D2` are days in the report's zone: the report covers
    `[D1 00:00, D2+1 00:00)` there.

Hours
    One row per local hour, in time order. A new row starts wherever the local hour or the
    UTC offset changes, so a 23-hour DST day has 23 rows, a 25-hour day 25 (the repeated
    hour twice, told apart by its UTC offset), and a 30-minute DST shift (Lord Howe) gives
    a row of 30 minutes. The hour's peak of a metric is the largest minute peak inside it,
    i.e. the most sessions active in any one second of that hour.

Peaks never add (SPEC §5.1)
    Everything about concurrency is tenant level (`tier3_id` '') and **per region**: the
    Hourly sheet has one column per metric and region, the Summary one row per metric and
    region. A tenant-wide peak across regions is not the sum of the regions' peaks and the
    stored minutes cannot give it (an agent active in two regions counts in both), so the
    report does not show one; a one-region tenant's region row is the tenant.

Summary figures (per concurrency metric — the seat metrics and `gvp_ports` — and region)
    maximum concurrent = the largest hourly peak; its hour is shown (the first one);
    average concurrent per hour = sum of hourly peaks / number of hours whose peak is > 0
    (hours with no session are left out, as in the Genesys usage report);
    hours with sessions = that number; enabled agents (seat metrics) = distinct agents
    over the enabled-agent lists (AgentGroupName 2) of the range's billing days.
    Peak ports = the `gvp_ports` row's maximum. GVP minutes = the sum of the daily
    `gvp_minutes` values of the range's billing days. Interactions handled per media =
    the handled interactions whose start lies in the range (minute exact), with a total
    (counts do add).

Billing days: which ones, and days partly in the range
    Billing days are days in the tenant's zone. The report reads every billing day that
    overlaps the range (the "needed" days), because its minutes may fall into the range.
    Day-level figures cannot be split by hour: enabled agents, GVP minutes and the Daily
    sheet use the billing days whose middle instant lies in the range ("the range's
    billing days", the days mostly inside it). With the tenant's own zone (the default,
    and the monthly report) both sets are exactly the days D1..D2; with another zone
    the first and last day cover a little more or less than the range, and the Summary
    names the billing days used.

Missing data is said, never zero
    A needed billing day (on or after the production date) without `results.parquet`,
    `usage.parquet` or `handled.parquet` is a missing daily result: none of its files are
    used, the Summary's status line and coverage section name it and the file(s) absent,
    Hourly marks the hours it overlaps, and Daily shows its rows blank with a status.
    Days before the production date are not billed: listed, not missing. A day that has
    results but no sessions shows zeros.

Sheets
    Summary (the figures above, the status line, data coverage), Hourly (a line chart of
    the seat metrics' hourly peaks per region; of `gvp_ports` when the tenant has no seat
    metric), Daily (rows by scope — tenant, then BUs, then the default BU — region and
    billing day, each metric's stored daily values: concurrent and enabled for seat
    metrics, even `seats_outbound`'s enabled that only the month bills; a bar chart of the
    tenant-level concurrent values). Excel has no time zones: local hours and UTC starts
    are written as naive date-times, with the UTC offset of each hour beside them.

The workbook is deterministic (no wall-clock time inside), so re-writing a month's report
from unchanged results gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from . import storage
from .catalog import CONCURRENT, ENABLED
from .config import TenantConfig
from .days import billing_day, date_range, local_midnight, month_days
from .layout import DAY_RESULTS, results_path

# Report roles of the registry (`Metric.report`): seat metrics show hourly peaks and
# enabled agents; ports hourly peaks; minutes a sum over the billing days.
PEAK_ROLES = ("seats", "ports")
MISSING = "missing daily result"


class ReportError(ValueError):
    """A report that cannot be built as asked (bad range or time zone)."""


# ---------------------------------------------------------------- which days


@dataclass(frozen=True)
class Plan:
    """The report's range and the billing days it reads."""

    first: dt.date
    last: dt.date
    tz: str
    start: int  # [start, end) epoch seconds: first 00:00 .. last+1 00:00 in `tz`
    end: int
    needed: list[dt.date]  # billing days overlapping the range, from the production date on
    days: list[dt.date]  # billing days whose middle lies in the range (day-level figures)
    before_production: list[dt.date]  # overlapping days before the production date


def plan(t: TenantConfig, first: dt.date, last: dt.date, tz: str) -> Plan:
    if last < first:
        raise ReportError(f"tenant {t.id!r}: report end {last} is before its start {first}")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ReportError(f"unknown time zone {tz!r}") from exc
    start, end = local_midnight(first, tz), local_midnight(last + dt.timedelta(1), tz)
    zone = ZoneInfo(t.timezone)
    lo = dt.datetime.fromtimestamp(start, zone).date() - dt.timedelta(1)
    hi = dt.datetime.fromtimestamp(end - 1, zone).date() + dt.timedelta(1)
    overlapping, middle = [], []
    for d in date_range(lo, hi):
        p = billing_day(d, t.timezone)
        if p.start < end and p.end > start:
            overlapping.append(d)
            if start <= (p.start + p.end) // 2 < end:
                middle.append(d)
    prod = t.production_date
    return Plan(
        first, last, tz, start, end,
        needed=[d for d in overlapping if d >= prod],
        days=[d for d in middle if d >= prod],
        before_production=[d for d in overlapping if d < prod],
    )


# ---------------------------------------------------------------- inputs


@dataclass
class Inputs:
    results: pd.DataFrame  # results.parquet rows of the days read, plus `day`
    usage: pd.DataFrame  # tenant-level minute peaks: metric, region, minute, peak
    handled: pd.DataFrame  # media, minute, count
    missing: dict[dt.date, str] = field(default_factory=dict)  # day -> what is absent


RESULT_COLUMNS = ["metric", "tier3_id", "region", "group", "value", "agents"]
USAGE_COLUMNS = ["metric", "region", "minute", "peak"]


def load(t: TenantConfig, pl: Plan) -> Inputs:
    results, usage, handled, missing = [], [], [], {}
    for d in pl.needed:
        paths = {n: results_path(t, d, n) for n in DAY_RESULTS}
        absent = [f"{n}.parquet" for n, p in paths.items() if not storage.exists(p)]
        if absent:
            missing[d] = ", ".join(absent)
            continue
        results.append(storage.read_table(paths["results"], RESULT_COLUMNS).to_pandas()
                       .assign(day=d))
        u = storage.read_table(paths["usage"], ["tier3_id", *USAGE_COLUMNS]).to_pandas()
        usage.append(u.loc[u["tier3_id"] == "", USAGE_COLUMNS])
        handled.append(storage.read_table(paths["handled"]).to_pandas())
    return Inputs(
        _concat(results, [*RESULT_COLUMNS, "day"]),
        _concat(usage, USAGE_COLUMNS),
        _concat(handled, ["media", "minute", "count"]),
        missing,
    )


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- hours


@dataclass
class Hours:
    """The local hours of the range, one row each, in time order."""

    start: np.ndarray  # UTC epoch second the row begins
    end: np.ndarray
    local: np.ndarray  # local wall-clock hour start, as epoch-like seconds (naive)
    offset: np.ndarray  # UTC offset in seconds during the row

    def __len__(self) -> int:
        return len(self.start)

    def index_of(self, ts: np.ndarray) -> np.ndarray:
        """Row of each instant (callers keep instants inside the range)."""
        return np.searchsorted(self.start, ts, side="right") - 1


def hours(start: int, end: int, tz: str) -> Hours:
    utc = np.arange(start, end, 60, dtype=np.int64)
    wall = (pd.to_datetime(utc, unit="s", utc=True).tz_convert(tz).tz_localize(None)
            .as_unit("s").asi8)
    offset = wall - utc
    hour = wall // 3600
    new = np.ones(len(utc), dtype=bool)
    new[1:] = (hour[1:] != hour[:-1]) | (offset[1:] != offset[:-1])
    starts = utc[new]
    return Hours(starts, np.append(starts[1:], end), hour[new] * 3600, offset[new])


def offset_text(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    h, m = divmod(abs(int(seconds)) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


# ---------------------------------------------------------------- figures


@dataclass
class Column:
    key: tuple[str, str]  # (metric or media, region or '')
    header: str


@dataclass
class Report:
    t: TenantConfig
    plan: Plan
    inputs: Inputs
    hours: Hours
    peaks: list[Column]  # concurrency columns of Hourly, config order
    handled_cols: list[Column]
    hourly: pd.DataFrame  # one row per hour; columns keyed by Column.key
    notes: np.ndarray  # per hour: '' or the missing-day note
    concurrency: pd.DataFrame  # Summary rows: metric, region, max, peak_row, avg, hours, enabled
    totals: pd.DataFrame  # metric, region, value: metrics summed over the days (minutes)
    handled: pd.DataFrame  # media, count
    daily: pd.DataFrame  # Daily rows: day, region, tier3_id, tier3_name, status, values…
    daily_cols: list[tuple[str, int, str]]  # (metric, group, header)
    roles: dict[str, str]  # metric -> its registry report role (seats | ports | minutes)


def build(t: TenantConfig, first: dt.date, last: dt.date, tz: str) -> Report:
    pl = plan(t, first, last, tz)
    inp = load(t, pl)
    hrs = hours(pl.start, pl.end, tz)
    n = len(hrs)

    peaks = [Column((m, r.code), f"{m} {r.code}")
             for m in t.metrics if t.metric(m).report in PEAK_ROLES for r in t.regions]
    u = inp.usage
    minute = u["minute"].to_numpy(dtype=np.int64)
    u = u[(minute >= pl.start) & (minute < pl.end)]
    by_hour = (u.assign(row=hrs.index_of(u["minute"].to_numpy(dtype=np.int64)))
               .groupby(["metric", "region", "row"])["peak"].max())
    h = inp.handled
    minute = h["minute"].to_numpy(dtype=np.int64)
    h = h[(minute >= pl.start) & (minute < pl.end)]
    media = sorted(str(m) for m in h["media"].unique())
    handled_cols = [Column((m, ""), f"{m} handled") for m in media]
    counts = (h.assign(row=hrs.index_of(h["minute"].to_numpy(dtype=np.int64)))
              .groupby(["media", "row"])["count"].sum())

    hourly = pd.DataFrame(index=pd.RangeIndex(n))
    for c in peaks:
        hourly[c.key] = _series(by_hour, c.key, n)
    for c in handled_cols:
        hourly[c.key] = _series(counts, (c.key[0],), n)

    notes = np.full(n, "", dtype=object)
    for d in sorted(inp.missing):
        p = billing_day(d, t.timezone)
        hit = (hrs.start < p.end) & (hrs.end > p.start)
        notes[hit] = np.where(notes[hit] == "", f"{MISSING} {d.isoformat()}",
                              notes[hit] + f", {d.isoformat()}")

    return Report(
        t, pl, inp, hrs, peaks, handled_cols, hourly, notes,
        concurrency=_concurrency(t, pl, inp, hourly, peaks),
        totals=_totals(t, pl, inp),
        handled=pd.DataFrame({"media": media,
                              "count": [int(hourly[c.key].sum()) for c in handled_cols]}),
        daily=_daily(t, pl, inp),
        daily_cols=_daily_columns(t),
        roles={m: t.metric(m).report for m in t.metrics},
    )


def _series(grouped: pd.Series, key: tuple, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    try:
        part = grouped.loc[key]
    except KeyError:
        return out
    out[part.index.to_numpy(dtype=np.int64)] = part.to_numpy(dtype=np.int64)
    return out


def _in_days(frame: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    return frame[frame["day"].isin(days)] if len(frame) else frame


def _concurrency(t: TenantConfig, pl: Plan, inp: Inputs, hourly: pd.DataFrame,
                 peaks: list[Column]) -> pd.DataFrame:
    r = _in_days(inp.results, pl.days)
    enabled = pd.Series(dtype=np.int64)
    if len(r):
        en = r[(r["tier3_id"] == "") & (r["group"] == ENABLED)][["metric", "region", "agents"]]
        enabled = en.explode("agents").groupby(["metric", "region"])["agents"].nunique()
    rows = []
    for c in peaks:
        col = hourly[c.key].to_numpy()
        busy = col > 0
        metric, region = c.key
        rows.append({
            "metric": metric, "region": region,
            "max": int(col.max()) if len(col) else 0,
            "peak_row": int(np.argmax(col)) if busy.any() else None,
            "avg": float(col[busy].sum() / busy.sum()) if busy.any() else 0.0,
            "hours": int(busy.sum()),
            "enabled": int(enabled.get((metric, region), 0))
            if t.metric(metric).report == "seats" else None,
        })
    return pd.DataFrame(rows, columns=["metric", "region", "max", "peak_row", "avg", "hours",
                                       "enabled"])


def _totals(t: TenantConfig, pl: Plan, inp: Inputs) -> pd.DataFrame:
    """Per summed metric (report role minutes) and region: the billing days' sum."""
    summed = [m for m in t.metrics if t.metric(m).report == "minutes"]
    r = _in_days(inp.results, pl.days)
    sums = pd.Series(dtype=np.int64)
    if len(r) and summed:
        part = r[r["metric"].isin(summed) & (r["tier3_id"] == "") & (r["group"] == CONCURRENT)]
        sums = part.groupby(["metric", "region"])["value"].sum()
    keys = [(m, reg.code) for m in summed for reg in t.regions]
    return pd.DataFrame({"metric": [m for m, _ in keys], "region": [c for _, c in keys],
                         "value": [int(sums.get(k, 0)) for k in keys]})


def _daily_columns(t: TenantConfig) -> list[tuple[str, int, str]]:
    """(metric, group, header) of the Daily sheet, by each metric's report role."""
    out = []
    for m in t.metrics:
        role = t.metric(m).report
        if role == "seats":
            out += [(m, CONCURRENT, f"{m} concurrent"), (m, ENABLED, f"{m} enabled")]
        elif role == "ports":
            out.append((m, CONCURRENT, f"{m} peak"))
        else:
            out.append((m, CONCURRENT, m))
    return out


def _daily(t: TenantConfig, pl: Plan, inp: Inputs) -> pd.DataFrame:
    """Rows by scope (tenant, then BUs), region, billing day: each block is one chart run."""
    cols = _daily_columns(t)
    index = pd.MultiIndex.from_tuples(
        [(s, r.code, d) for s, _ in t.scopes() for r in t.regions for d in pl.days],
        names=["tier3_id", "region", "day"])
    r = _in_days(inp.results, pl.days)
    if len(r):
        wide = r.pivot_table(index=["tier3_id", "region", "day"], columns=["metric", "group"],
                             values="value", aggfunc="max")
    else:
        wide = pd.DataFrame(index=index)
    wide = wide.reindex(index=index, columns=pd.MultiIndex.from_tuples(
        [(m, g) for m, g, _ in cols]))
    out = pd.DataFrame(wide.to_numpy(dtype=float), columns=[h for _, _, h in cols])
    names = dict(t.scopes())
    out.insert(0, "day", index.get_level_values("day"))
    out.insert(1, "region", index.get_level_values("region"))
    out.insert(2, "tier3_id", index.get_level_values("tier3_id"))
    out.insert(3, "scope", [names[s] or "tenant" for s in index.get_level_values("tier3_id")])
    out.insert(4, "status", [MISSING if d in inp.missing else ""
                             for d in index.get_level_values("day")])
    return out


def write_report(t: TenantConfig, first: dt.date, last: dt.date, tz: str, output: str) -> str:
    """Build the report for `[first, last]` (days in `tz`) and write it; returns its path."""
    from .report_xlsx import workbook_bytes

    data = workbook_bytes(build(t, first, last, tz))
    storage.write_atomic(output, data)
    return output if storage.is_url(output) else os.path.abspath(output.removeprefix("file://"))


def month_report_name(any_day: dt.date) -> str:
    return f"usage_{any_day:%Y%m}.xlsx"


def write_month_report(t: TenantConfig, any_day: dt.date, month_folder: str) -> str:
    """The month's report, in the tenant's zone, beside the month's files (monthly task).

    It is not listed in the monthly manifest (it is for people, not the importer), and
    `emission.publish` removes only stale `*.csv`, so re-publishing the month keeps it.
    """
    days = month_days(any_day)
    return write_report(t, days[0], days[-1], t.timezone,
                        storage.join(month_folder, month_report_name(any_day)))
