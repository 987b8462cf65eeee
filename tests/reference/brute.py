"""Brute-force reference of SPEC.md §4-§7 for one tenant and one billing day.

Deliberately simple and slow: every raw table is read whole with `SELECT *`, every
filter, join and rule is plain Python, and concurrency is found by literally counting,
for every second of the day, the agents (or CDRs) active in that second.

It does not read or import bds_metrics / bds_airflow.

API
---
compute_day(gim_dsn, gvp_dsns, tenant, defaults, day) -> {file base name: exact text}
day_counts(gim_dsn, gvp_dsns, tenant, defaults, day)
    -> {"rejected": {dataset: {reason: n}}, "fallbacks": {reason: n}}

Interpretation choices where SPEC.md and docs/DECISIONS.md are both silent (the most
literal reading of SPEC was taken each time):

 R1. A setting is looked up in the tenant dict, then in `defaults`, then falls back to
     SPEC §3's example value (timezone "UTC", session_lookback_days 7, gvpdb_conn_id
     "bds_gvpdb"). tfn_prefixes / test_numbers absent = empty lists.
 R2. The day's bounds are local midnight of D and of D+1 in the tenant's zone
     (zoneinfo, fold=0), converted to integer epoch seconds.
 R3. A row is rejected only if it belongs to the dataset in the first place: the tenant
     filter, the joins (RESOURCE_ agent, MEDIA_TYPE) and the look-back/day window of
     SPEC §4 are applied first, then `duplicate_key`, then `end_before_start` /
     `no_agent_id`. The window keeps every row whose START_TS lies in it (SPEC §4: "every
     source row whose START_TS lies in the dataset's window is accounted for") except a
     closed row that validly ended at or before the day's start (START_TS <= END_TS <=
     day_start); so a closed row with END_TS < START_TS (a sentinel 0 or -1 included)
     is always counted `end_before_start`.
 R4. A multimedia session that has both a null AGENTID and TERMINATED_TS < CREATED_TS
     is counted once, as `end_before_start` (the reason DECISIONS item 6 lists first).
     (The adversarial generator never produces such a row.)
 R5. Which datasets are read: sm_fact, mm_sessions, handled, agent_switch,
     agent_resource, folder and voice_calls (so tfn/pstn) are read for every tenant,
     whatever its metrics ("each daily run extracts these datasets"); gvp_cdrs is read
     only when the tenant has a GVP metric (SPEC §3: "GVP metrics read ..."). So the
     `gvp_cdrs` rejected counts and the `cdr_without_callid` fallbacks exist only for
     tenants with a GVP metric; the sm_fact / mm_sessions rejected counts and the agent
     fallbacks exist for every tenant (fallbacks: only with business units, item 14).
 R6. When some location has `gvp`, only those locations' connections are read (the
     default `gvpdb_conn_id` is not); when none has, `gvpdb_conn_id` is read and its CDRs
     count in the default location.
 R7. The `handled` join to CONTACT_ATTEMPT_FACT applies the tenant_key filter to
     CONTACT_ATTEMPT_FACT too (it has a TENANT_KEY; DECISIONS item 8). A null
     CALL_ATTEMPT_ID never matches (SQL equality).
 R8. voice_calls: media is decided by DECISIONS item 1 on INTERACTION_FACT's
     MEDIA_TYPE_KEY (== 'VOICE'), type by INTERACTION_TYPE_CODE == 'INBOUND' exactly.
     The agent comes from INTERACTION_RESOURCE_FACT rows of the same INTERACTION_ID
     (tenant-filtered) whose resource is a tenant-filtered RESOURCE_ row of type AGENT
     and whose TALK_DURATION > 0, earliest START_TS, ties smallest
     INTERACTION_RESOURCE_ID; that IRF row's own START_TS is not windowed.
 R9. A folder chain that reaches a folder id absent from the (tenant-filtered) folder
     table is `folder_missing_parent`, also when it is the Person's own folder; a
     Person whose FOLDERID is 0 is looked up as folder 0 (and so is a missing folder
     unless a folder 0 exists). A folder with a null NAME never matches a BU. A broken
     chain sends the agent to the default BU even when a BU-named folder was seen.
 R10. `cdr_without_callid` is counted for every accepted gvp_cdrs row (of the dataset,
     before clipping) whose CALLID is null, once per row. An empty string in CALLID,
     CallUUID (MEDIA_SERVER_IXN_GUID), ANI (SOURCE_ADDRESS), DNIS (TARGET_ADDRESS) or
     SWITCH_NAME is read as null (SPEC §4), before anything else looks at the row.
 R11. `rejected` / `fallbacks` hold only the reasons whose count is > 0 (and `rejected`
     only datasets with some reason > 0).
 R12. Candidate calls for a CDR are ordered by (start_ts, callid, dnis, agent_id) with
     null dnis / null agent_id last; dnis compares by Python str order (code points).
 R13. "line break" in the CSV quoting rule is '\n' or '\r'. A quote inside a quoted
     field is doubled. Empty and None fields are written as nothing.
 R14. Agent ids in AgentIDs sort as integers. PeakFirstAt / PeakLastAt / AgentIDs are
     empty on rows whose value is 0 and on gvp_minutes rows; AgentIDs is empty on GVP
     rows and lists the enabled agents on enabled rows.
 R15. An empty `business_units` list counts as no business units (no per-BU files, no
     fallbacks).
 R16. Tier1 columns come from tenant["tier1"]["id"] / ["name"] (empty when absent),
     values are written with str().
 R17. Location switch names and RESOURCE_ switch names compare exactly (case-sensitive).
 R18. A `handled` row with any media qualifies a seats_outbound session when ocs is true
     (SPEC names no media there).
 R19. Repeated keys (SPEC §4): SM_RES_SESSION_FACT_KEY in sm_fact, GIDB_G_LOGIN_SESSION_MM
     ID in mm_sessions, CDR_ID within one GVP database, Person ID in agent_resource,
     folder ID in folder. Among the dataset's rows (after filters, joins and window)
     sharing a key, the one that sorts first by the dataset's columns in the order SPEC
     §4's table lists them (nulls last, text by code point) is kept; each other is
     counted `rejected.<dataset>.duplicate_key`. The kept row then meets the other rules.
 R20. SPEC §5.3's new built-ins (seats_inbound_voice, seats_email, seats_sms) have codes
     that SPEC does not give ("provisional codes live in the registry"): only those codes
     are read, as data, from the registry file bds_metrics/catalog.yaml (`metrics.<name>`:
     channel_type, service_class, activity_type, status). Their semantics are SPEC §5.3's
     table, written here: inbound voice = every sm_fact VOICE session; email / SMS =
     login sessions with a `handled` row of media EMAIL / SMS inside, like seats_chat.
 R21. custom_metrics (SPEC §5.3) are read from defaults and the tenant; their codes are
     the entry's. `media` filters sm_fact sessions by the dataset's media name (R8's
     upper-cased name compared exactly); `qualifies: {ocs: true}` is R18's rule;
     `{handled_media: M}` asks a handled row of media M inside the session.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg.rows import dict_row

# metric -> (ChannelType, ServiceClass, ActivityType, Status, kind, enabled row daily?)
CATALOG = {
    "seats_chat": (8, 19, 5, "AGENT_SEATS", "seat", True),
    "seats_outbound": (4, 23, 5, "AGENT_SEATS", "seat", False),
    "gvp_ports": (1, 30, 5, "PORTS", "ports", False),
    "gvp_minutes": (1, 31, 12, "MINUTES", "minutes", False),
}
GVP_METRICS = ("gvp_ports", "gvp_minutes")

# SPEC §5.1 / §5.3 seat metrics: name -> (sessions, media or None, qualifies, enabled daily?)
# qualifies: "always" | ("handled_media", MEDIA) | ("ocs",)
SEATS = {
    "seats_chat": ("mm_sessions", None, ("handled_media", "CHAT"), True),
    "seats_outbound": ("sm_fact", ["VOICE"], ("ocs",), False),
    "seats_inbound_voice": ("sm_fact", ["VOICE"], "always", True),
    "seats_email": ("mm_sessions", None, ("handled_media", "EMAIL"), True),
    "seats_sms": ("mm_sessions", None, ("handled_media", "SMS"), True),
}


def _provisional_codes() -> None:
    """R20: the codes SPEC leaves to the registry, read from its data file."""
    import pathlib

    import yaml

    path = pathlib.Path(__file__).resolve().parents[2] / "bds_metrics" / "catalog.yaml"
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["metrics"]
    for name in ("seats_inbound_voice", "seats_email", "seats_sms"):
        e = entries[name]
        CATALOG[name] = (e["channel_type"], e["service_class"], e["activity_type"],
                         e["status"], "seat", SEATS[name][3])


_provisional_codes()


def tenant_metrics(tenant, defaults):
    """(CATALOG, SEATS) with the tenant's custom metrics (defaults' and its own) added."""
    catalog, seats = dict(CATALOG), dict(SEATS)
    for c in list(defaults.get("custom_metrics") or []) + list(tenant.get("custom_metrics") or []):
        q = c["qualifies"]
        if q == "always":
            rule = "always"
        elif "ocs" in q:
            rule = ("ocs",)
        else:
            rule = ("handled_media", q["handled_media"])
        daily = c["enabled"] == "daily"
        seats[c["name"]] = (c["sessions"], c.get("media"), rule, daily)
        catalog[c["name"]] = (c["channel_type"], c["service_class"], c["activity_type"],
                              c["status"], "seat", daily)
    return catalog, seats

BILLING_HEADER = (
    "RecordDate,Tier1AccountID,Tier1AccountName,Tier2AccountID,Tier2AccountName,"
    "Tier3AccountID,Tier3AccountName,Region,MetricName,ChannelType,ServiceClass,"
    "ActivityType,Status,AgentGroupName,MessageSize"
)
AUDIT_HEADER = (
    "MetricName,Region,Tier3AccountID,AgentGroupName,MessageSize,PeakFirstAt,PeakLastAt,AgentIDs"
)

GIM_TABLES = [
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


class UnmappedSessionError(Exception):
    """A qualifying, non-empty session maps to no location (tenant without default)."""


class ConfigError(Exception):
    pass


# ----------------------------------------------------------------------------- helpers


def setting(tenant, defaults, key, fallback):
    if key in tenant and tenant[key] is not None:
        return tenant[key]
    if key in defaults and defaults[key] is not None:
        return defaults[key]
    return fallback


def day_bounds(day: dt.date, tzname: str) -> tuple[int, int]:
    tz = ZoneInfo(tzname)
    nxt = day + dt.timedelta(days=1)
    start = dt.datetime(day.year, day.month, day.day, 0, 0, 0, tzinfo=tz)
    end = dt.datetime(nxt.year, nxt.month, nxt.day, 0, 0, 0, tzinfo=tz)
    return int(start.timestamp()), int(end.timestamp())


def iso_utc(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_table(dsn: str, table: str) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT * FROM {table}")  # table names are constants above
            return list(cur.fetchall())


def csv_field(value) -> str:
    text = "" if value is None else str(value)
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_text(header: str, rows: list[list]) -> str:
    lines = [header]
    for row in rows:
        lines.append(",".join(csv_field(v) for v in row))
    return "".join(line + "\n" for line in lines)


def add_count(counter: dict, key: str, n: int = 1):
    counter[key] = counter.get(key, 0) + n


# ------------------------------------------------------------------------ extraction


def in_interval_window(start, end, is_open, day_start, day_end, lookback_start):
    """SPEC §4 interval datasets: START_TS < day_end, START_TS >= day_start - look-back,
    and either open or END_TS > day_start; a row ending before it starts is in the window
    too (it is accounted for, as rejected: R3)."""
    if start is None:
        return False
    if not (start < day_end and start >= lookback_start):
        return False
    if is_open:
        return True
    return end is not None and (end > day_start or end < start)


EMPTY_IS_NULL = {
    "resource_": ("switch_name",),
    "interaction_fact": ("media_server_ixn_guid", "source_address", "target_address"),
    "gvp_cdr": ("callid",),
}


def null_if_empty(table: str, rows: list[dict]) -> list[dict]:
    """R10: '' means null in the columns SPEC §4 names."""
    cols = EMPTY_IS_NULL.get(table, ())
    return [{k: (None if k in cols and v == "" else v) for k, v in r.items()} for r in rows]


def sort_value(v):
    """R19: nulls last; everything else in its natural (code point for text) order."""
    return (1, 0) if v is None else (0, v)


def first_of_each_key(rows: list[dict], key, columns: list[str], dataset: str, rejected):
    """R19: the row of each key that sorts first by `columns`; the others are counted."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    out = []
    for k in sorted(groups, key=sort_value):
        group = sorted(groups[k], key=lambda r: tuple(sort_value(r[c]) for c in columns))
        out.append(group[0])
        if len(group) > 1 and k is not None:
            add_count(rejected.setdefault(dataset, {}), "duplicate_key", len(group) - 1)
        elif k is None:  # a missing key repeats nothing
            out.extend(group[1:])
    return out


