"""Month files from the stored daily results (SPEC §5.1 steps 6-7, §7, §8 Monthly files).

Each metric's month rule per AgentGroupName comes from the registry (`Metric.month`):
`max` (the month's largest daily value, with the peak seconds and agents of the first
day that reached it), `union` (distinct agents over the month's days) or `sum`.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from . import storage
from .catalog import Metric
from .config import TenantConfig
from .days import billing_day, billing_month, month_days
from .emission import Bundle, build_files, publish
from .layout import manifest_path, results_path


def billable_days(t: TenantConfig, any_day: dt.date) -> list[dt.date]:
    """The month's days the tenant is billed for (from its production date on)."""
    return [d for d in month_days(any_day) if d >= t.production_date]


def day_complete(t: TenantConfig, day: dt.date) -> bool:
    return storage.exists(manifest_path(t, billing_day(day, t.timezone))) and storage.exists(
        results_path(t, day)
    )


def month_status(t: TenantConfig, any_day: dt.date) -> tuple[list[dt.date], list[dt.date]]:
    """(billable days, those still without a successful daily result)."""
    days = billable_days(t, any_day)
    return days, [d for d in days if not day_complete(t, d)]


def emit_monthly(t: TenantConfig, any_day: dt.date) -> str | None:
    """(Re)write the month's files when every billable day has a daily result."""
    days, missing = month_status(t, any_day)
    if not days or missing:
        return None
    p = billing_month(any_day, t.timezone)
    daily = pd.concat(
        [storage.read_table(results_path(t, d)).to_pandas().assign(day=d.isoformat())
         for d in days], ignore_index=True
    )
    bundle = Bundle(files=build_files(t, p, monthly_results(t, daily)))
    repaired: dict[str, dict[str, int]] = {}
    for d in days:
        doc = json.loads(storage.read_bytes(manifest_path(t, billing_day(d, t.timezone))))
        for name, n in doc.get("inputs", {}).items():
            bundle.inputs[name] = bundle.inputs.get(name, 0) + int(n)
        for name, reasons in doc.get("rejected", {}).items():
            slot = bundle.rejected.setdefault(name, {})
            for reason, n in reasons.items():
                slot[reason] = slot.get(reason, 0) + int(n)
        for reason, n in doc.get("fallbacks", {}).items():
            bundle.fallbacks[reason] = bundle.fallbacks.get(reason, 0) + int(n)
        for name, columns in doc.get("repaired", {}).items():
            slot = repaired.setdefault(name, {})
            for column, n in columns.items():
                slot[column] = slot.get(column, 0) + int(n)
    if repaired:
        bundle.extra["repaired"] = {k: dict(sorted(v.items())) for k, v in sorted(repaired.items())}
    bundle.extra["days"] = [d.isoformat() for d in days]
    return publish(t, p, bundle)


def monthly_results(t: TenantConfig, daily: pd.DataFrame) -> pd.DataFrame:
    """Month values from daily results, one row per metric, scope, region and group."""
    rows = []
    keys = ["metric", "tier3_id", "region", "group"]
    groups = {k: g for k, g in daily.groupby(keys, sort=False)}
    for metric in t.metrics:
        m = t.metric(metric)
        for tier3, _ in t.scopes():
            for r in t.regions:
                for g in m.groups("monthly"):
                    part = groups.get((metric, tier3, r.code, g))
                    rows.append(_month_row(m, tier3, r.code, g, part))
    return pd.DataFrame(rows)


def _month_row(m: Metric, tier3: str, region: str, group: int,
               part: pd.DataFrame | None) -> dict:
    row = {"metric": m.name, "tier3_id": tier3, "region": region, "group": group,
           "value": 0, "peak_first": None, "peak_last": None, "agents": []}
    if part is None or part.empty:
        return row
    rule = m.month_rule(group)
    if rule == "sum":
        row["value"] = int(part["value"].sum())
    elif rule == "union":
        agents = np.unique(np.concatenate([np.asarray(a, dtype=np.int64)
                                           for a in part["agents"]] + [np.zeros(0, np.int64)]))
        row["value"], row["agents"] = len(agents), agents.tolist()
    else:  # max
        peak = int(part["value"].max())
        row["value"] = peak
        if peak > 0:
            top = part[part["value"] == peak]
            first = top.loc[top["peak_first"].idxmin()]
            row["peak_first"] = int(first["peak_first"])
            row["peak_last"] = int(top["peak_last"].max())
            row["agents"] = [int(a) for a in first["agents"]]
    return row
