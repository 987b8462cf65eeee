"""Small Info Mart contents for the distributed tests: a few agents, a few days.

Rows are a pure function of the arguments (a seeded `random.Random`), made with the
plain tuples of `tests.gim`, so the same days can be run through the cluster and through
`pipeline.run_day` on local disk and compared file by file.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from tests.gim import CHAT, VOICE

SWITCHES = ("SIP_A", "SIP_B", None)


def day_start(day: dt.date, zone: str) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).timestamp())


def tenant_rows(
    tenant_key: int, tenant_dbid: int, zone: str, days: list[dt.date], *, seed: int,
    agents: int = 8,
) -> dict[str, list[tuple]]:
    """Agents in two BU folders (and one outside), chat login sessions, voice SM
    sessions with OCS and non-OCS calls, chats handled, inbound voice calls."""
    rnd = random.Random(seed)
    k0 = tenant_key * 10_000  # keys of this tenant (several tenants may share a database)
    rows: dict[str, list[tuple]] = {t: [] for t in (
        "resource_", "gidb_gc_agent", "gidb_gc_folder", "gidb_g_login_session_mm",
        "sm_res_session_fact", "interaction_resource_fact", "contact_attempt_fact",
        "interaction_fact")}
    rows["gidb_gc_folder"] = [
        (k0 + 1, tenant_dbid, "Persons", None, 1),
        (k0 + 2, tenant_dbid, "Sales", k0 + 1, 1),
        (k0 + 3, tenant_dbid, "Support", k0 + 1, 1),
        (k0 + 4, tenant_dbid, "Contractors", k0 + 1, 1),
    ]
    agent_ids = [k0 + 100 + a for a in range(agents)]
    for a, agent in enumerate(agent_ids):
        rows["resource_"].append((k0 + 10 + a, tenant_key, "AGENT", f"agent{a}", f"e{a}",
                                  SWITCHES[a % len(SWITCHES)], agent))
        if a != agents - 1:  # the last agent has no Person: default BU, a fallback
            rows["gidb_gc_agent"].append((agent, tenant_dbid, k0 + 2 + a % 3, f"agent{a}",
                                          f"e{a}", 1))
    seq = iter(range(k0 * 10 + 1, k0 * 10 + 1_000_000))
    for day in days:
        d0 = day_start(day, zone)
        for a, agent in enumerate(agent_ids):
            res = k0 + 10 + a
            for _ in range(rnd.randint(1, 3)):  # chat login sessions, some across midnight
                start = d0 + rnd.randint(-3 * 3600, 22 * 3600)
                end = None if rnd.random() < 0.05 else start + rnd.randint(600, 4 * 3600)
                rows["gidb_g_login_session_mm"].append(
                    (next(seq), f"L{next(seq)}", agent, tenant_dbid, start, end))
                for _ in range(rnd.randint(0, 3)):
                    at = start + rnd.randint(0, 3000)
                    rows["interaction_resource_fact"].append(
                        (next(seq), next(seq), tenant_key, res, CHAT, at, at + 60, 50, None))
            for _ in range(rnd.randint(0, 2)):  # voice SM sessions with outbound calls
                start = d0 + rnd.randint(0, 22 * 3600)
                end = start + rnd.randint(300, 3 * 3600)
                active = 1 if rnd.random() < 0.05 else 0
                rows["sm_res_session_fact"].append(
                    (next(seq), tenant_key, VOICE, res, start, end, end - start, active))
                for _ in range(rnd.randint(0, 2)):
                    at = start + rnd.randint(0, end - start - 1)
                    attempt = f"CA{next(seq)}" if rnd.random() < 0.7 else None
                    rows["interaction_resource_fact"].append(
                        (next(seq), next(seq), tenant_key, res, VOICE, at, at + 30, 25, attempt))
                    if attempt:
                        rows["contact_attempt_fact"].append(
                            (next(seq), tenant_key, attempt, at - 5, at + 30))
            for _ in range(rnd.randint(0, 2)):  # inbound voice calls, toll-free or not
                ixn = next(seq)
                at = d0 + rnd.randint(0, 23 * 3600)
                dnis = rnd.choice(["+18005551234", "+14155550000", "+15550000000"])
                rows["interaction_fact"].append(
                    (ixn, tenant_key, VOICE, 1, f"call{ixn}", "+12125550100", dnis, at, at + 120))
                rows["interaction_resource_fact"].append(
                    (next(seq), ixn, tenant_key, res, VOICE, at + 5, at + 120, 100, None))
    return rows


def slow_source_sql(table: str, seconds: float) -> str:
    """Turn `table` into a view that answers after `seconds` (once per query): a slow
    Info Mart, so that a task is surely running when the test kills its worker."""
    return f"""
        ALTER TABLE {table} RENAME TO {table}_data;
        CREATE FUNCTION bds_test_sleep(s float8) RETURNS boolean LANGUAGE plpgsql VOLATILE
            AS $$ BEGIN PERFORM pg_sleep(s); RETURN true; END $$;
        CREATE VIEW {table} AS SELECT * FROM {table}_data WHERE (SELECT bds_test_sleep({seconds}));
    """
