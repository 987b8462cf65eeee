"""One billing day, one run (SPEC §8): the date → billing-day function and the timetable,
over every DST transition of 2026 in 16 zones (half-hour and 45-minute offsets, the
southern hemisphere, transitions at midnight), checked against brute-force day bounds.

Pure: no database, no Airflow start-up beyond importing the timetable base class.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bds_metrics.days import billing_day, billing_day_of, date_range, day_start

ZONES = [
    "America/New_York", "America/Santiago", "America/Havana", "America/St_Johns",
    "America/Scoresbysund", "Asia/Kathmandu", "Australia/Lord_Howe", "Australia/Adelaide",
    "Pacific/Chatham", "Pacific/Apia", "Europe/London", "Africa/Cairo", "Asia/Beirut",
    "Asia/Gaza", "Europe/Chisinau", "UTC",
]
D = dt.date.fromisoformat

# The timetable tests import Airflow: configured first (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("airflow_db")


def transitions(zone: str) -> list[dt.date]:
    """Days of 2026 whose UTC offset at noon differs from the day before."""
    tz = ZoneInfo(zone)
    out, prev = [], None
    for d in date_range(D("2026-01-01"), D("2026-12-31")):
        off = dt.datetime(d.year, d.month, d.day, 12, tzinfo=tz).utcoffset()
        if prev is not None and off != prev:
            out.append(d)
        prev = off
    return out


def days_to_check(zone: str) -> list[dt.date]:
    days = {D("2026-01-01"), D("2026-02-28"), D("2026-06-30"), D("2026-12-31")}
    for t in transitions(zone):
        days.update(t + dt.timedelta(days=k) for k in range(-2, 3))
    return sorted(days)


def brute_first_instant(day: dt.date, zone: str) -> int:
    """The first epoch second whose local date is `day`: found by scanning, not by
    constructing a local midnight (independent of bds_metrics.days)."""
    tz = ZoneInfo(zone)

    def local_date(ts: int) -> dt.date:
        return dt.datetime.fromtimestamp(ts, tz).date()

    lo = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) - 15 * 3600
    hi = lo + 30 * 3600
    assert local_date(lo) < day <= local_date(hi)
    while hi - lo > 1:  # local date is monotonic in time
        mid = (lo + hi) // 2
        if local_date(mid) < day:
            lo = mid
        else:
            hi = mid
    return hi


def test_the_zones_cover_the_hard_cases():
    every = {z: transitions(z) for z in ZONES}
    assert sum(bool(v) for v in every.values()) >= 12
    # a skipped midnight (Santiago, Havana, Cairo, Beirut) and a repeated one (Havana)
    tz = ZoneInfo("America/Santiago")
    assert dt.datetime(2026, 9, 6, 0, 30, tzinfo=tz).utcoffset() != \
        dt.datetime(2026, 9, 6, 0, 30, fold=1, tzinfo=tz).utcoffset()


@pytest.mark.parametrize("zone", ZONES)
def test_day_bounds_and_the_day_an_instant_names(zone):
    for day in days_to_check(zone):
        p = billing_day(day, zone)
        assert p.start == brute_first_instant(day, zone), (zone, day)
        assert p.end == brute_first_instant(day + dt.timedelta(days=1), zone), (zone, day)
        assert day_start(day, zone).timestamp() == p.start
        assert 23 * 3600 <= p.end - p.start <= 25 * 3600
        # the day's first instant, any instant inside it and its last second name it
        for ts in (p.start, p.start + 1, (p.start + p.end) // 2, p.end - 1):
            inst = dt.datetime.fromtimestamp(ts, ZoneInfo(zone))
            if inst.astimezone(dt.UTC).time() == dt.time(0):
                continue  # a UTC midnight inside the day is a plain date (next test)
            assert billing_day_of(inst, zone) == day, (zone, day, inst)
            assert billing_day_of(inst.astimezone(dt.UTC), zone) == day
        # a plain date (what Airflow makes of a bare "2026-03-05") names that date
        plain = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        assert billing_day_of(plain, zone) == day


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="no time zone"):
        billing_day_of(dt.datetime(2026, 3, 5), "UTC")


# ---------------------------------------------------------------- the timetable


def _timetable(zone: str, settle: float = 2.0):
    from bds_airflow.timetable import BillingDayTimetable

    return BillingDayTimetable(zone, settle)


def _restriction(earliest, latest, catchup=True):
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest, latest, catchup)


def _iterate(tt, restriction, limit=400) -> list:
    infos, last = [], None
    for _ in range(limit):
        info = tt.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            break
        infos.append(info)
        last = info.data_interval
    return infos


@pytest.mark.parametrize("zone", ZONES)
def test_manual_runs_bill_the_day_their_logical_date_names(zone):
    tt = _timetable(zone)
    for day in days_to_check(zone):
        p = billing_day(day, zone)
        for ts in (p.start, (p.start + p.end) // 2, p.end - 1):
            inst = dt.datetime.fromtimestamp(ts, ZoneInfo(zone))
            if inst.astimezone(dt.UTC).time() == dt.time(0):
                continue
            iv = tt.infer_manual_data_interval(run_after=inst)
            assert (iv.start.timestamp(), iv.end.timestamp()) == (p.start, p.end), (zone, inst)
        plain = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        iv = tt.infer_manual_data_interval(run_after=plain)
        assert (iv.start.timestamp(), iv.end.timestamp()) == (p.start, p.end)


@pytest.mark.parametrize("zone", ZONES)
def test_scheduled_runs_cover_every_day_of_2026_once(zone):
    tt = _timetable(zone, settle=2.5)
    infos = _iterate(tt, _restriction(day_start(D("2026-01-01"), zone), None))
    assert len(infos) == 400  # open-ended: the scheduler asks again each time
    days = [billing_day_of(i.logical_date, zone) for i in infos]
    assert days == date_range(D("2026-01-01"), D("2026-01-01") + dt.timedelta(days=399))
    for info, day in zip(infos, days, strict=True):
        p = billing_day(day, zone)
        assert info.logical_date.timestamp() == p.start
        assert (info.data_interval.start.timestamp(), info.data_interval.end.timestamp()) == \
            (p.start, p.end)
        # created only once the day has settled: nothing is active while it waits
        assert info.run_after.timestamp() == p.end + 2.5 * 3600


@pytest.mark.parametrize("zone", ZONES)
def test_a_backfill_with_plain_dates_bills_exactly_those_days(zone):
    tt = _timetable(zone)
    for first in [D("2026-02-27"), *transitions(zone)]:
        last = first + dt.timedelta(days=3)  # over a month end for the first range
        for bounds in (
            (dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC),  # bare dates
             dt.datetime(last.year, last.month, last.day, tzinfo=dt.UTC)),
            (day_start(first, zone), day_start(last, zone)),  # the tenant's midnights
        ):
            infos = _iterate(tt, _restriction(*bounds))
            assert [billing_day_of(i.logical_date, zone) for i in infos] == \
                date_range(first, last), (zone, bounds)
            # a backfill's runs are due at once; Airflow names them after run_after,
            # the day's first instant in the tenant's zone
            assert all(i.run_after == i.data_interval.start for i in infos)
            assert infos[0].run_after.isoformat().startswith(first.isoformat())


def test_run_ids_and_summary_name_the_day_and_the_zone():
    from airflow.utils.types import DagRunType

    tt = _timetable("America/Santiago")
    iv = tt.interval(D("2026-09-06"))  # midnight skipped: starts 01:00 local
    assert iv.start.isoformat() == "2026-09-06T01:00:00-03:00"
    at = dt.datetime(2026, 11, 30, 4, 5, 6, tzinfo=dt.UTC)
    assert tt.generate_run_id(run_type=DagRunType.SCHEDULED, run_after=at,
                              data_interval=iv) == "scheduled__2026-09-06_America.Santiago"
    assert tt.generate_run_id(run_type=DagRunType.MANUAL, run_after=at, data_interval=iv) == \
        "manual__2026-09-06_America.Santiago__20261130T040506Z"
    assert tt.summary == "billing day (America/Santiago)"
    assert "America/Santiago" in tt.description


def test_the_timetable_survives_serialization():
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    tt = _timetable("Asia/Kathmandu", 1.5)
    back = decode_timetable(encode_timetable(tt))
    assert back == tt and back.settle_hours == 1.5 and back.timezone == "Asia/Kathmandu"


# ---------------------------------------------------------------- gaps


def test_missing_days_by_bisection_counts_few_requests():
    from bds_airflow.billing_days import missing_days

    days = date_range(D("2026-01-01"), D("2026-12-31"))
    have = set(days) - {D("2026-03-01"), D("2026-03-02"), D("2026-11-30")}
    calls = []

    def count(ds):
        calls.append(len(ds))
        return sum(d in have for d in ds)

    assert missing_days(days, count) == [D("2026-03-01"), D("2026-03-02"), D("2026-11-30")]
    assert len(calls) < 60
    calls.clear()
    assert missing_days(days, lambda ds: calls.append(1) or len(ds)) == []
    assert calls == [1]


def test_due_days_wait_for_settle_and_grace():
    from bds_airflow.billing_days import due_days
    from bds_metrics.config import parse_config

    cfg = parse_config("""
