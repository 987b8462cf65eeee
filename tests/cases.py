"""Hand-worked Info Mart cases shared by the end-to-end and failure tests.

The day is 2026-03-08 in America/New_York: the spring DST change, 23 hours long,
[2026-03-08T05:00:00Z, 2026-03-09T04:00:00Z).
"""

from __future__ import annotations

import datetime as dt

from bds_metrics.config import TenantConfig, load_config
from tests.conftest import airflow_conn_json, dbname_of
from tests.gim import CHAT, VOICE, insert

D0 = 1_772_946_000  # 2026-03-08T05:00:00Z
D1 = D0 + 23 * 3600  # 2026-03-09T04:00:00Z
DAY = dt.date(2026, 3, 8)

CONFIG = """
defaults:
  gimdb_conn_id: e2e_gim
  output_root: {root}/out
  staging_root: {root}/staging
tenants:
  - id: acme
    name: "Acme, Corp"
    tier1: {{id: "R100", name: "Reseller One"}}
    production_date: 2026-03-01
    timezone: America/New_York
    gim: {{tenant_key: 101, tenant_dbid: 1}}
    metrics: [seats_chat, seats_outbound]
    regions:
      - code: us
        name: United States
        locations:
          - {{code: us_east, switches: [SIP_East_1, SIP_East_2]}}
          - {{code: us_default, switches: []}}
      - code: eu
        locations:
          - {{code: eu_west, switches: [SIP_Dublin]}}
"""

ROWS = {
    "resource_": [
        (10, 101, "AGENT", "a1", "e1", "SIP_East_1", 1001),
        (11, 101, "AGENT", "a2", "e2", "SIP_Dublin", 1002),
        (12, 101, "AGENT", "a3", "e3", None, 1003),          # null switch: default location
        (13, 101, "AGENT", "a4", "e4", "SIP_X", 1004),       # unknown switch: default location
        (14, 202, "AGENT", "z", "z", "SIP_East_1", 1005),    # another tenant
    ],
    "gidb_g_login_session_mm": [
        (1, "L1", 1001, 1, D0 - 3600, D0 + 3600),    # crosses midnight
        (2, "L2", 1001, 1, D0 + 3600, D0 + 7200),    # touches L1: merged
        (3, "L3", 1003, 1, D0 + 1800, None),         # open: closed at day end
        (4, "L4", 1004, 1, D0 + 5000, D0 + 6000),    # chat exactly at its end: not inside
        (5, "L5", 1002, 1, D0 + 100, D0 + 200),      # eu
        (6, "L6", 1002, 1, D1 - 100, D1 + 500),      # chat after the day's end: not counted
        (7, "L7", None, 1, D0, D0 + 10),             # rejected: no agent
        (8, "L8", 1003, 1, D0 + 50, D0 + 40),        # rejected: ends before it starts
        (9, "L9", 1005, 2, D0, D0 + 9000),           # another tenant
    ],
    "sm_res_session_fact": [
        (1, 101, VOICE, 10, D0 + 1000, D0 + 2000, 1000, 0),
        (2, 101, VOICE, 12, D0 + 1500, D0 + 2500, 1000, 0),
        (3, 101, CHAT, 11, D0 + 1000, D0 + 3000, 2000, 0),   # not voice
        (4, 101, VOICE, 13, D0 + 2000, D0 + 4000, 2000, 0),  # qualified by CA4 at +2550
        (5, 101, VOICE, 13, D0 + 2500, D0 + 2600, 100, 1),   # ACTIVE_FLAG=1: open
        (6, 202, VOICE, 14, D0 + 100, D0 + 9000, 8900, 0),   # another tenant
    ],
    "interaction_resource_fact": [
        (1, 1, 101, 10, CHAT, D0 - 1800, None, 60, None),     # look-back, inside L1
        (2, 2, 101, 10, CHAT, D0 + 7199, None, 60, None),     # last second of L2
        (3, 3, 101, 12, CHAT, D0 + 1800, None, 60, None),     # first second of L3
        (4, 4, 101, 13, CHAT, D0 + 6000, None, 60, None),     # end of L4: outside
        (5, 5, 101, 11, CHAT, D0 + 150, None, 60, None),
        (6, 6, 101, 11, CHAT, D1 + 10, None, 60, None),       # after the day
        (7, 7, 101, 10, VOICE, D0 + 1500, None, 60, "CA1"),
        (8, 8, 101, 12, VOICE, D0 + 1600, None, 60, "CA2"),
        (9, 9, 101, 11, VOICE, D0 + 1100, None, 60, "CA3"),   # OCS, but in a chat session
        (10, 10, 101, 13, VOICE, D0 + 2100, None, 60, None),  # not OCS
        (11, 11, 101, 13, VOICE, D0 + 2550, None, 60, "CA4"),
        (12, 12, 202, 14, VOICE, D0 + 200, None, 60, "CA5"),  # another tenant
        (13, 13, 202, 14, CHAT, D0 + 200, None, 60, None),
    ],
    "contact_attempt_fact": [
        (1, 101, "CA1", D0, None), (2, 101, "CA2", D0, None), (3, 101, "CA3", D0, None),
        (4, 101, "CA4", D0, None), (5, 202, "CA5", D0, None),
    ],
}

