"""Tests of the brute-force reference itself, on tiny cases worked out by hand.

Each test creates its own scratch databases (ref_...) on the PostgreSQL server of
BDS_TEST_PG_DSN (default postgresql://postgres@127.0.0.1:5432/postgres) and drops them.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from . import adversarial, brute
from .adversarial import Case

HEADER = (
    "RecordDate,Tier1AccountID,Tier1AccountName,Tier2AccountID,Tier2AccountName,"
    "Tier3AccountID,Tier3AccountName,Region,MetricName,ChannelType,ServiceClass,"
    "ActivityType,Status,AgentGroupName,MessageSize\n"
)
AUDIT = (
    "MetricName,Region,Tier3AccountID,AgentGroupName,MessageSize,PeakFirstAt,PeakLastAt,AgentIDs\n"
)


def _server_ok() -> bool:
    try:
        with psycopg.connect(adversarial.server_dsn(), connect_timeout=3):
            return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _server_ok(), reason="no PostgreSQL server for tests")


def ts(text: str) -> int:
    """'2026-03-05T10:00:00' (UTC) -> epoch seconds."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


# ----------------------------------------------------------------- tiny row builders


class Rows:
    def __init__(self):
        self.t = {
            "media_type": [
                {"media_type_key": 1, "media_name": "Voice", "media_name_code": "VOICE"},
                {"media_type_key": 2, "media_name": "Chat", "media_name_code": None},
                {"media_type_key": 3, "media_name": "Email", "media_name_code": "EMAIL"},
            ],
            "interaction_type": [
                {"interaction_type_key": 1, "interaction_type_code": "INBOUND"},
                {"interaction_type_key": 2, "interaction_type_code": "OUTBOUND"},
            ],
            "resource_": [],
            "sm_res_session_fact": [],
            "interaction_fact": [],
            "interaction_resource_fact": [],
            "contact_attempt_fact": [],
            "gidb_g_login_session_mm": [],
            "gidb_gc_agent": [],
            "gidb_gc_folder": [],
        }
        self.n = 1000

    def _id(self):
        self.n += 1
        return self.n

    def resource(self, key, agent, switch=None, type_code="AGENT"):
        self.t["resource_"].append(
            {
                "resource_key": key,
                "tenant_key": 1,
                "resource_type_code": type_code,
                "resource_name": f"r{key}",
                "employee_id": f"e{agent}",
                "switch_name": switch,
                "resource_cfg_dbid": agent,
            }
        )

    def sm(self, key, start, end, media=1, active=0):
        self.t["sm_res_session_fact"].append(
            {
                "sm_res_session_fact_key": self._id(),
                "tenant_key": 1,
                "media_type_key": media,
                "resource_key": key,
                "start_ts": start,
                "end_ts": end,
                "total_duration": 0 if end is None else end - start,
                "active_flag": active,
            }
        )

    def mm(self, agent, start, end):
        self.t["gidb_g_login_session_mm"].append(
            {
                "id": self._id(),
                "loginsessionid": f"L{self.n}",
                "agentid": agent,
                "tenantid": 1,
                "created_ts": start,
                "terminated_ts": end,
            }
        )

    def call(self, callid, start, end, ani=None, dnis=None, media=1, itype=1):
        iid = self._id()
        self.t["interaction_fact"].append(
            {
                "interaction_id": iid,
                "tenant_key": 1,
                "media_type_key": media,
                "interaction_type_key": itype,
                "media_server_ixn_guid": callid,
                "source_address": ani,
                "target_address": dnis,
                "start_ts": start,
                "end_ts": end,
            }
        )
        return iid

    def handled(self, key, start, media, talk=30, attempt=None, iid=None):
        if iid is None:
            iid = self.call(f"ixn{self.n}", start, start + 60, media=media)
        self.t["interaction_resource_fact"].append(
            {
                "interaction_resource_id": self._id(),
                "interaction_id": iid,
                "tenant_key": 1,
                "resource_key": key,
                "media_type_key": media,
                "start_ts": start,
                "end_ts": start + talk,
                "talk_duration": talk,
                "call_attempt_id": attempt,
            }
        )

    def attempt(self, attempt_id):
        self.t["contact_attempt_fact"].append(
            {
                "contact_attempt_fact_key": self._id(),
                "tenant_key": 1,
                "call_attempt_id": attempt_id,
                "start_ts": 0,
                "end_ts": None,
            }
        )

    def person(self, agent, folder):
        self.t["gidb_gc_agent"].append(
            {
                "id": agent,
                "tenantid": 1,
                "folderid": folder,
                "username": f"u{agent}",
                "employeeid": f"e{agent}",
                "status": 1,
            }
        )

    def folder(self, fid, name, parent):
        self.t["gidb_gc_folder"].append(
            {"id": fid, "tenantid": 1, "name": name, "folderid": parent, "status": 1}
        )