defaults: {output_root: /tmp/o, staging_root: /tmp/s, settle_hours: 2}
tenants:
  - {id: ny, name: NY, production_date: 2026-11-20, timezone: America/New_York,
     metrics: [seats_chat], regions: [{code: r, locations: [{code: l, switches: []}]}]}
""")
    t = cfg.tenant("ny")
    # 11-29 ends 2026-11-30T05:00Z; due after 2 h settle + 1 h grace = 08:00Z
    assert due_days(t, dt.datetime(2026, 11, 30, 7, 59, tzinfo=dt.UTC))[-1] == D("2026-11-28")
    got = due_days(t, dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC))
    assert got == date_range(D("2026-11-20"), D("2026-11-29"))
    assert due_days(t, dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)) == []


def test_trigger_dates_the_api_server_accepts():
    from bds_airflow.trigger_identity import _aware

    assert _aware("2026-03-05") == dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    assert _aware(" 2026-03-05 ") == dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    got = _aware("2026-03-05T15:30:00+05:45")
    assert got.utcoffset() == dt.timedelta(hours=5, minutes=45)
    assert billing_day_of(got, "Asia/Kathmandu") == D("2026-03-05")
    assert _aware("2026-03-05T00:00:00Z") == dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    # naive or malformed: left to Airflow's own validation (422)
    assert _aware("2026-03-05T10:00:00") is None
    assert _aware("yesterday") is None and _aware(20260305) is None


def test_nothing_is_billed_before_the_production_date():
    """A backfill whose first bound is before the production date starts at it (the
    timetable knows the first day); a task of a run of an earlier day fails without
    billing, in one line; the timetable round-trips its first day."""
    from bds_airflow.steps import run_billing_day
    from bds_airflow.timetable import BillingDayTimetable
    from bds_metrics.config import ConfigError, parse_config

    zone = "America/New_York"
    tt = BillingDayTimetable(zone, 2.0, D("2026-03-05"))
    assert BillingDayTimetable.deserialize(tt.serialize()) == tt
    assert tt.serialize()["first_day"] == "2026-03-05"
    bounds = (dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 7, tzinfo=dt.UTC))
    infos = _iterate(tt, _restriction(*bounds))
    assert [billing_day_of(i.logical_date, zone) for i in infos] == \
        date_range(D("2026-03-05"), D("2026-03-07"))
    assert _iterate(tt, _restriction(dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
                                     dt.datetime(2026, 3, 4, tzinfo=dt.UTC))) == []
    # the scheduler's own first run is the production date too
    infos = _iterate(tt, _restriction(day_start(D("2026-03-01"), zone), None), limit=2)
    assert billing_day_of(infos[0].logical_date, zone) == D("2026-03-05")

    t = parse_config("""
tenants:
  - {id: ny, name: NY, production_date: 2026-03-05, timezone: America/New_York,
     metrics: [seats_chat], output_root: /tmp/o, staging_root: /tmp/s,
     regions: [{code: us, locations: [{code: d, switches: []}]}]}
""").tenants[0]
    start = day_start(D("2026-03-04"), zone)
    with pytest.raises(ConfigError, match="billing day 2026-03-04, before the tenant's "
                                          "production date 2026-03-05: nothing billed"):
        run_billing_day(t, start, start, "manual__x")
    ok = day_start(D("2026-03-05"), zone)
    assert run_billing_day(t, ok, ok, "manual__y") == D("2026-03-05")
