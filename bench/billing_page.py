"""What the Billing page costs on 1000 tenants x 365 days of stored results (SPEC §12).

    python -m bench.billing_page [--tenants 1000] [--days 365] [--work .bds/bench-ui]

Generates stored results the way the pipeline lays them out (per tenant and day: the
daily folder with a manifest, one billing CSV per metric, the audit; one restated day
per tenant with its history and corrections), without the Info Mart: every file for the
first `--full` tenants, the daily folders alone for the others (all the tenant list
reads of them). Then measures, each the best of 5 in this process (warm page cache,
local disk): the tenant list (one listing per tenant), one tenant's calendar of the
whole year (one manifest per day), the chart series of the year (one CSV per day and
metric), one day's detail (files, audit, versions, verify), and the same requests
through the plugin's FastAPI app with Airflow's real authentication (a JWT from
Airflow's own token generator), in-process with FastAPI's TestClient.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

FIRST = dt.date(2025, 1, 1)
METRICS = ["seats_chat", "seats_outbound"]
HEADER = ("RecordDate,Tier1AccountID,Tier1AccountName,Tier2AccountID,Tier2AccountName,"
          "Tier3AccountID,Tier3AccountName,Region,MetricName,ChannelType,ServiceClass,"
          "ActivityType,Status,AgentGroupName,MessageSize\n")


def config_text(root: Path, tenants: int) -> str:
    lines = ["defaults:", f"  output_root: {root}/out", f"  staging_root: {root}/staging",
             "tenants:"]
    for i in range(tenants):
        lines += [f"  - id: t{i:04d}", f"    name: Tenant {i}",
                  f"    production_date: {FIRST}", f"    metrics: [{', '.join(METRICS)}]",
                  "    regions:", "      - {code: us, locations: [{code: d, switches: []}]}",
                  "      - {code: eu, locations: [{code: e, switches: [SIP_EU]}]}"]
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes) -> dict:
    path.write_bytes(data)
    return {"name": path.name, "bytes": len(data), "rows": data.count(b"\n") - 1,
            "sha256": hashlib.sha256(data).hexdigest()}


def _day_files(tid: str, label: str, seed: int, bump: int = 0) -> dict[str, bytes]:
    stamp = label.replace("-", "")
    out = {}
    audit = ["MetricName,Region,Tier3AccountID,AgentGroupName,MessageSize,PeakFirstAt,"
             "PeakLastAt,AgentIDs"]
    for k, m in enumerate(METRICS):
        rows = []
        for region in ("us", "eu"):
            for g in ((1, 2) if m == "seats_chat" else (1,)):
                v = (seed * 7 + k * 13 + g * 5 + (region == "eu") * 3) % 97 + bump
                rows.append(f"{label},,,{tid},Tenant,,,{region},{m},8,19,5,AGENT_SEATS,{g},{v}")
                agents = " ".join(str(1000 + a) for a in range(min(v, 40)))
                audit.append(f"{m},{region},,{g},{v},{label}T12:00:00Z,{label}T13:00:00Z,"
                             f"{agents}")
        out[f"{tid}_{m}_{stamp}.csv"] = (HEADER + "\n".join(rows) + "\n").encode()
    out[f"audit_{stamp}.csv"] = ("\n".join(audit) + "\n").encode()
    return out


def generate(root: Path, tenants: int, days: int, full: int) -> None:
    """`full` tenants get every file; the others only their daily folders (the tenant
    list reads nothing else), which keeps 1000 x 365 to a minute of generation."""
    out = root / "out"
    for i in range(tenants):
        tid = f"t{i:04d}"
        for j in range(days):
            d = FIRST + dt.timedelta(days=j)
            label = d.isoformat()
            folder = out / tid / "daily" / label
            folder.mkdir(parents=True)
            if i >= full:
                continue
            restated = j == days // 2
            files = [_write(folder / n, b) for n, b in _day_files(tid, label, i + j,
                                                                   1 if restated else 0).items()]
            doc = {"tenant": tid, "period": {"kind": "daily", "label": label}, "version": 1,
                   "files": files, "inputs": {"sm_fact": 1000 + j}, "rejected": {},
                   "fallbacks": {}}
            if restated:  # v1 in history, v2 published with its corrections
                h = out / tid / "history" / "daily" / label / "v1"
                h.mkdir(parents=True)
                v1 = [_write(h / n, b) for n, b in _day_files(tid, label, i + j).items()]
                m1 = json.dumps({**doc, "files": v1}, indent=2).encode()
                (h / "manifest.json").write_bytes(m1)
                corr = (f"RecordDate,Tier3AccountID,Region,MetricName,AgentGroupName,"
                        f"OldMessageSize,NewMessageSize\n{label},,us,seats_chat,1,1,2\n").encode()
                files.append(_write(folder / f"corrections_{label.replace('-', '')}_v2.csv",
                                    corr))
                doc.update(version=2, supersedes=hashlib.sha256(m1).hexdigest(), files=files)
            (folder / "manifest.json").write_bytes(json.dumps(doc, indent=2).encode())


def best(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(root: Path, tenants: int, days: int) -> dict[str, float]:
    os.environ["BDS_CONFIG"] = str(root / "bds.yaml")
    from bds_airflow import airflow_env

    airflow_env.configure(str(root / "airflow"))  # a SQLite metadata DB: runs are read too
    airflow_env.ensure_migrated()
    from bds_metrics import view
    from bds_metrics.config import load_config

    cfg = load_config(root / "bds.yaml")
    t = cfg.tenant("t0000")
    last = FIRST + dt.timedelta(days=days - 1)
    mid = (FIRST + dt.timedelta(days=days // 2)).isoformat()
    now = dt.datetime.combine(last + dt.timedelta(days=2), dt.time(), dt.UTC)
    p = view.period(t, mid)  # what is measured is what the page shows
    assert p["published"] and p["version"] == 2 and len(p["versions"]) == 2, p.get("version")
    assert sum(d["state"] == "restated" for d in view.calendar(t, FIRST, last, now=now)[
        "days"]) == 1
    res = {
        "tenant list (all tenants)": best(lambda: [view.overview(x, now) for x in cfg.tenants]),
        f"calendar, {days} days": best(lambda: view.calendar(t, FIRST, last, now=now)),
        f"chart series, {days} days": best(lambda: view.series(t, FIRST, last)),
        "one restated day (values, audit, versions, verify)": best(lambda: view.period(t, mid)),
    }
    res.update(_http(t, days, last, mid))
    return res


def _http(t, days: int, last: dt.date, mid: str) -> dict[str, float]:
    """The same through the plugin's app with Airflow's real JWT authentication."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    app = create_app("core")
    from airflow.api_fastapi.app import get_auth_manager

    am = get_auth_manager()
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = am.generate_jwt(SimpleAuthManagerUser(username="bench", role="admin"))
    c = TestClient(app, headers={"Authorization": f"Bearer {token}"})

    def get(path, **params):
        r = c.get(path, params=params)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])

    return {
        "HTTP GET /bds/api/tenants": best(lambda: get("/bds/api/tenants")),
        f"HTTP GET calendar, {days} days": best(lambda: get(
            f"/bds/api/tenants/{t.id}/calendar", **{"from": FIRST.isoformat(),
                                                     "to": last.isoformat()})),
        f"HTTP GET series, {days} days": best(lambda: get(
            f"/bds/api/tenants/{t.id}/series", **{"from": FIRST.isoformat(),
                                                   "to": last.isoformat()})),
        "HTTP GET one restated day": best(lambda: get(f"/bds/api/tenants/{t.id}/periods/{mid}")),
    }