def in_event_window(start, day_end, lookback_start):
    return start is not None and lookback_start <= start < day_end


def extract(gim_dsn, gvp_dsns, tenant, defaults, day):
    """All the datasets of SPEC §4 for one day, as lists of dicts, plus rejected counts."""
    tzname = setting(tenant, defaults, "timezone", "UTC")
    lookback_days = int(setting(tenant, defaults, "session_lookback_days", 7))
    day_start, day_end = day_bounds(day, tzname)
    lookback_start = day_start - lookback_days * 86400

    gim_cfg = tenant.get("gim") or {}
    tenant_key = gim_cfg.get("tenant_key")
    tenant_dbid = gim_cfg.get("tenant_dbid")

    raw = {t: null_if_empty(t, read_table(gim_dsn, t)) for t in GIM_TABLES}

    def by_tenant_key(rows):
        if tenant_key is None:
            return rows
        return [r for r in rows if r["tenant_key"] == tenant_key]

    def by_tenant_dbid(rows):
        if tenant_dbid is None:
            return rows
        return [r for r in rows if r["tenantid"] == tenant_dbid]

    # DECISIONS 1: upper(coalesce(media_name_code, media_name))
    media = {}
    for m in raw["media_type"]:
        name = m["media_name_code"] if m["media_name_code"] is not None else m["media_name"]
        media[m["media_type_key"]] = name.upper() if name is not None else None
    itype = {t["interaction_type_key"]: t["interaction_type_code"] for t in raw["interaction_type"]}

    resources = by_tenant_key(raw["resource_"])
    agent_resources = {
        r["resource_key"]: r for r in resources if r["resource_type_code"] == "AGENT"
    }

    rejected: dict[str, dict[str, int]] = {}

    # sm_fact
    sm_rows = []
    for s in by_tenant_key(raw["sm_res_session_fact"]):
        res = agent_resources.get(s["resource_key"])
        if res is None or s["media_type_key"] not in media:
            continue
        is_open = s["active_flag"] == 1 or s["end_ts"] is None
        if not in_interval_window(
            s["start_ts"], s["end_ts"], is_open, day_start, day_end, lookback_start
        ):
            continue
        sm_rows.append(
            {
                "session_id": s["sm_res_session_fact_key"],
                "agent_id": res["resource_cfg_dbid"],
                "media": media[s["media_type_key"]],
                "switch_name": res["switch_name"],
                "start_ts": s["start_ts"],
                "end_ts": None if is_open else s["end_ts"],
            }
        )
    sm_fact = []
    sm_columns = ["session_id", "agent_id", "media", "switch_name", "start_ts", "end_ts"]
    for row in first_of_each_key(
        sm_rows, lambda r: r["session_id"], sm_columns, "sm_fact", rejected
    ):
        if row["end_ts"] is not None and row["end_ts"] < row["start_ts"]:
            add_count(rejected.setdefault("sm_fact", {}), "end_before_start")
            continue
        sm_fact.append(row)

    # mm_sessions
    mm_sessions = []
    mm_rows = [
        m
        for m in by_tenant_dbid(raw["gidb_g_login_session_mm"])
        if in_interval_window(
            m["created_ts"], m["terminated_ts"], m["terminated_ts"] is None, day_start,
            day_end, lookback_start,
        )
    ]
    # R19: the dataset's columns are login_session_id, agent_id, start_ts, end_ts
    mm_columns = ["loginsessionid", "agentid", "created_ts", "terminated_ts"]
    for m in first_of_each_key(mm_rows, lambda r: r["id"], mm_columns, "mm_sessions", rejected):
        is_open = m["terminated_ts"] is None
        if not is_open and m["terminated_ts"] < m["created_ts"]:
            add_count(rejected.setdefault("mm_sessions", {}), "end_before_start")
            continue
        if m["agentid"] is None:
            add_count(rejected.setdefault("mm_sessions", {}), "no_agent_id")
            continue
        mm_sessions.append(
            {
                "login_session_id": m["loginsessionid"],
                "agent_id": m["agentid"],
                "start_ts": m["created_ts"],
                "end_ts": m["terminated_ts"],
            }
        )

    # agent_switch (DECISIONS 3): the agent's AGENT resource row with the largest key
    agent_switch = {}
    best_key = {}
    for r in agent_resources.values():
        aid = r["resource_cfg_dbid"]
        if aid not in best_key or r["resource_key"] > best_key[aid]:
            best_key[aid] = r["resource_key"]
            agent_switch[aid] = r["switch_name"]

    # handled
    attempt_ids = set()
    for c in by_tenant_key(raw["contact_attempt_fact"]):
        if c["call_attempt_id"] is not None:
            attempt_ids.add(c["call_attempt_id"])
    irf_rows = by_tenant_key(raw["interaction_resource_fact"])
    handled = []
    for r in irf_rows:
        if r["talk_duration"] is None or not r["talk_duration"] > 0:
            continue
        res = agent_resources.get(r["resource_key"])
        if res is None or r["media_type_key"] not in media:
            continue
        if not in_event_window(r["start_ts"], day_end, lookback_start):
            continue
        ocs = r["call_attempt_id"] is not None and r["call_attempt_id"] in attempt_ids
        handled.append(
            {
                "agent_id": res["resource_cfg_dbid"],
                "media": media[r["media_type_key"]],
                "start_ts": r["start_ts"],
                "ocs": ocs,
            }
        )

    # agent_resource and folder (whole tables of the tenant)
    persons = {}
    person_columns = ["id", "folderid", "username", "employeeid"]
    for p in first_of_each_key(
        by_tenant_dbid(raw["gidb_gc_agent"]), lambda r: r["id"], person_columns,
        "agent_resource", rejected,
    ):
        persons[p["id"]] = p["folderid"]
    folders = {}
    for f in first_of_each_key(
        by_tenant_dbid(raw["gidb_gc_folder"]), lambda r: r["id"], ["id", "name", "folderid"],
        "folder", rejected,
    ):
        folders[f["id"]] = (f["name"], f["folderid"])

    # voice_calls
    voice_calls = []
    for f in by_tenant_key(raw["interaction_fact"]):
        if media.get(f["media_type_key"]) != "VOICE":
            continue
        if itype.get(f["interaction_type_key"]) != "INBOUND":
            continue
        if not in_event_window(f["start_ts"], day_end, lookback_start):
            continue
        parts = []
        for r in irf_rows:
            if r["interaction_id"] != f["interaction_id"]:
                continue
            if r["talk_duration"] is None or not r["talk_duration"] > 0:
                continue
            if r["resource_key"] not in agent_resources:
                continue
            parts.append(r)
        parts.sort(key=lambda r: (r["start_ts"], r["interaction_resource_id"]))
        agent_id = agent_resources[parts[0]["resource_key"]]["resource_cfg_dbid"] if parts else None
        voice_calls.append(
            {
                "callid": f["media_server_ixn_guid"],
                "ani": f["source_address"],
                "dnis": f["target_address"],
                "start_ts": f["start_ts"],
                "end_ts": f["end_ts"],
                "agent_id": agent_id,
            }
        )

    tfn_prefixes = tenant.get("tfn_prefixes") or []
    test_numbers = tenant.get("test_numbers") or []
    tfn_durations, pstn_durations = [], []
    for c in voice_calls:
        if c["ani"] in test_numbers or c["dnis"] in test_numbers:
            continue
        row = dict(c)
        row["duration"] = None if c["end_ts"] is None else c["end_ts"] - c["start_ts"]
        is_tfn = c["dnis"] is not None and any(c["dnis"].startswith(p) for p in tfn_prefixes)
        (tfn_durations if is_tfn else pstn_durations).append(row)

    # gvp_cdrs
    gvp_cdrs = []
    metrics = tenant.get("metrics") or []
    if any(m in GVP_METRICS for m in metrics):
        for conn_id, location in gvp_sources(tenant, defaults):
            in_window = [
                c
                for c in null_if_empty("gvp_cdr", read_table(gvp_dsns[conn_id], "gvp_cdr"))
                if in_interval_window(
                    c["start_ts"], c["end_ts"], c["end_ts"] is None, day_start, day_end,
                    lookback_start,
                )
            ]
            cdr_columns = ["cdr_id", "callid", "start_ts", "end_ts"]
            for c in first_of_each_key(
                in_window, lambda r: r["cdr_id"], cdr_columns, "gvp_cdrs", rejected
            ):
                is_open = c["end_ts"] is None
                if not is_open and c["end_ts"] < c["start_ts"]:
                    add_count(rejected.setdefault("gvp_cdrs", {}), "end_before_start")
                    continue
                gvp_cdrs.append(
                    {
                        "cdr_id": c["cdr_id"],
                        "callid": c["callid"],
                        "location": location,
                        "start_ts": c["start_ts"],
                        "end_ts": c["end_ts"],
                    }
                )

    return {
        "day_start": day_start,
        "day_end": day_end,
        "sm_fact": sm_fact,
        "mm_sessions": mm_sessions,
        "handled": handled,
        "agent_switch": agent_switch,
        "persons": persons,
        "folders": folders,
        "voice_calls": voice_calls,
        "tfn_durations": tfn_durations,
        "pstn_durations": pstn_durations,
        "gvp_cdrs": gvp_cdrs,
        "rejected": rejected,
    }


