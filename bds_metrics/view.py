"""What the Billing page shows (SPEC §12), as JSON-ready dicts, from stored results only.

Reads the output root (manifests, billing and audit CSVs, history) and, for agent names,
the period's `agent_resource` snapshot in the staging root. Never the Info Mart. No
Airflow import: the API server's plugin (bds_airflow.ui) adds authentication and the
runs from Airflow's metadata.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from . import restate, status, storage
from .config import TenantConfig
from .days import date_range
from .emission import verify_folder


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def calendar(t: TenantConfig, first: dt.date, last: dt.date,
             runs: dict[dt.date, status.RunInfo] | None = None,
             now: dt.datetime | None = None) -> dict:
    """Day states of [first, last] and the months they touch."""
    days = status.day_states(t, first, last, runs, now)
    months = status.month_states(t, first, last, now, days)
    return {
        "tenant": t.id, "from": first.isoformat(), "to": last.isoformat(),
        "days": [{"day": d.day.isoformat(), "state": d.state, "version": d.version,
                  "run_id": d.run.run_id if d.run else None,
                  "rejected": sum(sum(v.values()) for v in (d.manifest or {}).get(
                      "rejected", {}).values()),
                  "fallbacks": sum((d.manifest or {}).get("fallbacks", {}).values())}
                 for d in days],
        "months": [{"month": m.month, "complete": m.complete, "version": m.version,
                    "missing": [d.isoformat() for d in m.missing], "not_due": m.not_due,
                    "text": m.text} for m in months],
    }


def kind_of(label: str) -> str:
    """`daily` for `YYYY-MM-DD`, `monthly` for `YYYY-MM`; ValueError otherwise."""
    fmt, kind = ("%Y-%m-%d", "daily") if len(label) == 10 else ("%Y-%m", "monthly")
    dt.datetime.strptime(label, fmt)
    return kind


def agent_directory(t: TenantConfig, kind: str, label: str, doc: dict,
                    ids: set[int]) -> dict[int, dict[str, str]]:
    """agent id → user name and employee id from the period's `agent_resource` snapshot
    (a month: its last day that has one). Empty when the staging area was purged."""
    if not ids:
        return {}
    from .pipeline import dataset_path  # pandas: only when a period is opened

    days = [label] if kind == "daily" else list(reversed(doc.get("days", [])))
    for d in days:
        path = dataset_path(t, dt.date.fromisoformat(d), "agent_resource")
        if not storage.exists(path):
            continue
        table = storage.read_table(path, ["agent_id", "username", "employee_id"])
        cols = table.to_pydict()
        return {int(a): {"username": u or "", "employee_id": e or ""}
                for a, u, e in zip(cols["agent_id"], cols["username"], cols["employee_id"],
                                   strict=True)
                if a is not None and int(a) in ids}
    return {}


def period(t: TenantConfig, label: str) -> dict:
    """A day's or month's published files: billing rows, audit with agents, manifest
    facts, verify result, file list, and every version with its corrections."""
    kind = kind_of(label)
    vs = restate.versions(t.output_root, t.id, kind, label)
    folder = restate.output_folder(t.output_root, t.id, kind, label)
    if not vs or not vs[-1].current:
        return {"tenant": t.id, "period": label, "kind": kind, "published": False,
                "versions": [_version_info(v, {}) for v in vs]}
    cur = vs[-1]
    doc = cur.doc
    names = [f["name"] for f in doc.get("files", [])]
    blobs = restate.version_files(cur, [n for n in names if n.endswith(".csv")])
    billing = []
    for n in names:
        if restate.is_billing_file(n):
            for r in _csv(blobs[n]):
                billing.append({"file": n, "scope": r["Tier3AccountID"],
                                "scope_name": r["Tier3AccountName"] or
                                r["Tier3AccountID"] or "tenant",
                                "region": r["Region"], "metric": r["MetricName"],
                                "group": int(r["AgentGroupName"]),
                                "value": int(r["MessageSize"]), "record": r})
    rank = {"metric": {m: i for i, m in enumerate(t.metrics)},
            "scope": {s: i for i, (s, _) in enumerate(t.scopes())},
            "region": {r.code: i for i, r in enumerate(t.regions)}}
    billing.sort(key=lambda b: (rank["metric"].get(b["metric"], 99),
                                rank["scope"].get(b["scope"], 99),
                                rank["region"].get(b["region"], 99), b["group"]))
    audit = []
    for n in names:
        if n.startswith("audit_"):
            for r in _csv(blobs[n]):
                audit.append({"metric": r["MetricName"], "region": r["Region"],
                              "scope": r["Tier3AccountID"], "group": int(r["AgentGroupName"]),
                              "value": int(r["MessageSize"]), "peak_first": r["PeakFirstAt"],
                              "peak_last": r["PeakLastAt"],
                              "agents": [int(a) for a in r["AgentIDs"].split()]})
    ids = {a for row in audit for a in row["agents"]}
    directory = agent_directory(t, kind, label, doc, ids)
    corrections = {n: _csv(blobs[n]) for n in names if restate.is_corrections_file(n)}
    return {
        "tenant": t.id, "period": label, "kind": kind, "published": True,
        "version": cur.number, "supersedes": doc.get("supersedes"),
        "manifest_sha256": cur.sha256,
        "period_bounds": doc.get("period", {}),
        "inputs": doc.get("inputs", {}), "rejected": doc.get("rejected", {}),
        "fallbacks": doc.get("fallbacks", {}),
        "extra": {k: v for k, v in doc.items() if k not in (
            "tenant", "period", "version", "supersedes", "files", "inputs", "rejected",
            "fallbacks")},
        "files": doc.get("files", []),
        "verify": verify_folder(folder),
        "billing": billing, "audit": audit,
        "agents": {str(k): v for k, v in sorted(directory.items())},
        "versions": [_version_info(v, corrections) for v in vs],
    }


def _version_info(v: restate.Version, corrections: dict[str, list[dict]]) -> dict:
    stamp = v.doc.get("period", {}).get("label", "").replace("-", "")
    name = restate.corrections_name(stamp, v.number)
    return {"number": v.number, "current": v.current, "sha256": v.sha256,
            "supersedes": v.doc.get("supersedes"),
            "files": [f["name"] for f in v.doc.get("files", [])],
            "corrections_file": name if name in corrections else None,
            "corrections": corrections.get(name, [])}


def version_file(t: TenantConfig, label: str, name: str, number: int | None = None
                 ) -> bytes | None:
    """The bytes of a file of a period's version (the current one by default), only when
    that version's manifest lists it (or it is the manifest); None otherwise."""
    kind = kind_of(label)
    vs = restate.versions(t.output_root, t.id, kind, label)
    pick = [v for v in vs if (v.current if number is None else v.number == number)]
    if not pick:
        return None
    v = pick[0]
    if name == "manifest.json":
        return v.manifest
    if name not in {f["name"] for f in v.doc.get("files", [])}:
        return None
    return storage.read_bytes(storage.join(v.folder, name))


