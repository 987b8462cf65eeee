"""The usage report (SPEC §10), worked out by hand and read back from the XLSX.

The staging files a daily run leaves (`results`, `usage`, `handled` Parquet) are written
here directly for a small tenant in Asia/Kathmandu (UTC+05:45), so every figure below is
computed by hand from the rows in `DAYS`. No mocks: real files, the real workbook.

Billing days (Asia/Kathmandu):
    D1 2026-03-10 = [2026-03-09 18:15Z, 2026-03-10 18:15Z)
    D2 2026-03-11 = [2026-03-10 18:15Z, 2026-03-11 18:15Z)
    D3 2026-03-12   never run: a missing daily result
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bds_metrics.config import parse_config
from bds_metrics.report import hours, offset_text, write_report

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
defaults: {{output_root: {root}/out, staging_root: {root}/staging}}
tenants:
  - id: kat
    name: Kathmandu Care
    production_date: 2026-03-10
    timezone: Asia/Kathmandu
    metrics: [seats_chat, seats_outbound, gvp_ports, gvp_minutes]
    regions:
      - {{code: np, locations: [{{code: np_d, switches: []}}]}}
      - {{code: in, locations: [{{code: in_1, switches: [SW_IN]}}]}}
    business_units: [{{id: kat_BU_1, name: Sales}}]
  - id: ade
    name: Adelaide Assist
    production_date: 2026-04-01
    timezone: Australia/Adelaide
    metrics: [seats_chat]
    regions: [{{code: au, locations: [{{code: au_d, switches: []}}]}}]
"""


def Z(s: str) -> int:
    """'2026-03-10 03:15' (UTC) -> epoch seconds."""
    return int(dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC).timestamp())


# Per billing day: usage minutes (metric, tier3, region, UTC minute, peak), handled
# (media, UTC minute, count), and the billed values that differ from zero
# ((metric, tier3, region, group) -> value or agent list).
DAYS = {
    ("kat", "2026-03-10"): {
        "usage": [
            ("seats_chat", "", "np", "2026-03-10 03:15", 3),  # 09:00 NPT
            ("seats_chat", "", "np", "2026-03-10 03:16", 5),  # 09:01 NPT
            ("seats_chat", "", "np", "2026-03-10 03:40", 2),  # 09:25 NPT
            ("seats_chat", "", "np", "2026-03-10 04:15", 1),  # 10:00 NPT
            ("seats_chat", "", "np", "2026-03-10 05:14", 4),  # 10:59 NPT
            ("seats_chat", "", "np", "2026-03-10 05:15", 2),  # 11:00 NPT
            ("seats_chat", "", "in", "2026-03-10 03:16", 4),  # same minute, other region
            ("seats_chat", "kat_BU_1", "np", "2026-03-10 03:16", 3),  # BU rows: not in Hourly
            ("seats_chat", "kat_BU_0", "np", "2026-03-10 03:16", 2),
            ("seats_outbound", "", "np", "2026-03-10 03:30", 2),  # 09:15 NPT
            ("gvp_ports", "", "np", "2026-03-10 04:00", 3),  # 09:45 NPT
        ],
        "handled": [
            ("CHAT", "2026-03-10 03:15", 3),
            ("VOICE", "2026-03-10 05:14", 2),
            ("CHAT", "2026-03-10 05:15", 1),
        ],
        "values": {
            ("seats_chat", "", "np", 1): 5,
            ("seats_chat", "", "np", 2): [1, 2, 3, 4, 5, 6, 7],
            ("seats_chat", "", "in", 1): 4,
            ("seats_chat", "", "in", 2): [20, 21, 22, 23],
            ("seats_chat", "kat_BU_1", "np", 1): 3,
            ("seats_chat", "kat_BU_1", "np", 2): [1, 2, 3],
            ("seats_chat", "kat_BU_0", "np", 1): 2,
            ("seats_chat", "kat_BU_0", "np", 2): [4, 5, 6, 7],
            ("seats_chat", "kat_BU_0", "in", 1): 4,
            ("seats_chat", "kat_BU_0", "in", 2): [20, 21, 22, 23],
            ("seats_outbound", "", "np", 1): 2,
            ("seats_outbound", "", "np", 2): [30, 31, 32],
            ("gvp_ports", "", "np", 1): 3,
            ("gvp_minutes", "", "np", 1): 42,
            ("gvp_minutes", "kat_BU_1", "np", 1): 30,
            ("gvp_minutes", "kat_BU_0", "np", 1): 12,
        },
    },
    ("kat", "2026-03-11"): {
        "usage": [
            ("seats_chat", "", "np", "2026-03-10 20:00", 6),  # 2026-03-11 01:45 NPT
            ("seats_chat", "", "np", "2026-03-11 12:00", 1),  # 17:45 NPT
        ],
        "handled": [
            ("VOICE", "2026-03-10 20:00", 4),
            ("EMAIL", "2026-03-11 12:00", 1),
        ],
        "values": {
            ("seats_chat", "", "np", 1): 6,
            ("seats_chat", "", "np", 2): [5, 6, 7, 8, 9, 10],
            ("gvp_minutes", "", "np", 1): 17,
        },
    },
    # Australia/Adelaide, 2026-04-05: DST ends at 03:00 ACDT (16:30Z), a 25-hour day.
    ("ade", "2026-04-05"): {
        "usage": [
            ("seats_chat", "", "au", "2026-04-04 16:00", 7),  # 02:30 ACDT (+10:30)
            ("seats_chat", "", "au", "2026-04-04 16:45", 2),  # 02:15 ACST (+09:30)
            ("seats_chat", "", "au", "2026-04-04 17:29", 3),  # 02:59 ACST
        ],
        "handled": [],
        "values": {("seats_chat", "", "au", 1): 7, ("seats_chat", "", "au", 2): [1, 2]},
    },
}