# ------------------------------------------------------------------- configuration


def all_locations(tenant):
    """[(region code, location dict)] in config order."""
    out = []
    for region in tenant.get("regions") or []:
        for loc in region.get("locations") or []:
            out.append((region["code"], loc))
    return out


def default_location(tenant):
    for _region, loc in all_locations(tenant):
        if not loc.get("switches"):
            return loc["code"]
    return None


def region_of_location(tenant, location_code):
    for region, loc in all_locations(tenant):
        if loc["code"] == location_code:
            return region
    raise KeyError(location_code)


def location_of_switch(tenant, switch):
    """The location listing the switch; else the default location (may be None)."""
    if switch is not None:
        for _region, loc in all_locations(tenant):
            if switch in (loc.get("switches") or []):
                return loc["code"]
    return default_location(tenant)


def gvp_sources(tenant, defaults):
    """[(conn_id, location code)] of the GVP connections to read."""
    with_gvp = [
        (loc["gvp"]["conn_id"], loc["code"])
        for _region, loc in all_locations(tenant)
        if loc.get("gvp")
    ]
    if with_gvp:
        conn_ids = [c for c, _ in with_gvp]
        if len(set(conn_ids)) != len(conn_ids):
            raise ConfigError("two locations with the same GVP conn_id")
        return with_gvp
    default_loc = default_location(tenant)
    if default_loc is None:
        raise ConfigError("GVP metric without a GVP location or a default location")
    return [(setting(tenant, defaults, "gvpdb_conn_id", "bds_gvpdb"), default_loc)]