def series(t: TenantConfig, first: dt.date, last: dt.date, scope: str = "") -> dict:
    """Daily billed values of one scope (tenant '' by default) per metric, region and
    AgentGroupName over [first, last], from the daily billing CSVs; null where a day has
    no published files."""
    days = [d for d in date_range(first, last) if d >= t.production_date]
    base = storage.join(t.output_root, t.id, "daily")
    have = set(storage.listdir(base))
    owner = scope or t.id
    values: dict[tuple[str, str, int], list[int | None]] = {}
    order: list[tuple[str, str, int]] = []
    for i, d in enumerate(days):
        if d.isoformat() not in have:
            continue
        stamp = d.isoformat().replace("-", "")
        for m in t.metrics:
            path = storage.join(base, d.isoformat(), f"{owner}_{m}_{stamp}.csv")
            try:
                rows = _csv(storage.read_bytes(path))
            except FileNotFoundError:
                continue
            for r in rows:
                key = (m, r["Region"], int(r["AgentGroupName"]))
                if key not in values:
                    values[key] = [None] * len(days)
                    order.append(key)
                values[key][i] = int(r["MessageSize"])
    metric_rank = {m: i for i, m in enumerate(t.metrics)}
    region_rank = {r.code: i for i, r in enumerate(t.regions)}
    order.sort(key=lambda k: (metric_rank.get(k[0], 99), region_rank.get(k[1], 99), k[2]))
    return {"tenant": t.id, "scope": scope, "days": [d.isoformat() for d in days],
            "series": [{"metric": m, "region": r, "group": g, "values": values[(m, r, g)]}
                       for m, r, g in order]}


def overview(t: TenantConfig, now: dt.datetime | None = None) -> dict:
    """A tenant's entry in the tenant list: configuration only, no storage read (the list
    must stay instant for 1000 tenants; a tenant's states load when it is opened)."""
    return {"id": t.id, "name": t.name, "timezone": t.timezone,
            "production_date": t.production_date.isoformat(),
            "last_due": status.last_due_day(t, now).isoformat(),
            "scopes": [{"id": s, "name": n or "tenant"} for s, n in t.scopes()],
            "metrics": list(t.metrics), "regions": [r.code for r in t.regions]}