HEAD = ("RecordDate,Tier1AccountID,Tier1AccountName,Tier2AccountID,Tier2AccountName,"
        "Tier3AccountID,Tier3AccountName,Region,MetricName,ChannelType,ServiceClass,"
        "ActivityType,Status,AgentGroupName,MessageSize\n")
PRE = '2026-03-08,R100,Reseller One,acme,"Acme, Corp",,,'

# seats_outbound, us: 1001 [+1000,+2000) (CA1), 1003 [+1500,+2500) (CA2), 1004 [+2000,+4000)
# and the open S5 (CA4 at +2550 lies in both) merged to [+2000, day end): two agents from
# +1500 to +2499. eu: the only OCS call in eu is inside a chat session: 0.
EXPECTED = {
    "acme_seats_chat_20260308.csv": HEAD
    + PRE + "us,seats_chat,8,19,5,AGENT_SEATS,1,2\n"
    + PRE + "us,seats_chat,8,19,5,AGENT_SEATS,2,2\n"
    + PRE + "eu,seats_chat,8,19,5,AGENT_SEATS,1,1\n"
    + PRE + "eu,seats_chat,8,19,5,AGENT_SEATS,2,1\n",
    "acme_seats_outbound_20260308.csv": HEAD
    + PRE + "us,seats_outbound,4,23,5,AGENT_SEATS,1,2\n"
    + PRE + "eu,seats_outbound,4,23,5,AGENT_SEATS,1,0\n",
    "audit_20260308.csv": (
        "MetricName,Region,Tier3AccountID,AgentGroupName,MessageSize,PeakFirstAt,PeakLastAt,"
        "AgentIDs\n"
        "seats_chat,us,,1,2,2026-03-08T05:30:00Z,2026-03-08T06:59:59Z,1001 1003\n"
        "seats_chat,us,,2,2,,,1001 1003\n"
        "seats_chat,eu,,1,1,2026-03-08T05:01:40Z,2026-03-08T05:03:19Z,1002\n"
        "seats_chat,eu,,2,1,,,1002\n"
        "seats_outbound,us,,1,2,2026-03-08T05:25:00Z,2026-03-08T05:41:39Z,1001 1003\n"
        "seats_outbound,eu,,1,0,,,\n"
    ),
}


NO_DEFAULT_CONFIG = """
defaults:
  gimdb_conn_id: e2e_gim
  output_root: {root}/out
  staging_root: {root}/staging
  retries: 3
  retry_delay_seconds: 1
tenants:
  - id: acme
    name: Acme
    production_date: 2026-03-01
    timezone: America/New_York
    gim: {{tenant_key: 101, tenant_dbid: 1}}
    metrics: [seats_chat, seats_outbound]
    regions:
      - code: us
        locations: [{{code: us_east, switches: [SIP_East_1]}}]
      - code: eu
        locations: [{{code: eu_west, switches: [SIP_Dublin]}}]
"""


