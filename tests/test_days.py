"""Billing-day bounds in the tenant's zone, DST corner cases included."""

from __future__ import annotations

import datetime as dt

import pytest

from bds_metrics.days import billing_day, billing_month, iso_utc


@pytest.mark.parametrize(("zone", "day", "start", "hours"), [
    ("UTC", dt.date(2026, 3, 5), "2026-03-05T00:00:00Z", 24),
    ("America/New_York", dt.date(2026, 3, 8), "2026-03-08T05:00:00Z", 23),
    ("America/New_York", dt.date(2026, 11, 1), "2026-11-01T04:00:00Z", 25),
    ("Asia/Kathmandu", dt.date(2026, 3, 5), "2026-03-04T18:15:00Z", 24),
    ("Australia/Adelaide", dt.date(2026, 4, 5), "2026-04-04T13:30:00Z", 25),
    # clocks jump from 00:00 to 01:00: the day starts at 01:00 -03 (04:00Z) and has 23 h
    ("America/Santiago", dt.date(2026, 9, 6), "2026-09-06T04:00:00Z", 23),
    # at the end of 4 April clocks fall back from 00:00 to 23:00: 4 April has 25 h
    ("America/Santiago", dt.date(2026, 4, 4), "2026-04-04T03:00:00Z", 25),
    ("America/Santiago", dt.date(2026, 4, 5), "2026-04-05T04:00:00Z", 24),
])
def test_day_bounds(zone, day, start, hours):
    p = billing_day(day, zone)
    assert iso_utc(p.start) == start
    assert p.end - p.start == hours * 3600
    assert (p.label, p.stamp) == (day.isoformat(), day.strftime("%Y%m%d"))


def test_month_bounds_and_labels():
    m = billing_month(dt.date(2026, 2, 17), "America/New_York")
    assert (m.label, m.stamp) == ("2026-02", "202602")
    assert iso_utc(m.start) == "2026-02-01T05:00:00Z"
    assert iso_utc(m.end) == "2026-03-01T05:00:00Z"
