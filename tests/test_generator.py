"""The demo data generator, on a tiny scale, against scratch databases.

Why: the demo, the extraction tests and the benchmarks rely on the generator's rows
(tenant separation, the fixed odd rows, the exact density of ``sessions_per_day``),
so these are checked here rather than discovered in a failing DAG run.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from bds_metrics.demo import generator as gen

pytestmark = pytest.mark.xdist_group(name="generator")


def _server() -> str:
    return os.environ["BDS_TEST_PG_DSN"]  # set by the `pg` fixture


FIRST = date(2026, 2, 28)  # Sat + Sun: a month end; data "extracted" Monday noon UTC
DAYS = 2
AGENTS = 20
FACTS = list(gen.FACTS)


class Scratch:
    """An Info Mart and two GVP databases for one generation: three schemas of one
    scratch database (search_path in the DSN), so teardown is a single DROP DATABASE."""

    def __init__(self, database: str) -> None:
        tag = f"s{uuid.uuid4().hex[:8]}"
        dsns = []
        with psycopg.connect(make_conninfo(_server(), dbname=database), autocommit=True) as conn:
            for part in ("gim", "gvp", "gvp_eu"):
                conn.execute(f"CREATE SCHEMA {tag}_{part}")
                dsns.append(make_conninfo(_server(), dbname=database,
                                          options=f"-c search_path={tag}_{part}"))
        self.schema = f"{tag}_gim"
        self.gim, self.gvp, self.gvp_eu = dsns
        gen.create_schemas(self.gim, [self.gvp, self.gvp_eu])

    @property
    def gvp_dsns(self) -> dict[str, str]:
        return {"bds_demo_gvp": self.gvp, "bds_demo_gvp_eu": self.gvp_eu}


@pytest.fixture(scope="module")
def database(pg: str) -> Iterator[str]:
    try:
        with psycopg.connect(_server(), autocommit=True, connect_timeout=3) as conn:
            name = f"gen_t{os.getpid()}_{uuid.uuid4().hex[:8]}"
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError:
        pytest.skip(f"no PostgreSQL server at {_server()}")
    yield name
    with psycopg.connect(_server(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def demo(database: str) -> tuple[Scratch, dict[str, int]]:
    s = Scratch(database)
    counts = gen.generate(s.gim, s.gvp_dsns, FIRST, DAYS, agents_per_tenant=AGENTS, seed=7)
    return s, counts


def _one(dsn: str, sql: str, *args: object) -> tuple:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, args).fetchone()
        assert row is not None
        return row


def _all(dsn: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def _digest(dsn: str, table: str) -> str:
    key = gen.COLUMNS[table][0][0]
    rows = _all(dsn, f"SELECT * FROM {table} ORDER BY {key}")
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_tables_are_filled_and_counted(demo: tuple[Scratch, dict[str, int]]) -> None:
    s, counts = demo
    for table in [*FACTS, *gen.CONFIG]:
        (n,) = _one(s.gim, f"SELECT count(*) FROM {table}")
        assert n > 0, table
        assert n == counts[table], table
    assert _one(s.gim, "SELECT count(*) FROM media_type")[0] == 4
    # the ETL's audit: one transaction per 15 minutes, marks rising to "now"
    (n, lo, hi, steps) = _one(s.gim, "SELECT count(*), min(max_chunk_ts), max(max_chunk_ts), "
                              "count(DISTINCT max_chunk_ts) FROM ctl_audit_log")
    assert n == counts["ctl_audit_log"] == steps == (hi - lo) // 900 + 1
    assert _all(s.gim, "SELECT media_name, media_name_code FROM media_type ORDER BY 1") == [
        ("Chat", "CHAT"), ("Email", "EMAIL"), ("SMS", "SMS"), ("Voice", "VOICE")]
    assert {r[0] for r in _all(s.gim, "SELECT interaction_type_code FROM interaction_type")} == {
        "INBOUND", "OUTBOUND", "INTERNAL"}
    us = _one(s.gvp, "SELECT count(*) FROM gvp_cdr")[0]
    eu = _one(s.gvp_eu, "SELECT count(*) FROM gvp_cdr")[0]
    assert us > 0 and eu > 0
    assert (us, eu) == (counts["gvp_cdr[bds_demo_gvp]"], counts["gvp_cdr[bds_demo_gvp_eu]"])
    # indexes dropped for the load are back
    idx = {r[0] for r in _all(s.gim, "SELECT indexname FROM pg_indexes WHERE schemaname = %s",
                              s.schema)}
    assert {"sm_res_session_fact_pkey", "sm_res_session_fact_start_ts",
            "interaction_resource_fact_interaction_id"} <= idx


def test_tenants_are_separated(demo: tuple[Scratch, dict[str, int]]) -> None:
    s, _ = demo
    for table in ["resource_", *[t for t in FACTS if t != "gidb_g_login_session_mm"]]:
        keys = {r[0] for r in _all(s.gim, f"SELECT DISTINCT tenant_key FROM {table}")}
        assert keys == {101, 102}, table
    for table in ["gidb_g_login_session_mm", "gidb_gc_agent", "gidb_gc_folder"]:
        ids = {r[0] for r in _all(s.gim, f"SELECT DISTINCT tenantid FROM {table}")}
        assert ids == {1, 2}, table
    # every fact row points at a resource of its own tenant
    for table in ["sm_res_session_fact", "interaction_resource_fact"]:
        bad = _one(s.gim, f"SELECT count(*) FROM {table} f JOIN resource_ r USING (resource_key)"
                          " WHERE r.tenant_key <> f.tenant_key")[0]
        orphan = _one(s.gim, f"SELECT count(*) FROM {table} f WHERE NOT EXISTS "
                             "(SELECT 1 FROM resource_ r WHERE r.resource_key = f.resource_key)")[0]
        assert (bad, orphan) == (0, 0), table
    # MM sessions carry Person DBIDs of their own tenant (Person ids are tenant blocks)
    bad = _one(s.gim, "SELECT count(*) FROM gidb_g_login_session_mm m JOIN resource_ r "
                      "ON r.resource_cfg_dbid = m.agentid AND r.resource_type_code = 'AGENT' "
                      "WHERE r.tenant_key <> 100 + m.tenantid")[0]
    assert bad == 0
    # interactions and their resource rows agree on the tenant
    bad = _one(s.gim, "SELECT count(*) FROM interaction_resource_fact f JOIN interaction_fact i "
                      "USING (interaction_id) WHERE i.tenant_key <> f.tenant_key")[0]
    assert bad == 0


def test_same_seed_same_rows(demo: tuple[Scratch, dict[str, int]], database: str) -> None:
    s, counts = demo
    again = Scratch(database)
    assert gen.generate(again.gim, again.gvp_dsns, FIRST, DAYS, agents_per_tenant=AGENTS,
                        seed=7) == counts
    for table in [*FACTS, *gen.CONFIG]:
        assert _digest(again.gim, table) == _digest(s.gim, table), table
    assert _digest(again.gvp, "gvp_cdr") == _digest(s.gvp, "gvp_cdr")
    assert _digest(again.gvp_eu, "gvp_cdr") == _digest(s.gvp_eu, "gvp_cdr")


def test_other_seed_other_rows(demo: tuple[Scratch, dict[str, int]], database: str) -> None:
    s, _ = demo
    other = Scratch(database)
    gen.generate(other.gim, other.gvp_dsns, FIRST, DAYS, agents_per_tenant=AGENTS, seed=8,
                 tenants=["globex"])
    assert _one(other.gim, "SELECT count(DISTINCT tenant_key) FROM sm_res_session_fact")[0] == 1
    assert _one(other.gvp, "SELECT count(*) FROM gvp_cdr")[0] == 0  # globex has no IVR data
    assert _digest(other.gim, "sm_res_session_fact") != _digest(s.gim, "sm_res_session_fact")


def test_malformed_and_open_rows(demo: tuple[Scratch, dict[str, int]]) -> None:
    s, _ = demo
    for k0 in (101000, 102000):
        sm = {r[0] - k0: r[1:] for r in _all(
            s.gim, "SELECT sm_res_session_fact_key, start_ts, end_ts, active_flag, resource_key "
                   "FROM sm_res_session_fact WHERE sm_res_session_fact_key BETWEEN %s AND %s",
            k0, k0 + 999)}
        assert sm[1][1] < sm[1][0]  # END_TS < START_TS
        assert sm[2][1] is None and sm[2][2] == 1  # stuck open
        assert sm[3][1] is not None and sm[3][2] == 1  # open by flag only
        assert sm[4][1] is None and sm[4][2] == 0  # open by END_TS only
        assert sm[5][0] == sm[5][1]  # zero length
        kind = _one(s.gim, "SELECT resource_type_code FROM resource_ WHERE resource_key = %s",
                    sm[6][3])[0]
        assert kind == "QUEUE"
        mm = {r[0] - k0: r[1:] for r in _all(
            s.gim, "SELECT id, agentid, created_ts, terminated_ts FROM gidb_g_login_session_mm "
                   "WHERE id BETWEEN %s AND %s", k0, k0 + 999)}
        assert mm[1][0] is None  # no AGENTID
        assert mm[2][2] < mm[2][1]
        assert mm[3][2] is None
    # the month end and the DST edge sessions cross local midnight
    ny = ZoneInfo("America/New_York")
    start, end = _one(s.gim, "SELECT start_ts, end_ts FROM sm_res_session_fact "
                             "WHERE sm_res_session_fact_key = 101007")
    assert datetime.fromtimestamp(start, ny).date() == date(2026, 2, 28)
    assert datetime.fromtimestamp(end, ny).date() == date(2026, 3, 1)
    # sessions running at the extraction moment (next day 12:00 UTC) are open
    now = int(datetime.combine(FIRST + timedelta(days=DAYS), datetime.min.time(), UTC)
              .timestamp()) + 12 * 3600
    open_, late = _one(s.gim, "SELECT count(*) FILTER (WHERE end_ts IS NULL AND active_flag = 1 "
                              "AND sm_res_session_fact_key > %s), count(*) FILTER (WHERE "
                              "start_ts >= %s OR end_ts > %s) FROM sm_res_session_fact",
                       gen.FIRST_KEY, now, now)
    assert open_ > 0 and late == 0
    assert _one(s.gim, "SELECT count(*) FROM gidb_g_login_session_mm WHERE terminated_ts IS NULL "
                       "AND id > %s", gen.FIRST_KEY)[0] > 0


def test_agent_and_folder_oddities(demo: tuple[Scratch, dict[str, int]]) -> None:
    s, _ = demo
    folders = {r[0]: r[1:] for r in _all(s.gim, "SELECT id, name, folderid, tenantid "
                                                "FROM gidb_gc_folder")}
    ids = set(folders)
    assert folders[301] == ("Persons", None, 1)  # blacklisted root
    assert folders[315][1] == 0  # a root with parent 0
    assert folders[317][1] == 9999 and 9999 not in ids  # orphan
    assert folders[319][1] == 320 and folders[320][1] == 319  # cycle
    assert folders[321][1] == 319  # a BU name under the cycle
    assert folders[306][0] == "SUPPORT" and folders[309] == ("Collections", 306, 1)
    assert folders[310] == ("Collections", 301, 1)
    # the fixed agents: Person DBIDs 1001.. (acme) and 2001.. (globex)
    for base, fbase in ((1000, 300), (2000, 400)):
        persons = {r[0]: r[1] for r in _all(s.gim, "SELECT id, folderid FROM gidb_gc_agent")}
        assert base + 4 not in persons  # agent 3: no Person row
        assert persons[base + 5] is None  # agent 4: NULL FOLDERID
        res = _all(s.gim, "SELECT resource_key, switch_name FROM resource_ WHERE "
                          "resource_cfg_dbid = %s AND resource_type_code = 'AGENT' ORDER BY 1",
                   base + 1)
        assert len(res) == 2 and res[0][1] != res[1][1]  # agent 0 moved switch
        assert _one(s.gim, "SELECT switch_name FROM resource_ WHERE resource_cfg_dbid = %s",
                    base + 2)[0] is None  # agent 1: NULL switch
        assert _one(s.gim, "SELECT switch_name FROM resource_ WHERE resource_cfg_dbid = %s",
                    base + 3)[0] in ("SIP_Legacy", "SIP_Old_PBX")  # agent 2: unknown switch
        # a QUEUE whose config DBID equals agent 10's Person DBID, with a larger key
        rows = _all(s.gim, "SELECT resource_type_code, resource_key FROM resource_ WHERE "
                           "resource_cfg_dbid = %s ORDER BY resource_key", base + 11)
        assert [r[0] for r in rows] == ["AGENT", "QUEUE"]
        assert persons[base + 6] in (fbase + 18, fbase + 8)  # under the orphan
    kinds = {r[0] for r in _all(s.gim, "SELECT DISTINCT resource_type_code FROM resource_")}
    assert kinds == {"AGENT", "QUEUE", "ROUTE_POINT"}


def test_interactions(demo: tuple[Scratch, dict[str, int]]) -> None:
    s, _ = demo
    # voice calls carry UUID-like CallUUIDs; test calls, toll-free and BU numbers appear
    guid = _one(s.gim, "SELECT media_server_ixn_guid FROM interaction_fact WHERE "
                       "interaction_id > %s AND media_type_key = 1 LIMIT 1", gen.FIRST_KEY)[0]
    assert len(guid) == 36 and guid.count("-") == 4
    tests = _one(s.gim, "SELECT count(*) FROM interaction_fact WHERE '+15550000000' IN "
                        "(source_address, target_address)")[0]
    assert tests >= 2
    bu = _one(s.gim, "SELECT count(*) FROM interaction_fact WHERE tenant_key = 101 AND "
                     "target_address LIKE '+1800555%%'")[0]
    assert bu > 0
    # handled and not handled rows, and transfers
    zero, talk = _one(s.gim, "SELECT count(*) FILTER (WHERE talk_duration = 0), "
                             "count(*) FILTER (WHERE talk_duration > 0) FROM "
                             "interaction_resource_fact")
    assert zero > 0 and talk > zero
    # the fixed transfer: two agents with the same START_TS on call 101003
    rows = _all(s.gim, "SELECT interaction_resource_id, start_ts, talk_duration FROM "
                       "interaction_resource_fact WHERE interaction_id = 101003 ORDER BY 1")
    assert [r[0] for r in rows] == [101003, 101004] and rows[0][1] == rows[1][1]
    # outbound: attempts with one, two or no CONTACT_ATTEMPT_FACT row
    n_dup = _one(s.gim, "SELECT count(*) FROM contact_attempt_fact WHERE call_attempt_id = "
                        "'EDGE101ATTEMPTDUP'")[0]
    n_none = _one(s.gim, "SELECT count(*) FROM contact_attempt_fact WHERE call_attempt_id = "
                         "'EDGE101ATTEMPTNOCAF'")[0]
    assert (n_dup, n_none) == (2, 0)
    with_caf = _one(s.gim, "SELECT count(*) FROM interaction_resource_fact f WHERE EXISTS "
                           "(SELECT 1 FROM contact_attempt_fact c WHERE c.call_attempt_id = "
                           "f.call_attempt_id)")[0]
    assert with_caf > 0
    # every handled chat lies inside an MM login session of its agent
    outside = _one(s.gim, """
        SELECT count(*) FROM interaction_resource_fact f
        JOIN resource_ r USING (resource_key)
        WHERE f.media_type_key = 2 AND f.talk_duration > 0 AND NOT EXISTS (
            SELECT 1 FROM gidb_g_login_session_mm m WHERE m.agentid = r.resource_cfg_dbid
            AND f.start_ts >= m.created_ts AND f.start_ts < coalesce(m.terminated_ts, 2e9))
    """)[0]
    assert outside == 0
    # only some agents chat, only some dial campaigns: the two seat metrics differ
    chat, ocs = _one(s.gim, """
        SELECT count(DISTINCT r.resource_cfg_dbid) FILTER (WHERE f.media_type_key = 2),
               count(DISTINCT r.resource_cfg_dbid) FILTER (WHERE f.call_attempt_id IS NOT NULL)
        FROM interaction_resource_fact f JOIN resource_ r USING (resource_key)
        WHERE r.resource_type_code = 'AGENT' AND f.talk_duration > 0
    """)
    assert 0 < chat < 2 * AGENTS and 0 < ocs < 2 * AGENTS and chat != ocs


def test_gvp_cdrs(demo: tuple[Scratch, dict[str, int]]) -> None:
    s, _ = demo
    calls = {r[0] for r in _all(s.gim, "SELECT media_server_ixn_guid FROM interaction_fact "
                                       "WHERE tenant_key = 101 AND media_type_key = 1")}
    for dsn in (s.gvp, s.gvp_eu):
        rows = _all(dsn, "SELECT callid, start_ts, end_ts FROM gvp_cdr WHERE cdr_id > %s",
                    gen.FIRST_KEY)
        matched = sum(1 for r in rows if r[0] in calls)
        assert matched > 0.8 * len(rows)
        assert any(r[0] is None for r in rows)
        assert any(r[0] is not None and r[0] not in calls for r in rows)
    fixed = {r[0]: r[1:] for r in _all(s.gvp, "SELECT cdr_id, callid, start_ts, end_ts "
                                              "FROM gvp_cdr WHERE cdr_id < %s", gen.FIRST_KEY)}
    assert fixed[101006][2] < fixed[101006][1]  # END_TS < START_TS
    assert fixed[101007][0] is None  # no CALLID
    assert fixed[101008][2] is None  # never ended
    ny = ZoneInfo("America/New_York")
    start, end = fixed[101009][1:]
    assert datetime.fromtimestamp(start, ny).date() < datetime.fromtimestamp(end, ny).date()
    assert fixed[101001][0] in calls
    eu = {r[0] for r in _all(s.gvp_eu, "SELECT ivr_profile FROM gvp_cdr")}
    assert "acme_eu" in eu


def test_sessions_per_day_reaches_the_count(database: str) -> None:
    s = Scratch(database)
    per_day = 1500
    gen.generate(s.gim, s.gvp_dsns, FIRST, 1, agents_per_tenant=AGENTS, seed=3,
                 sessions_per_day=per_day, tenants=["globex"])
    lo = int(datetime.combine(FIRST, datetime.min.time(), UTC).timestamp())  # globex: UTC
    n, fixed = _one(s.gim, "SELECT count(*) FILTER (WHERE sm_res_session_fact_key > %s), "
                           "count(*) FILTER (WHERE sm_res_session_fact_key < %s) "
                           "FROM sm_res_session_fact WHERE start_ts >= %s AND start_ts < %s",
                    gen.FIRST_KEY, gen.FIRST_KEY, lo, lo + 86400)
    assert n == per_day
    assert fixed < 20
    # more agents than agents_per_tenant were needed, and the day before is there too
    assert _one(s.gim, "SELECT count(*) FROM resource_ WHERE resource_type_code = 'AGENT'")[0] \
        > AGENTS
    assert _one(s.gim, "SELECT count(*) FROM sm_res_session_fact WHERE start_ts < %s",
                lo)[0] > 0