RESULTS_SCHEMA = pa.schema([
    ("metric", pa.string()), ("tier3_id", pa.string()), ("region", pa.string()),
    ("group", pa.int64()), ("value", pa.int64()), ("peak_first", pa.int64()),
    ("peak_last", pa.int64()), ("agents", pa.list_(pa.int64())),
])
USAGE_SCHEMA = pa.schema([("metric", pa.string()), ("tier3_id", pa.string()),
                          ("region", pa.string()), ("minute", pa.int64()),
                          ("peak", pa.int64())])
HANDLED_SCHEMA = pa.schema([("media", pa.string()), ("minute", pa.int64()),
                            ("count", pa.int64())])


def _results_rows(t, values: dict) -> list[dict]:
    rows = []
    for metric in t.metrics:
        groups = (1, 2) if metric.startswith("seats") else (1,)
        for tier3, _ in t.scopes():
            for r in t.regions:
                for g in groups:
                    v = values.get((metric, tier3, r.code, g), [] if g == 2 else 0)
                    agents = v if g == 2 else []
                    rows.append({"metric": metric, "tier3_id": tier3, "region": r.code,
                                 "group": g, "value": len(v) if g == 2 else v,
                                 "peak_first": None, "peak_last": None, "agents": agents})
    return rows


def write_day(cfg, tenant: str, day: str, *, spec: dict | None = None,
              skip: tuple[str, ...] = ()) -> None:
    t = cfg.tenant(tenant)
    spec = spec or DAYS[(tenant, day)]
    folder = Path(t.staging_root) / tenant / "results" / day
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "results": pa.Table.from_pylist(_results_rows(t, spec["values"]), RESULTS_SCHEMA),
        "usage": pa.Table.from_pylist(
            [{"metric": m, "tier3_id": s, "region": r, "minute": Z(at), "peak": p}
             for m, s, r, at, p in spec["usage"]], USAGE_SCHEMA),
        "handled": pa.Table.from_pylist(
            [{"media": m, "minute": Z(at), "count": c} for m, at, c in spec["handled"]],
            HANDLED_SCHEMA),
    }
    for name, table in tables.items():
        if name not in skip:
            pq.write_table(table, folder / f"{name}.parquet")


@pytest.fixture
def env(tmp_path):
    text = CONFIG.format(root=tmp_path)
    (tmp_path / "bds.yaml").write_text(text)
    cfg = parse_config(text, str(tmp_path / "bds.yaml"))
    for tenant, day in DAYS:
        write_day(cfg, tenant, day)
    return cfg, tmp_path


D = dt.date.fromisoformat


def report(cfg, tmp_path, tenant, first, last, tz, name="r.xlsx"):
    out = write_report(cfg.tenant(tenant), D(first), D(last), tz, str(tmp_path / name))
    assert out == str(tmp_path / name)
    return out, openpyxl.load_workbook(out)


