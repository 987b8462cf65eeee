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
import io
import os
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from . import storage
from .config import SEAT_METRICS, TenantConfig
from .days import billing_day, date_range, local_midnight, month_days
from .pipeline import results_path

CONCURRENCY = (*SEAT_METRICS, "gvp_ports")
DAY_FILES = ("results", "usage", "handled")
MISSING = "missing daily result"
HOURLY_SHEET, DAILY_SHEET, SUMMARY_SHEET = "Hourly", "Daily", "Summary"


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
        paths = {n: results_path(t, d, n) for n in DAY_FILES}
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
    gvp_minutes: pd.DataFrame  # region, minutes
    handled: pd.DataFrame  # media, count
    daily: pd.DataFrame  # Daily rows: day, region, tier3_id, tier3_name, status, values…
    daily_cols: list[tuple[str, int, str]]  # (metric, group, header)


def build(t: TenantConfig, first: dt.date, last: dt.date, tz: str) -> Report:
    pl = plan(t, first, last, tz)
    inp = load(t, pl)
    hrs = hours(pl.start, pl.end, tz)
    n = len(hrs)

    peaks = [Column((m, r.code), f"{m} {r.code}")
             for m in t.metrics if m in CONCURRENCY for r in t.regions]
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
        concurrency=_concurrency(pl, inp, hourly, peaks),
        gvp_minutes=_gvp_minutes(t, pl, inp),
        handled=pd.DataFrame({"media": media,
                              "count": [int(hourly[c.key].sum()) for c in handled_cols]}),
        daily=_daily(t, pl, inp),
        daily_cols=_daily_columns(t),
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


def _concurrency(pl: Plan, inp: Inputs, hourly: pd.DataFrame,
                 peaks: list[Column]) -> pd.DataFrame:
    r = _in_days(inp.results, pl.days)
    enabled = pd.Series(dtype=np.int64)
    if len(r):
        en = r[(r["tier3_id"] == "") & (r["group"] == 2)][["metric", "region", "agents"]]
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
            "enabled": int(enabled.get((metric, region), 0)) if metric in SEAT_METRICS
            else None,
        })
    return pd.DataFrame(rows, columns=["metric", "region", "max", "peak_row", "avg", "hours",
                                       "enabled"])


def _gvp_minutes(t: TenantConfig, pl: Plan, inp: Inputs) -> pd.DataFrame:
    if "gvp_minutes" not in t.metrics:
        return pd.DataFrame({"region": [], "minutes": []})
    r = _in_days(inp.results, pl.days)
    sums = pd.Series(dtype=np.int64)
    if len(r):
        part = r[(r["metric"] == "gvp_minutes") & (r["tier3_id"] == "") & (r["group"] == 1)]
        sums = part.groupby("region")["value"].sum()
    regions = [reg.code for reg in t.regions]
    return pd.DataFrame({"region": regions,
                         "minutes": [int(sums.get(code, 0)) for code in regions]})


def _daily_columns(t: TenantConfig) -> list[tuple[str, int, str]]:
    out = []
    for m in t.metrics:
        if m in SEAT_METRICS:
            out += [(m, 1, f"{m} concurrent"), (m, 2, f"{m} enabled")]
        elif m == "gvp_ports":
            out.append((m, 1, "gvp_ports peak"))
        else:
            out.append((m, 1, "gvp_minutes"))
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


# ---------------------------------------------------------------- workbook