def expected_for(tenant: str) -> dict[str, str]:
    """EXPECTED for the same case configured under another tenant id."""
    return {name.replace("acme", tenant, 1): text.replace(",acme,", f",{tenant},")
            for name, text in EXPECTED.items()}


def setup_case(tmp_path, new_db, monkeypatch, extra_defaults: str = "",
               rows: dict | None = None, config: str | None = None,
               tenant: str = "acme") -> tuple[TenantConfig, object]:
    """A fresh Info Mart with the case's rows, its config in BDS_CONFIG, the connection set.

    Tests that run the same day through Airflow in one process use distinct tenant ids
    (so distinct DAGs): dag.test keeps state between calls in a process (docs/NOTES).
    """
    gim = new_db("gim")
    insert(gim, ROWS if rows is None else rows)
    cfg = tmp_path / "bds.yaml"
    text = (config or CONFIG).format(root=tmp_path).replace("- id: acme\n", f"- id: {tenant}\n")
    if extra_defaults:
        text = text.replace("defaults:\n", "defaults:\n" + extra_defaults, 1)
    cfg.write_text(text)
    monkeypatch.setenv("BDS_CONFIG", str(cfg))
    monkeypatch.setenv("AIRFLOW_CONN_E2E_GIM", airflow_conn_json(dbname_of(gim)))
    return load_config(cfg).tenant(tenant), tmp_path


# ---------------------------------------------------------------- voice, e-mail and SMS
# SPEC §5.3 built-ins on 2026-03-10 (UTC, 24 hours), worked out by hand, with a business
# unit: agent 2001 is in folder Sales (vox_BU_1); 2002 and 2003 in folder Other (default
# BU). Switches: 2001 SIP_A (r1), 2002 none (r1's default location), 2003 SIP_B (r2).

V0 = 1_773_100_800  # 2026-03-10T00:00:00Z
V1 = V0 + 86400
VOX_DAY = dt.date(2026, 3, 10)
EMAIL, SMS = 3, 4

VOX_CONFIG = """
defaults:
  gimdb_conn_id: e2e_gim
  output_root: {root}/out
  staging_root: {root}/staging
tenants:
  - id: vox
    name: Vox
    production_date: 2026-03-01
    metrics: [seats_inbound_voice, seats_email, seats_sms]
    regions:
      - code: r1
        locations:
          - {{code: a, switches: [SIP_A]}}
          - {{code: r1_default, switches: []}}
      - code: r2
        locations:
          - {{code: b, switches: [SIP_B]}}
    business_units:
      - {{id: vox_BU_1, name: Sales}}
"""