def business_units(tenant):
    return list(tenant.get("business_units") or [])


def default_bu_id(tenant):
    return f"{tenant['id']}_BU_0"


# ------------------------------------------------------------------ business units


def agent_bu(agent_id, data, tenant):
    """(bu id, fallback reason or None) of one agent, SPEC §6 and DECISIONS 12-14."""
    default = default_bu_id(tenant)
    persons, folders = data["persons"], data["folders"]
    if agent_id not in persons:
        return default, "agent_without_person"
    folder_id = persons[agent_id]
    if folder_id is None:
        return default, None
    names_upwards = []
    seen = set()
    current = folder_id
    while True:
        if current in seen:
            return default, "folder_cycle"
        if current not in folders:
            return default, "folder_missing_parent"
        seen.add(current)
        name, parent = folders[current]
        names_upwards.append(name)
        if parent is None or parent == 0:
            break
        current = parent
    path_from_root = list(reversed(names_upwards))
    for name in path_from_root:
        if name is None:
            continue
        for bu in business_units(tenant):
            if same_name(name, str(bu["name"])):
                return bu["id"], None
    return default, None


def same_name(a, b):
    """SPEC §6: NFC, outer white space removed, case-folded, on both sides."""
    def key(s):
        return unicodedata.normalize("NFC", unicodedata.normalize("NFC", s).strip().casefold())
    return key(a) == key(b)