def rows(ws) -> list[tuple]:
    return list(ws.iter_rows(values_only=True))


def summary(wb) -> dict:
    """Summary figures by key: (metric, region) for concurrency, ('gvp_minutes', region),
    ('handled', media)."""
    out, section = {}, None
    for r in rows(wb["Summary"]):
        a = r[0]
        if isinstance(a, str) and a.startswith("Concurrent sessions"):
            section = "conc"
        elif a == "gvp_minutes":
            out[("gvp_minutes", r[1])] = r[2]
        elif isinstance(a, str) and a.startswith("Interactions handled"):
            section = "handled"
        elif isinstance(a, str) and a.startswith("Data coverage"):
            section = None
        elif section == "conc" and a in ("seats_chat", "seats_outbound", "gvp_ports"):
            out[(a, r[1])] = {"max": r[2], "peak": r[3], "avg": r[4], "hours": r[5],
                              "enabled": r[6]}
        elif section == "handled" and a not in (None, "Media"):
            out[("handled", a)] = r[2]
    return out


def hourly(wb) -> tuple[list[str], list[tuple]]:
    r = rows(wb["Hourly"])
    return list(r[3]), [x for x in r[4:] if x[0] is not None]


def summary_text(wb) -> str:
    return "\n".join(" ".join(str(c) for c in r if c is not None) for r in rows(wb["Summary"]))


# ---------------------------------------------------------------- the hand-worked example


def test_report_in_the_tenant_zone_kathmandu(env):
    cfg, tmp = env
    _, wb = report(cfg, tmp, "kat", "2026-03-10", "2026-03-11", "Asia/Kathmandu")
    assert wb.sheetnames == ["Summary", "Hourly", "Daily"]
    title = rows(wb["Summary"])
    assert title[0][0] == "Usage report: Kathmandu Care (kat)"
    assert "2026-03-10 to 2026-03-11, time zone Asia/Kathmandu (UTC+05:45)" in title[1][0]
    assert title[2][0].startswith("Complete: the daily results of all 2 billing day(s)")

    s = summary(wb)
    # seats_chat np, hourly peaks (NPT): 09:00 5 (max of 3, 5, 2), 10:00 4 (04:15Z 1 and
    # 05:14Z 4), 11:00 2 (05:15Z), 03-11 01:00 6 (20:00Z), 17:00 1 (12:00Z).
    assert s[("seats_chat", "np")] == {"max": 6, "peak": "2026-03-11 01:00 +05:45",
                                       "avg": pytest.approx(18 / 5), "hours": 5,
                                       "enabled": 10}  # {1..7} ∪ {5..10}
    # region `in` alone: never added to np's 5 in the same minute
    assert s[("seats_chat", "in")] == {"max": 4, "peak": "2026-03-10 09:00 +05:45",
                                       "avg": 4.0, "hours": 1, "enabled": 4}
    assert s[("seats_outbound", "np")] == {"max": 2, "peak": "2026-03-10 09:00 +05:45",
                                           "avg": 2.0, "hours": 1, "enabled": 3}
    assert s[("seats_outbound", "in")] == {"max": 0, "peak": None, "avg": 0.0, "hours": 0,
                                           "enabled": 0}
    assert s[("gvp_ports", "np")] == {"max": 3, "peak": "2026-03-10 09:00 +05:45",
                                      "avg": 3.0, "hours": 1, "enabled": None}
    assert s[("gvp_ports", "in")]["max"] == 0
    assert s[("gvp_minutes", "np")] == 42 + 17
    assert s[("gvp_minutes", "in")] == 0
    assert s[("handled", "CHAT")] == 4
    assert s[("handled", "EMAIL")] == 1
    assert s[("handled", "VOICE")] == 6
    assert s[("handled", "Total")] == 11

    head, data = hourly(wb)
    assert head == ["Local hour", "UTC offset", "Hour start (UTC)",
                    "seats_chat np", "seats_chat in", "seats_outbound np", "seats_outbound in",
                    "gvp_ports np", "gvp_ports in",
                    "CHAT handled", "EMAIL handled", "VOICE handled", "Note"]
    assert len(data) == 48
    # the hour labels: local hours from local midnight, each beginning at :15 UTC
    assert [r[0] for r in data] == [dt.datetime(2026, 3, 10) + dt.timedelta(hours=i)
                                    for i in range(48)]
    assert {r[1] for r in data} == {"+05:45"}
    assert data[0][2] == dt.datetime(2026, 3, 9, 18, 15)
    assert data[9][2] == dt.datetime(2026, 3, 10, 3, 15)
    nonzero = {(i, head[j]): v for i, r in enumerate(data) for j, v in enumerate(r[3:12], 3)
               if v}
    assert nonzero == {
        (9, "seats_chat np"): 5, (9, "seats_chat in"): 4, (9, "seats_outbound np"): 2,
        (9, "gvp_ports np"): 3, (9, "CHAT handled"): 3,
        (10, "seats_chat np"): 4, (10, "VOICE handled"): 2,
        (11, "seats_chat np"): 2, (11, "CHAT handled"): 1,
        (25, "seats_chat np"): 6, (25, "VOICE handled"): 4,
        (41, "seats_chat np"): 1, (41, "EMAIL handled"): 1,
    }
    assert all(r[12] is None for r in data)  # no notes: nothing missing

    d = rows(wb["Daily"])
    assert d[3] == ("Billing day", "Region", "Scope", "Scope name", "Status",
                    "seats_chat concurrent", "seats_chat enabled", "seats_outbound concurrent",
                    "seats_outbound enabled", "gvp_ports peak", "gvp_minutes")
    body = [r for r in d[4:] if r[0] is not None]
    # scope (tenant, Sales, Default) x region (np, in) x day (2)
    assert len(body) == 3 * 2 * 2
    got = {(r[0].date().isoformat(), r[1], r[2]): (r[3], r[4], *r[5:]) for r in body}
    assert got[("2026-03-10", "np", "kat")] == ("tenant", None, 5, 7, 2, 3, 3, 42)
    assert got[("2026-03-11", "np", "kat")] == ("tenant", None, 6, 6, 0, 0, 0, 17)
    assert got[("2026-03-10", "in", "kat")] == ("tenant", None, 4, 4, 0, 0, 0, 0)
    assert got[("2026-03-10", "np", "kat_BU_1")] == ("Sales", None, 3, 3, 0, 0, 0, 30)
    assert got[("2026-03-10", "np", "kat_BU_0")] == ("Default", None, 2, 4, 0, 0, 0, 12)
    assert got[("2026-03-10", "in", "kat_BU_0")] == ("Default", None, 4, 4, 0, 0, 0, 0)
    assert got[("2026-03-11", "in", "kat_BU_1")] == ("Sales", None, 0, 0, 0, 0, 0, 0)
    # blocks: tenant np days, tenant in days, Sales np days, ...
    assert [(r[2], r[1]) for r in body[:4]] == [("kat", "np")] * 2 + [("kat", "in")] * 2