VOX_ROWS = {
    "media_type": [(1, "Voice", "VOICE"), (2, "Chat", "CHAT"), (3, "E-mail", "EMAIL"),
                   (4, "SMS", None)],  # SMS by its name only
    "resource_": [
        (20, 101, "AGENT", "v1", "e1", "SIP_A", 2001),
        (21, 101, "AGENT", "v2", "e2", None, 2002),
        (22, 101, "AGENT", "v3", "e3", "SIP_B", 2003),
    ],
    "gidb_gc_folder": [(1, 1, "Persons", None, 1), (2, 1, "Sales", 1, 1),
                       (3, 1, "Other", 1, 1)],
    "gidb_gc_agent": [(2001, 1, 2, "v1", "e1", 1), (2002, 1, 3, "v2", "e2", 1),
                      (2003, 1, 3, "v3", "e3", 1)],
    "sm_res_session_fact": [  # seats_inbound_voice: every voice session, no qualification
        (1, 101, VOICE, 20, V0 + 1000, V0 + 5000, 4000, 0),
        (2, 101, VOICE, 20, V0 + 5000, V0 + 6000, 1000, 0),  # touches S1: merged
        (3, 101, VOICE, 21, V0 + 3000, V0 + 4000, 1000, 0),
        (4, 101, VOICE, 22, V0 - 600, V0 + 2000, 2600, 0),   # crosses midnight: from V0
        (5, 101, CHAT, 21, V0 + 100, V0 + 9000, 8900, 0),    # not voice
        (6, 101, VOICE, 20, V0 + 7000, V0 + 7000, 0, 0),     # zero length: dropped
        (7, 101, VOICE, 21, V1 - 100, V1 - 50, 50, 1),       # ACTIVE_FLAG=1: open to V1
    ],
    "gidb_g_login_session_mm": [
        (1, "M1", 2001, 1, V0 + 2000, V0 + 8000),   # e-mail at +2500; SMS at its end: no
        (2, "M2", 2002, 1, V0 + 4000, V0 + 10000),  # SMS at its first second; e-mail +9999
        (3, "M3", 2003, 1, V0 + 500, None),         # open; e-mail +600; SMS after the day
        (4, "M4", 2001, 1, V0 + 8000, V0 + 9000),   # touches M1; SMS at +8000: SMS only
    ],
    "interaction_resource_fact": [
        (1, 1, 101, 20, EMAIL, V0 + 2500, None, 60, None),
        (2, 2, 101, 20, SMS, V0 + 8000, None, 5, None),
        (3, 3, 101, 21, SMS, V0 + 4000, None, 5, None),
        (4, 4, 101, 21, EMAIL, V0 + 9999, None, 60, None),
        (5, 5, 101, 22, EMAIL, V0 + 600, None, 60, None),
        (6, 6, 101, 22, SMS, V1 + 5, None, 5, None),
        (7, 7, 101, 22, SMS, V0 + 700, None, 0, None),       # talk 0: not handled
        (8, 8, 101, 20, VOICE, V0 + 1200, None, 30, None),
    ],
}


def _vox(metric: str, codes: str, rows: dict[str, list[int]]) -> dict[str, str]:
    """Billing files of one metric: rows[scope] = [r1 g1, r1 g2, r2 g1, r2 g2]."""
    names = {"vox": "", "vox_BU_1": "Sales", "vox_BU_0": "Default"}
    out = {}
    for scope, values in rows.items():
        tier3 = "" if scope == "vox" else scope
        body = [f"2026-03-10,,,vox,Vox,{tier3},{names[scope]},{region},{metric},{codes},"
                f"{group},{v}\n"
                for (region, group), v in zip([("r1", 1), ("r1", 2), ("r2", 1), ("r2", 2)],
                                              values, strict=True)]
        out[f"{scope}_{metric}_20260310.csv"] = HEAD + "".join(body)
    return out