def cdr(cdr_id, callid, start, end):
    return {
        "cdr_id": cdr_id,
        "callid": callid,
        "ivr_profile": "p",
        "start_ts": start,
        "end_ts": end,
    }


def run(tenant, defaults, day, rows: Rows, gvp_rows=None):
    case = Case(
        seed=0,
        day=day,
        tenant=tenant,
        defaults=defaults,
        gim_rows=rows.t,
        gvp_rows=gvp_rows or {},
        features=set(),
    )
    with adversarial.scratch_databases(case, tag="hand") as (gim, gvps):
        adversarial.load_case(case, gim, gvps)
        files = brute.compute_day(gim, gvps, tenant, defaults, day)
        counts = brute.day_counts(gim, gvps, tenant, defaults, day)
    return files, counts


DEFAULTS = {"gvpdb_conn_id": "bds_gvpdb", "timezone": "UTC", "session_lookback_days": 1}


# ------------------------------------------------------------------------ the cases


def test_two_overlapping_chat_agents():
    day = dt.date(2026, 3, 5)
    r = Rows()
    r.resource(10, 1, "SW1")
    r.resource(20, 2, None)
    r.resource(30, 3, "SW1")
    r.mm(1, ts("2026-03-05T10:00:00"), ts("2026-03-05T11:00:00"))
    r.mm(2, ts("2026-03-05T10:30:00"), ts("2026-03-05T12:00:00"))
    r.handled(10, ts("2026-03-05T10:05:00"), media=2)
    r.handled(20, ts("2026-03-05T11:30:00"), media=2)
    # agent 3 never qualifies: talk 0, a chat exactly at the session end, an e-mail inside
    r.mm(3, ts("2026-03-05T09:00:00"), ts("2026-03-05T13:00:00"))
    r.handled(30, ts("2026-03-05T10:00:00"), media=2, talk=0)
    r.handled(30, ts("2026-03-05T13:00:00"), media=2)
    r.handled(30, ts("2026-03-05T10:00:00"), media=3)
    r.mm(None, ts("2026-03-05T10:00:00"), ts("2026-03-05T11:00:00"))  # rejected
    tenant = {
        "id": "acme",
        "name": "Acme Corp",
        "metrics": ["seats_chat"],
        "regions": [
            {
                "code": "us",
                "locations": [
                    {"code": "us_east", "switches": ["SW1"]},
                    {"code": "us_default", "switches": []},
                ],
            }
        ],
    }
    files, counts = run(tenant, DEFAULTS, day, r)
    assert set(files) == {"acme_seats_chat_20260305.csv", "audit_20260305.csv"}
    assert files["acme_seats_chat_20260305.csv"] == HEADER + (
        "2026-03-05,,,acme,Acme Corp,,,us,seats_chat,8,19,5,AGENT_SEATS,1,2\n"
        "2026-03-05,,,acme,Acme Corp,,,us,seats_chat,8,19,5,AGENT_SEATS,2,2\n"
    )
    assert files["audit_20260305.csv"] == AUDIT + (
        "seats_chat,us,,1,2,2026-03-05T10:30:00Z,2026-03-05T10:59:59Z,1 2\n"
        "seats_chat,us,,2,2,,,1 2\n"
    )
    assert counts == {"rejected": {"mm_sessions": {"no_agent_id": 1}}, "fallbacks": {}}