def dnis_bu(dnis, tenant):
    """The BU whose dnis prefix is the longest one DNIS starts with, else None."""
    if dnis is None:
        return None
    best, best_len = None, -1
    for bu in business_units(tenant):
        for prefix in bu.get("dnis") or []:
            if dnis.startswith(prefix) and len(prefix) > best_len:
                best, best_len = bu["id"], len(prefix)
    return best


def cdr_bu(cdr, data, tenant):
    """(bu id, fallback reason or None) of one CDR."""
    default = default_bu_id(tenant)
    if cdr["callid"] is None:
        return default, "cdr_without_callid"
    candidates = [
        c for c in data["tfn_durations"] + data["pstn_durations"] if c["callid"] == cdr["callid"]
    ]

    def order(c):
        return (
            c["start_ts"],
            c["callid"],
            (1, "") if c["dnis"] is None else (0, c["dnis"]),
            (1, 0) if c["agent_id"] is None else (0, c["agent_id"]),
        )

    candidates.sort(key=order)
    for c in candidates:
        bu = dnis_bu(c["dnis"], tenant)
        if bu is not None:
            return bu, None
        if c["agent_id"] is not None:
            bu, _reason = agent_bu(c["agent_id"], data, tenant)
            if bu != default:
                return bu, None
    return default, None


