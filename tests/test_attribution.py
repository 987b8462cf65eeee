"""Business-unit attribution (SPEC §6) on hand-made rows in a real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from bds_metrics import pipeline, storage
from bds_metrics.config import parse_config
from tests.gim import CHAT, VOICE, insert

D0 = 1_772_668_800  # 2026-03-05T00:00:00Z
DAY = dt.date(2026, 3, 5)

CONFIG = """
defaults: {{gimdb_conn_id: gim, output_root: {root}/out, staging_root: {root}/st}}
tenants:
  - id: acme
    name: Acme
    production_date: 2026-03-01
    metrics: [seats_chat, gvp_ports, gvp_minutes]
    regions:
      - code: us
        locations: [{{code: us_d, switches: [], gvp: {{conn_id: gvp}}}}]
    business_units:
      - {{id: acme_BU_1, name: Sales}}
      - {{id: acme_BU_2, name: Support, dnis: ["+1800555"]}}
      - {{id: acme_BU_3, name: Collections, dnis: ["+1800555123"]}}
    tfn_prefixes: ["+1800"]
    test_numbers: ["+15550000000"]
"""

# Folder tree (tenant 1):
#   1 Persons (blacklisted name: never a BU)
#   ├── 2 sales            (case-insensitive match: Sales)
#   │   └── 3 Support      (nested: the match nearest the root, Sales, wins)
#   ├── 4 SUPPORT → 5 Team A
#   └── 6 Other
#   7 Collections, parent 99 (missing)    8 ↔ 9 cycle (9 named Sales)
FOLDERS = [(1, 1, "Persons", None, 1), (2, 1, "sales", 1, 1), (3, 1, "Support", 2, 1),
           (4, 1, "SUPPORT", 1, 1), (5, 1, "Team A", 4, 1), (6, 1, "Other", 0, 1),
           (7, 1, "Collections", 99, 1), (8, 1, "Loop", 9, 1), (9, 1, "Sales", 8, 1),
           (20, 2, "Sales", None, 1)]  # another tenant's folder
# agent -> folder: 101 Sales, 102 Sales (via nested Support), 103 Support (via Team A),
# 104 Other (default), 105 missing parent, 106 cycle, 107 no Person, 108 null folder,
# 109 Sales but no session that day (only a voice call: its CDR is still Sales's)
AGENTS = [(101, 1, 2, "a", "", 1), (102, 1, 3, "b", "", 1), (103, 1, 5, "c", "", 1),
          (104, 1, 6, "d", "", 1), (105, 1, 7, "e", "", 1), (106, 1, 8, "f", "", 1),
          (108, 1, None, "h", "", 1), (109, 1, 2, "i", "", 1)]
WANT_AGENT = {101: ("acme_BU_1", ""), 102: ("acme_BU_1", ""), 103: ("acme_BU_2", ""),
              104: ("acme_BU_0", ""), 105: ("acme_BU_0", "folder_missing_parent"),
              106: ("acme_BU_0", "folder_cycle"), 107: ("acme_BU_0", "agent_without_person"),
              108: ("acme_BU_0", "")}

H = 3600


def _calls_and_cdrs():
    # interaction_fact: id, tenant, media, type, callid, ani, dnis, start, end
    ixn = [
        # X1: a test call first (left out of tfn/pstn), then a Collections DNIS call
        (1, 1, VOICE, 1, "X1", "+15550000000", "+18005551234", D0 + H, D0 + H + 60),
        (2, 1, VOICE, 1, "X1", "+12125550000", "+18005551239", D0 + H + 5, D0 + H + 60),
        # X2: longest prefix: +1800555123... is Collections (BU_3), not Support (BU_2)
        (3, 1, VOICE, 1, "X2", "+1", "+18005551230", D0 + H, D0 + H + 60),
        # X3: no BU DNIS; first call's agent is in Other (default), second's in Sales
        (4, 1, VOICE, 1, "X3", "+1", "+442071234567", D0 + H, D0 + H + 60),
        (5, 1, VOICE, 1, "X3", "+1", "+442071234568", D0 + H + 1, D0 + H + 60),
        # X4: only a test call (DNIS is the test number): default
        (6, 1, VOICE, 1, "X4", "+1", "+15550000000", D0 + H, D0 + H + 60),
        # X5: a Support DNIS
        (7, 1, VOICE, 1, "X5", "+1", "+18005559999", D0 + H, D0 + H + 60),
        # no CALLID, Support DNIS: attributable, but "equals" never holds for a null
        # CALLID, so the CDR without CALLID stays in the default BU
        (8, 1, VOICE, 1, None, "+1", "+18005559998", D0 + H, D0 + H + 60),
        # X6: no BU DNIS; its agent 109 (Sales) has no session in the day's datasets
        (9, 1, VOICE, 1, "X6", "+1", "+442071234569", D0 + H, D0 + H + 60),
    ]
    resources = [(1000 + a, 1, "AGENT", f"r{a}", "", "SW", a) for a in range(101, 110)]
    irf = [(1, 1, 1, 1101, VOICE, D0 + H, None, 30, None),
           (4, 4, 1, 1104, VOICE, D0 + H, None, 30, None),    # Other: default BU
           (5, 5, 1, 1101, VOICE, D0 + H + 1, None, 30, None),   # Sales
           (6, 9, 1, 1109, VOICE, D0 + H, None, 30, None)]        # Sales, no session
    cdrs = [(1, "X1", "p", D0 + H, D0 + H + 120), (2, "X2", "p", D0 + H, D0 + H + 60),
            (3, "X3", "p", D0 + H, D0 + H + 61), (4, "X4", "p", D0 + H, D0 + H + 60),
            (5, "X5", "p", D0 + H, D0 + H + 30), (6, None, "p", D0 + H, D0 + H + 30),
            (7, "NOPE", "p", D0 + H, D0 + H + 30), (8, "X6", "p", D0 + H, D0 + H + 30)]
    return ixn, resources, irf, cdrs


WANT_CDR = {1: ("acme_BU_3", ""), 2: ("acme_BU_3", ""), 3: ("acme_BU_1", ""),
            4: ("acme_BU_0", ""), 5: ("acme_BU_2", ""), 6: ("acme_BU_0", "cdr_without_callid"),
            7: ("acme_BU_0", ""), 8: ("acme_BU_1", "")}


@pytest.fixture
def day(tmp_path, new_db):
    gim, gvp = new_db("gim"), new_db("gvp")
    ixn, resources, irf, cdrs = _calls_and_cdrs()
    # every agent (107 included: no Person row) has one chat login with a chat, 10:00-11:00
    mm = [(i, f"L{a}", a, 1, D0 + 10 * H, D0 + 11 * H) for i, a in enumerate(range(101, 109))]
    chats = [(100 + i, 100 + i, 1, 1000 + a, CHAT, D0 + 10 * H + 60, None, 30, None)
             for i, a in enumerate(range(101, 109))]
    insert(gim, {"gidb_gc_folder": FOLDERS, "gidb_gc_agent": AGENTS, "resource_": resources,
                 "interaction_fact": ixn, "interaction_resource_fact": irf + chats,
                 "gidb_g_login_session_mm": mm})
    insert(gvp, {"gvp_cdr": cdrs}, base=False)
    t = parse_config(CONFIG.format(root=tmp_path), "bu.yaml").tenants[0]
    folder = pipeline.run_day(t, DAY, {"gim": gim, "gvp": gvp}.__getitem__)
    return t, tmp_path, folder


def _map(t, name):
    return storage.read_table(pipeline.work_path(t, DAY, name)).to_pandas()


def test_agent_folder_rules(day):
    t, _, _ = day
    got = _map(t, "agent_bu").set_index("agent_id")
    assert {a: (r.bu_id, r.reason) for a, r in got.iterrows()} == WANT_AGENT


def test_cdr_rules(day):
    t, _, _ = day
    got = _map(t, "cdr_bu").set_index("cdr_id")
    assert {c: (r.bu_id, r.reason) for c, r in got.iterrows()} == WANT_CDR


def test_bu_files_and_fallback_counts(day):
    import json

    t, _, folder = day
    read = lambda n: pd.read_csv(f"{folder}/{n}", keep_default_na=False)  # noqa: E731
    # seats_chat: every agent 10:00-11:00 -> each BU's peak is its own agent count
    want_chat = {"acme": 8, "acme_BU_1": 2, "acme_BU_2": 1, "acme_BU_3": 0, "acme_BU_0": 5}
    for owner, n in want_chat.items():
        f = read(f"{owner}_seats_chat_20260305.csv")
        assert f["MessageSize"].tolist() == [n, n], owner
        assert (f["Tier3AccountID"].tolist() == ["", ""]) == (owner == "acme")
    # gvp_minutes: X1 2 min + X2 1 -> Collections; X3 61 s = 2 + X6 1 -> Sales;
    # X5 1 -> Support; X4 1 + no CALLID 1 + NOPE 1 -> Default
    want_min = {"acme": 10, "acme_BU_1": 3, "acme_BU_2": 1, "acme_BU_3": 3, "acme_BU_0": 3}
    for owner, n in want_min.items():
        assert read(f"{owner}_gvp_minutes_20260305.csv")["MessageSize"].tolist() == [n], owner
    # gvp_ports: all 8 CDRs start together: tenant peak 8, each BU its own count
    want_ports = {"acme": 8, "acme_BU_1": 2, "acme_BU_2": 1, "acme_BU_3": 2, "acme_BU_0": 3}
    for owner, n in want_ports.items():
        assert read(f"{owner}_gvp_ports_20260305.csv")["MessageSize"].tolist() == [n], owner
    names = read("acme_BU_0_seats_chat_20260305.csv")["Tier3AccountName"].tolist()
    assert names == ["Default", "Default"]
    manifest = json.loads(open(f"{folder}/manifest.json").read())
    assert manifest["fallbacks"] == {"agent_without_person": 1, "cdr_without_callid": 1,
                                     "folder_cycle": 1, "folder_missing_parent": 1}


def test_units_detects_nearest_root_folders():
    from bds_metrics.units import detected_folders

    t = parse_config(CONFIG.format(root="/tmp"), "bu.yaml").tenants[0]
    folders = pd.DataFrame(FOLDERS[:-1], columns=["folder_id", "tenant", "name", "parent_id",
                                                   "status"])
    assert detected_folders(t, folders) == {
        "acme_BU_1": ["/Persons/sales"],
        "acme_BU_2": ["/Persons/SUPPORT"],
        "acme_BU_3": [],  # its only folder hangs from a missing parent
    }
