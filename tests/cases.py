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