def test_report_in_utc_shifts_the_45_minute_offset(env):
    cfg, tmp = env
    _, wb = report(cfg, tmp, "kat", "2026-03-10", "2026-03-10", "UTC")
    # [03-10 00:00Z, 03-11 00:00Z) overlaps D1 and D2 (from 18:15Z): both read, complete.
    assert rows(wb["Summary"])[2][0].startswith("Complete: the daily results of all 2")
    s = summary(wb)
    # UTC hours: 03 → 5 (03:15, 03:16, 03:40), 04 → 1, 05 → 4 (05:14 and 05:15 together),
    # 20 → 6 (D2's first minutes); D2's 12:00Z is on 03-11, outside.
    assert s[("seats_chat", "np")] == {"max": 6, "peak": "2026-03-10 20:00 +00:00",
                                       "avg": 4.0, "hours": 4,
                                       "enabled": 7}  # D1 only: D2 lies mostly outside
    assert s[("seats_chat", "in")]["max"] == 4
    assert s[("seats_outbound", "np")]["enabled"] == 3
    assert s[("gvp_ports", "np")]["peak"] == "2026-03-10 04:00 +00:00"
    assert s[("gvp_minutes", "np")] == 42
    assert s[("handled", "CHAT")] == 4
    assert s[("handled", "VOICE")] == 6
    assert ("handled", "EMAIL") not in s
    assert s[("handled", "Total")] == 10

    head, data = hourly(wb)
    assert len(data) == 24
    assert data[0][:3] == (dt.datetime(2026, 3, 10), "+00:00", dt.datetime(2026, 3, 10))
    col = head.index("seats_chat np")
    assert {i: r[col] for i, r in enumerate(data) if r[col]} == {3: 5, 4: 1, 5: 4, 20: 6}
    body = [r for r in rows(wb["Daily"])[4:] if r[0] is not None]
    assert {r[0].date() for r in body} == {dt.date(2026, 3, 10)}


