"""Every source row is accounted for (SPEC §4), on the real PostgreSQL.

A row whose START_TS lies in an interval dataset's window is in the Parquet file or
counted in `rejected` (a sentinel END_TS included); a repeated key keeps the row that
sorts first by all its columns and counts the others as `duplicate_key`; text that is
not valid UTF-8 (a SQL_ASCII Info Mart) is repaired and counted under `repaired`; ''
means null in CALLID, CallUUID, ANI, DNIS and SWITCH_NAME. Expected values are computed
here in Python from the generated rows, never by re-running the dataset SQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bds_metrics import datasets, pipeline
from bds_metrics.config import parse_config
from tests.conftest import REPO, admin, dsn
from tests.gim import insert

CASES = Path(__file__).parent / "data" / "cases" / "rows"

D0 = 1_772_668_800  # 2026-03-05T00:00:00Z
D1 = D0 + 86_400
LB = D0 - 7 * 86_400
I32 = (-(2**31), 2**31 - 1)
VALUES = {"day_start": D0, "day_end": D1, "lookback_start": LB, "tenant_key": 101,
          "tenant_dbid": 1}
KEYED = {"sm_res_session_fact": "gim", "gidb_g_login_session_mm": "gim",
         "gidb_gc_agent": "gim", "gidb_gc_folder": "gim", "gvp_cdr": "gvp"}
LATIN1 = {"client_encoding": "LATIN1"}  # str U+0000..U+00FF stored as single bytes
_names = itertools.count()


# ---------------------------------------------------------------- databases


def legacy_db(schema: str, made: list[str]) -> str:
    """A SQL_ASCII database (a legacy Info Mart: bytes stored unchecked) with the schema,
    and without the primary keys of the tables whose keys SPEC §4 says may repeat."""
    import psycopg

    name = f"bdst_{os.getpid()}_ascii_{next(_names)}"
    admin(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
          "TEMPLATE template0")
    made.append(name)
    d = dsn(name)
    with psycopg.connect(d, autocommit=True, client_encoding="UTF8") as c:
        c.execute((REPO / "sql" / schema / "schema.sql").read_text())
        for table, where in KEYED.items():
            if where == schema:
                c.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
    return d


@pytest.fixture
def legacy():
    made: list[str] = []
    yield lambda schema: legacy_db(schema, made)
    for name in made:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def truncate(d: str, *tables: str) -> None:
    import psycopg

    with psycopg.connect(d, autocommit=True) as c:
        c.execute(f"TRUNCATE {', '.join(tables)}")


# ---------------------------------------------------------------- the rules, in Python


def stored(text: str | None) -> bytes | None:
    return None if text is None else text.encode("latin-1")


def shown(raw: bytes | None) -> str | None:
    """What the Parquet file holds for stored bytes: invalid UTF-8 replaced by U+FFFD."""
    return None if raw is None else raw.decode("utf-8", errors="replace")


def bad_utf8(raw: bytes | None) -> bool:
    if raw is None:
        return False
    try:
        raw.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def empty_is_null(raw: bytes | None) -> bytes | None:
    return None if raw == b"" else raw


def nulls_last(row: tuple) -> tuple:
    return tuple((1, b"") if v is None else (0, v) for v in row)


def first_per_key(rows: list[tuple]) -> tuple[list[tuple], int]:
    """rows: (key, *columns). The row of each key that sorts first by its columns (nulls
    last, text by byte), in key order, and how many rows repeated a key."""
    by_key: dict = {}
    for r in rows:
        by_key.setdefault(r[0], []).append(r)
    kept = [min(g, key=nulls_last) for _, g in sorted(by_key.items())]
    return kept, len(rows) - len(kept)


def closed_before_day(start: int, end: int | None, open_: bool) -> bool:
    """A closed row that validly ended at or before the day's start: outside the window."""
    return not open_ and end is not None and start <= end <= D0


