"""The dataset SQL uses the Info Mart's indexes (EXPLAIN on a year of facts).

Why: a real Info Mart holds years of facts and a day's extract reads about eight days
of them (the look-back window); a plan that scans a whole fact table is correct on a
small test table and ruinous in production. Here every fact table holds a year of rows,
appended in time order as an Info Mart grows, enough that a sequential scan would be
chosen if the query could not use the index; the statement explained is exactly the
one the extract runs (`datasets.inline` of the dataset's SQL and bind values).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import psycopg
import pytest

from bds_metrics import datasets
from tests.conftest import REPO, admin, dsn

N = 200_000  # rows per fact table, over a year
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
STEP = 365 * 86_400 // N  # seconds between consecutive facts
D0 = T0 + 181 * 86_400  # 2025-07-01: the billing day, mid-year
VALUES = {"day_start": D0, "day_end": D0 + 86_400, "lookback_start": D0 - 7 * 86_400,
          "tenant_key": 101, "tenant_dbid": 1}

GIM_ROWS = f"""
INSERT INTO media_type VALUES (1, 'Voice', 'VOICE'), (2, 'Chat', 'CHAT'), (3, 'E-mail', 'EMAIL');
INSERT INTO interaction_type VALUES (1, 'INBOUND'), (2, 'OUTBOUND'), (3, 'INTERNAL');
INSERT INTO resource_ SELECT g, 101, CASE WHEN g % 100 = 0 THEN 'QUEUE' ELSE 'AGENT' END,
       'r' || g, 'e' || g, 'SW' || g % 7, 1000 + g FROM generate_series(1, 2000) g;
INSERT INTO gidb_gc_agent SELECT 1000 + g, 1, 1 + g % 20, 'u' || g, 'e' || g, 1
  FROM generate_series(1, 2000) g;
INSERT INTO gidb_gc_folder SELECT g, 1, 'f' || g, CASE WHEN g > 1 THEN 1 END, 1
  FROM generate_series(1, 20) g;
INSERT INTO sm_res_session_fact SELECT g, 101, 1 + g % 3, 1 + g % 2000, t,
       CASE WHEN g % 97 > 0 THEN t + 3600 END, 3600, (g % 97 = 0)::int
  FROM (SELECT g, {T0} + g * {STEP} AS t FROM generate_series(1, {N}) g) s;
INSERT INTO gidb_g_login_session_mm SELECT g, 'L' || g, 1000 + g % 2000, 1, t,
       CASE WHEN g % 97 > 0 THEN t + 7200 END
  FROM (SELECT g, {T0} + g * {STEP} AS t FROM generate_series(1, {N}) g) s;
INSERT INTO interaction_fact SELECT g, 101, 1 + g % 3, 1 + g % 3, 'C' || g, '+1555',
       '+1800' || g, t, t + 300
  FROM (SELECT g, {T0} + g * {STEP} AS t FROM generate_series(1, {N}) g) s;
INSERT INTO interaction_resource_fact SELECT g, 1 + g / 2, 101, 1 + g % 2000, 1 + g / 2 % 3,
       t, t + 200, g % 4, CASE WHEN g % 5 = 0 THEN md5((g / 2)::text) END
  FROM (SELECT g, {T0} + g / 2 * {STEP} + 5 AS t FROM generate_series(1, {2 * N}) g) s;
-- CALL_ATTEMPT_IDs are 32-character hex strings, as OCS writes them
INSERT INTO contact_attempt_fact SELECT g, 101, md5(g::text), t, t + 30
  FROM (SELECT g, {T0} + g * {STEP} AS t FROM generate_series(1, {N}) g) s;
ANALYZE;
"""
GVP_ROWS = f"""
INSERT INTO gvp_cdr SELECT g, 'C' || g, 'p', t, t + 60
  FROM (SELECT g, {T0} + g * {STEP} AS t FROM generate_series(1, {N}) g) s;
ANALYZE;
"""
FACTS = {"sm_res_session_fact", "gidb_g_login_session_mm", "interaction_fact",
         "interaction_resource_fact", "contact_attempt_fact", "gvp_cdr"}
# dataset -> (database, {fact table: the index the plan must read it through})
EXPECTED = {
    "sm_fact": ("gim", {"sm_res_session_fact": "sm_res_session_fact_start_ts"}),
    "mm_sessions": ("gim", {"gidb_g_login_session_mm": "gidb_g_login_session_mm_created_ts"}),
    "handled": ("gim", {"interaction_resource_fact": "interaction_resource_fact_start_ts",
                        "contact_attempt_fact": "contact_attempt_fact_call_attempt_id"}),
    "voice_calls": ("gim", {"interaction_fact": "interaction_fact_start_ts",
                            "interaction_resource_fact":
                                "interaction_resource_fact_interaction_id"}),
    "gvp_cdrs": ("gvp", {"gvp_cdr": "gvp_cdr_start_ts"}),
}


@pytest.fixture(scope="module")
def marts(pg: str) -> Iterator[dict[str, str]]:
    """An Info Mart and a GVP database, each holding a year of facts."""
    made = {}
    for kind, rows in (("gim", GIM_ROWS), ("gvp", GVP_ROWS)):
        name = f"bdst_explain_{kind}_{os.getpid()}"
        admin(f"CREATE DATABASE {name}")
        made[kind] = name
        with psycopg.connect(dsn(name), autocommit=True) as c:
            c.execute((REPO / "bds_metrics" / "sql" / kind / "schema.sql").read_text())
            c.execute(rows)
    yield {kind: dsn(name) for kind, name in made.items()}
    for name in made.values():
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def nodes(plan: dict) -> Iterator[dict]:
    """Every node of a JSON plan, subplans included."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


@pytest.mark.parametrize("tenant", [101, None], ids=["shared-mart", "one-tenant-mart"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_window_queries_use_the_indexes(marts: dict[str, str], name: str,
                                        tenant: int | None) -> None:
    db, indexes = EXPECTED[name]
    filters = {"tenant_key": tenant, "tenant_dbid": None if tenant is None else 1}
    sql, params = datasets.bind(name, {**VALUES, **filters})
    with psycopg.connect(marts[db]) as c:
        row = c.execute("EXPLAIN (FORMAT JSON) " + datasets.inline(sql, params)).fetchone()
    assert row is not None
    plan = list(nodes(row[0][0]["Plan"]))
    shown = json.dumps(row[0], indent=1)
    seq = sorted({n["Relation Name"] for n in plan
                  if n["Node Type"] == "Seq Scan" and n["Relation Name"] in FACTS})
    assert not seq, f"{name}: sequential scan of {seq}\n{shown}"
    used = {n["Index Name"] for n in plan if "Index Name" in n}
    missing = sorted(set(indexes.values()) - used)
    assert not missing, f"{name}: does not use {missing}\n{shown}"


def test_inline_binds_integers_and_null_only() -> None:
    sql = "SELECT $1, $2 WHERE x < $10"
    params = (5, None, 3, 4, 5, 6, 7, 8, 9, -7)
    assert datasets.inline(sql, params) == (
        "SELECT (5::bigint), NULL WHERE x < (-7::bigint)")
    for bad in ("1; DROP TABLE x", 1.5, True):
        with pytest.raises(TypeError):
            datasets.inline("SELECT $1", (bad,))
    with pytest.raises(KeyError):
        datasets.inline("SELECT $2", (1,))