def test_missing_daily_result_is_reported_not_zero(env):
    cfg, tmp = env
    # UTC 03-10..03-11 reaches into D3 (2026-03-12 NPT starts 03-11 18:15Z): never run.
    _, wb = report(cfg, tmp, "kat", "2026-03-10", "2026-03-11", "UTC")
    status = rows(wb["Summary"])[2][0]
    assert status.startswith("INCOMPLETE: 1 billing day(s) without a daily result: 2026-03-12")
    assert "Missing daily result 2026-03-12 absent: results.parquet, usage.parquet, " \
           "handled.parquet" in summary_text(wb)
    head, data = hourly(wb)
    note = head.index("Note")
    flagged = [i for i, r in enumerate(data) if r[note]]
    assert flagged == list(range(42, 48))  # 18:00Z..23:00Z on 03-11 overlap D3
    assert data[42][note] == "missing daily result 2026-03-12"

    # In the tenant zone, D3 is a day of the range: blank values and a status on Daily.
    _, wb = report(cfg, tmp, "kat", "2026-03-10", "2026-03-12", "Asia/Kathmandu", "b.xlsx")
    body = [r for r in rows(wb["Daily"])[4:] if r[0] is not None]
    d3 = [r for r in body if r[0].date() == dt.date(2026, 3, 12)]
    assert len(d3) == 6
    assert all(r[4] == "missing daily result" and set(r[5:]) == {None} for r in d3)
    s = summary(wb)
    assert s[("seats_chat", "np")]["max"] == 6  # the days that are there still count


def test_a_day_missing_one_file_is_missing(env):
    cfg, tmp = env
    (Path(cfg.tenant("kat").staging_root) / "kat/results/2026-03-11/handled.parquet").unlink()
    _, wb = report(cfg, tmp, "kat", "2026-03-10", "2026-03-11", "Asia/Kathmandu")
    assert "2026-03-11" in rows(wb["Summary"])[2][0]
    assert "Missing daily result 2026-03-11 absent: handled.parquet" in summary_text(wb)
    # none of that day's files is used
    s = summary(wb)
    assert s[("seats_chat", "np")]["max"] == 5
    assert s[("seats_chat", "np")]["enabled"] == 7


def test_days_before_production_are_not_missing(env):
    cfg, tmp = env
    _, wb = report(cfg, tmp, "kat", "2026-03-09", "2026-03-10", "Asia/Kathmandu")
    assert rows(wb["Summary"])[2][0].startswith("Complete")
    assert "Before the production date (not billed) 2026-03-09" in summary_text(wb)
    _, data = hourly(wb)
    assert len(data) == 48 and all(r[-1] is None for r in data)


# ---------------------------------------------------------------- DST and odd offsets


def test_dst_day_of_25_hours_repeats_the_hour(env):
    cfg, tmp = env
    _, wb = report(cfg, tmp, "ade", "2026-04-05", "2026-04-05", "Australia/Adelaide")
    head, data = hourly(wb)
    assert len(data) == 25
    labels = [(r[0].strftime("%H:%M"), r[1]) for r in data]
    assert labels[:5] == [("00:00", "+10:30"), ("01:00", "+10:30"), ("02:00", "+10:30"),
                          ("02:00", "+09:30"), ("03:00", "+09:30")]
    assert labels[-1] == ("23:00", "+09:30")
    assert data[2][2] == dt.datetime(2026, 4, 4, 15, 30)
    assert data[3][2] == dt.datetime(2026, 4, 4, 16, 30)
    col = head.index("seats_chat au")
    assert {i: r[col] for i, r in enumerate(data) if r[col]} == {2: 7, 3: 3}
    s = summary(wb)
    assert s[("seats_chat", "au")] == {"max": 7, "peak": "2026-04-05 02:00 +10:30",
                                       "avg": 5.0, "hours": 2, "enabled": 2}
    assert "(UTC+10:30 / UTC+09:30)" in rows(wb["Summary"])[1][0]


