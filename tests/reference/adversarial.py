"""Adversarial Info Mart + GVP data sets for one billing day, with a matching config.

make_case(seed) -> Case         deterministic for a seed; no database needed
load_case(case, gim_dsn, gvp_dsns)
                                creates the tables from the package's sql/gim/schema.sql and
                                sql/gvp/schema.sql and inserts the rows; gvp_dsns maps each
                                of case.gvp_conn_ids to its own (separate) database
scratch_databases(case, server_dsn)
                                context manager: creates empty `ref_...` databases for
                                the case on the server, yields (gim_dsn, gvp_dsns), drops
                                them afterwards

Case.features names the edge cases a case contains (see FEATURES); over seeds 0..29
every feature occurs (tests/reference/test_reference.py checks it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import random
import unicodedata
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parents[2]
GIM_SCHEMA = REPO / "bds_metrics" / "sql" / "gim" / "schema.sql"
GVP_SCHEMA = REPO / "bds_metrics" / "sql" / "gvp" / "schema.sql"

ZONES = ["America/New_York", "Europe/London", "Australia/Adelaide", "UTC", "Asia/Kathmandu"]

FEATURES = [
    # time zones and days
    "tz_America/New_York",
    "tz_Europe/London",
    "tz_Australia/Adelaide",
    "tz_UTC",
    "tz_Asia/Kathmandu",
    "day_23h",
    "day_25h",
    "day_24h",
    # sessions
    "touching_sessions",
    "overlapping_sessions",
    "agent_two_regions",
    "cross_midnight_into_day",
    "cross_midnight_out_of_day",
    "before_lookback",
    "open_null_end",
    "open_active_flag_with_end",
    "zero_length",
    "end_before_start",
    "end_before_start_outside_window",
    "mm_open",
    "mm_end_before_start",
    "mm_null_agentid",
    "mm_agent_without_resource",
    # handled
    "handled_at_session_start",
    "handled_at_session_end",
    "handled_after_day_end",
    "handled_in_lookback",
    "handled_before_lookback",
    "talk_zero",
    "chat_media",
    "voice_media",
    "media_name_only",
    "attempt_with_caf",
    "attempt_without_caf",
    "duplicate_caf",
    "null_attempt_id",
    # resources
    "null_switch",
    "unknown_switch",
    "several_resource_rows",
    "non_agent_resource",
    "other_tenant_rows",
    # business units
    "business_units",
    "nested_bu_folders",
    "folder_name_other_case",
    "folder_name_nfd_padded",
    "folder_cycle",
    "folder_missing_parent",
    "agent_without_person",
    "person_null_folder",
    "root_parent_0",
    # gvp
    "cdr_null_callid",
    "cdr_open",
    "cdr_cross_midnight_in",
    "cdr_cross_midnight_out",
    "cdr_end_before_start",
    "cdr_test_call",
    "cdr_two_bu_prefixes",
    "two_gvp_locations",
    "cdr_callid_two_calls",
    "cdr_agent_bu",
    "cdr_61s",
    "pstn_call",
    "null_dnis",
    "cdr_id_collision",
    # SPEC §4 accounting: sentinel ends, repeated keys, '' meaning null
    "end_ts_sentinel",
    "duplicate_session_key",
    "duplicate_login_session_id",
    "duplicate_cdr_id",
    "duplicate_person_id",
    "duplicate_folder_id",
    "empty_callid",
    "empty_calluuid",
    "empty_switch",
    "empty_ani_dnis",
    # names
    "name_comma",
    "name_quote",
    "name_non_ascii",
    "tier1",
    # SPEC §5.3 metrics
    "sms_media",
    "email_handled_in_login_session",
    "new_builtin_metrics",
    "custom_metric_in_defaults",
    "custom_metric_in_tenant",
]

TENANT_NAMES = [
    "Acme, Inc.",
    'The "Best" Company',
    "Société Générale d'Ünïcode",
    "Plain Tenant",
    'Ça, "va" bien',
]
BU_NAMES = [
    "Sales, EMEA",
    'Support "Tier 2"',
    "Ventes Générales",
    "Marketing",
    "Åland Ops",
]
TEST_NUMBER = "+15550000000"


@dataclasses.dataclass
class Case:
    seed: int
    day: dt.date
    tenant: dict  # one tenant, as yaml.safe_load would give it
    defaults: dict  # the `defaults` section
    gim_rows: dict[str, list[dict]]  # GIM table -> rows (column -> value)
    gvp_rows: dict[str, list[dict]]  # GVP conn_id -> gvp_cdr rows
    features: set[str]

    @property
    def gvp_conn_ids(self) -> list[str]:
        return list(self.gvp_rows)

    def config(self) -> dict:
        """The whole YAML config (SPEC §3) as a dict: {"defaults": ..., "tenants": [...]}."""
        return {"defaults": dict(self.defaults), "tenants": [dict(self.tenant)]}


# ----------------------------------------------------------------------------- days


def day_bounds(day: dt.date, tzname: str) -> tuple[int, int]:
    tz = ZoneInfo(tzname)
    nxt = day + dt.timedelta(days=1)
    a = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    b = dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return int(a.timestamp()), int(b.timestamp())


def dst_days(year: int, tzname: str) -> list[dt.date]:
    out = []
    d = dt.date(year, 1, 1)
    while d.year == year:
        a, b = day_bounds(d, tzname)
        if b - a != 86400:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


# ---------------------------------------------------------------------- the builder


class Builder:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.features: set[str] = set()
        self.rows: dict[str, list[dict]] = {
            t: []
            for t in [
                "media_type",
                "resource_",
                "sm_res_session_fact",
                "interaction_type",
                "interaction_fact",
                "interaction_resource_fact",
                "contact_attempt_fact",
                "gidb_g_login_session_mm",
                "gidb_gc_agent",
                "gidb_gc_folder",
            ]
        }
        self.next_id = 1

    def new_id(self) -> int:
        self.next_id += self.rng.randint(1, 3)
        return self.next_id

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def feature(self, name: str):
        assert name in FEATURES, name
        self.features.add(name)


def make_case(seed: int) -> Case:
    b = Builder(seed)
    rng = b.rng

    # ---- zone and day: zone by seed, DST day for seeds 0-4, 10-14, 20-24, ...
    tzname = ZONES[seed % len(ZONES)]
    year = rng.choice([2025, 2026])
    changes = dst_days(year, tzname)
    if changes and (seed // 5) % 2 == 0:
        day = changes[(seed // 10) % len(changes)]
    else:
        while True:
            day = dt.date(year, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
            if day not in changes:
                break
    b.feature(f"tz_{tzname}")
    lookback_days = rng.choice([1, 1, 2, 3])
    ds, de = day_bounds(day, tzname)
    b.feature({82800: "day_23h", 86400: "day_24h", 90000: "day_25h"}[de - ds])
    lb = ds - lookback_days * 86400

    # ---- tenant filters
    tenant_key = rng.choice([None, 101, 101])
    tenant_dbid = rng.choice([None, 1, 1])
    tk = tenant_key if tenant_key is not None else 101
    tdb = tenant_dbid if tenant_dbid is not None else 1
    other_tk, other_tdb = 202, 2

    # ---- config: regions, locations, switches
    n_regions = rng.choice([1, 2, 2, 3])
    region_codes = ["us", "eu", "apac"][:n_regions]
    switch_pool = ["SW_A", "SW_B", "SW_C", "SW_D", "SW_E"]
    rng.shuffle(switch_pool)
    regions = []
    loc_codes = []
    used = 0
    for code in region_codes:
        locs = []
        for j in range(rng.choice([1, 1, 2])):
            take = rng.choice([1, 2])
            sws = switch_pool[used : used + take]
            used += len(sws)
            if not sws:
                break
            locs.append({"code": f"{code}_{j}", "name": f"{code.upper()} {j}", "switches": sws})
        if not locs:  # ran out of switches: the region gets at least one location
            locs.append({"code": f"{code}_x", "switches": [f"SW_{code.upper()}"]})
        region = {"code": code, "locations": locs}
        if rng.random() < 0.7:
            region["name"] = f"Region {code}"
        regions.append(region)
    default_region = rng.choice(regions)
    default_region["locations"].insert(
        rng.randint(0, len(default_region["locations"])),
        {"code": f"{default_region['code']}_default", "name": "default", "switches": []},
    )
    configured_switches = [s for r in regions for loc in r["locations"] for s in loc["switches"]]
    switch_region = {
        s: r["code"] for r in regions for loc in r["locations"] for s in loc["switches"]
    }
    for r in regions:
        for loc in r["locations"]:
            loc_codes.append(loc["code"])

    # ---- GVP sources
    all_locs = [loc for r in regions for loc in r["locations"]]
    if rng.random() < 0.5 and len(all_locs) >= 2:
        gvp_locs = rng.sample(all_locs, 2)
        gvp_locs[0]["gvp"] = {"conn_id": "bds_gvpdb_a"}
        gvp_locs[1]["gvp"] = {"conn_id": "bds_gvpdb_b"}
        gvp_conn_ids = ["bds_gvpdb_a", "bds_gvpdb_b"]
        b.feature("two_gvp_locations")
    elif rng.random() < 0.3:
        loc = rng.choice(all_locs)
        loc["gvp"] = {"conn_id": "bds_gvpdb_one"}
        gvp_conn_ids = ["bds_gvpdb_one"]
    else:
        gvp_conn_ids = ["bds_gvpdb"]

    # ---- tenant names and BUs
    tenant_id = rng.choice(["acme", "t_1", "zeta9", "big_tenant"])
    tenant_name = rng.choice(TENANT_NAMES)
    has_bus = rng.random() < 0.8
    bus = []
    if has_bus:
        b.feature("business_units")
        names = rng.sample(BU_NAMES, rng.choice([2, 3, 3, 4]))
        for i, name in enumerate(names, start=1):
            bus.append({"id": f"{tenant_id}_BU_{i}", "name": name})
        # DNIS rules: prefixes of different lengths that one number can match twice
        bus[0]["dnis"] = ["+1800555"]
        bus[1]["dnis"] = rng.choice([["+18005551"], ["+18005551", "+1877555"], ["+442"]])
        if len(bus) > 2 and rng.random() < 0.5:
            bus[2]["dnis"] = ["+1877"]  # with BU 2's "+1877555": one number, two lengths
    all_names = [tenant_name] + [bu["name"] for bu in bus]
    if any("," in n for n in all_names):
        b.feature("name_comma")
    if any('"' in n for n in all_names):
        b.feature("name_quote")
    if any(any(ord(ch) > 127 for ch in n) for n in all_names):
        b.feature("name_non_ascii")

    metrics = ["seats_chat", "seats_outbound", "gvp_ports", "gvp_minutes"]
    rng.shuffle(metrics)
    if rng.random() < 0.25:
        metrics = metrics[: rng.randint(1, 3)]

    defaults = {
        "gimdb_conn_id": "bds_gimdb",
        "gvpdb_conn_id": "bds_gvpdb",
        "output_root": "/tmp/bds-ref-out",
        "staging_root": "/tmp/bds-ref-staging",
        "retries": 0,
    }
    tenant = {
        "id": tenant_id,
        "name": tenant_name,
        "production_date": day - dt.timedelta(days=rng.randint(0, 40)),
        "metrics": metrics,
        "regions": regions,
        "tfn_prefixes": ["+1800", "+1877", "+1888"],
        "test_numbers": [TEST_NUMBER],
    }
    if rng.random() < 0.5:
        tenant["tier1"] = {"id": "R100", "name": rng.choice(["Reseller One", "Résello, Ltd"])}
        b.feature("tier1")
    # time zone and look-back: in the tenant, or inherited from the defaults
    if tzname == "UTC" and rng.random() < 0.4:
        pass  # nothing anywhere: the default UTC
    elif rng.random() < 0.5:
        tenant["timezone"] = tzname
        defaults["timezone"] = "UTC"
    else:
        defaults["timezone"] = tzname
    if rng.random() < 0.5:
        tenant["session_lookback_days"] = lookback_days
        defaults["session_lookback_days"] = 7
    else:
        defaults["session_lookback_days"] = lookback_days
    gim = {}
    if tenant_key is not None:
        gim["tenant_key"] = tenant_key
    if tenant_dbid is not None:
        gim["tenant_dbid"] = tenant_dbid
    if gim:
        tenant["gim"] = gim
    if bus:
        tenant["business_units"] = bus

    # ---- dimension tables
    R = b.rows
    R["media_type"] += [
        {"media_type_key": 1, "media_name": "Voice", "media_name_code": "VOICE"},
        {"media_type_key": 2, "media_name": "Chat", "media_name_code": None},  # name only
        {"media_type_key": 3, "media_name": "Email", "media_name_code": "EMAIL"},
        {"media_type_key": 4, "media_name": "voice", "media_name_code": None},  # lower case
        {"media_type_key": 5, "media_name": "CHAT", "media_name_code": "chat"},
    ]
    VOICE_KEYS, CHAT_KEYS, EMAIL_KEY = [1, 1, 4], [2, 5], 3
    R["interaction_type"] += [
        {"interaction_type_key": 1, "interaction_type_code": "INBOUND"},
        {"interaction_type_key": 2, "interaction_type_code": "OUTBOUND"},
        {"interaction_type_key": 3, "interaction_type_code": "INTERNAL"},
    ]

    # ---- folders (tenant tdb unless said otherwise)
    folders = R["gidb_gc_folder"]

    def folder(fid, name, parent, tenantid=tdb):
        folders.append(
            {"id": fid, "tenantid": tenantid, "name": name, "folderid": parent, "status": 1}
        )

    bu_names = [bu["name"] for bu in bus] or ["Marketing", "Sales, EMEA"]
    folder(1, "Persons", None)
    folder(2, bu_names[0].upper(), 1)  # BU name in another case
    folder(3, "Team A", 2)
    # decomposed (NFD), with outer white space: equal to the BU name under SPEC §6
    folder(4, "\u3000" + unicodedata.normalize("NFD", bu_names[1]) + " ", 1)
    folder(5, bu_names[0].lower(), 4)  # nested: path Persons/BU2/bu1 -> BU2 first
    folder(6, "Loop one", 7)  # cycle 6 <-> 7
    folder(7, bu_names[0], 6)
    folder(8, bu_names[1], 999)  # missing parent
    folder(9, "Root zero", 0)  # parent 0 = root
    folder(10, bu_names[-1], 9)
    folder(11, "Plain team", 12)
    folder(12, "Elsewhere", 1, tenantid=other_tdb if tenant_dbid is not None else tdb)
    folder(13, "Self loop", 13)
    folder(14, "No BU here", 1)
    folder_kinds = {
        1: None,
        2: "folder_name_other_case",
        3: "folder_name_other_case",
        4: "folder_name_nfd_padded",
        5: "nested_bu_folders",
        6: "folder_cycle",
        7: "folder_cycle",
        8: "folder_missing_parent",
        10: "root_parent_0",
        11: None,
        13: "folder_cycle",
        14: None,
    }

    # ---- agents: Person rows and RESOURCE_ rows
    n_agents = rng.randint(4, 8)
    agent_ids = sorted(rng.sample(range(1001, 1060), n_agents))
    persons = R["gidb_gc_agent"]
    resources = R["resource_"]
    agent_keys: dict[int, list[int]] = {}
    used_keys: set[int] = set()

    def resource_key():
        while True:
            k = rng.randint(10, 400)
            if k not in used_keys:
                used_keys.add(k)
                return k

    def resource(aid, switch, type_code="AGENT", tenant_key_value=tk):
        k = resource_key()
        resources.append(
            {
                "resource_key": k,
                "tenant_key": tenant_key_value,
                "resource_type_code": type_code,
                "resource_name": f"r{k}",
                "employee_id": f"e{aid}",
                "switch_name": switch,
                "resource_cfg_dbid": aid,
            }
        )
        return k

    switch_choices = configured_switches + [None, "SW_UNKNOWN"]
    mm_only_agent = agent_ids[-1] if rng.random() < 0.6 else None
    for aid in agent_ids:
        # Person
        pick = rng.random()
        if pick < 0.12 and has_bus:
            b.feature("agent_without_person")
        elif pick < 0.2 and tenant_dbid is not None:
            persons.append(
                {
                    "id": aid,
                    "tenantid": other_tdb,
                    "folderid": 1,
                    "username": f"u{aid}",
                    "employeeid": f"e{aid}",
                    "status": 1,
                }
            )
            b.feature("agent_without_person")
            b.feature("other_tenant_rows")
        elif pick < 0.28:
            persons.append(
                {
                    "id": aid,
                    "tenantid": tdb,
                    "folderid": None,
                    "username": f"u{aid}",
                    "employeeid": f"e{aid}",
                    "status": 1,
                }
            )
            b.feature("person_null_folder")
        else:
            fid = rng.choice(list(folder_kinds))
            if folder_kinds[fid]:
                b.feature(folder_kinds[fid])
            if fid == 11 and tenant_dbid is not None:
                b.feature("folder_missing_parent")  # parent folder is another tenant's
            persons.append(
                {
                    "id": aid,
                    "tenantid": tdb,
                    "folderid": fid,
                    "username": f"u{aid}",
                    "employeeid": f"e{aid}",
                    "status": 1,
                }
            )
        # RESOURCE_ rows
        if aid == mm_only_agent:
            agent_keys[aid] = []
            continue
        n_rows = rng.choice([1, 1, 2, 3])
        keys = []
        for _ in range(n_rows):
            sw = rng.choice(switch_choices)
            if sw is None:
                b.feature("null_switch")
            elif sw == "SW_UNKNOWN":
                b.feature("unknown_switch")
            keys.append(resource(aid, sw))
        if n_rows > 1:
            b.feature("several_resource_rows")
        agent_keys[aid] = keys
    # one agent on two switches of two regions
    two_region_agent = None
    if n_regions >= 2 and rng.random() < 0.7:
        aid = rng.choice([a for a in agent_ids if a != mm_only_agent])
        sw1 = rng.choice([s for s in configured_switches if switch_region[s] == region_codes[0]])
        sw2 = rng.choice([s for s in configured_switches if switch_region[s] == region_codes[1]])
        agent_keys[aid] += [resource(aid, sw1), resource(aid, sw2)]
        two_region_agent = (aid, agent_keys[aid][-2], agent_keys[aid][-1])
        b.feature("agent_two_regions")
        b.feature("several_resource_rows")
    # non-agent resources, some with an agent's DBID and a larger key
    non_agent_keys = []
    for _ in range(rng.randint(1, 2)):
        aid = rng.choice(agent_ids)
        non_agent_keys.append(
            resource(aid, rng.choice(configured_switches), type_code=rng.choice(["QUEUE", "DN"]))
        )
        b.feature("non_agent_resource")
    # another tenant's resource (only meaningful with a tenant_key filter)
    other_keys = []
    if tenant_key is not None:
        aid = rng.choice(agent_ids)
        other_keys.append(resource(aid, rng.choice(configured_switches), tenant_key_value=other_tk))
        b.feature("other_tenant_rows")

    if mm_only_agent is not None:
        b.feature("mm_agent_without_resource")

    # ---- time helpers
    def t_in_day():
        if rng.random() < 0.5:  # on a quarter hour: many exact touches and ties
            return ds + 900 * rng.randint(0, (de - ds) // 900 - 1)
        return rng.randint(ds, de - 1)

    def t_prev():  # look-back period
        return rng.randint(lb, ds - 1)

    def t_old():  # before the look-back window
        return rng.randint(lb - 2 * 86400, lb - 1)

    def t_after():
        return rng.randint(de, de + 86400)

    durations = [0, 1, 59, 60, 61, 900, 3600, 2 * 3600, 5 * 3600, 9 * 3600, 30 * 3600]

    def random_interval():
        """(start, end or None, active_flag, tags) with nasty shapes."""
        shape = rng.choice(
            ["day"] * 6
            + ["into", "out", "old", "open_null", "open_flag", "zero", "neg", "neg_out", "lbstart"]
        )
        tags = set()
        if shape == "day":
            s = t_in_day()
            e = s + rng.choice(durations)
            if e > de:
                tags.add("cross_midnight_out_of_day")
            if e == s:
                tags.add("zero_length")
            return s, e, 0, tags
        if shape == "into":
            s = t_prev()
            e = rng.choice([ds, ds + 1, t_in_day(), t_after()])
            tags.add("cross_midnight_into_day")
            return s, e, 0, tags
        if shape == "out":
            s = t_in_day()
            return s, max(t_after(), s), 0, {"cross_midnight_out_of_day"}
        if shape == "old":
            s = t_old()
            return s, rng.choice([t_in_day(), t_after(), None]), 0, {"before_lookback"}
        if shape == "open_null":
            s = rng.choice([t_in_day(), t_prev()])
            return s, None, rng.choice([0, 1]), {"open_null_end"}
        if shape == "open_flag":
            s = rng.choice([t_in_day(), t_prev()])
            e = rng.choice([s + 60, s - 60, ds - 5, de + 5])
            return s, e, 1, {"open_active_flag_with_end"}
        if shape == "zero":
            s = rng.choice([t_in_day(), ds])
            return s, s, 0, {"zero_length"}
        if shape == "neg":  # end < start, inside the window
            s = t_in_day()
            if s <= ds + 1:
                s = ds + 1000
            return s, rng.randint(ds + 1, s - 1), 0, {"end_before_start"}
        if shape == "neg_out":  # end < start, end before the day (counted: SPEC §4)
            s = t_in_day()
            return s, rng.randint(lb, ds), 0, {"end_before_start_outside_window"}
        # lbstart: exactly at the look-back start, and one second before it
        s = rng.choice([lb, lb - 1])
        return s, rng.choice([ds + 3600, None]), 0, {"before_lookback"} if s < lb else set()

    # ---- interactions and handled rows
    irf = R["interaction_resource_fact"]
    ifact = R["interaction_fact"]
    caf = R["contact_attempt_fact"]
    attempt_no = [0]

    def interaction(
        media_key,
        type_key=1,
        callid=None,
        ani=None,
        dnis=None,
        start=None,
        end=None,
        tenant_key_value=tk,
    ):
        iid = b.new_id()
        ifact.append(
            {
                "interaction_id": iid,
                "tenant_key": tenant_key_value,
                "media_type_key": media_key,
                "interaction_type_key": type_key,
                "media_server_ixn_guid": callid or f"ixn-{iid}",
                "source_address": ani,
                "target_address": dnis,
                "start_ts": start,
                "end_ts": end,
            }
        )
        return iid

    def handled_row(
        agent_key, t, media_key, iid=None, talk=None, attempt="random", tenant_key_value=tk
    ):
        if iid is None:
            iid = interaction(media_key, rng.choice([1, 1, 2]), start=t, end=t + 300)
        if talk is None:
            talk = rng.choice([0, 5, 5, 120])
        if talk == 0:
            b.feature("talk_zero")
        if media_key in CHAT_KEYS:
            b.feature("chat_media")
        elif media_key in VOICE_KEYS:
            b.feature("voice_media")
        if media_key in (2, 4):
            b.feature("media_name_only")
        cid = None
        if attempt == "random":
            attempt = rng.choice(["none", "caf", "caf", "nocaf", "dup", "other"])
        if attempt == "none":
            b.feature("null_attempt_id")
        else:
            attempt_no[0] += 1
            cid = f"CA-{attempt_no[0]}"
            if attempt == "caf":
                b.feature("attempt_with_caf")
                caf.append(
                    {
                        "contact_attempt_fact_key": b.new_id(),
                        "tenant_key": tk,
                        "call_attempt_id": cid,
                        "start_ts": t - 10,
                        "end_ts": t + 10,
                    }
                )
            elif attempt == "dup":
                b.feature("duplicate_caf")
                b.feature("attempt_with_caf")
                for _ in range(rng.randint(2, 3)):
                    caf.append(
                        {
                            "contact_attempt_fact_key": b.new_id(),
                            "tenant_key": tk,
                            "call_attempt_id": cid,
                            "start_ts": t - 10,
                            "end_ts": None,
                        }
                    )
            elif attempt == "other" and tenant_key is not None:
                b.feature("other_tenant_rows")
                b.feature("attempt_without_caf")
                caf.append(
                    {
                        "contact_attempt_fact_key": b.new_id(),
                        "tenant_key": other_tk,
                        "call_attempt_id": cid,
                        "start_ts": t - 10,
                        "end_ts": t + 10,
                    }
                )
            else:
                b.feature("attempt_without_caf")
        irf.append(
            {
                "interaction_resource_id": b.new_id(),
                "interaction_id": iid,
                "tenant_key": tenant_key_value,
                "resource_key": agent_key,
                "media_type_key": media_key,
                "start_ts": t,
                "end_ts": t + max(talk, 1),
                "talk_duration": talk,
                "call_attempt_id": cid,
            }
        )

    def handled_for_session(aid, keys, s, e, chat):
        """0-3 handled rows for an agent around one of its sessions."""
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            where = rng.choice(
                ["start", "end", "inside", "inside", "inside", "after", "lookback", "old"]
            )
            if where == "start":
                t = s
                b.feature("handled_at_session_start")
            elif where == "end":
                if e is None:
                    continue
                t = e
                b.feature("handled_at_session_end")
            elif where == "inside":
                hi = (e if e is not None else de) - 1
                if hi < s:
                    continue
                t = rng.randint(s, min(hi, s + 6 * 3600))
            elif where == "after":
                t = t_after()
                b.feature("handled_after_day_end")
            elif where == "lookback":
                t = t_prev()
                b.feature("handled_in_lookback")
            else:
                t = t_old()
                b.feature("handled_before_lookback")
            if chat:
                media_key = rng.choice(CHAT_KEYS) if rng.random() < 0.85 else EMAIL_KEY
            else:
                media_key = rng.choice(VOICE_KEYS + [CHAT_KEYS[0]])
            handled_row(rng.choice(keys), t, media_key)

    # ---- SM sessions
    sm = R["sm_res_session_fact"]

    def sm_session(rkey, s, e, flag, media_key, tenant_key_value=tk):
        sm.append(
            {
                "sm_res_session_fact_key": b.new_id(),
                "tenant_key": tenant_key_value,
                "media_type_key": media_key,
                "resource_key": rkey,
                "start_ts": s,
                "end_ts": e,
                "total_duration": 0 if e is None else e - s,
                "active_flag": flag,
            }
        )

    for aid in agent_ids:
        keys = agent_keys[aid]
        if not keys:
            continue
        for _ in range(rng.randint(1, 4)):
            s, e, flag, tags = random_interval()
            for tag in tags:
                b.feature(tag)
            media_key = rng.choice(VOICE_KEYS + [VOICE_KEYS[0], CHAT_KEYS[0], EMAIL_KEY])
            if media_key in VOICE_KEYS:
                b.feature("voice_media")
            key = rng.choice(keys)
            sm_session(key, s, e, flag, media_key)
            handled_for_session(aid, keys, s, e if flag == 0 else None, chat=False)
            # touching / overlapping follow-ups for the same agent
            if e is not None and flag == 0 and e > s and rng.random() < 0.35:
                if rng.random() < 0.5:
                    s2, kind = e, "touching_sessions"
                else:
                    s2, kind = rng.randint(s, e - 1), "overlapping_sessions"
                e2 = s2 + rng.choice(durations[1:])
                b.feature(kind)
                sm_session(rng.choice(keys), s2, e2, 0, VOICE_KEYS[0])
                handled_for_session(aid, keys, s2, e2, chat=False)
    # the two-region agent works in both regions at overlapping times, OCS both times
    if two_region_agent is not None:
        aid, k1, k2 = two_region_agent
        s = t_in_day()
        for key, start in ((k1, s), (k2, s + rng.choice([0, 600, -600]))):
            sm_session(key, start, start + 3600, 0, VOICE_KEYS[0])
            handled_row(key, start + 1, VOICE_KEYS[0], attempt="caf", talk=30)
    # sessions of non-agent resources and of another tenant: must be left out
    for key in non_agent_keys + other_keys:
        s = t_in_day()
        row_tk = tk if key in non_agent_keys else other_tk
        sm_session(key, s, s + 3600, 0, 1, tenant_key_value=row_tk)
        handled_row(key, s + 10, 1, attempt="caf", talk=30, tenant_key_value=row_tk)
        handled_row(key, s + 20, 2, attempt="none", talk=30, tenant_key_value=row_tk)
    # an agent session whose row belongs to another tenant
    if tenant_key is not None:
        aid = rng.choice([a for a in agent_ids if agent_keys[a]])
        s = t_in_day()
        sm_session(agent_keys[aid][0], s, s + 7200, 0, 1, tenant_key_value=other_tk)
        b.feature("other_tenant_rows")
    # a session with an unknown media type key (dropped by the inner join)
    if rng.random() < 0.3:
        aid = rng.choice([a for a in agent_ids if agent_keys[a]])
        s = t_in_day()
        sm_session(agent_keys[aid][0], s, s + 600, 0, 99)

    # ---- multimedia login sessions
    mm = R["gidb_g_login_session_mm"]

    def mm_session(aid, s, e, tenantid=tdb):
        mm.append(
            {
                "id": b.new_id(),
                "loginsessionid": f"LS-{b.next_id}",
                "agentid": aid,
                "tenantid": tenantid,
                "created_ts": s,
                "terminated_ts": e,
            }
        )

    for aid in agent_ids:
        keys = agent_keys[aid] or (non_agent_keys[:1] if rng.random() < 0.3 else [])
        for _ in range(rng.randint(1, 3) if keys else 0):
            s, e, flag, tags = random_interval()
            if "open_active_flag_with_end" in tags:  # no ACTIVE_FLAG in GIDB: make it open
                e, tags = None, {"open_null_end"}
            if "open_null_end" in tags:
                tags = {"mm_open"}
            if "end_before_start" in tags:
                tags = {"mm_end_before_start"}
            tags.discard("end_before_start_outside_window")
            tags.discard("zero_length")
            for tag in tags:
                b.feature(tag)
            mm_session(aid, s, e)
            handled_for_session(aid, keys, s, e, chat=True)
            if e is not None and e > s and rng.random() < 0.35:
                if rng.random() < 0.5:
                    s2, kind = e, "touching_sessions"
                else:
                    s2, kind = rng.randint(s, e - 1), "overlapping_sessions"
                e2 = s2 + rng.choice(durations[1:])
                b.feature(kind)
                mm_session(aid, s2, e2)
                handled_for_session(aid, keys, s2, e2, chat=True)
        if not keys:
            # an agent with no AGENT resource row: its handled rows cannot join, so its
            # multimedia sessions never qualify; still extracted (fallback counting)
            s = t_in_day()
            mm_session(aid, s, s + 3600)
    for _ in range(rng.choice([0, 1, 2])):
        s = t_in_day()
        mm_session(None, s, s + rng.choice([60, 3600]))  # no AGENTID (never also negative)
        b.feature("mm_null_agentid")
    if tenant_dbid is not None:
        s = t_in_day()
        mm_session(agent_ids[0], s, s + 3600, tenantid=other_tdb)
        b.feature("other_tenant_rows")

    # ---- voice calls, CDRs
    bu_dnis = [p for bu in bus for p in bu.get("dnis", [])]
    dnis_pool = [
        "+18005551234",  # +1800555 and +18005551 (two BUs, two lengths)
        "+18005559999",  # +1800555 only
        "+18775550100",  # +1877555 / +1877
        "+18881234567",  # toll-free, no BU
        "+442071234567",  # PSTN, maybe +442
        TEST_NUMBER,
        None,
    ]
    calls = []  # (callid, start)
    call_tags: dict[str, set[str]] = {}  # callid -> features a CDR gets by referencing it
    agent_key_pool = [k for a in agent_ids for k in agent_keys[a]]
    for n in range(rng.randint(4, 10)):
        callid = f"CALL-{seed}-{n}"
        start = rng.choice([t_in_day(), t_in_day(), t_prev(), t_old()])
        end = rng.choice([start + rng.choice([30, 61, 600]), None])
        ani = rng.choice(["+15551230000", "+15551230001", TEST_NUMBER, None])
        dnis = rng.choice(dnis_pool)
        tags = call_tags.setdefault(callid, set())
        if ani == TEST_NUMBER or dnis == TEST_NUMBER:
            tags.add("cdr_test_call")
        if dnis is None:
            tags.add("null_dnis")
        elif not dnis.startswith(("+1800", "+1877", "+1888")):
            tags.add("pstn_call")
        if dnis == "+18005551234" and "+18005551" in bu_dnis:
            tags.add("cdr_two_bu_prefixes")
        if dnis == "+18775550100" and "+1877555" in bu_dnis and "+1877" in bu_dnis:
            tags.add("cdr_two_bu_prefixes")
        media_key = rng.choice(VOICE_KEYS) if rng.random() < 0.9 else CHAT_KEYS[0]
        type_key = 1 if rng.random() < 0.85 else 2
        iid = interaction(
            media_key, type_key, callid=callid, ani=ani, dnis=dnis, start=start, end=end
        )
        calls.append((callid, start))
        # a second interaction with the same CallUUID
        if rng.random() < 0.2:
            start2 = start + rng.choice([0, 0, 5, -5])
            interaction(
                1,
                1,
                callid=callid,
                ani=None,
                dnis=rng.choice(dnis_pool),
                start=start2,
                end=start2 + 60,
            )
            tags.add("cdr_callid_two_calls")
        # agents of the call: several IRF rows, ties, talk 0, non-agent resources
        if agent_key_pool:
            t0 = start + rng.choice([0, 3, 10])
            for _ in range(rng.choice([0, 1, 2, 3])):
                key = rng.choice(agent_key_pool + non_agent_keys)
                handled_row(
                    key,
                    t0 + rng.choice([0, 0, 2]),
                    media_key,
                    iid=iid,
                    talk=rng.choice([0, 7, 40]),
                    attempt="none",
                )
                if key in agent_key_pool and has_bus:
                    tags.add("cdr_agent_bu")
    # another tenant's call with the same CallUUID as one of ours
    if tenant_key is not None and calls:
        callid, start = rng.choice(calls)
        interaction(
            1,
            1,
            callid=callid,
            dnis="+18005551234",
            start=start - 1,
            end=start + 60,
            tenant_key_value=other_tk,
        )
        b.feature("other_tenant_rows")

    gvp_rows: dict[str, list[dict]] = {}
    cdr_id = 0
    for conn_id in gvp_conn_ids:
        if cdr_id and rng.random() < 0.5:
            cdr_id = 0  # the same CDR_IDs in two GVP databases
            b.feature("cdr_id_collision")
        rows = []
        for _ in range(rng.randint(3, 9)):
            cdr_id += rng.randint(1, 2)
            callid = rng.choice([c for c, _ in calls] + [None, "NO-SUCH-CALL"]) if calls else None
            if callid is None:
                b.feature("cdr_null_callid")
            for tag in call_tags.get(callid, ()):
                b.feature(tag)
            shape = rng.choice(["day", "day", "day", "open", "in", "out", "neg", "61", "old"])
            if shape == "day":
                s = t_in_day()
                e = s + rng.choice([0, 1, 59, 60, 61, 120, 3600])
            elif shape == "open":
                s = rng.choice([t_in_day(), t_prev()])
                e = None
                b.feature("cdr_open")
            elif shape == "in":
                s = t_prev()
                e = rng.choice([ds + 1, ds + 61, t_in_day()])
                b.feature("cdr_cross_midnight_in")
            elif shape == "out":
                s = de - rng.choice([1, 30, 61, 3600])
                e = de + rng.choice([1, 120])
                b.feature("cdr_cross_midnight_out")
            elif shape == "neg":
                s = t_in_day()
                if s <= ds + 1:
                    s = ds + 500
                e = rng.randint(ds + 1, s - 1)
                b.feature("cdr_end_before_start")
            elif shape == "61":
                s = t_in_day()
                s = min(s, de - 61)
                e = s + 61
                b.feature("cdr_61s")
            else:
                s = t_old()
                e = rng.choice([t_in_day(), None])
            rows.append(
                {
                    "cdr_id": cdr_id,
                    "callid": callid,
                    "ivr_profile": "ivr",
                    "start_ts": s,
                    "end_ts": e,
                }
            )
        # overlapping duplicates make a port peak > 1 likely
        if rows and rng.random() < 0.6:
            base = rng.choice(rows)
            cdr_id += 1
            rows.append(dict(base, cdr_id=cdr_id))
        gvp_rows[conn_id] = rows

    # ---- SPEC §4: every row that started in the window is accounted for, repeated keys,
    # '' meaning null. Added after everything else, so the rows above are those the seed
    # gave before these were added.
    sessions_of_tenant = [r for r in sm if r["tenant_key"] == tk]
    aid = rng.choice([a for a in agent_ids if agent_keys[a]])
    key = rng.choice(agent_keys[aid])
    for end in (0, -1):  # sentinels on sessions started in the day, OCS-qualified
        s = t_in_day()
        sm_session(key, s, end, 0, VOICE_KEYS[0])
        handled_row(key, s + 1, VOICE_KEYS[0], attempt="caf", talk=30)
    mm_session(aid, t_in_day(), rng.choice([0, -1]))
    b.feature("end_ts_sentinel")
    if sessions_of_tenant:  # a copy, and a variant that sorts after or before it
        row = rng.choice(sessions_of_tenant)
        sm.append(dict(row))
        sm.append(dict(row, start_ts=row["start_ts"] + rng.choice([-60, 60])))
        b.feature("duplicate_session_key")
    logins = [r for r in mm if r["agentid"] is not None]
    if logins:
        row = rng.choice(logins)
        mm.append(dict(row, loginsessionid=row["loginsessionid"] + rng.choice(["", "-b", "!"])))
        b.feature("duplicate_login_session_id")
    if persons:
        row = rng.choice(persons)
        persons.append(dict(row, folderid=rng.choice([None, 1, 2, 4, 9, 14])))
        b.feature("duplicate_person_id")
    folder(rng.choice([2, 4, 9, 14]), rng.choice(bu_names + ["AAA", "zzz"]), rng.choice([1, 0]))
    b.feature("duplicate_folder_id")
    # '' is null: a switch, a CallUUID with a BU's DNIS, ANI and DNIS, and CDR CALLIDs
    key = resource(aid, "")
    agent_keys[aid].append(key)
    s = t_in_day()
    sm_session(key, s, s + 3600, 0, VOICE_KEYS[0])
    handled_row(key, s + 5, VOICE_KEYS[0], attempt="caf", talk=30)
    b.feature("empty_switch")
    s = t_in_day()
    for callid, ani, dnis in (("", "+15551230000", "+18005551234"), (None, "", ""),
                              (f"CALL-{seed}-e", "", "+18005559999")):
        iid = b.new_id()
        ifact.append({"interaction_id": iid, "tenant_key": tk, "media_type_key": 1,
                      "interaction_type_key": 1, "media_server_ixn_guid": callid,
                      "source_address": ani, "target_address": dnis, "start_ts": s,
                      "end_ts": s + 120})
    b.feature("empty_calluuid")
    b.feature("empty_ani_dnis")
    first = gvp_rows[gvp_conn_ids[0]]
    top = max([r["cdr_id"] for r in first] + [0])
    first.append({"cdr_id": top + 1, "callid": "", "ivr_profile": "ivr", "start_ts": s,
                  "end_ts": s + 90})
    first.append({"cdr_id": top + 2, "callid": f"CALL-{seed}-e", "ivr_profile": "ivr",
                  "start_ts": s, "end_ts": s + 61})
    first.append({"cdr_id": top + 3, "callid": None, "ivr_profile": "ivr", "start_ts": s,
                  "end_ts": rng.choice([0, -1])})
    b.feature("empty_callid")
    if first:
        row = rng.choice(first)
        first.append(dict(row, callid=rng.choice([None, "", "A", "zzz"])))
        b.feature("duplicate_cdr_id")

    _spec_53(b, seed, tenant, defaults, agent_keys, tdb, mm, handled_row, t_after)

    return Case(
        seed=seed,
        day=day,
        tenant=tenant,
        defaults=defaults,
        gim_rows=b.rows,
        gvp_rows=gvp_rows,
        features=b.features,
    )


# SPEC §5.3 seat metrics: custom metric entries a case may define (codes are arbitrary).
CUSTOM_METRICS = [
    {"name": "seats_voice_handled", "sessions": "sm_fact", "media": ["VOICE"],
     "qualifies": {"handled_media": "VOICE"}, "enabled": "monthly",
     "channel_type": 14, "service_class": 91, "activity_type": 5, "status": "AGENT_SEATS"},
    {"name": "seats_mm_any", "sessions": "mm_sessions", "qualifies": "always",
     "enabled": "daily", "channel_type": 0, "service_class": 92, "activity_type": 7,
     "status": "LOGINS"},
    {"name": "seats_chat_email_ocs", "sessions": "sm_fact", "media": ["CHAT", "EMAIL"],
     "qualifies": {"ocs": True}, "enabled": "daily", "channel_type": 15,
     "service_class": 93, "activity_type": 5, "status": "AGENT_SEATS"},
]
NEW_BUILTINS = ["seats_inbound_voice", "seats_email", "seats_sms"]


def _spec_53(b, seed, tenant, defaults, agent_keys, tdb, mm, handled_row, t_after):
    """E-mail and SMS interactions inside login sessions, the SPEC §5.3 built-ins and
    custom metrics. A second random stream: the rows made above stay those the earlier
    seeds had (this runs after every other use of the case's stream)."""
    rng = random.Random(seed * 1_000_003 + 53)
    b.rows["media_type"] += [
        {"media_type_key": 6, "media_name": "Sms", "media_name_code": "SMS"},
        {"media_type_key": 7, "media_name": "sms", "media_name_code": None},  # name only
    ]
    sms_keys, email_key = [6, 7], 3
    for sess in list(mm):
        aid, s, e = sess["agentid"], sess["created_ts"], sess["terminated_ts"]
        keys = agent_keys.get(aid) if aid is not None else None
        if not keys or sess["tenantid"] != tdb:
            continue
        for _ in range(rng.choice([0, 0, 1, 2])):
            where = rng.choice(["start", "end", "inside", "inside", "after"])
            hi = (e if e is not None else s + 86400) - 1
            if where == "start":
                t = s
            elif where == "end":
                if e is None:
                    continue
                t = e
            elif where == "inside":
                if hi < s:
                    continue
                t = rng.randint(s, min(hi, s + 4 * 3600))
            else:
                t = t_after()
            media_key = rng.choice([*sms_keys, email_key])
            b.feature("sms_media" if media_key in sms_keys else "email_handled_in_login_session")
            handled_row(rng.choice(keys), t, media_key)
    metrics = tenant["metrics"]
    for m in NEW_BUILTINS:
        if rng.random() < 0.6:
            metrics.insert(rng.randint(0, len(metrics)), m)
            b.feature("new_builtin_metrics")
    for c in rng.sample(CUSTOM_METRICS, rng.choice([0, 1, 1, 2])):
        where = rng.choice(["defaults", "tenant"])
        holder = defaults if where == "defaults" else tenant
        holder.setdefault("custom_metrics", []).append(dict(c))
        b.feature(f"custom_metric_in_{where}")
        if where == "tenant" or rng.random() < 0.8:  # defaults' entries need not be billed
            metrics.insert(rng.randint(0, len(metrics)), c["name"])


# ------------------------------------------------------------------------- loading


def _insert(conn, table: str, rows: list[dict]):
    if not rows:
        return
    columns = list(rows[0])
    query = pgsql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        pgsql.Identifier(table),
        pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns),
        pgsql.SQL(", ").join(pgsql.Placeholder() for _ in columns),
    )
    with conn.cursor() as cur:
        cur.executemany(query, [[r[c] for c in columns] for r in rows])


