"""The usage report's XLSX drawing (SPEC §10): sheets, formats and charts of a built
`report.Report`. What the figures are, and how they are computed, is `report`'s.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd

from .catalog import CONCURRENT
from .report import PEAK_ROLES, Report, offset_text

HOURLY_SHEET, DAILY_SHEET, SUMMARY_SHEET = "Hourly", "Daily", "Summary"


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
    if len(rep.totals):
        row += 2
        s.put(row, 0, "GVP minutes (sum of the billing days' values)", "section", measure=False)
        row += 1
        s.header(row, 0, ["Metric", "Region", "Minutes"])
        for rec in rep.totals.to_dict("records"):
            row += 1
            s.put(row, 0, rec["metric"])
            s.put(row, 1, rec["region"])
            s.put(row, 2, rec["value"], "int")
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
    seat = [j for j, c in enumerate(rep.peaks) if rep.roles[c.key[0]] == "seats"]
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
    concurrent = [j for j, (m, g, _) in enumerate(rep.daily_cols)
                  if rep.roles[m] in PEAK_ROLES and g == CONCURRENT]
    seat = [j for j in concurrent if rep.roles[rep.daily_cols[j][0]] == "seats"]
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