def test_touching_and_overlapping_outbound_sessions_two_regions():
    day = dt.date(2026, 3, 5)
    r = Rows()
    for key, agent, switch in [
        (50, 5, "SW_EU"),
        (60, 6, "SW_EU"),
        (70, 7, "SW_EU"),
        (80, 8, "SW_EU"),
        (90, 9, "SW_X"),
    ]:
        r.resource(key, agent, switch)
    r.attempt("A1")
    r.attempt("A2")
    r.attempt("A2")  # a duplicate attempt row must not matter
    # agent 5: 10:00-11:00 and 11:00-12:00 touch, 10:30-10:45 overlaps: one agent
    r.sm(50, ts("2026-03-05T10:00:00"), ts("2026-03-05T11:00:00"))
    r.sm(50, ts("2026-03-05T11:00:00"), ts("2026-03-05T12:00:00"))
    r.sm(50, ts("2026-03-05T10:30:00"), ts("2026-03-05T10:45:00"))
    r.handled(50, ts("2026-03-05T10:10:00"), media=1, attempt="A1")
    r.handled(50, ts("2026-03-05T11:00:00"), media=1, attempt="A2")  # start of 2nd, end of 1st
    r.handled(50, ts("2026-03-05T10:30:00"), media=1, attempt="A1")  # start of 3rd
    # agent 6 starts when agent 7 ends: no overlap
    r.sm(60, ts("2026-03-05T11:00:00"), ts("2026-03-05T11:30:00"))
    r.handled(60, ts("2026-03-05T11:15:00"), media=1, attempt="A1")
    r.sm(70, ts("2026-03-05T10:00:00"), ts("2026-03-05T11:00:00"))
    r.handled(70, ts("2026-03-05T10:59:59"), media=1, attempt="A2")
    # agent 8: attempt id without a CONTACT_ATTEMPT_FACT row: not OCS
    r.sm(80, ts("2026-03-05T10:00:00"), ts("2026-03-05T11:00:00"))
    r.handled(80, ts("2026-03-05T10:10:00"), media=1, attempt="NOPE")
    # agent 9 on an unknown switch: default location (region us)
    r.sm(90, ts("2026-03-05T09:00:00"), ts("2026-03-05T09:30:00"))
    r.handled(90, ts("2026-03-05T09:00:00"), media=1, attempt="A1")
    # a chat session of agent 9 does not count for seats_outbound
    r.sm(90, ts("2026-03-05T09:00:00"), ts("2026-03-05T13:00:00"), media=2)
    # end < start inside the window: rejected
    r.sm(90, ts("2026-03-05T09:00:00"), ts("2026-03-05T08:00:00"))
    tenant = {
        "id": "acme",
        "name": "Acme Corp",
        "metrics": ["seats_outbound"],
        "tier1": {"id": "R1", "name": 'Res, "One"'},
        "regions": [
            {"code": "us", "locations": [{"code": "us_default", "switches": []}]},
            {"code": "eu", "locations": [{"code": "eu1", "switches": ["SW_EU"]}]},
        ],
    }
    files, counts = run(tenant, DEFAULTS, day, r)
    t1 = 'R1,"Res, ""One"""'
    assert files["acme_seats_outbound_20260305.csv"] == HEADER + (
        f"2026-03-05,{t1},acme,Acme Corp,,,us,seats_outbound,4,23,5,AGENT_SEATS,1,1\n"
        f"2026-03-05,{t1},acme,Acme Corp,,,eu,seats_outbound,4,23,5,AGENT_SEATS,1,2\n"
    )
    assert files["audit_20260305.csv"] == AUDIT + (
        "seats_outbound,us,,1,1,2026-03-05T09:00:00Z,2026-03-05T09:29:59Z,9\n"
        "seats_outbound,eu,,1,2,2026-03-05T10:00:00Z,2026-03-05T11:29:59Z,5 7\n"
    )
    assert counts == {"rejected": {"sm_fact": {"end_before_start": 1}}, "fallbacks": {}}


def test_dst_day_new_york():
    # 2026-03-08 in America/New_York is 23 h: [05:00Z, next day 04:00Z)
    day = dt.date(2026, 3, 8)
    r = Rows()
    for agent in (1, 2, 3, 4):
        r.resource(agent * 10, agent, None)
    # agent 1: open session from the look-back period, chat in the look-back period
    r.mm(1, ts("2026-03-07T20:00:00"), None)
    r.handled(10, ts("2026-03-07T21:00:00"), media=2)
    # agent 2: open session started 1 s before the look-back window: never read
    r.mm(2, ts("2026-03-07T04:59:59"), None)
    r.handled(20, ts("2026-03-08T06:00:00"), media=2)
    # agent 3: crosses the day's end, chat before it
    r.mm(3, ts("2026-03-09T03:00:00"), ts("2026-03-09T05:00:00"))
    r.handled(30, ts("2026-03-09T03:30:00"), media=2)
    # agent 4: its only chat is after the day's end: does not qualify
    r.mm(4, ts("2026-03-09T03:30:00"), ts("2026-03-09T05:00:00"))
    r.handled(40, ts("2026-03-09T04:30:00"), media=2)
    tenant = {
        "id": "ny",
        "name": "New York",
        "metrics": ["seats_chat"],
        "regions": [{"code": "us", "locations": [{"code": "d", "switches": []}]}],
    }
    defaults = {"timezone": "America/New_York", "session_lookback_days": 1}
    files, counts = run(tenant, defaults, day, r)
    assert files["ny_seats_chat_20260308.csv"] == HEADER + (
        "2026-03-08,,,ny,New York,,,us,seats_chat,8,19,5,AGENT_SEATS,1,2\n"
        "2026-03-08,,,ny,New York,,,us,seats_chat,8,19,5,AGENT_SEATS,2,2\n"
    )
    assert files["audit_20260308.csv"] == AUDIT + (
        "seats_chat,us,,1,2,2026-03-09T03:00:00Z,2026-03-09T03:59:59Z,1 3\n"
        "seats_chat,us,,2,2,,,1 3\n"
    )
    # without agent 3 the open session spans the whole 23 h day
    r.t["gidb_g_login_session_mm"] = [
        m for m in r.t["gidb_g_login_session_mm"] if m["agentid"] != 3
    ]
    files, _ = run(tenant, defaults, day, r)
    assert files["audit_20260308.csv"] == AUDIT + (
        "seats_chat,us,,1,1,2026-03-08T05:00:00Z,2026-03-09T03:59:59Z,1\nseats_chat,us,,2,1,,,1\n"
    )