# ------------------------------------------------------------------------ metrics


def handled_inside(h, start, end, day_end):
    """SPEC §5.1: start <= t < end and t < day_end (open: start <= t < day_end)."""
    t = h["start_ts"]
    if t < start or t >= day_end:
        return False
    return end is None or t < end


def qualifying_seat_sessions(seat, data, tenant):
    """[(agent_id, clipped start, clipped end, region code)] of one seat metric.

    seat: (sessions, media, qualifies, enabled daily) of SEATS (SPEC §5.1, §5.3)."""
    day_start, day_end = data["day_start"], data["day_end"]
    sessions, media, rule, _daily = seat
    if sessions == "mm_sessions":
        raw = []
        for s in data["mm_sessions"]:
            switch = data["agent_switch"].get(s["agent_id"])
            raw.append((s, switch))
    else:
        raw = [(s, s["switch_name"]) for s in data["sm_fact"] if s["media"] in media]
    if rule == "always":
        wanted = None
    elif rule[0] == "ocs":
        wanted = [h for h in data["handled"] if h["ocs"]]
    else:
        wanted = [h for h in data["handled"] if h["media"] == rule[1]]

    out = []
    for s, switch in raw:
        qualifies = wanted is None or any(
            h["agent_id"] == s["agent_id"]
            and handled_inside(h, s["start_ts"], s["end_ts"], day_end)
            for h in wanted
        )
        if not qualifies:
            continue
        end = day_end if s["end_ts"] is None else s["end_ts"]
        start = max(s["start_ts"], day_start)
        end = min(end, day_end)
        if end <= start:
            continue
        location = location_of_switch(tenant, switch)
        if location is None:
            raise UnmappedSessionError(f"session maps to no location: switch {switch!r}")
        out.append((s["agent_id"], start, end, region_of_location(tenant, location)))
    return out


