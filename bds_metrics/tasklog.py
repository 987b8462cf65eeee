"""What a task's log says to an operator (SPEC §8 "Alerts and deadlines": task logs
state the billing day with its local and UTC bounds, the rows read and rejected, the
values computed and the files written with their SHA-256).

Plain text lines built from what the step stored (Parquet footers, result tables,
manifests): nothing here re-reads the Info Mart. Used by the Airflow operators
(bds_airflow.steps) and by nothing that bills: a failure here never fails a task.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from . import storage
from .config import TenantConfig
from .days import billing_day, iso_utc


def day_header(t: TenantConfig, day: dt.date) -> str:
    """`tenant acme (Acme Corp), billing day 2026-03-08 in America/New_York: local
    2026-03-08T00:00:00-05:00 .. 2026-03-09T00:00:00-04:00 (23 h), UTC
    2026-03-08T05:00:00Z .. 2026-03-09T04:00:00Z`"""
    p = billing_day(day, t.timezone)
    zone = ZoneInfo(t.timezone)

    def local(ts: int) -> str:
        return dt.datetime.fromtimestamp(ts, zone).isoformat()

    hours = (p.end - p.start) / 3600
    return (f"tenant {t.id} ({t.name}), billing day {day.isoformat()} in {t.timezone}: "
            f"local {local(p.start)} .. {local(p.end)} ({hours:g} h), "
            f"UTC {iso_utc(p.start)} .. {iso_utc(p.end)}")


def dataset_lines(name: str, path: str) -> list[str]:
    """Rows kept and rows rejected (by reason) of one extracted or derived dataset."""
    from .datasets import read_stats

    stats = read_stats(path)
    line = f"read {name}: {stats.rows} row(s) kept in {path}"
    if stats.rejected:
        line += "; rejected " + ", ".join(f"{reason} {n}" for reason, n in
                                          sorted(stats.rejected.items()))
    else:
        line += "; none rejected"
    if stats.repaired:
        line += "; text not UTF-8 repaired in " + ", ".join(
            f"{column} {n}" for column, n in sorted(stats.repaired.items()))
    return [line]


def result_lines(metric: str, path: str) -> list[str]:
    """One line per scope and region: the metric's concurrent and enabled values, the
    peak seconds and the agents counted."""
    rows = storage.read_table(path).to_pylist()
    out = [f"computed {metric}: {len(rows)} value(s) (scope, region, AgentGroupName)"]
    for r in sorted(rows, key=lambda r: (r["tier3_id"], r["region"], r["group"])):
        scope = r["tier3_id"] or "tenant"
        text = f"  {metric} {scope} {r['region']} group {r['group']}: {r['value']}"
        if r.get("peak_first") is not None and r["value"]:
            text += f" (peak {iso_utc(r['peak_first'])} .. {iso_utc(r['peak_last'])})"
        if r.get("agents"):
            text += f" agents {' '.join(str(a) for a in r['agents'][:20])}"
            if len(r["agents"]) > 20:
                text += f" … ({len(r['agents'])} in all)"
        out.append(text)
    return out


def folder_lines(folder: str) -> list[str]:
    """The files of a published period folder with rows and SHA-256 (its manifest)."""
    doc = json.loads(storage.read_bytes(storage.join(folder, "manifest.json")))
    out = [f"wrote {len(doc.get('files', []))} file(s) and manifest.json to {folder}"]
    for f in doc.get("files", []):
        out.append(f"  {f['name']}: {f['rows']} row(s), {f['bytes']} bytes, "
                   f"sha256 {f['sha256']}")
    if doc.get("rejected"):
        out.append("  rejected rows: " + json.dumps(doc["rejected"], sort_keys=True))
    if doc.get("fallbacks"):
        out.append("  attribution fallbacks: " + json.dumps(doc["fallbacks"], sort_keys=True))
    if doc.get("repaired"):
        out.append("  repaired rows: " + json.dumps(doc["repaired"], sort_keys=True))
    return out