def test_gvp_ports_and_minutes():
    day = dt.date(2026, 3, 5)
    rows = [
        cdr(1, "c1", ts("2026-03-05T10:00:00"), ts("2026-03-05T10:01:01")),  # 61 s: 2 min
        cdr(2, "c2", ts("2026-03-05T10:00:30"), ts("2026-03-05T10:01:30")),  # 60 s: 1 min
        cdr(3, "c3", ts("2026-03-05T23:59:00"), None),  # open: 60 s to the day's end
        cdr(4, "c4", ts("2026-03-04T23:59:30"), ts("2026-03-05T00:00:30")),  # 30 s in day
        cdr(5, "c5", ts("2026-03-05T12:00:00"), ts("2026-03-05T12:00:00")),  # empty
        cdr(6, "c6", ts("2026-03-05T12:00:00"), ts("2026-03-05T11:00:00")),  # rejected
        cdr(7, None, ts("2026-03-05T10:01:00"), ts("2026-03-05T10:01:01")),  # 1 s: 1 min
        cdr(8, "c8", ts("2026-03-05T00:00:00"), ts("2026-03-05T00:00:00")),  # empty
    ]
    tenant = {
        "id": "g",
        "name": "GVP",
        "metrics": ["gvp_ports", "gvp_minutes"],
        "regions": [{"code": "us", "locations": [{"code": "d", "switches": []}]}],
    }
    files, counts = run(tenant, DEFAULTS, day, Rows(), {"bds_gvpdb": rows})
    assert files["g_gvp_ports_20260305.csv"] == HEADER + (
        "2026-03-05,,,g,GVP,,,us,gvp_ports,1,30,5,PORTS,1,3\n"
    )
    assert files["g_gvp_minutes_20260305.csv"] == HEADER + (
        "2026-03-05,,,g,GVP,,,us,gvp_minutes,1,31,12,MINUTES,1,6\n"
    )
    assert files["audit_20260305.csv"] == AUDIT + (
        "gvp_ports,us,,1,3,2026-03-05T10:01:00Z,2026-03-05T10:01:00Z,\ngvp_minutes,us,,1,6,,,\n"
    )
    # no business units: no fallbacks counted
    assert counts == {"rejected": {"gvp_cdrs": {"end_before_start": 1}}, "fallbacks": {}}


