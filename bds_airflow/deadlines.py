"""The reference of the "day not published" deadline (SPEC §8 Alerts): the end of the
run's billing day.

SPEC §8 puts the deadline `publish_deadline_hours` after the day's end. A billing day is
23, 24 or 25 hours long in a zone with daylight saving time, so the run's logical date
plus a fixed interval is an hour off twice a year; the run's data interval end is the
day's end (the billing-day timetable sets it, `bds_metrics.days`). Airflow 3.3's
deadline references are the mechanism: this custom reference is registered with the
scheduler through the bds plugin (`deadline_references`), which it needs to deserialize
the DAG's `DeadlineAlert`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk.definitions.deadline import BaseDeadlineReference


class BillingDayEnd(BaseDeadlineReference):
    """A DagRun's data interval end (UTC datetime): the end of its billing day.

    Evaluated by the scheduler when it creates the run; None (no deadline) for a run
    without a data interval."""

    required_kwargs = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session: Any, **kwargs: Any) -> dt.datetime | None:
        from airflow.models import DagRun
        from sqlalchemy import select

        return session.scalar(select(DagRun.data_interval_end).where(
            DagRun.dag_id == kwargs["dag_id"], DagRun.run_id == kwargs["run_id"]))
