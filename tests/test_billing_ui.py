"""The Billing page's API through a real `airflow api-server` with the bds plugin (SPEC
§12): Airflow's authentication on every route (401 without credentials, 403 with a bad
token), values equal to the files, downloads byte for byte, versions and corrections,
agents with user names from the day's agent_resource snapshot."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.cases import CONFIG, D0, DAY, ROWS
from tests.conftest import admin, dsn
from tests.gim import CHAT, insert
from tests.ui_server import ApiServer

pytestmark = pytest.mark.xdist_group("airflow")

PERSONS = [(1001, 1, None, "alice", "E-1001", 1), (1003, 1, None, "carol", "E-1003", 1)]


@pytest.fixture(scope="module")
def billed(tmp_path_factory, airflow_db) -> Iterator[Path]:
    """The hand-worked day of tests/cases billed, then restated by a late chat session."""
    import os

    from bds_metrics import pipeline
    from bds_metrics.config import load_config

    root = tmp_path_factory.mktemp("ui")
    name = f"bdst_ui_{os.getpid()}"
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name}")
    import psycopg

    with psycopg.connect(dsn(name), autocommit=True) as c:
        c.execute((Path(__file__).resolve().parents[1] / "bds_metrics" / "sql" / "gim"
                   / "schema.sql").read_text())
    insert(dsn(name), {**ROWS, "gidb_gc_agent": PERSONS})
    cfg = root / "bds.yaml"
    cfg.write_text(CONFIG.format(root=root))
    t = load_config(cfg).tenant("acme")
    conns = {"e2e_gim": dsn(name)}
    pipeline.run_day(t, DAY, conns.__getitem__, monthly=False)
    insert(dsn(name), {
        "gidb_g_login_session_mm": [(20, "L20", 1004, 1, D0 + 2000, D0 + 2100)],
        "interaction_resource_fact": [(20, 20, 101, 13, CHAT, D0 + 2050, None, 60, None)],
    }, base=False)
    pipeline.run_day(t, DAY, conns.__getitem__, monthly=False)
    yield root
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def server(billed) -> Iterator[ApiServer]:
    s = ApiServer(billed / "api", billed / "bds.yaml").start()
    try:
        yield s
    finally:
        s.stop()


ROUTES = ["/bds/", "/bds/static/billing.js", "/bds/static/chart.umd.min.js", "/bds/api/tenants",
          "/bds/api/tenants/acme/calendar", "/bds/api/tenants/acme/periods/2026-03-08",
          "/bds/api/tenants/acme/periods/2026-03-08/files/manifest.json",
          "/bds/api/tenants/acme/series"]


def test_every_route_needs_an_airflow_user(server):
    for path in ROUTES:
        r = requests.get(server.url + path, timeout=30)
        assert r.status_code == 401, (path, r.status_code, r.text[:200])
        r = requests.get(server.url + path, headers={"Authorization": "Bearer not.a.jwt"},
                         timeout=30)
        assert r.status_code == 403, (path, r.status_code)
        r = requests.get(server.url + path, cookies={"_token": "forged"}, timeout=30)
        assert r.status_code == 403, (path, r.status_code)
    # a token signed with another secret is refused too
    import jwt

    forged = jwt.encode({"sub": "bds", "role": "admin"}, "another-secret-" + "x" * 64,
                        algorithm="HS512")
    r = requests.get(server.url + "/bds/api/tenants",
                     headers={"Authorization": f"Bearer {forged}"}, timeout=30)
    assert r.status_code == 403


def _get(server, path, user="bds", **kw):
    r = requests.get(server.url + path, timeout=60,
                     headers={"Authorization": f"Bearer {server.token(user)}"}, **kw)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r


def test_the_plugin_is_registered_with_a_nav_view(server):
    plugins = _get(server, "/api/v2/plugins").json()["plugins"]
    bds = [p for p in plugins if p["name"] == "bds"]
    assert bds and bds[0]["external_views"][0]["url_route"] == "billing"
    assert bds[0]["external_views"][0]["href"] == "/bds/"
    page = _get(server, "/bds/").text
    assert "static/chart.umd.min.js" in page and "static/billing.js" in page
    assert _get(server, "/bds/static/chart.umd.min.js").text.startswith("/*!\n * Chart.js v4")


def test_period_values_equal_the_files_and_downloads_are_byte_identical(server, billed):
    folder = billed / "out" / "acme" / "daily" / "2026-03-08"
    for user in ("bds", "viewer"):
        p = _get(server, "/bds/api/tenants/acme/periods/2026-03-08", user).json()
        assert p["published"] and p["version"] == 2 and p["verify"] == []
    # billed values exactly as in the billing CSVs
    want = []
    for f in sorted(folder.glob("acme_seats_*_20260308.csv")):
        for r in csv.DictReader(io.StringIO(f.read_text())):
            want.append((r["MetricName"], r["Tier3AccountID"], r["Region"],
                         int(r["AgentGroupName"]), int(r["MessageSize"])))
    got = [(b["metric"], b["scope"], b["region"], b["group"], b["value"]) for b in p["billing"]]
    assert sorted(got) == sorted(want)
    assert ("seats_chat", "", "us", 1, 3) in got  # the restated value
    # audit agents with names from the day's agent_resource snapshot
    us1 = [a for a in p["audit"] if (a["metric"], a["region"], a["group"]) ==
           ("seats_chat", "us", 1)][0]
    assert us1["agents"] == [1001, 1003, 1004] and us1["peak_first"] == "2026-03-08T05:33:20Z"
    assert p["agents"]["1001"] == {"username": "alice", "employee_id": "E-1001"}
    assert p["agents"]["1003"] == {"username": "carol", "employee_id": "E-1003"}
    assert "1004" not in p["agents"]  # no Person row: shown as such
    assert p["rejected"] == {"mm_sessions": {"end_before_start": 1, "no_agent_id": 1}}
    # versions and corrections
    assert [(v["number"], v["current"]) for v in p["versions"]] == [(1, False), (2, True)]
    corr = p["versions"][1]["corrections"]
    assert [(c["Region"], c["MetricName"], c["AgentGroupName"], c["OldMessageSize"],
             c["NewMessageSize"]) for c in corr] == [("us", "seats_chat", "1", "2", "3"),
                                                     ("us", "seats_chat", "2", "2", "3")]
    # downloads: every listed file, the manifest, and v1's files from history
    base = "/bds/api/tenants/acme/periods/2026-03-08/files/"
    for f in p["files"]:
        r = _get(server, base + f["name"])
        assert r.content == (folder / f["name"]).read_bytes()
        assert r.headers["content-disposition"] == f'attachment; filename="{f["name"]}"'
    assert _get(server, base + "manifest.json").content == (folder / "manifest.json").read_bytes()
    hist = billed / "out" / "acme" / "history" / "daily" / "2026-03-08" / "v1"
    assert _get(server, base + "acme_seats_chat_20260308.csv",
                params={"version": 1}).content == (hist / "acme_seats_chat_20260308.csv"
                                                   ).read_bytes()
    # nothing outside a manifest is served
    tok = {"Authorization": f"Bearer {server.token()}"}
    for bad in ("..%2F..%2F..%2Fbds.yaml", "nope.csv", ".tmp-x"):
        assert requests.get(server.url + base + bad, headers=tok, timeout=30).status_code == 404
    assert requests.get(server.url + "/bds/api/tenants/nobody/periods/2026-03-08", headers=tok,
                        timeout=30).status_code == 404


def test_calendar_series_and_tenants(server):
    tenants = _get(server, "/bds/api/tenants").json()["tenants"]
    assert [t["id"] for t in tenants] == ["acme"]
    cal = _get(server, "/bds/api/tenants/acme/calendar",
               params={"from": "2026-03-01", "to": "2026-03-09"}).json()
    states = {d["day"]: (d["state"], d["version"]) for d in cal["days"]}
    assert states["2026-03-08"] == ("restated", 2)
    assert states["2026-03-07"] == ("missing", None) and states["2026-03-09"] == ("missing", None)
    assert cal["airflow"] == "read"  # the metadata DB answered (no run of bds_acme)
    assert cal["months"][0]["month"] == "2026-03" and not cal["months"][0]["complete"]
    assert len(cal["months"][0]["missing"]) == 30
    ser = _get(server, "/bds/api/tenants/acme/series",
               params={"from": "2026-03-07", "to": "2026-03-08"}).json()
    assert ser["days"] == ["2026-03-07", "2026-03-08"]
    got = {(s["metric"], s["region"], s["group"]): s["values"] for s in ser["series"]}
    assert got[("seats_chat", "us", 1)] == [None, 3]
    assert got[("seats_outbound", "us", 1)] == [None, 2]
    assert json.dumps(ser)  # JSON all the way
