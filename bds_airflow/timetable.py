"""The billing-day timetable: one DAG run per local billing day, whatever starts it.

SPEC §8 "One billing day, one run". Every run of a tenant's DAG has

- `logical_date` = the first instant of its billing day in the tenant's zone
  (`bds_metrics.days.day_start`), and
- data interval = that whole day, `[D 00:00, D+1 00:00)` local (23 or 25 hours on a
  DST change; a day whose midnight is skipped starts at its first instant).

for scheduled and caught-up runs (`next_dagrun_info`), manual runs from the UI, the
REST API or `bds run` (`infer_manual_data_interval`: the day the logical date *names*,
not the last complete day before it as Airflow's cron timetables do), and backfills
(`next_dagrun_info` with the backfill's bounds: plain dates D1..D2 bill exactly
D1..D2). Which day an instant names is decided in one place,
`bds_metrics.days.billing_day_of`.

A scheduled run is created `settle_hours` after its day has ended (`run_after`), so no
run exists, and nothing polls, while the day settles; a backfill's runs are due at
once (`run_after` = the day's first instant, in the tenant's zone, which is also what
Airflow's backfill puts in their run ids: `backfill__2026-03-05T00:00:00-05:00`).

Registered with Airflow by the project's plugin (`bds_airflow.plugin`), so the
scheduler, the DAG processor and the API server can deserialize it. Imports nothing
heavy: the DAG processor builds one per tenant.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, Timetable

from bds_metrics.days import billing_day, billing_day_of, day_start


def _pendulum(ts: int, tz: str):
    import pendulum

    return pendulum.from_timestamp(ts, tz=tz)


class BillingDayTimetable(Timetable):
    """One run per billing day of zone `timezone`; scheduled runs `settle_hours` after
    the day's end. See the module docstring."""

    run_ordering = ("logical_date", "data_interval_end")

    def __init__(self, timezone: str = "UTC", settle_hours: float = 0.0,
                 first_day: dt.date | str | None = None) -> None:
        from zoneinfo import ZoneInfo

        ZoneInfo(timezone)  # an unknown zone fails here, at parse, naming it
        self.timezone = timezone
        self.settle_hours = float(settle_hours)
        # the tenant's production date: no run of a day before it (a backfill over
        # earlier days starts there; a trigger of one is refused, trigger_identity)
        self.first_day = (dt.date.fromisoformat(first_day) if isinstance(first_day, str)
                          else first_day)
        settle = (f", {self.settle_hours:g} h after the day ends"
                  if self.settle_hours else ", when the day ends")
        self.description = (
            f"One run per billing day: local midnight to midnight in {timezone}{settle}. "
            "A run's logical date is its billing day; trigger a day by its date."
        )

    # ------------------------------------------------------------ identity

    def day_of(self, instant: dt.datetime) -> dt.date:
        """The billing day an instant names (`billing_day_of`)."""
        return billing_day_of(instant, self.timezone)

    def interval(self, day: dt.date) -> DataInterval:
        """The data interval of billing day `day` (aware, in the tenant's zone)."""
        p = billing_day(day, self.timezone)
        return DataInterval(_pendulum(p.start, self.timezone), _pendulum(p.end, self.timezone))

    @property
    def summary(self) -> str:
        return f"billing day ({self.timezone})"

    def serialize(self) -> dict[str, Any]:
        out: dict[str, Any] = {"timezone": self.timezone, "settle_hours": self.settle_hours}
        if self.first_day is not None:
            out["first_day"] = self.first_day.isoformat()
        return out

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> BillingDayTimetable:
        return cls(data["timezone"], data.get("settle_hours", 0.0), data.get("first_day"))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, BillingDayTimetable)
                and self.serialize() == other.serialize())

    def __hash__(self) -> int:
        return hash((self.timezone, self.settle_hours, self.first_day))

    # ------------------------------------------------------------ runs

    def infer_manual_data_interval(self, *, run_after: Any) -> DataInterval:
        """A manual run (UI, REST API, `bds run`) bills the day its logical date names.
        Airflow passes the logical date as `run_after` when the trigger names one."""
        return self.interval(self.day_of(run_after))

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None,
                         restriction: Any) -> DagRunInfo | None:
        """The next billing day after the last scheduled or backfill run, or the first
        day of the restriction (the DAG's start date, or a backfill's first bound).

        A backfill passes its bounds as `restriction` (with `latest` set); the scheduler
        passes the DAG's start date and no `latest` (bds DAGs have no end date).
        """
        if last_automated_data_interval is not None:
            day = self.day_of(last_automated_data_interval.start) + dt.timedelta(days=1)
            if restriction.earliest is not None:
                day = max(day, self.day_of(restriction.earliest))
        elif restriction.earliest is None:
            return None
        else:
            day = self.day_of(restriction.earliest)
        if self.first_day is not None and day < self.first_day:
            day = self.first_day  # nothing to bill before the production date
        backfill = restriction.latest is not None
        if not restriction.catchup and not backfill:
            import pendulum

            yesterday = pendulum.now(self.timezone).date() - dt.timedelta(days=1)
            day = max(day, yesterday)
        if backfill and day > self.day_of(restriction.latest):
            return None
        interval = self.interval(day)
        if backfill:
            run_after = interval.start
        else:
            run_after = interval.end + dt.timedelta(hours=self.settle_hours)
        return DagRunInfo(run_after=run_after, data_interval=interval)

    def generate_run_id(self, *, run_type: Any, run_after: Any,
                        data_interval: DataInterval | None, **extra: Any) -> str:
        """`scheduled__2026-03-05_America.New_York`: the run type, the billing day and
        the zone (`/` written `.`, as run ids appear in URLs). Manual runs add the
        trigger time, so re-triggering a day after its run was deleted never collides."""
        kind = getattr(run_type, "value", str(run_type))
        if data_interval is None:  # a run without a logical date: no billing day
            return f"{kind}__no-billing-day__{_stamp(run_after)}"
        day = self.day_of(data_interval.start)
        rid = f"{kind}__{day.isoformat()}_{self.timezone.replace('/', '.')}"
        if kind != "scheduled":
            rid += f"__{_stamp(run_after)}"
        return rid


def _stamp(instant: Any) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def day_start_of(day: dt.date, tz: str) -> Any:
    """The logical date of billing day `day` as a pendulum DateTime in zone `tz`."""
    import pendulum

    return pendulum.instance(day_start(day, tz))