# seats_inbound_voice: r1 2001 [+1000,+6000), 2002 [+3000,+4000) and [V1-100, V1): 2 at
# [+3000,+4000); r2 2003 [V0, +2000). seats_email: r1 M1 [+2000,+8000), M2 [+4000,+10000):
# 2 at [+4000,+8000); r2 M3 [+500, V1). seats_sms: r1 M2 and M4 [+8000,+9000): 2 there;
# r2 none (M3's SMS is after the day, the talk-0 one is not handled).
VOX_EXPECTED = {
    **_vox("seats_inbound_voice", "4,20,5,AGENT_SEATS",
           {"vox": [2, 2, 1, 1], "vox_BU_1": [1, 1, 0, 0], "vox_BU_0": [1, 1, 1, 1]}),
    **_vox("seats_email", "7,21,5,AGENT_SEATS",
           {"vox": [2, 2, 1, 1], "vox_BU_1": [1, 1, 0, 0], "vox_BU_0": [1, 1, 1, 1]}),
    **_vox("seats_sms", "9,22,5,AGENT_SEATS",
           {"vox": [2, 2, 0, 0], "vox_BU_1": [1, 1, 0, 0], "vox_BU_0": [1, 1, 0, 0]}),
    "audit_20260310.csv": (
        "MetricName,Region,Tier3AccountID,AgentGroupName,MessageSize,PeakFirstAt,PeakLastAt,"
        "AgentIDs\n"
        "seats_inbound_voice,r1,,1,2,2026-03-10T00:50:00Z,2026-03-10T01:06:39Z,2001 2002\n"
        "seats_inbound_voice,r1,,2,2,,,2001 2002\n"
        "seats_inbound_voice,r2,,1,1,2026-03-10T00:00:00Z,2026-03-10T00:33:19Z,2003\n"
        "seats_inbound_voice,r2,,2,1,,,2003\n"
        "seats_inbound_voice,r1,vox_BU_1,1,1,2026-03-10T00:16:40Z,2026-03-10T01:39:59Z,2001\n"
        "seats_inbound_voice,r1,vox_BU_1,2,1,,,2001\n"
        "seats_inbound_voice,r2,vox_BU_1,1,0,,,\n"
        "seats_inbound_voice,r2,vox_BU_1,2,0,,,\n"
        "seats_inbound_voice,r1,vox_BU_0,1,1,2026-03-10T00:50:00Z,2026-03-10T23:59:59Z,2002\n"
        "seats_inbound_voice,r1,vox_BU_0,2,1,,,2002\n"
        "seats_inbound_voice,r2,vox_BU_0,1,1,2026-03-10T00:00:00Z,2026-03-10T00:33:19Z,2003\n"
        "seats_inbound_voice,r2,vox_BU_0,2,1,,,2003\n"
        "seats_email,r1,,1,2,2026-03-10T01:06:40Z,2026-03-10T02:13:19Z,2001 2002\n"
        "seats_email,r1,,2,2,,,2001 2002\n"
        "seats_email,r2,,1,1,2026-03-10T00:08:20Z,2026-03-10T23:59:59Z,2003\n"
        "seats_email,r2,,2,1,,,2003\n"
        "seats_email,r1,vox_BU_1,1,1,2026-03-10T00:33:20Z,2026-03-10T02:13:19Z,2001\n"
        "seats_email,r1,vox_BU_1,2,1,,,2001\n"
        "seats_email,r2,vox_BU_1,1,0,,,\n"
        "seats_email,r2,vox_BU_1,2,0,,,\n"
        "seats_email,r1,vox_BU_0,1,1,2026-03-10T01:06:40Z,2026-03-10T02:46:39Z,2002\n"
        "seats_email,r1,vox_BU_0,2,1,,,2002\n"
        "seats_email,r2,vox_BU_0,1,1,2026-03-10T00:08:20Z,2026-03-10T23:59:59Z,2003\n"
        "seats_email,r2,vox_BU_0,2,1,,,2003\n"
        "seats_sms,r1,,1,2,2026-03-10T02:13:20Z,2026-03-10T02:29:59Z,2001 2002\n"
        "seats_sms,r1,,2,2,,,2001 2002\n"
        "seats_sms,r2,,1,0,,,\n"
        "seats_sms,r2,,2,0,,,\n"
        "seats_sms,r1,vox_BU_1,1,1,2026-03-10T02:13:20Z,2026-03-10T02:29:59Z,2001\n"
        "seats_sms,r1,vox_BU_1,2,1,,,2001\n"
        "seats_sms,r2,vox_BU_1,1,0,,,\n"
        "seats_sms,r2,vox_BU_1,2,0,,,\n"
        "seats_sms,r1,vox_BU_0,1,1,2026-03-10T01:06:40Z,2026-03-10T02:46:39Z,2002\n"
        "seats_sms,r1,vox_BU_0,2,1,,,2002\n"
        "seats_sms,r2,vox_BU_0,1,0,,,\n"
        "seats_sms,r2,vox_BU_0,2,0,,,\n"
    ),
}