SECTION = "## The Billing page"


def kept_section(path: Path) -> str:
    """This benchmark's section of BENCHMARKS.md (bench.run rewrites the rest)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    at = text.find("\n" + SECTION + "\n")
    return text[at:] if at >= 0 else ""


def write_section(path: Path, tenants: int, days: int, full: int,
                  res: dict[str, float]) -> None:
    import platform

    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    at = text.find("\n" + SECTION + "\n")
    head = text[:at] if at >= 0 else text.rstrip("\n") + "\n"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = "\n".join(f"| {k} | {v * 1000:,.1f} ms |" for k, v in res.items())
    body = f"""
{SECTION}

Measured by `make bench-ui` (`python -m bench.billing_page --tenants {tenants} --days {days}`)
on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, 2 cores shared with
other work (load average {load}). Stored results generated without the Info Mart, the
pipeline's layout: {tenants} tenants x {days} days (every file for {full} tenants: a
manifest, 2 billing CSVs and the audit per day, one restated day with its history and
corrections; the daily folders alone for the others). Best of 5, warm page cache, local
disk; "HTTP" is the plugin's FastAPI app inside Airflow's API server app with a real
Airflow JWT (FastAPI TestClient, no network), so authentication and the metadata DB
query for runs are included.

| request | time |
|---|---:|
{rows}

What it costs and why it stays so: the tenant list reads no storage (the
configuration's tenants the user may read; listing 1000 tenants' daily folders took
2.6 s and was dropped); a tenant's calendar is one listing and one small manifest per
day of the range; the chart one small billing CSV per day and metric; a day's page
its manifest and its files (a few kB) plus the day's `agent_resource` Parquet for
names. Nothing reads a Parquet dataset per day or the Info Mart. On object storage each
manifest or CSV is one GET: a year's calendar is 365 GETs, which the API server's
thread pool serves at S3 latency (tens of ms each, not measured here).
"""
    path.write_text(head.rstrip("\n") + "\n" + body, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--work", default=".bds/bench-ui")
    ap.add_argument("--full", type=int, default=3, help="tenants with every file written")
    ap.add_argument("--keep", action="store_true", help="reuse generated results")
    ap.add_argument("--out", help="write the figures into this BENCHMARKS.md")
    a = ap.parse_args()
    root = Path(a.work).resolve()
    stamp = root / f".generated-{a.tenants}x{a.days}"
    if not (a.keep and stamp.exists()):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        t0 = time.perf_counter()
        generate(root, a.tenants, a.days, a.full)
        stamp.touch()
        print(f"generated {a.tenants} tenants x {a.days} days in "
              f"{time.perf_counter() - t0:.0f} s under {root}")
    (root / "bds.yaml").write_text(config_text(root, a.tenants))
    res = measure(root, a.tenants, a.days)
    for name, sec in res.items():
        print(f"{name:<55} {sec * 1000:8.1f} ms")
    if a.out:
        write_section(Path(a.out), a.tenants, a.days, a.full, res)


if __name__ == "__main__":
    main()