def started_in_window(start: int | None) -> bool:
    return start is not None and LB <= start < D1


def count(reasons: dict[str, int], reason: str, n: int = 1) -> None:
    if n:
        reasons[reason] = reasons.get(reason, 0) + n


# ---------------------------------------------------------------- generated rows

TS = st.one_of(
    st.sampled_from([D0, D0 - 1, D0 + 1, D1 - 1, D1, D1 + 1, LB, LB - 1, LB + 1, 0, -1,
                     *I32, None]),
    st.integers(LB - 3_600, D1 + 3_600),
)
TEXT = st.one_of(st.none(), st.text(alphabet="ab \xe9\xff", max_size=3))  # '' included
KEY = st.integers(1, 5)  # few keys: repeats are common

SM = st.tuples(KEY, st.sampled_from([101, 101, 202]), st.sampled_from([10, 10, 11, 12, 13, 14]),
               st.sampled_from([1, 2]), TS, TS, st.sampled_from([0, 0, 1, None, 2]))
MM = st.tuples(KEY, TEXT, st.sampled_from([1001, 1002, None]), st.sampled_from([1, 1, 2]),
               TS, TS)
CDR = st.tuples(KEY, TEXT, TS, TS)
MEDIA = {1: "VOICE", 2: "CHAT"}


def expect_sm_fact(switches: dict[int, str | None], rows: list[tuple]) -> dict:
    """Resources: 10 and 12 agents of tenant 101 (12 without a Person DBID), 11 a queue,
    13 an agent of tenant 202, 14 absent."""
    agents = {10: (1001, switches[10]), 12: (None, switches[12])}
    window = []
    for key, tk, rk, media, start, end, flag in rows:
        if tk != 101 or rk not in agents or not started_in_window(start):
            continue
        open_ = flag == 1 or end is None
        if closed_before_day(start, end, open_):
            continue
        agent, switch = agents[rk]
        window.append((key, agent, MEDIA[media].encode(), empty_is_null(stored(switch)),
                       start, None if open_ else end))
    kept, dups = first_per_key(window)
    rejected: dict[str, int] = {}
    count(rejected, "duplicate_key", dups)
    rows_out, repaired = [], 0
    for key, agent, media, switch, start, end in kept:
        if agent is None:
            count(rejected, "no_agent_id")
        elif end is not None and end < start:
            count(rejected, "end_before_start")
        else:
            rows_out.append({"session_id": key, "agent_id": agent, "media": media.decode(),
                             "switch_name": shown(switch), "start_ts": start, "end_ts": end})
            repaired += bad_utf8(switch)
    return {"window": len(window), "rows": rows_out, "rejected": rejected,
            "repaired": {"switch_name": repaired} if repaired else {}}


def expect_mm(rows: list[tuple]) -> dict:
    window = [(key, stored(login), agent, start, end)
              for key, login, agent, tenant, start, end in rows
              if tenant == 1 and started_in_window(start)
              and not closed_before_day(start, end, end is None)]
    kept, dups = first_per_key(window)
    rejected: dict[str, int] = {}
    count(rejected, "duplicate_key", dups)
    rows_out, repaired = [], 0
    for _key, login, agent, start, end in kept:
        if agent is None:
            count(rejected, "no_agent_id")
        elif end is not None and end < start:
            count(rejected, "end_before_start")
        else:
            rows_out.append({"login_session_id": shown(login), "agent_id": agent,
                             "start_ts": start, "end_ts": end})
            repaired += bad_utf8(login)
    return {"window": len(window), "rows": rows_out, "rejected": rejected,
            "repaired": {"login_session_id": repaired} if repaired else {}}