KEYED_GIM = (
    "sm_res_session_fact",
    "gidb_g_login_session_mm",
    "gidb_gc_agent",
    "gidb_gc_folder",
)


def load_case(case: Case, gim_dsn: str, gvp_dsns: dict[str, str]) -> None:
    """Create the GIM and GVP tables (from the repo's DDL) and insert the case's rows."""
    with psycopg.connect(gim_dsn) as conn:
        conn.execute(GIM_SCHEMA.read_text())
        for table in KEYED_GIM:  # SPEC §4: keys that should be unique may repeat
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        for table, rows in case.gim_rows.items():
            _insert(conn, table, rows)
    for conn_id, rows in case.gvp_rows.items():
        with psycopg.connect(gvp_dsns[conn_id]) as conn:
            conn.execute(GVP_SCHEMA.read_text())
            conn.execute("ALTER TABLE gvp_cdr DROP CONSTRAINT gvp_cdr_pkey")
            _insert(conn, "gvp_cdr", rows)


def server_dsn() -> str:
    return os.environ.get("BDS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def scratch_databases(case: Case, server: str | None = None, tag: str = ""):
    """Create empty databases `ref_<pid><tag>_<seed>_gim` and one per GVP conn_id; yield
    (gim_dsn, gvp_dsns); drop them afterwards."""
    server = server or server_dsn()
    base = f"ref_{os.getpid()}{tag}_{case.seed}"
    names = {"gim": f"{base}_gim"}
    for i, conn_id in enumerate(case.gvp_conn_ids):
        names[conn_id] = f"{base}_gvp{i}"
    params = conninfo_to_dict(server)
    with psycopg.connect(server, autocommit=True) as admin:
        for name in names.values():
            admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(pgsql.Identifier(name)))
            admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    try:
        dsns = {k: make_conninfo(**dict(params, dbname=v)) for k, v in names.items()}
        gim = dsns.pop("gim")
        yield gim, dsns
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            for name in names.values():
                admin.execute(
                    pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        pgsql.Identifier(name)
                    )
                )
