"""One line of billed values per day, for people watching a long run (`bds run`, `bds demo`)."""

from __future__ import annotations

import datetime as dt

from .config import TenantConfig


def day_values(t: TenantConfig, day: dt.date) -> str:
    """The tenant-level values billed for `day`, from its stored daily results.

    Per metric (the tenant's order) and region (config order), the AgentGroupNames of
    the day's billing file: `concurrent/enabled` agents for seat metrics billed daily
    with both, else the one value (GVP ports and minutes too). Example:
    `seats_chat us=12/40 eu=3/9  gvp_minutes us=1520`. Empty when the day has no stored
    results (a failed day). Reads only the results file (a few rows per metric).
    """
    from . import storage
    from .layout import results_path

    path = results_path(t, day)
    if not storage.exists(path):
        return ""
    rows = storage.read_table(path, columns=["metric", "tier3_id", "region", "group", "value"])
    values: dict[tuple[str, str], dict[int, int]] = {}
    for m, tier3, region, group, value in zip(*(rows[c].to_pylist() for c in rows.column_names),
                                              strict=True):
        if not tier3:  # the tenant scope
            values.setdefault((m, region), {})[int(group)] = int(value)
    parts = []
    for m in t.metrics:
        groups = t.metric(m).groups("daily")  # what the day's billing file holds
        regions = [f"{r.code}={'/'.join(str(g[k]) for k in groups if k in g)}"
                   for r in t.regions if (g := values.get((m, r.code)))]
        if regions:
            parts.append(f"{m} {' '.join(regions)}")
    return "  ".join(parts)