def seat_peak(sessions, day_start, day_end):
    """sessions: [(agent_id, start, end)] already clipped to the day.

    Returns (peak, first second, last second, agents at first second, enabled agents)."""
    n = day_end - day_start
    active_by_agent = {}
    for agent_id, start, end in sessions:
        if agent_id not in active_by_agent:
            active_by_agent[agent_id] = np.zeros(n, dtype=bool)
        active_by_agent[agent_id][start - day_start : end - day_start] = True  # union = merge
    counts = np.zeros(n, dtype=np.int64)
    for active in active_by_agent.values():
        counts += active
    enabled = sorted(a for a, active in active_by_agent.items() if active.any())
    peak = int(counts.max()) if n else 0
    if peak == 0:
        return 0, None, None, [], enabled
    seconds = [i for i in np.nonzero(counts == peak)[0]]
    first, last = int(seconds[0]), int(seconds[-1])
    at_first = sorted(a for a, active in active_by_agent.items() if active[first])
    return peak, day_start + first, day_start + last, at_first, enabled


def port_peak(intervals, day_start, day_end):
    """intervals: [(start, end)] already clipped; each counts on its own (no merging)."""
    n = day_end - day_start
    counts = np.zeros(n, dtype=np.int64)
    for start, end in intervals:
        counts[start - day_start : end - day_start] += 1
    peak = int(counts.max()) if n else 0
    if peak == 0:
        return 0, None, None
    seconds = np.nonzero(counts == peak)[0]
    return peak, day_start + int(seconds[0]), day_start + int(seconds[-1])


def clipped_cdrs(data, tenant):
    """[(cdr, clipped start, clipped end, region)] of the non-empty clipped CDRs."""
    day_start, day_end = data["day_start"], data["day_end"]
    out = []
    for c in data["gvp_cdrs"]:
        end = day_end if c["end_ts"] is None else c["end_ts"]
        start = max(c["start_ts"], day_start)
        end = min(end, day_end)
        if end <= start:
            continue
        out.append((c, start, end, region_of_location(tenant, c["location"])))
    return out


def scopes(tenant):
    """[(Tier3AccountID or None, Tier3AccountName or None)]: tenant, BUs, default BU."""
    out = [(None, None)]
    bus = business_units(tenant)
    if bus:
        for bu in bus:
            out.append((bu["id"], bu["name"]))
        out.append((default_bu_id(tenant), "Default"))
    return out


