"""Billing files, audit file and manifest of one period (SPEC §7).

Content is built in memory (a billing file is small), then every file is published
atomically, the manifest last: an importer that trusts the manifest never sees a
file that is partial or missing. Nothing here reads a clock, so a re-run on unchanged
data writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import restate, storage
from .catalog import CONCURRENT, ENABLED, Metric
from .config import TenantConfig
from .days import Period, iso_utc
from .layout import MANIFEST, audit_file, billing_file, period_folder

if TYPE_CHECKING:  # publishing needs no pandas; a killed-and-restarted emitter starts fast
    import pandas as pd

BILLING_HEADER = (
    "RecordDate", "Tier1AccountID", "Tier1AccountName", "Tier2AccountID", "Tier2AccountName",
    "Tier3AccountID", "Tier3AccountName", "Region", "MetricName", "ChannelType",
    "ServiceClass", "ActivityType", "Status", "AgentGroupName", "MessageSize",
)
AUDIT_HEADER = (
    "MetricName", "Region", "Tier3AccountID", "AgentGroupName", "MessageSize",
    "PeakFirstAt", "PeakLastAt", "AgentIDs",
)


def csv_field(value: object) -> str:
    """A field quoted only when it holds a comma, quote or line break."""
    s = "" if value is None else str(value)
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def csv_text(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = [",".join(header)] + [",".join(csv_field(v) for v in r) for r in rows]
    return "\n".join(lines) + "\n"


@dataclass
class Bundle:
    """The files of one period, in memory: name → text, and the manifest's extra facts."""

    files: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    fallbacks: dict[str, int] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)


def _index(results: pd.DataFrame) -> dict[tuple[str, str, str, int], dict]:
    return {
        (r["metric"], r["tier3_id"], r["region"], int(r["group"])): r
        for r in results.to_dict("records")
    }


def build_files(t: TenantConfig, p: Period, results: pd.DataFrame) -> dict[str, str]:
    """Billing CSVs (one per scope and metric) and the audit CSV, as text."""
    idx = _index(results)
    files: dict[str, str] = {}
    audit: list[tuple] = []
    for metric in t.metrics:
        codes = t.metric(metric)
        groups = codes.groups(p.kind)
        for tier3, tier3_name in t.scopes():
            rows = []
            for region in t.regions:
                for g in groups:
                    r = idx.get((metric, tier3, region.code, g))
                    if r is None:
                        raise KeyError(
                            f"tenant {t.id!r}, {p.kind} {p.label}: no result for {metric} "
                            f"scope {tier3 or 'tenant'} region {region.code} group {g}"
                        )
                    value = int(r["value"])
                    rows.append((
                        p.label, t.tier1_id, t.tier1_name, t.id, t.name, tier3, tier3_name,
                        region.code, metric, codes.channel_type, codes.service_class,
                        codes.activity_type, codes.status, g, value,
                    ))
                    audit.append(_audit_row(codes, region.code, tier3, g, r))
            files[billing_file(tier3 or t.id, metric, p)] = csv_text(BILLING_HEADER, rows)
    files[audit_file(p)] = csv_text(AUDIT_HEADER, audit)
    return files


def _audit_row(m: Metric, region: str, tier3: str, group: int, r: dict) -> tuple:
    """Peak seconds on concurrent rows of metrics with a peak; agent ids on seat rows."""
    value = int(r["value"])
    first = last = ""
    if group == CONCURRENT and m.has_peak and value > 0:
        first, last = iso_utc(r["peak_first"]), iso_utc(r["peak_last"])
    agents = ""
    if m.has_agents and (group == ENABLED or value > 0):
        agents = " ".join(str(a) for a in sorted(int(a) for a in r["agents"]))
    return (m.name, region, tier3, group, value, first, last, agents)


def manifest_text(t: TenantConfig, p: Period, bundle: Bundle,
                  revision: restate.Revision | None = None) -> str:
    files = []
    for name in sorted(bundle.files):
        data = bundle.files[name].encode("utf-8")
        files.append({
            "name": name,
            "bytes": len(data),
            "rows": data.count(b"\n") - 1,
            "sha256": hashlib.sha256(data).hexdigest(),
        })
    doc = {
        "tenant": t.id,
        "period": {"kind": p.kind, "label": p.label, "start": iso_utc(p.start),
                   "end": iso_utc(p.end), "timezone": t.timezone},
        **_version_keys(revision),
        "files": files,
        "inputs": dict(sorted(bundle.inputs.items())),
        "rejected": {k: dict(sorted(v.items())) for k, v in sorted(bundle.rejected.items())},
        "fallbacks": dict(sorted(bundle.fallbacks.items())),
        **bundle.extra,
    }
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def _version_keys(revision: restate.Revision | None) -> dict[str, object]:
    """`version` (and `supersedes` from version 2 on): SPEC §7 Restatements."""
    if revision is None:
        return {}
    keys: dict[str, object] = {"version": revision.version}
    if revision.supersedes:
        keys["supersedes"] = revision.supersedes
    return keys


def publish(t: TenantConfig, p: Period, bundle: Bundle) -> str:
    """Write every file atomically, the manifest last; remove stale files of the period.

    An importer trusts the manifest. When the new content differs from what the current
    manifest lists, that manifest is removed before any file is replaced, so at every
    instant a manifest present in the folder matches the files it names (a crash leaves
    either the old consistent period, or no manifest until the next run completes it).
    Stale files (e.g. of a BU removed from the config) are removed after the new manifest
    is in place. When the billing files change, the previous version is first kept in
    history and a corrections file joins the bundle (`restate.revise`).
    """
    folder = period_folder(t, p)
    revision = restate.revise(t.output_root, t.id, p.kind, p.label, p.stamp, bundle.files)
    bundle.files = {**bundle.files, **revision.files}
    manifest = manifest_text(t, p, bundle, revision).encode("utf-8")
    mpath = storage.join(folder, MANIFEST)
    if storage.exists(mpath) and storage.read_bytes(mpath) != manifest:
        storage.remove(mpath)
    for name, text in bundle.files.items():
        storage.write_atomic(storage.join(folder, name), text.encode("utf-8"))
    storage.write_atomic(mpath, manifest)
    keep = set(bundle.files) | {MANIFEST}
    for name in storage.listdir(folder):
        if name not in keep and name.endswith(".csv"):
            storage.remove(storage.join(folder, name))
    return folder


def verify_folder(folder: str) -> list[str]:
    """Mismatches between a period folder and its manifest, and temporary files left by
    an interrupted write (SPEC §7); empty when all is well."""
    problems = [
        f"{storage.join(folder, name)}: temporary file left by an interrupted write "
        "(the next run of this period removes it)"
        for name in storage.temp_files(folder) if not storage.temp_in_use(folder, name)
    ]
    mpath = storage.join(folder, MANIFEST)
    if not storage.exists(mpath):
        return [*problems, f"{mpath}: manifest missing"]
    try:
        doc = json.loads(storage.read_bytes(mpath))
    except ValueError as exc:
        return [*problems, f"{mpath}: unreadable manifest: {exc}"]
    for f in doc.get("files", []):
        path = storage.join(folder, f["name"])
        if not storage.exists(path):
            problems.append(f"{path}: missing")
            continue
        data = storage.read_bytes(path)
        if len(data) != f["bytes"]:
            problems.append(f"{path}: {len(data)} bytes, manifest says {f['bytes']}")
        elif hashlib.sha256(data).hexdigest() != f["sha256"]:
            problems.append(f"{path}: SHA-256 differs from the manifest")
    return problems