def expect_cdrs(rows: list[tuple], location: str = "loc") -> dict:
    window = [(key, empty_is_null(stored(callid)), start, end)
              for key, callid, start, end in rows
              if started_in_window(start) and not closed_before_day(start, end, end is None)]
    kept, dups = first_per_key(window)
    rejected: dict[str, int] = {}
    count(rejected, "duplicate_key", dups)
    rows_out, repaired = [], 0
    for key, callid, start, end in kept:
        if end is not None and end < start:
            count(rejected, "end_before_start")
        else:
            rows_out.append({"cdr_id": key, "callid": shown(callid), "location": location,
                             "start_ts": start, "end_ts": end})
            repaired += bad_utf8(callid)
    return {"window": len(window), "rows": rows_out, "rejected": rejected,
            "repaired": {"callid": repaired} if repaired else {}}


def extract(tmp_path: Path, name: str, d: str) -> tuple[list[dict], datasets.Stats]:
    path = str(tmp_path / f"{name}.parquet")
    stats = datasets.extract(name, d, VALUES, path)
    return pq.read_table(path).to_pylist(), stats


def extract_cdrs(tmp_path: Path, d: str) -> tuple[list[dict], datasets.Stats]:
    sql, params = datasets.bind("gvp_cdrs", VALUES)
    batches = (b.append_column("location", pa.array(["loc"] * b.num_rows, pa.string()))
               for b in datasets.query_batches(d, sql, params))
    path = str(tmp_path / "gvp_cdrs.parquet")
    stats = datasets.write_batches(path, "gvp_cdrs", batches)
    return pq.read_table(path).to_pylist(), stats


def assert_accounted(got: list[dict], stats: datasets.Stats, want: dict) -> None:
    # the headline: every source row in the window is in the file or rejected
    assert want["window"] == len(got) + sum(stats.rejected.values())
    assert stats.rows == len(got)
    assert got == want["rows"]
    assert stats.rejected == want["rejected"]
    assert stats.repaired == want["repaired"]


@pytest.fixture
def dbs(legacy):
    gim, gvp = legacy("gim"), legacy("gvp")
    return gim, gvp


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sm=st.lists(SM, max_size=12), mm=st.lists(MM, max_size=10),
       cdrs=st.lists(CDR, max_size=10), sw10=TEXT, sw12=TEXT)
def test_interval_datasets_account_for_every_row(tmp_path_factory, dbs, sm, mm, cdrs, sw10,
                                                 sw12):
    """Generated rows (sentinel, huge, negative, boundary and null timestamps, open rows,
    ACTIVE_FLAG 0/1/null/2, repeated keys, '' and invalid bytes): each interval dataset's
    file plus its `rejected` counts equal the source rows in its window, row for row."""
    gim, gvp = dbs
    tmp = tmp_path_factory.mktemp("acc")
    truncate(gim, "resource_", "media_type", "interaction_type", "sm_res_session_fact",
             "gidb_g_login_session_mm")
    truncate(gvp, "gvp_cdr")
    insert(gim, {
        "resource_": [(10, 101, "AGENT", "a", "e", sw10, 1001),
                      (11, 101, "QUEUE", "q", None, "SW", 1002),
                      (12, 101, "AGENT", "b", "e", sw12, None),
                      (13, 202, "AGENT", "c", "e", "SW", 1003)],
        "sm_res_session_fact": [(k, tk, mk, rk, s, e, 0, f) for k, tk, rk, mk, s, e, f in sm],
        "gidb_g_login_session_mm": mm,
    }, **LATIN1)
    insert(gvp, {"gvp_cdr": [(k, c, "p", s, e) for k, c, s, e in cdrs]}, base=False, **LATIN1)

    got, stats = extract(tmp, "sm_fact", gim)
    assert_accounted(got, stats, expect_sm_fact({10: sw10, 12: sw12}, sm))
    got, stats = extract(tmp, "mm_sessions", gim)
    assert_accounted(got, stats, expect_mm(mm))
    got, stats = extract_cdrs(tmp, gvp)
    assert_accounted(got, stats, expect_cdrs(cdrs))