def test_dst_day_of_23_hours(env):
    cfg, tmp = env
    _, wb = report(cfg, tmp, "ade", "2026-10-04", "2026-10-04", "Australia/Adelaide")
    _, data = hourly(wb)
    assert len(data) == 23
    assert [r[0].hour for r in data[:3]] == [0, 1, 3]  # 02:00 does not exist
    assert "2026-10-04" in rows(wb["Summary"])[2][0]  # never run: missing, said so


@pytest.mark.parametrize("zone, day, n, first_utc", [
    ("America/New_York", "2026-03-08", 23, "2026-03-08 05:00"),
    ("America/New_York", "2026-11-01", 25, "2026-11-01 04:00"),
    ("Asia/Kathmandu", "2026-03-10", 24, "2026-03-09 18:15"),
    ("Australia/Adelaide", "2026-01-15", 24, "2026-01-14 13:30"),
    ("Asia/Kolkata", "2026-03-10", 24, "2026-03-09 18:30"),
])
def test_hour_rows(zone, day, n, first_utc):
    from bds_metrics.days import local_midnight

    d = D(day)
    h = hours(local_midnight(d, zone), local_midnight(d + dt.timedelta(1), zone), zone)
    assert len(h) == n
    assert int(h.start[0]) == Z(first_utc)
    assert ((h.end - h.start) == 3600).all()


def test_lord_howe_half_hour_dst_gives_a_half_hour_row():
    from bds_metrics.days import local_midnight

    zone = "Australia/Lord_Howe"  # 2026-10-04 02:00 +10:30 -> 02:30 +11:00
    d = D("2026-10-04")
    h = hours(local_midnight(d, zone), local_midnight(d + dt.timedelta(1), zone), zone)
    assert len(h) == 24
    assert [offset_text(o) for o in h.offset[1:3]] == ["+10:30", "+11:00"]
    assert int(h.end[2] - h.start[2]) == 1800
    assert (h.local[2] // 3600) % 24 == 2


# ---------------------------------------------------------------- the file itself


def test_charts_are_in_the_file_and_the_bytes_are_deterministic(env):
    cfg, tmp = env
    out, _ = report(cfg, tmp, "kat", "2026-03-10", "2026-03-11", "Asia/Kathmandu")
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert {"xl/charts/chart1.xml", "xl/charts/chart2.xml"} <= names
        assert {"xl/drawings/drawing1.xml", "xl/drawings/drawing2.xml"} <= names
        charts = [z.read(f"xl/charts/chart{i}.xml").decode() for i in (1, 2)]
        sheets = {n: z.read(n).decode() for n in names if n.startswith("xl/worksheets/sheet")}
    assert sum("<c:lineChart>" in c for c in charts) == 1
    assert sum("<c:barChart>" in c for c in charts) == 1
    line = next(c for c in charts if "<c:lineChart>" in c)
    assert "Hourly!$D$5:$D$52" in line  # seats_chat np over the 48 hours
    bar = next(c for c in charts if "<c:barChart>" in c)
    assert "Daily!$F$5:$F$6" in bar  # tenant seats_chat np concurrent, 2 days
    assert sum("<drawing " in s for s in sheets.values()) == 2
    # frozen header rows on every sheet
    assert all('state="frozen"' in s for s in sheets.values())
    again = write_report(cfg.tenant("kat"), D("2026-03-10"), D("2026-03-11"),
                         "Asia/Kathmandu", str(tmp / "again.xlsx"))
    assert Path(again).read_bytes() == Path(out).read_bytes()


def test_bad_range_and_zone_are_errors(env):
    from bds_metrics.report import ReportError

    cfg, tmp = env
    t = cfg.tenant("kat")
    with pytest.raises(ReportError, match="before its start"):
        write_report(t, D("2026-03-11"), D("2026-03-10"), "UTC", str(tmp / "x.xlsx"))
    with pytest.raises(ReportError, match="unknown time zone"):
        write_report(t, D("2026-03-10"), D("2026-03-10"), "Mars/Olympus", str(tmp / "x.xlsx"))
    assert not (tmp / "x.xlsx").exists()


def test_cli_report(env):
    cfg, tmp = env
    out = tmp / "sub" / "x.xlsx"
    proc = subprocess.run(
        [sys.executable, "-m", "bds_airflow.cli", "report", "-t", "kat", "--from", "2026-03-10",
         "--to", "2026-03-11", "--tz", "Asia/Kathmandu", "-o", str(out)],
        env={**os.environ, "BDS_CONFIG": str(tmp / "bds.yaml")}, cwd=REPO,
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    wb = openpyxl.load_workbook(out)
    assert summary(wb)[("seats_chat", "np")]["max"] == 6


# ---------------------------------------------------------------- the month's report


def test_month_report_beside_the_month_files_survives_republish_and_verify(env):
    from bds_metrics.days import billing_month
    from bds_metrics.emission import Bundle, publish, verify_folder
    from bds_metrics.report import write_month_report

    cfg, tmp = env
    t = cfg.tenant("kat")
    for day in range(12, 32):  # the rest of March: days without sessions
        write_day(cfg, "kat", f"2026-03-{day:02d}",
                  spec={"usage": [], "handled": [], "values": {}})
    p = billing_month(D("2026-03-15"), t.timezone)
    folder = publish(t, p, Bundle(files={"kat_x_202603.csv": "a\n1\n"}))
    out = write_month_report(t, D("2026-03-15"), folder)
    assert out == str(Path(folder) / "usage_202603.xlsx")
    wb = openpyxl.load_workbook(out)
    # production starts on the 10th: 22 billing days, all there
    assert rows(wb["Summary"])[2][0] == ("Complete: the daily results of all 22 billing "
                                         "day(s) of the range were read.")
    assert "Before the production date (not billed) 2026-03-01 to 2026-03-09 (9 days)" \
        in summary_text(wb)
    s = summary(wb)
    assert s[("seats_chat", "np")]["max"] == 6 and s[("seats_chat", "np")]["enabled"] == 10
    assert s[("gvp_minutes", "np")] == 59
    _, data = hourly(wb)
    assert len(data) == 31 * 24
    # the importer's view is unchanged: not in the manifest, kept by a re-publish
    assert verify_folder(folder) == []
    publish(t, p, Bundle(files={"kat_x_202603.csv": "a\n2\n"}))
    assert Path(out).exists() and verify_folder(folder) == []


def test_dag_has_month_report_after_month_files(env, monkeypatch, airflow_db):
    cfg, tmp = env
    monkeypatch.setenv("BDS_CONFIG", str(tmp / "bds.yaml"))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "bds_airflow" / "dags"))
    assert bag.import_errors == {}
    report_task = bag.get_dag("bds_kat").get_task("monthly.month_report")
    assert report_task.upstream_task_ids == {"monthly.month_files"}
    assert report_task.max_active_tis_per_dag == 1
    # an incomplete month skips month_files, so the report (all_success) is skipped too
    assert report_task.trigger_rule == "all_success"


