"""A restatement scenario on any output root (local disk or object storage), checked
against values worked out by hand: shared by tests/test_restate.py (local) and
tests/distributed/test_restate_s3.py (moto S3)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from bds_metrics import restate, storage
from bds_metrics.config import parse_config
from bds_metrics.days import billing_day, billing_month
from bds_metrics.emission import BILLING_HEADER, Bundle, csv_text, publish, verify_folder

CONFIG = """
tenants:
  - id: acme
    name: Acme
    production_date: 2026-03-01
    metrics: [seats_chat]
    output_root: {root}
    staging_root: {root}/st
    business_units: [{{id: acme_BU_1, name: Sales}}]
    regions:
      - {{code: us, locations: [{{code: d, switches: []}}]}}
      - {{code: eu, locations: [{{code: e, switches: [SIP_Dublin]}}]}}
"""


def tenant(root: str):
    return parse_config(CONFIG.format(root=root)).tenants[0]


def files_for(label: str, stamp: str, values: dict[tuple[str, str, int], int]) -> dict[str, str]:
    """Billing CSVs (tenant, BU 1, default BU) and an audit, from (scope, region, group)
    → value; scope '' is the tenant."""
    out = {}
    for scope, owner, name in (("", "acme", ""), ("acme_BU_1", "acme_BU_1", "Sales"),
                               ("acme_BU_0", "acme_BU_0", "Default")):
        rows = [(label, "", "", "acme", "Acme", scope, name, region, "seats_chat", 8, 19, 5,
                 "AGENT_SEATS", g, values.get((scope, region, g), 0))
                for region in ("us", "eu") for g in (1, 2)]
        out[f"{owner}_seats_chat_{stamp}.csv"] = csv_text(BILLING_HEADER, rows)
    out[f"audit_{stamp}.csv"] = "MetricName\nseats_chat\n"
    return out


def manifest(folder: str) -> tuple[bytes, dict]:
    data = storage.read_bytes(storage.join(folder, "manifest.json"))
    return data, json.loads(data)


def run(root: str, kind: str = "daily") -> None:
    """v1; an unchanged re-run; an audit-only change; v2; v3; then the checks."""
    t = tenant(root)
    p = (billing_day(dt.date(2026, 3, 8), "UTC") if kind == "daily"
         else billing_month(dt.date(2026, 3, 8), "UTC"))
    folder = storage.join(root, "acme", kind, p.label)
    hist = storage.join(root, "acme", "history", kind, p.label)
    v1 = {("", "us", 1): 5, ("", "us", 2): 7, ("acme_BU_1", "us", 1): 5}
    publish(t, p, Bundle(files=files_for(p.label, p.stamp, v1)))
    m1, d1 = manifest(folder)
    assert d1["version"] == 1 and "supersedes" not in d1
    assert storage.listdir(hist) == []

    # unchanged re-run: same bytes, no history
    publish(t, p, Bundle(files=files_for(p.label, p.stamp, v1)))
    assert manifest(folder)[0] == m1 and storage.listdir(hist) == []

    # only the audit changes: not a billing value, no new version
    audit_only = files_for(p.label, p.stamp, v1)
    audit_only[f"audit_{p.stamp}.csv"] = "MetricName\nseats_chat (late)\n"
    publish(t, p, Bundle(files=audit_only))
    m1b, d1b = manifest(folder)
    assert d1b["version"] == 1 and "supersedes" not in d1b and storage.listdir(hist) == []

    # v2: us tenant concurrent 5 -> 6, BU 1 eu enabled 0 -> 2
    v2 = {**v1, ("", "us", 1): 6, ("acme_BU_1", "eu", 2): 2}
    publish(t, p, Bundle(files=files_for(p.label, p.stamp, v2)))
    m2, d2 = manifest(folder)
    assert d2["version"] == 2 and d2["supersedes"] == hashlib.sha256(m1b).hexdigest()
    assert storage.listdir(hist) == ["v1"]
    assert storage.read_bytes(storage.join(hist, "v1", "manifest.json")) == m1b
    for name, text in audit_only.items():  # v1 kept whole, byte for byte
        assert storage.read_bytes(storage.join(hist, "v1", name)) == text.encode()
    c2 = f"corrections_{p.stamp}_v2.csv"
    assert storage.read_bytes(storage.join(folder, c2)).decode() == (
        "RecordDate,Tier3AccountID,Region,MetricName,AgentGroupName,OldMessageSize,"
        "NewMessageSize\n"
        f"{p.label},,us,seats_chat,1,5,6\n"
        f"{p.label},acme_BU_1,eu,seats_chat,2,0,2\n")
    assert c2 in [f["name"] for f in d2["files"]]

    # the same v2 again: nothing new, byte-identical
    publish(t, p, Bundle(files=files_for(p.label, p.stamp, v2)))
    assert manifest(folder)[0] == m2 and storage.listdir(hist) == ["v1"]

    # v3: back to 5 for the tenant's us concurrent
    v3 = {**v2, ("", "us", 1): 5}
    publish(t, p, Bundle(files=files_for(p.label, p.stamp, v3)))
    m3, d3 = manifest(folder)
    assert d3["version"] == 3 and d3["supersedes"] == hashlib.sha256(m2).hexdigest()
    assert storage.listdir(hist) == ["v1", "v2"]
    names = storage.listdir(folder)
    assert c2 in names and f"corrections_{p.stamp}_v3.csv" in names  # both kept
    assert storage.read_bytes(storage.join(folder, f"corrections_{p.stamp}_v3.csv")).decode(
        ).splitlines()[1:] == [f"{p.label},,us,seats_chat,1,6,5"]
    assert verify_folder(folder) == []
    assert verify_folder(storage.join(hist, "v1")) == []
    assert verify_folder(storage.join(hist, "v2")) == []

    vs = restate.versions(root, "acme", kind, p.label)
    assert [(v.number, v.current) for v in vs] == [(1, False), (2, False), (3, True)]
    # diff v1 -> v3: only BU 1's eu enabled (the tenant's us concurrent came back to 5)
    assert restate.diff(vs[0], vs[2]) == [(p.label, "acme_BU_1", "eu", "seats_chat", "2",
                                           "0", "2")]
