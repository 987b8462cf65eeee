"""Billing days and months as half-open epoch-second intervals in a tenant's zone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    """A billing day or month: `[start, end)` in epoch seconds, labelled locally."""

    kind: str  # "daily" | "monthly"
    first: dt.date  # the day, or the month's first day
    start: int
    end: int

    @property
    def label(self) -> str:
        """`YYYY-MM-DD` (day) or `YYYY-MM` (month): folder names and RecordDate."""
        return self.first.isoformat() if self.kind == "daily" else self.first.strftime("%Y-%m")

    @property
    def stamp(self) -> str:
        """`YYYYMMDD` or `YYYYMM`: the file-name suffix."""
        return self.label.replace("-", "")


def local_midnight(day: dt.date, tz: str) -> int:
    """Epoch seconds of the first instant of `day` in zone `tz`.

    `fold=0` is right in both DST corner cases: where clocks jump over midnight (no
    00:00 exists) it maps 00:00 with the old offset, which is the new day's first
    instant (01:00 new time); where 00:00 happens twice it is the earlier one.
    """
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp())


def billing_day(day: dt.date, tz: str) -> Period:
    return Period("daily", day, local_midnight(day, tz), local_midnight(day + dt.timedelta(1), tz))


def month_days(first: dt.date) -> list[dt.date]:
    first = first.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return [first + dt.timedelta(days=i) for i in range((nxt - first).days)]


def billing_month(any_day: dt.date, tz: str) -> Period:
    days = month_days(any_day)
    return Period(
        "monthly",
        days[0],
        local_midnight(days[0], tz),
        local_midnight(days[-1] + dt.timedelta(1), tz),
    )


def billing_day_of(instant: dt.datetime, tz: str) -> dt.date:
    """The billing day an instant names, for tenant zone `tz` (SPEC §8 "One billing day").

    Every path that turns a date or a date-time into a billing day goes through this
    function: the timetable (scheduled, catch-up, manual and backfill runs), the tasks
    (a run's `data_interval_start` and `logical_date`), `bds run` and the trigger
    normalisation of the API server.

    - An instant that is exactly midnight UTC is a *plain date*: Airflow reads a bare
      `2026-03-05` (backfill bounds, the trigger form's date, `--from-date`) as that UTC
      midnight, so its UTC calendar date is the day meant, east or west of UTC.
    - Any other instant names the local day (in `tz`) that contains it; the first
      instant of a local day (`local_midnight`) names that day, including days whose
      midnight is skipped or repeated by a DST change.

    The two rules never disagree on a day's own first instant: a zone whose midnight
    is a UTC midnight has offset 0 there, so its local and UTC dates coincide.

    `instant` must be timezone-aware (ValueError otherwise).
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"billing_day_of: {instant!r} has no time zone")
    utc = instant.astimezone(dt.UTC)
    if (utc.hour, utc.minute, utc.second, utc.microsecond) == (0, 0, 0, 0):
        return utc.date()
    return instant.astimezone(ZoneInfo(tz)).date()


def day_start(day: dt.date, tz: str) -> dt.datetime:
    """The first instant of billing day `day` as an aware datetime in zone `tz` (the
    logical date of the day's DAG run)."""
    return dt.datetime.fromtimestamp(local_midnight(day, tz), ZoneInfo(tz))


def iso_utc(ts: int) -> str:
    """`2026-03-05T14:03:07Z`: the start of second `ts`, in UTC."""
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def date_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