class _Sheet:
    """A worksheet that remembers the widest value written per column."""

    def __init__(self, ws, fmts: dict):
        self.ws, self.f, self.width = ws, fmts, {}

    def put(self, row: int, col: int, value, fmt: str | None = None, *, measure: bool = True,
            width: int | None = None) -> None:
        f = self.f.get(fmt) if fmt else None
        if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
            self.ws.write_blank(row, col, None, f)
            text = ""
        elif isinstance(value, dt.datetime | dt.date):
            self.ws.write_datetime(row, col, value, f)
            text = "0000-00-00 00:00" if isinstance(value, dt.datetime) else "0000-00-00"
        elif isinstance(value, bool | str):
            self.ws.write_string(row, col, str(value), f)
            text = str(value)
        elif isinstance(value, float | np.floating):
            self.ws.write_number(row, col, float(value), f)
            text = f"{float(value):,.2f}"
        else:
            self.ws.write_number(row, col, int(value), f)
            text = f"{int(value):,}"
        if measure:
            self.width[col] = max(self.width.get(col, 0), width or len(text))

    def header(self, row: int, col: int, labels: list[str]) -> None:
        """Header cells wrap: a column is as wide as the header's longest word needs."""
        for i, label in enumerate(labels):
            longest = max((len(w) for w in label.split()), default=0)
            self.put(row, col + i, label, "header", width=max(longest, (len(label) + 1) // 2 + 2))

    def fit(self, lo: int = 8, hi: int = 48) -> None:
        for col, w in self.width.items():
            self.ws.set_column(col, col, min(hi, max(lo, w + 2)))


def _formats(wb) -> dict:
    base = {"font_name": "Calibri", "font_size": 11}
    spec = {
        "title": {"bold": True, "font_size": 16},
        "subtitle": {"italic": True, "font_color": "#404040"},
        "section": {"bold": True, "font_size": 12, "font_color": "#1F4E79"},
        "header": {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True,
                   "valign": "top"},
        "int": {"num_format": "#,##0"},
        "total": {"bold": True, "bg_color": "#DDEBF7", "top": 1, "bottom": 1,
                  "num_format": "#,##0"},
        "avg": {"num_format": "#,##0.00"},
        "date": {"num_format": "yyyy-mm-dd", "align": "left"},
        "center": {"align": "center"},
        "datetime": {"num_format": "yyyy-mm-dd hh:mm", "align": "left"},
        "ok": {"bold": True, "font_color": "#006100", "bg_color": "#C6EFCE"},
        "warn": {"bold": True, "font_color": "#9C0006", "bg_color": "#FFC7CE"},
        "info": {"bold": True, "font_color": "#7F6000", "bg_color": "#FFEB9C"},
        "missing": {"font_color": "#9C0006"},
        "note": {"font_color": "#595959"},
    }
    return {k: wb.add_format({**base, **v}) for k, v in spec.items()}


def _local_dt(seconds: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(seconds))


def _title(s: _Sheet, rep: Report, what: str) -> None:
    t, pl = rep.t, rep.plan
    offsets = " / ".join(f"UTC{offset_text(o)}" for o in dict.fromkeys(rep.hours.offset))
    s.put(0, 0, f"{what}: {t.name} ({t.id})", "title", measure=False)
    s.put(1, 0, f"{pl.first.isoformat()} to {pl.last.isoformat()}, time zone {pl.tz} "
                f"({offsets or 'UTC'}); billing days in {t.timezone}", "subtitle", measure=False)


def _status(rep: Report) -> tuple[str, str]:
    miss = sorted(rep.inputs.missing)
    if miss:
        days = ", ".join(d.isoformat() for d in miss[:4]) + (
            f" and {len(miss) - 4} more" if len(miss) > 4 else "")
        return ("warn", f"INCOMPLETE: {len(miss)} billing day(s) without a daily result: {days} "
                        "(see Data coverage). The figures leave them out.")
    if not rep.plan.needed:
        return "info", (f"No billing day of the range is on or after the production date "
                        f"{rep.t.production_date.isoformat()}: nothing was billed.")
    return "ok", f"Complete: the daily results of all {len(rep.plan.needed)} billing day(s) " \
                 "of the range were read."


def _summary(s: _Sheet, rep: Report) -> None:
    t, pl = rep.t, rep.plan
    _title(s, rep, "Usage report")
    fmt, text = _status(rep)
    s.ws.merge_range(2, 0, 2, 6, text, s.f[fmt])
    s.ws.freeze_panes(3, 0)
    row = 4
    s.put(row, 0, "Concurrent sessions per hour (tenant level, per region; peaks never add "
                  "up across regions)", "section", measure=False)
    row += 1
    s.header(row, 0, ["Metric", "Region", "Maximum concurrent", "Peak hour (local)",
                      "Average concurrent per hour", "Hours with sessions", "Enabled agents"])
    s.ws.set_row(row, 30)
    for rec in rep.concurrency.to_dict("records"):
        row += 1
        s.put(row, 0, rec["metric"])
        s.put(row, 1, rec["region"])
        s.put(row, 2, rec["max"], "int")
        peak = rec["peak_row"]
        s.put(row, 3, None if peak is None or pd.isna(peak) else
              f"{_local_dt(rep.hours.local[int(peak)]):%Y-%m-%d %H:%M} "
              f"{offset_text(rep.hours.offset[int(peak)])}", "center")
        s.put(row, 4, rec["avg"], "avg")
        s.put(row, 5, rec["hours"], "int")
        s.put(row, 6, None if rec["enabled"] is None or pd.isna(rec["enabled"])
              else int(rec["enabled"]), "int")
    row += 1
    s.put(row, 0, "Average = sum of hourly peaks / hours with at least one session (hours "
                  "with none are left out). Peak ports = the gvp_ports maximum.", "note",
          measure=False)
    if len(rep.gvp_minutes):
        row += 2
        s.put(row, 0, "GVP minutes (sum of the billing days' values)", "section", measure=False)
        row += 1
        s.header(row, 0, ["Metric", "Region", "Minutes"])
        for rec in rep.gvp_minutes.to_dict("records"):
            row += 1
            s.put(row, 0, "gvp_minutes")
            s.put(row, 1, rec["region"])
            s.put(row, 2, rec["minutes"], "int")
    row += 2
    s.put(row, 0, "Interactions handled (tenant level)", "section", measure=False)
    row += 1
    s.header(row, 0, ["Media", "", "Interactions"])
    for rec in rep.handled.to_dict("records"):
        row += 1
        s.put(row, 0, rec["media"])
        s.put(row, 2, rec["count"], "int")
    row += 1
    s.put(row, 0, "Total", "total")
    s.ws.write_blank(row, 1, None, s.f["total"])
    s.put(row, 2, int(rep.handled["count"].sum()), "total")
    row += 2
    s.put(row, 0, "Data coverage", "section", measure=False)
    days = pl.days
    facts = [
        ("Report range (UTC)", f"{_iso(pl.start)} to {_iso(pl.end)}"),
        ("Billing days read for hours", _days_text(pl.needed)),
        ("Billing days of day-level figures",
         _days_text(days) + " (enabled agents, GVP minutes, Daily sheet: the billing days "
                            "mostly inside the range)"),
    ]
    if pl.before_production:
        facts.append(("Before the production date (not billed)",
                      _days_text(pl.before_production)))
    for d in sorted(rep.inputs.missing):
        facts.append((f"Missing daily result {d.isoformat()}",
                      f"absent: {rep.inputs.missing[d]} (run or re-run the day: bds run -t "
                      f"{t.id} --from {d.isoformat()})"))
    for label, value in facts:
        row += 1
        s.put(row, 0, label, "missing" if label.startswith("Missing") else None, measure=False)
        s.put(row, 2, value, "missing" if label.startswith("Missing") else None, measure=False)
    s.fit()
    s.ws.set_column(0, 0, 26)
    s.ws.set_landscape()
    s.ws.fit_to_pages(1, 0)


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _days_text(days: list[dt.date]) -> str:
    if not days:
        return "none"
    if len(days) == 1:
        return days[0].isoformat()
    return f"{days[0].isoformat()} to {days[-1].isoformat()} ({len(days)} days)"


def _hourly(s: _Sheet, wb, rep: Report) -> None:
    _title(s, rep, "Hourly peaks")
    s.put(2, 0, "One row per local hour. Peak = the most sessions active at once in the hour, "
                "per metric and region.", "note", measure=False)
    fixed = ["Local hour", "UTC offset", "Hour start (UTC)"]
    cols = rep.peaks + rep.handled_cols
    head = 3
    s.header(head, 0, fixed + [c.header for c in cols] + ["Note"])
    s.ws.set_row(head, 30)
    s.ws.freeze_panes(head + 1, 1)
    values = [rep.hourly[c.key].to_numpy() for c in cols]
    h = rep.hours
    for i in range(len(h)):
        row = head + 1 + i
        s.put(row, 0, _local_dt(h.local[i]), "datetime")
        s.put(row, 1, offset_text(h.offset[i]), "center")
        s.put(row, 2, _local_dt(h.start[i]), "datetime")  # naive UTC: Excel has no zones
        for j, v in enumerate(values):
            s.put(row, 3 + j, int(v[i]), "int")
        if rep.notes[i]:
            s.put(row, 3 + len(cols), rep.notes[i], "missing")
    s.fit()
    s.ws.set_column(0, 0, 17)
    s.ws.set_column(2, 2, 17)
    s.ws.repeat_rows(head)
    s.ws.set_landscape()
    s.ws.fit_to_pages(1, 0)
    seat = [j for j, c in enumerate(rep.peaks) if c.key[0] in SEAT_METRICS]
    charted = seat or list(range(len(rep.peaks)))
    if not charted or not len(h):
        return
    first, last = head + 1, head + len(h)
    chart = wb.add_chart({"type": "line"})
    for j in charted:
        chart.add_series({
            "name": [HOURLY_SHEET, head, 3 + j],
            "categories": [HOURLY_SHEET, first, 0, last, 0],
            "values": [HOURLY_SHEET, first, 3 + j, last, 3 + j],
            "line": {"width": 1.75},
        })
    n = len(h)
    step = 1 if n <= 24 else 3 if n <= 72 else 24 * max(1, -(-n // (24 * 14)))
    chart.set_title({"name": f"Peak concurrent per hour ({rep.plan.tz})",
                     "name_font": {"size": 12}})
    chart.set_x_axis({"text_axis": True, "num_format": "mm-dd hh:mm",
                      "interval_unit": step, "interval_tick": step,
                      "num_font": {"rotation": -45, "size": 8}})
    chart.set_y_axis({"name": "sessions", "min": 0, "major_gridlines": {"visible": True}})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 900, "height": 420})
    s.ws.insert_chart(head, 4 + len(cols) + 1, chart, {"x_offset": 10, "y_offset": 0})


def _daily_sheet(s: _Sheet, wb, rep: Report) -> None:
    _title(s, rep, "Daily billed values")
    s.put(2, 0, "One row per scope (tenant, then business units), region and billing day "
                f"(days in {rep.t.timezone}), as billed.", "note", measure=False)
    head = 3
    d = rep.daily
    value_cols = [h for _, _, h in rep.daily_cols]
    s.header(head, 0, ["Billing day", "Region", "Scope", "Scope name", "Status", *value_cols])
    s.ws.set_row(head, 30)
    s.ws.freeze_panes(head + 1, 1)
    recs = d.to_dict("records")
    for i, rec in enumerate(recs):
        row = head + 1 + i
        s.put(row, 0, rec["day"], "date")
        s.put(row, 1, rec["region"])
        s.put(row, 2, rec["tier3_id"] or rep.t.id)
        s.put(row, 3, rec["scope"])
        s.put(row, 4, rec["status"], "missing")
        for j, h in enumerate(value_cols):
            v = rec[h]
            s.put(row, 5 + j, None if pd.isna(v) else int(v), "int")
    if recs:
        s.ws.autofilter(head, 0, head + len(recs), 4 + len(value_cols))
    s.fit()
    s.ws.set_column(0, 0, 12)
    s.ws.repeat_rows(head)
    s.ws.set_landscape()
    s.ws.fit_to_pages(1, 0)
    n_days = len(rep.plan.days)
    concurrent = [j for j, (m, g, _) in enumerate(rep.daily_cols) if m in CONCURRENCY and g == 1]
    seat = [j for j in concurrent if rep.daily_cols[j][0] in SEAT_METRICS]
    series = seat or concurrent  # as on Hourly: seat metrics, or ports when there are none
    if not series or not n_days:
        return
    chart = wb.add_chart({"type": "column"})
    for j in series:  # metric by metric, then region, as on Hourly
        for k, reg in enumerate(rep.t.regions):
            # the tenant's blocks come first: region k's days are rows k*n_days…
            first = head + 1 + k * n_days
            last = first + n_days - 1
            chart.add_series({
                "name": f"{rep.daily_cols[j][0]} {reg.code}",
                "categories": [DAILY_SHEET, first, 0, last, 0],
                "values": [DAILY_SHEET, first, 5 + j, last, 5 + j],
                "gap": 60,
            })
    chart.set_title({"name": "Concurrent agents per billing day (tenant level)",
                     "name_font": {"size": 12}})
    chart.set_x_axis({"text_axis": True, "num_format": "mm-dd",
                      "num_font": {"rotation": -45, "size": 8}})
    chart.set_y_axis({"name": "agents", "min": 0, "major_gridlines": {"visible": True}})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 900, "height": 420})
    s.ws.insert_chart(head, 5 + len(value_cols) + 1, chart, {"x_offset": 10})


def workbook_bytes(rep: Report) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "default_date_format": "yyyy-mm-dd"})
    wb.set_properties({
        "title": f"Usage report {rep.t.id} {rep.plan.first} to {rep.plan.last}",
        "subject": f"BDS usage report, time zone {rep.plan.tz}",
        "author": "bds",
        # deterministic: the range's end, not the wall clock
        "created": dt.datetime.fromtimestamp(rep.plan.end, dt.UTC).replace(tzinfo=None),
    })
    fmts = _formats(wb)
    summary = _Sheet(wb.add_worksheet(SUMMARY_SHEET), fmts)
    hourly = _Sheet(wb.add_worksheet(HOURLY_SHEET), fmts)
    daily = _Sheet(wb.add_worksheet(DAILY_SHEET), fmts)
    _summary(summary, rep)
    _hourly(hourly, wb, rep)
    _daily_sheet(daily, wb, rep)
    summary.ws.activate()
    wb.close()
    return buf.getvalue()


def write_report(t: TenantConfig, first: dt.date, last: dt.date, tz: str, output: str) -> str:
    """Build the report for `[first, last]` (days in `tz`) and write it; returns its path."""
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