def metric_rows(metric, data, tenant, agent_bus, cdr_bus, catalog, seats):
    """{scope id: [(region, agent group, value, first, last, agent ids string)]}."""
    kind = catalog[metric][4]
    enabled_daily = catalog[metric][5]
    day_start, day_end = data["day_start"], data["day_end"]
    regions = [r["code"] for r in tenant.get("regions") or []]
    result = {}
    if kind == "seat":
        sessions = qualifying_seat_sessions(seats[metric], data, tenant)
    else:
        cdrs = clipped_cdrs(data, tenant)
    for scope_id, _name in scopes(tenant):
        rows = []
        for region in regions:
            if kind == "seat":
                mine = [
                    (a, s, e)
                    for a, s, e, r in sessions
                    if r == region and (scope_id is None or agent_bus[a] == scope_id)
                ]
                peak, first, last, at_first, enabled = seat_peak(mine, day_start, day_end)
                rows.append(
                    (
                        region,
                        1,
                        peak,
                        iso_utc(first) if peak else "",
                        iso_utc(last) if peak else "",
                        " ".join(str(a) for a in at_first) if peak else "",
                    )
                )
                if enabled_daily:
                    agent_ids = " ".join(str(a) for a in enabled)
                    rows.append((region, 2, len(enabled), "", "", agent_ids))
            else:
                mine = [
                    (c, s, e)
                    for c, s, e, r in cdrs
                    if r == region
                    and (scope_id is None or cdr_bus[c["cdr_id"], c["location"]] == scope_id)
                ]
                if kind == "ports":
                    peak, first, last = port_peak([(s, e) for _c, s, e in mine], day_start, day_end)
                    rows.append(
                        (
                            region,
                            1,
                            peak,
                            iso_utc(first) if peak else "",
                            iso_utc(last) if peak else "",
                            "",
                        )
                    )
                else:
                    minutes = sum(math.ceil((e - s) / 60) for _c, s, e in mine)
                    rows.append((region, 1, minutes, "", "", ""))
        result[scope_id] = rows
    return result


def compute(gim_dsn, gvp_dsns, tenant, defaults, day):
    data = extract(gim_dsn, gvp_dsns, tenant, defaults, day)
    has_bus = bool(business_units(tenant))

    # agent -> BU for every agent that can appear in a seat metric; fallbacks once per agent
    fallbacks: dict[str, int] = {}
    agent_bus = {}
    day_agents = sorted(
        {s["agent_id"] for s in data["sm_fact"]} | {s["agent_id"] for s in data["mm_sessions"]}
    )
    for agent_id in day_agents:
        bu, reason = agent_bu(agent_id, data, tenant)
        agent_bus[agent_id] = bu
        if has_bus and reason is not None:
            add_count(fallbacks, reason)

    # CDR -> BU; fallbacks once per CDR row
    cdr_bus = {}
    for c in data["gvp_cdrs"]:
        bu, reason = cdr_bu(c, data, tenant)
        cdr_bus[c["cdr_id"], c["location"]] = bu
        if has_bus and reason is not None:
            add_count(fallbacks, reason)

    metrics = list(tenant.get("metrics") or [])
    catalog, seats = tenant_metrics(tenant, defaults)
    per_metric = {m: metric_rows(m, data, tenant, agent_bus, cdr_bus, catalog, seats)
                  for m in metrics}

    tier1 = tenant.get("tier1") or {}
    tier1_id = "" if tier1.get("id") is None else str(tier1.get("id"))
    tier1_name = "" if tier1.get("name") is None else str(tier1.get("name"))
    record_date = day.strftime("%Y-%m-%d")
    stamp = day.strftime("%Y%m%d")

    files = {}
    audit_rows = []
    for metric in metrics:
        channel, service, activity, status, _kind, _daily = catalog[metric]
        for scope_id, scope_name in scopes(tenant):
            billing = []
            for region, group, value, first, last, agents in per_metric[metric][scope_id]:
                billing.append(
                    [
                        record_date,
                        tier1_id,
                        tier1_name,
                        tenant["id"],
                        tenant.get("name", ""),
                        scope_id or "",
                        scope_name or "",
                        region,
                        metric,
                        channel,
                        service,
                        activity,
                        status,
                        group,
                        value,
                    ]
                )
                audit_rows.append(
                    [metric, region, scope_id or "", group, value, first, last, agents]
                )
            prefix = tenant["id"] if scope_id is None else scope_id
            files[f"{prefix}_{metric}_{stamp}.csv"] = csv_text(BILLING_HEADER, billing)
    files[f"audit_{stamp}.csv"] = csv_text(AUDIT_HEADER, audit_rows)

    counts = {"rejected": data["rejected"], "fallbacks": fallbacks}
    return files, counts


# ------------------------------------------------------------------------------ API


def compute_day(
    gim_dsn: str, gvp_dsns: dict[str, str], tenant: dict, defaults: dict, day: dt.date
) -> dict[str, str]:
    """Every daily billing CSV and the audit CSV of one tenant and day: {base name: text}."""
    files, _counts = compute(gim_dsn, gvp_dsns, tenant, defaults, day)
    return files


def day_counts(
    gim_dsn: str, gvp_dsns: dict[str, str], tenant: dict, defaults: dict, day: dt.date
) -> dict:
    """{"rejected": {dataset: {reason: n}}, "fallbacks": {reason: n}} of one day."""
    _files, counts = compute(gim_dsn, gvp_dsns, tenant, defaults, day)
    return counts