@pytest.mark.xdist_group("airflow")
def test_month_report_task_through_the_dag(tmp_path, new_db, monkeypatch, airflow_db):
    """A month of one billing day (production starts on the 31st): the real DAG run
    (`bds run`, dag.test) writes the month's files, then the month's report beside them."""
    from bds_airflow.runner import run_days
    from bds_metrics.verify import verify_tenant
    from tests.cases import CONFIG as CASE_CONFIG
    from tests.cases import setup_case

    config = CASE_CONFIG.replace("production_date: 2026-03-01", "production_date: 2026-03-31")
    t, root = setup_case(tmp_path, new_db, monkeypatch, config=config)
    assert run_days(t, D("2026-03-31"), D("2026-03-31"), echo=lambda line: None) == 0
    month = root / "out" / "acme" / "monthly" / "2026-03"
    assert (month / "manifest.json").exists()
    wb = openpyxl.load_workbook(month / "usage_202603.xlsx")
    assert rows(wb["Summary"])[2][0] == ("Complete: the daily results of all 1 billing day(s) "
                                         "of the range were read.")
    assert "time zone America/New_York" in rows(wb["Summary"])[1][0]
    _, data = hourly(wb)
    assert len(data) == 31 * 24 - 1  # March in New York: 743 local hours
    # a day without sessions shows zeros, not blanks
    assert summary(wb)[("seats_chat", "us")] == {"max": 0, "peak": None, "avg": 0.0,
                                                 "hours": 0, "enabled": 0}
    body = [r for r in rows(wb["Daily"])[4:] if r[0] is not None]
    assert [r[5:] for r in body] == [(0, 0, 0, 0)] * 2  # tenant, us and eu
    assert verify_tenant(t) == (2, [])
