"""Month files from stored daily results (SPEC §5.1 6-7, §7, §8), worked out by hand.

Tenant in UTC, production date 2026-02-26: the billable days of February are 26-28.
Agent 1 sits in the Sales BU folder; agents 2 and 3 in no BU folder (default BU).
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from bds_metrics import pipeline
from bds_metrics.config import parse_config
from tests.gim import CHAT, VOICE, insert

H = 3600
D26, D27, D28 = 1_772_064_000, 1_772_064_000 + 86_400, 1_772_064_000 + 2 * 86_400

CONFIG = """
defaults: {{gimdb_conn_id: gim, gvpdb_conn_id: gvp, output_root: {root}/out,
           staging_root: {root}/staging}}
tenants:
  - id: acme
    name: Acme
    production_date: 2026-02-26
    metrics: [seats_chat, seats_outbound, gvp_ports, gvp_minutes]
    regions: [{{code: us, locations: [{{code: us_any, switches: []}}]}}]
    business_units: [{{id: acme_BU_1, name: Sales}}]
"""

GIM = {
    "resource_": [(1, 1, "AGENT", "a1", "", "SW", 1), (2, 1, "AGENT", "a2", "", "SW", 2),
                  (3, 1, "AGENT", "a3", "", "SW", 3)],
    "gidb_gc_folder": [(10, 1, "Sales", None, 1)],
    "gidb_gc_agent": [(1, 1, 10, "a1", "", 1), (2, 1, None, "a2", "", 1),
                      (3, 1, None, "a3", "", 1)],
    "gidb_g_login_session_mm": [
        (1, "d26a", 1, 1, D26 + 10 * H, D26 + 11 * H),
        (2, "d26b", 2, 1, D26 + 10 * H + 1800, D26 + 12 * H),
        (3, "d27a", 3, 1, D27 + 8 * H, D27 + 9 * H),
        (4, "d28a", 1, 1, D28 + 10 * H + 1800, D28 + 10 * H + 2700),
        (5, "d28b", 2, 1, D28 + 10 * H + 1800, D28 + 10 * H + 2700),
    ],
    "sm_res_session_fact": [
        (1, 1, VOICE, 1, D26 + 9 * H, D26 + 9 * H + 1800, 0, 0),
        (2, 1, VOICE, 2, D27 + 14 * H, D27 + 15 * H, 0, 0),
        (3, 1, VOICE, 3, D27 + 14 * H, D27 + 15 * H, 0, 0),
    ],
    "interaction_resource_fact": [
        (1, 1, 1, 1, CHAT, D26 + 10 * H + 600, None, 9, None),
        (2, 2, 1, 2, CHAT, D26 + 10 * H + 2400, None, 9, None),
        (3, 3, 1, 3, CHAT, D27 + 8 * H + 1800, None, 9, None),
        (4, 4, 1, 1, CHAT, D28 + 10 * H + 1860, None, 9, None),
        (5, 5, 1, 2, CHAT, D28 + 10 * H + 1860, None, 9, None),
        (6, 6, 1, 1, VOICE, D26 + 9 * H + 300, None, 9, "A"),
        (7, 7, 1, 2, VOICE, D27 + 14 * H + 300, None, 9, "A"),
        (8, 8, 1, 3, VOICE, D27 + 14 * H + 300, None, 9, "A"),
    ],
    "contact_attempt_fact": [(1, 1, "A", D26, None)],
}
GVP = {"gvp_cdr": [(1, "c1", "p", D26 + 10 * H, D26 + 10 * H + 61),
                   (2, "c2", "p", D27 + 12 * H, D27 + 12 * H + 30),
                   (3, "c3", "p", D27 + 12 * H + 10, D27 + 12 * H + 120)]}

HEAD = ("RecordDate,Tier1AccountID,Tier1AccountName,Tier2AccountID,Tier2AccountName,"
        "Tier3AccountID,Tier3AccountName,Region,MetricName,ChannelType,ServiceClass,"
        "ActivityType,Status,AgentGroupName,MessageSize\n")
CODES = {"seats_chat": "8,19,5,AGENT_SEATS", "seats_outbound": "4,23,5,AGENT_SEATS",
         "gvp_ports": "1,30,5,PORTS", "gvp_minutes": "1,31,12,MINUTES"}
SCOPES = {"": "", "acme_BU_1": "Sales", "acme_BU_0": "Default"}
# (metric, scope) -> [(group, value, first, last, agents)]
WANT = {
    ("seats_chat", ""): [(1, 2, "26T10:30:00", "28T10:44:59", "1 2"), (2, 3, "", "", "1 2 3")],
    ("seats_chat", "acme_BU_1"): [(1, 1, "26T10:00:00", "28T10:44:59", "1"),
                                  (2, 1, "", "", "1")],
    ("seats_chat", "acme_BU_0"): [(1, 1, "26T10:30:00", "28T10:44:59", "2"),
                                  (2, 2, "", "", "2 3")],
    ("seats_outbound", ""): [(1, 2, "27T14:00:00", "27T14:59:59", "2 3"),
                             (2, 3, "", "", "1 2 3")],
    ("seats_outbound", "acme_BU_1"): [(1, 1, "26T09:00:00", "26T09:29:59", "1"),
                                      (2, 1, "", "", "1")],
    ("seats_outbound", "acme_BU_0"): [(1, 2, "27T14:00:00", "27T14:59:59", "2 3"),
                                      (2, 2, "", "", "2 3")],
    ("gvp_ports", ""): [(1, 2, "27T12:00:10", "27T12:00:29", "")],
    ("gvp_ports", "acme_BU_1"): [(1, 0, "", "", "")],
    ("gvp_ports", "acme_BU_0"): [(1, 2, "27T12:00:10", "27T12:00:29", "")],
    ("gvp_minutes", ""): [(1, 5, "", "", "")],
    ("gvp_minutes", "acme_BU_1"): [(1, 0, "", "", "")],
    ("gvp_minutes", "acme_BU_0"): [(1, 5, "", "", "")],
}


def _ts(s: str) -> str:
    return f"2026-02-{s}Z" if s else ""


def expected_files() -> dict[str, str]:
    files, audit = {}, []
    for metric in CODES:
        for scope, name in SCOPES.items():
            rows = WANT[(metric, scope)]
            body = "".join(
                f"2026-02,,,acme,Acme,{scope},{name},us,{metric},{CODES[metric]},{g},{v}\n"
                for g, v, *_ in rows)
            files[f"{scope or 'acme'}_{metric}_202602.csv"] = HEAD + body
            audit += [f"{metric},us,{scope},{g},{v},{_ts(f)},{_ts(la)},{a}\n"
                      for g, v, f, la, a in rows]
    files["audit_202602.csv"] = (
        "MetricName,Region,Tier3AccountID,AgentGroupName,MessageSize,PeakFirstAt,PeakLastAt,"
        "AgentIDs\n" + "".join(audit))
    return files


@pytest.fixture
def tenant(tmp_path, new_db):
    gim, gvp = new_db("gim"), new_db("gvp")
    insert(gim, GIM)
    insert(gvp, GVP, base=False)
    t = parse_config(CONFIG.format(root=tmp_path), "month.yaml").tenants[0]
    return t, {"gim": gim, "gvp": gvp}.__getitem__, tmp_path


def _month(root) -> dict[str, bytes]:
    """The month's files for the importer (run_day walks the DAG's plan, so the month's
    usage report, for people and outside the manifest, is written beside them too)."""
    folder = root / "out" / "acme" / "monthly" / "2026-02"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.suffix != ".xlsx"} if folder.exists() else {}


def _billing(files: dict[str, bytes]) -> dict[str, bytes]:
    """The billing and audit CSVs (a restated month also holds its corrections file and a
    manifest with its version; a fresh computation is a first version)."""
    return {k: v for k, v in files.items()
            if k.endswith(".csv") and not k.startswith("corrections_")}


def test_month_written_when_complete_with_hand_worked_values(tenant):
    t, dsn_for, root = tenant
    for d in (26, 27):
        pipeline.run_day(t, dt.date(2026, 2, d), dsn_for)
        assert _month(root) == {}, "an incomplete month writes nothing"
    assert pipeline.month_status(t, dt.date(2026, 2, 1))[1] == [dt.date(2026, 2, 28)]
    pipeline.run_day(t, dt.date(2026, 2, 28), dsn_for)
    got = _month(root)
    want = expected_files()
    assert sorted(got) == sorted([*want, "manifest.json"])
    for name, text in want.items():
        assert got[name].decode() == text, name
    import json

    manifest = json.loads(got["manifest.json"])
    assert manifest["period"]["label"] == "2026-02"
    assert manifest["days"] == ["2026-02-26", "2026-02-27", "2026-02-28"]
    assert manifest["inputs"]["mm_sessions"] == 5


def test_rerun_in_any_order_equals_fresh_computation(tenant):
    t, dsn_for, root = tenant
    days = [dt.date(2026, 2, d) for d in (26, 27, 28)]
    for d in days:
        pipeline.run_day(t, d, dsn_for)
    # late data for the 27th arrives; the day is re-run: the month follows
    insert(dsn_for("gim"), {
        "gidb_g_login_session_mm": [(9, "late", 9, 1, D27 + 20 * H, D27 + 21 * H)],
        "interaction_resource_fact": [(9, 9, 1, 9, CHAT, D27 + 20 * H + 5, None, 9, None)],
        "resource_": [(9, 1, "AGENT", "a9", "", "SW", 9)],
    }, base=False)
    pipeline.run_day(t, days[1], dsn_for)
    rerun = _month(root)
    assert b",2,4\n" in rerun["acme_seats_chat_202602.csv"]  # enabled: 1, 2, 3 and 9
    # the month recomputed from scratch out of the stored daily results: same bytes
    assert any(k.startswith("corrections_") for k in rerun)  # a restated month (SPEC §7)
    shutil.rmtree(root / "out" / "acme" / "monthly")
    pipeline.emit_monthly(t, days[0])
    assert _billing(_month(root)) == _billing(rerun)
    # every day re-extracted, in another order: the same billing and audit files (the
    # manifest's input counts differ: days 26 and 28, re-extracted, now see agent 9's rows)
    shutil.rmtree(root / "out")
    shutil.rmtree(root / "staging")
    for d in (days[2], days[0], days[1]):
        pipeline.run_day(t, d, dsn_for)
    fresh = _month(root)
    assert _billing(fresh) == _billing(rerun)
    import json

    a, b = json.loads(fresh["manifest.json"]), json.loads(rerun["manifest.json"])
    assert [f for f in a["files"] if f["name"] in _billing(fresh)] == \
        [f for f in b["files"] if f["name"] in _billing(rerun)]
    assert a["inputs"]["agent_switch"] == b["inputs"]["agent_switch"] + 2  # days 26, 28 saw 9