def test_business_units():
    day = dt.date(2026, 3, 5)
    r = Rows()
    r.folder(1, "Persons", None)
    r.folder(2, "SALES, emea", 1)
    r.folder(3, "support", 2)  # nested under Sales: Sales wins (first from the root)
    r.folder(4, "Support", 0)  # parent 0 = root
    r.folder(5, "Support", 6)  # cycle 5 <-> 6, despite the BU name
    r.folder(6, "Loop", 5)
    r.folder(7, "Sales, EMEA", 99)  # missing parent
    for agent, fid in [(11, 3), (12, 4), (13, 5), (15, 7), (16, None)]:
        r.person(agent, fid)
    # agent 14 has no Person row
    for agent in (11, 12, 13, 14, 15, 16):
        r.resource(agent * 10, agent, None)
        r.mm(agent, ts("2026-03-05T10:00:00"), ts("2026-03-05T11:00:00"))
        r.handled(agent * 10, ts("2026-03-05T10:10:00"), media=2)
    # voice calls
    c1 = r.call(
        "C1", ts("2026-03-05T09:00:00"), ts("2026-03-05T09:01:00"), "+15551", "+18005551234"
    )
    c2 = r.call("C2", ts("2026-03-05T09:00:00"), None, "+15552", "+442000")
    r.handled(110, ts("2026-03-05T09:00:10"), media=1, iid=c2, talk=20)  # agent 11 (Sales)
    r.handled(120, ts("2026-03-05T09:00:05"), media=1, iid=c2, talk=0)  # earlier, talk 0
    r.call("C3", ts("2026-03-05T09:00:00"), None, "+15550000000", "+18005559999")  # test call
    assert c1
    gvp = [
        cdr(1, "C1", ts("2026-03-05T09:00:00"), ts("2026-03-05T09:01:00")),  # 1 min -> BU_2
        cdr(2, "C2", ts("2026-03-05T09:00:00"), ts("2026-03-05T09:02:00")),  # 2 min -> BU_1
        cdr(3, "C3", ts("2026-03-05T09:00:00"), ts("2026-03-05T09:03:00")),  # 3 min -> BU_0
        cdr(4, None, ts("2026-03-05T09:00:00"), ts("2026-03-05T09:00:30")),  # 1 min -> BU_0
    ]
    tenant = {
        "id": "acme",
        "name": 'Acme "Q", Ltd',
        "metrics": ["seats_chat", "gvp_minutes"],
        "regions": [{"code": "us", "locations": [{"code": "d", "switches": []}]}],
        "business_units": [
            {"id": "acme_BU_1", "name": "Sales, EMEA", "dnis": ["+1800555"]},
            {"id": "acme_BU_2", "name": "Support", "dnis": ["+18005551"]},
        ],
        "tfn_prefixes": ["+1800"],
        "test_numbers": ["+15550000000"],
    }
    files, counts = run(tenant, DEFAULTS, day, r, {"bds_gvpdb": gvp})
    name = '"Acme ""Q"", Ltd"'
    assert sorted(files) == sorted(
        [
            f"{p}_{m}_20260305.csv"
            for p in ("acme", "acme_BU_1", "acme_BU_2", "acme_BU_0")
            for m in ("seats_chat", "gvp_minutes")
        ]
        + ["audit_20260305.csv"]
    )

    def seat_file(t3, value):
        return HEADER + (
            f"2026-03-05,,,acme,{name},{t3},us,seats_chat,8,19,5,AGENT_SEATS,1,{value}\n"
            f"2026-03-05,,,acme,{name},{t3},us,seats_chat,8,19,5,AGENT_SEATS,2,{value}\n"
        )

    assert files["acme_seats_chat_20260305.csv"] == seat_file(",", 6)
    assert files["acme_BU_1_seats_chat_20260305.csv"] == seat_file('acme_BU_1,"Sales, EMEA"', 1)
    assert files["acme_BU_2_seats_chat_20260305.csv"] == seat_file("acme_BU_2,Support", 1)
    assert files["acme_BU_0_seats_chat_20260305.csv"] == seat_file("acme_BU_0,Default", 4)
    assert files["acme_BU_2_gvp_minutes_20260305.csv"] == HEADER + (
        f"2026-03-05,,,acme,{name},acme_BU_2,Support,us,gvp_minutes,1,31,12,MINUTES,1,1\n"
    )
    at = "2026-03-05T10:00:00Z,2026-03-05T10:59:59Z"
    assert files["audit_20260305.csv"] == AUDIT + (
        f"seats_chat,us,,1,6,{at},11 12 13 14 15 16\n"
        "seats_chat,us,,2,6,,,11 12 13 14 15 16\n"
        f"seats_chat,us,acme_BU_1,1,1,{at},11\n"
        "seats_chat,us,acme_BU_1,2,1,,,11\n"
        f"seats_chat,us,acme_BU_2,1,1,{at},12\n"
        "seats_chat,us,acme_BU_2,2,1,,,12\n"
        f"seats_chat,us,acme_BU_0,1,4,{at},13 14 15 16\n"
        "seats_chat,us,acme_BU_0,2,4,,,13 14 15 16\n"
        "gvp_minutes,us,,1,7,,,\n"
        "gvp_minutes,us,acme_BU_1,1,2,,,\n"
        "gvp_minutes,us,acme_BU_2,1,1,,,\n"
        "gvp_minutes,us,acme_BU_0,1,4,,,\n"
    )
    assert counts == {
        "rejected": {},
        "fallbacks": {
            "agent_without_person": 1,
            "folder_cycle": 1,
            "folder_missing_parent": 1,
            "cdr_without_callid": 1,
        },
    }


