"""Billing days' and months' states from what the pipeline stored (SPEC §9 `bds status`,
§12 the Billing page), plus, when given, the runs Airflow's metadata knows.

States of a day, in the order they win:
- `running` / `waiting for readiness`: its latest DAG run is queued or running (waiting
  when a task of that run is deferred or up for reschedule: the readiness wait);
- `failed`: its latest DAG run failed (a version published earlier stays listed);
- `restated` (version N > 1) / `published` (version 1): the daily manifest is there;
- `not due`: the day has not ended yet in the tenant's zone (never an error);
- `missing`: none of the above.

A month is `complete` when its monthly manifest is there and every billable day (from the
production date on) is published; else the missing days are named. Nothing here reads
the Info Mart or a Parquet dataset: one listing of the tenant's daily folders and one
small manifest per day in range.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from . import restate, storage
from .config import TenantConfig
from .days import date_range, month_days

PUBLISHED, RESTATED, FAILED = "published", "restated", "failed"
RUNNING, WAITING, MISSING, NOT_DUE = "running", "waiting for readiness", "missing", "not due"
BAD = (MISSING, FAILED)  # states that make `bds status` exit non-zero


@dataclass(frozen=True)
class RunInfo:
    """The latest Airflow DAG run of a billing day."""

    run_id: str
    state: str  # queued | running | success | failed
    waiting: bool = False  # a task of the run is deferred / up for reschedule


@dataclass
class DayStatus:
    day: dt.date
    state: str
    version: int | None = None  # of the published files, when there are some
    run: RunInfo | None = None
    manifest: dict | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        s = self.state
        if self.state in (PUBLISHED, RESTATED):
            s += f" (v{self.version})"
        elif self.version:
            s += f" (v{self.version} published earlier)"
        if self.run is not None and self.state in (FAILED, RUNNING, WAITING):
            s += f"  run {self.run.run_id}"
        return s


@dataclass
class MonthStatus:
    month: str  # YYYY-MM
    complete: bool
    missing: list[dt.date]
    version: int | None = None  # of the monthly files, when written
    not_due: bool = False  # the month has days still to come

    @property
    def text(self) -> str:
        if self.complete:
            return f"{self.month}: complete (v{self.version})"
        if not self.missing and self.not_due:
            return f"{self.month}: in progress, every past day published"
        if not self.missing:
            return f"{self.month}: every day published, monthly files not written yet"
        return f"{self.month}: incomplete, missing {ranges(self.missing)}"


def ranges(days: list[dt.date]) -> str:
    """`2026-03-01..2026-03-07, 2026-03-09`: consecutive days folded."""
    out, start, prev = [], None, None
    for d in sorted(days):
        if start is None:
            start = prev = d
        elif d == prev + dt.timedelta(1):
            prev = d
        else:
            out.append(start.isoformat() if start == prev else f"{start}..{prev}")
            start = prev = d
    if start is not None:
        out.append(start.isoformat() if start == prev else f"{start}..{prev}")
    return ", ".join(out)


def last_due_day(t: TenantConfig, now: dt.datetime | None = None) -> dt.date:
    """The last billing day that has ended in the tenant's zone."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(ZoneInfo(t.timezone)).date() - dt.timedelta(days=1)


def read_manifest(folder: str) -> dict | None:
    path = storage.join(folder, "manifest.json")
    try:
        return json.loads(storage.read_bytes(path))
    except FileNotFoundError:
        return None


def published(t: TenantConfig, kind: str, labels: set[str]) -> dict[str, dict]:
    """label → manifest of each period of `labels` that has one (one listing, then one
    manifest read per listed folder)."""
    base = storage.join(t.output_root, t.id, kind)
    out = {}
    for name in storage.listdir(base):
        if name in labels:
            doc = read_manifest(storage.join(base, name))
            if doc is not None:
                out[name] = doc
    return out


def day_states(t: TenantConfig, first: dt.date, last: dt.date,
               runs: dict[dt.date, RunInfo] | None = None,
               now: dt.datetime | None = None) -> list[DayStatus]:
    """Every billing day of [first, last] from the production date on."""
    days = [d for d in date_range(first, last) if d >= t.production_date]
    docs = published(t, "daily", {d.isoformat() for d in days})
    due = last_due_day(t, now)
    runs = runs or {}
    out = []
    for d in days:
        doc = docs.get(d.isoformat())
        version = int(doc.get("version", 1)) if doc else None
        run = runs.get(d)
        if run is not None and run.state in ("queued", "running"):
            state = WAITING if run.waiting else RUNNING
        elif run is not None and run.state == "failed":
            state = FAILED
        elif doc is not None:
            state = RESTATED if version > 1 else PUBLISHED
        elif d > due:
            state = NOT_DUE
        else:
            state = MISSING
        out.append(DayStatus(d, state, version, run, doc))
    return out


def month_states(t: TenantConfig, first: dt.date, last: dt.date,
                 now: dt.datetime | None = None,
                 known: list[DayStatus] | None = None) -> list[MonthStatus]:
    """Every month touching [first, last] that has a billable day. `known`: day states
    already read (`day_states`), so their manifests are not read twice."""
    months = sorted({d.replace(day=1) for d in date_range(first, last)})
    due = last_due_day(t, now)
    seen = {d.day.isoformat(): d.manifest for d in known or []}
    out = []
    for m in months:
        days = [d for d in month_days(m) if d >= t.production_date]
        if not days:
            continue
        unknown = {d.isoformat() for d in days} - set(seen)
        docs = {k: v for k, v in seen.items() if v is not None}
        if unknown:
            docs.update(published(t, "daily", unknown))
        missing = [d for d in days if d.isoformat() not in docs and d <= due]
        not_due = any(d > due for d in days)
        label = m.strftime("%Y-%m")
        mdoc = read_manifest(restate.output_folder(t.output_root, t.id, "monthly", label))
        complete = mdoc is not None and not missing and not not_due
        out.append(MonthStatus(label, complete, missing,
                               int(mdoc.get("version", 1)) if mdoc else None, not_due))
    return out
