"""Where every file of a tenant lives: staging (Parquet between steps) and output (SPEC §7).

Staging (`staging_root/<tenant>/`), deterministic per (tenant, day, name), so a retry or
a re-run overwrites the same partition (SPEC §8):
    datasets/<YYYY-MM-DD>/<dataset>.parquet    extracted and derived inputs
    work/<YYYY-MM-DD>/<name>.parquet           attribution maps and metric results
    work/<YYYY-MM-DD>/<metric>.minutes.parquet per-UTC-minute peaks of one metric
    results/<YYYY-MM-DD>/results.parquet       the day's billed values (monthly input)
    results/<YYYY-MM-DD>/usage.parquet         per-UTC-minute peaks: metric, tier3_id, region,
                                               minute (epoch s), peak (non-zero minutes only)
    results/<YYYY-MM-DD>/handled.parquet       handled interactions of the day per media and
                                               UTC minute: media, minute, count
Output (`output_root/<tenant>/`):
    <daily|monthly>/<period label>/            billing CSVs, audit CSV, manifest.json
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from . import restate, storage

if TYPE_CHECKING:
    from .config import TenantConfig
    from .days import Period

MANIFEST = "manifest.json"
DAY_RESULTS = ("results", "usage", "handled")  # results/<day>/ files the report reads


def _stage(t: TenantConfig, area: str, day: dt.date, name: str) -> str:
    return storage.join(t.staging_root, t.id, area, day.isoformat(), f"{name}.parquet")


def month_lock_path(t: TenantConfig, month: str) -> str:
    """The lock file of a tenant's month folder (`month` YYYY-MM) in its staging root:
    one month write (files, report) at a time across processes of this machine."""
    return storage.join(t.staging_root, t.id, "locks", f"monthly-{month}.lock")


def dataset_path(t: TenantConfig, day: dt.date, name: str) -> str:
    return _stage(t, "datasets", day, name)


def work_path(t: TenantConfig, day: dt.date, name: str) -> str:
    return _stage(t, "work", day, name)


def minutes_path(t: TenantConfig, day: dt.date, metric: str) -> str:
    return work_path(t, day, f"{metric}.minutes")


def results_path(t: TenantConfig, day: dt.date, name: str = "results") -> str:
    return _stage(t, "results", day, name)


def period_folder(t: TenantConfig, p: Period) -> str:
    """`<output_root>/<tenant>/<daily|monthly>/<label>` (restate.output_folder)."""
    return restate.output_folder(t.output_root, t.id, p.kind, p.label)


def manifest_path(t: TenantConfig, p: Period) -> str:
    return storage.join(period_folder(t, p), MANIFEST)


def billing_file(owner: str, metric: str, p: Period) -> str:
    """`<tenant or BU id>_<metric>_<stamp>.csv` (SPEC §7)."""
    return f"{owner}_{metric}_{p.stamp}.csv"


def audit_file(p: Period) -> str:
    return f"audit_{p.stamp}.csv"