def test_generator_covers_every_edge_case_in_30_seeds():
    seen = set()
    for seed in range(30):
        case = adversarial.make_case(seed)
        assert case.day >= case.tenant["production_date"]
        seen |= case.features
    assert set(adversarial.FEATURES) - seen == set()


@pytest.mark.parametrize("seed", [0, 7])
def test_generated_cases_load_and_run(seed):
    case = adversarial.make_case(seed)
    assert adversarial.make_case(seed) == case  # deterministic
    with adversarial.scratch_databases(case, tag="gen") as (gim, gvps):
        adversarial.load_case(case, gim, gvps)
        files = brute.compute_day(gim, gvps, case.tenant, case.defaults, case.day)
    stamp = case.day.strftime("%Y%m%d")
    assert f"audit_{stamp}.csv" in files
    for metric in case.tenant["metrics"]:
        assert f"{case.tenant['id']}_{metric}_{stamp}.csv" in files


def test_sentinels_repeated_keys_and_empty_strings():
    """SPEC §4's accounting, by hand: END_TS 0 / -1 on rows started in the day are
    rejected, a row validly ended before the day is not read; a repeated key keeps the
    row that sorts first by its columns; '' is null."""
    day = dt.date(2026, 3, 5)
    at = ts("2026-03-05T10:00:00")
    r = Rows()
    r.resource(10, 1, "SW")
    r.resource(11, 2, "")  # '' switch: the default location, as null
    r.sm(10, at, 0)  # sentinel: rejected
    r.sm(10, at, -1)  # sentinel: rejected
    r.sm(10, ts("2026-03-04T10:00:00"), ts("2026-03-04T11:00:00"))  # ended before: not read
    r.sm(11, at, at + 600)
    r.handled(11, at + 1, media=1, attempt="A")
    r.attempt("A")
    # session 1007 twice: the copy ending later sorts after and is counted
    r.sm(10, at, at + 60)
    r.t["sm_res_session_fact"].append(dict(r.t["sm_res_session_fact"][-1], end_ts=at + 9000))
    r.mm(1, at, 0)  # sentinel: rejected
    r.person(1, 5)
    r.person(1, 4)  # Person 1 twice: folder 4 sorts first
    r.folder(4, "Sales", None)
    r.folder(5, "Support", None)
    r.folder(5, "Aaa", None)  # folder 5 twice
    r.person(2, 5)
    sales_call = r.call("", at, at + 60, ani="", dnis="+18005551234")  # '' CallUUID
    r.handled(11, at + 1, media=1, iid=sales_call)
    tenant = {
        "id": "acme",
        "name": "Acme",
        "metrics": ["seats_outbound", "gvp_minutes"],
        "regions": [{"code": "us", "locations": [{"code": "d", "switches": []}]}],
        "business_units": [
            {"id": "acme_BU_1", "name": "Sales"},
            {"id": "acme_BU_2", "name": "Support", "dnis": ["+1800555"]},
        ],
        "tfn_prefixes": ["+1800"],
    }
    gvp = [cdr(1, "", at, at + 30), cdr(1, None, at, at + 30), cdr(2, None, at, -1)]
    files, counts = run(tenant, DEFAULTS, day, r, {"bds_gvpdb": gvp})
    assert counts == {
        "rejected": {
            "sm_fact": {"end_before_start": 2, "duplicate_key": 1},
            "mm_sessions": {"end_before_start": 1},
            "agent_resource": {"duplicate_key": 1},
            "folder": {"duplicate_key": 1},
            "gvp_cdrs": {"duplicate_key": 1, "end_before_start": 1},
        },
        # CDR 1 has no CALLID ('' is null), whatever calls have an empty CallUUID
        "fallbacks": {"cdr_without_callid": 1},
    }
    # agent 2 is in folder 5, kept as "Aaa": no BU; agent 1 in Sales (folder 4), not OCS
    assert files["acme_BU_1_seats_outbound_20260305.csv"].endswith("AGENT_SEATS,1,0\n")
    assert files["acme_BU_0_seats_outbound_20260305.csv"].endswith("AGENT_SEATS,1,1\n")
    assert files["acme_BU_0_gvp_minutes_20260305.csv"].endswith("MINUTES,1,1\n")
