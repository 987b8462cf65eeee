"""The dataset SQL (sql/datasets/*.sql) on hand-made rows in a real PostgreSQL."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from bds_metrics import datasets
from tests.gim import CHAT, VOICE, insert

D0 = 1_772_686_800  # 2026-03-05T05:00:00Z = 2026-03-05 00:00 America/New_York
D1 = D0 + 86_400
LB = D0 - 7 * 86_400
VALUES = {"day_start": D0, "day_end": D1, "lookback_start": LB, "tenant_key": 101,
          "tenant_dbid": 1}


def rows(tmp_path, name, dsn, **over):
    path = str(tmp_path / f"{name}.parquet")
    stats = datasets.extract(name, dsn, {**VALUES, **over}, path)
    table = pq.read_table(path)
    assert table.schema.equals(datasets.SCHEMAS[name], check_metadata=False)
    return table.to_pylist(), stats


@pytest.fixture
def gim(new_db):
    dsn = new_db("gim")
    insert(dsn, {
        "resource_": [
            (10, 101, "AGENT", "a1", "e1", "SW1", 1001),
            (11, 101, "AGENT", "a1-old", "e1", "SW_OLD", 1001),  # smaller key: not the switch
            (12, 101, "AGENT", "a2", "e2", None, 1002),
            (13, 101, "QUEUE", "q", None, "SW1", None),
            (14, 202, "AGENT", "other", "x", "SW1", 2001),
            (15, 101, "AGENT", "a1-new", "e1", "SW2", 1001),  # largest key: the switch
        ],
        "sm_res_session_fact": [
            (1, 101, VOICE, 10, D0 + 10, D0 + 20, 10, 0),       # inside
            (2, 101, VOICE, 10, D0 - 100, D0, 100, 0),          # ends at day start: out
            (3, 101, VOICE, 10, D0 - 100, D0 + 1, 101, 0),      # crosses midnight: in
            (4, 101, VOICE, 10, D1, D1 + 5, 5, 0),              # starts at day end: out
            (5, 101, VOICE, 10, LB, None, 0, 1),                # open, at look-back start: in
            (6, 101, VOICE, 10, LB - 1, None, 0, 1),            # before look-back: out
            (7, 101, CHAT, 12, D0 + 50, D0 + 10, 0, 0),         # end < start: rejected
            (8, 101, VOICE, 10, D0 - 50, D0 - 60, 0, 1),        # ACTIVE_FLAG=1: open, in
            (9, 101, VOICE, 13, D0 + 10, D0 + 20, 10, 0),       # a queue: not an agent
            (10, 202, VOICE, 14, D0 + 10, D0 + 20, 10, 0),      # other tenant
            (11, 101, VOICE, 10, D0 + 30, D0 + 30, 0, 0),       # zero length: kept here
        ],
        "gidb_g_login_session_mm": [
            (1, "L1", 1001, 1, D0 + 10, D0 + 20),
            (2, "L2", None, 1, D0 + 10, D0 + 20),                # no agent: rejected
            (3, "L3", 1002, 1, D0 + 10, None),                   # open
            (4, "L4", 1001, 2, D0 + 10, D0 + 20),                # other tenant
            (5, "L5", 1002, 1, D0 + 10, D0 + 5),                 # end < start: rejected
            (6, "L6", 1002, 1, D0 - 10, D0),                     # ends at day start: out
        ],
        "interaction_resource_fact": [
            (1, 100, 101, 10, CHAT, D0 + 15, None, 30, None),
            (2, 101, 101, 10, VOICE, D0 + 16, None, 30, "A1"),   # OCS, two attempt rows
            (3, 102, 101, 10, VOICE, D0 + 17, None, 0, "A1"),    # not talked: out
            (4, 103, 101, 10, VOICE, D0 + 18, None, 30, "A2"),   # attempt unknown: ocs false
            (5, 104, 101, 10, VOICE, LB - 1, None, 30, None),    # before look-back: out
            (6, 105, 101, 10, VOICE, D1, None, 30, None),        # at day end: out
            (7, 106, 202, 14, VOICE, D0 + 18, None, 30, None),   # other tenant
            (8, 107, 101, 13, VOICE, D0 + 18, None, 30, None),   # queue: out
        ],
        "contact_attempt_fact": [(1, 101, "A1", D0, None), (2, 101, "A1", D0, None)],
        "gidb_gc_agent": [(1001, 1, 50, "a1", "e1", 1), (1002, 1, None, "a2", "e2", 1),
                          (2001, 2, 60, "x", "x", 1)],
        "gidb_gc_folder": [(50, 1, "Sales", 0, 1), (51, 1, "Persons", None, 1),
                           (60, 2, "Other", None, 1)],
    })
    return dsn


def test_sm_fact_window_open_rows_and_rejections(tmp_path, gim):
    got, stats = rows(tmp_path, "sm_fact", gim)
    assert [r["session_id"] for r in got] == [1, 3, 5, 8, 11]
    by_id = {r["session_id"]: r for r in got}
    assert by_id[5]["end_ts"] is None and by_id[8]["end_ts"] is None  # ACTIVE_FLAG wins
    assert by_id[1] == {"session_id": 1, "agent_id": 1001, "media": "VOICE",
                        "switch_name": "SW1", "start_ts": D0 + 10, "end_ts": D0 + 20}
    assert stats.rejected == {"end_before_start": 1} and stats.rows == 5
    assert datasets.read_stats(str(tmp_path / "sm_fact.parquet")).rejected == stats.rejected


def test_sm_fact_without_tenant_filter_reads_every_tenant(tmp_path, gim):
    got, _ = rows(tmp_path, "sm_fact", gim, tenant_key=None)
    assert 10 in [r["session_id"] for r in got]


def test_mm_sessions(tmp_path, gim):
    got, stats = rows(tmp_path, "mm_sessions", gim)
    assert [(r["login_session_id"], r["agent_id"], r["end_ts"]) for r in got] == [
        ("L1", 1001, D0 + 20), ("L3", 1002, None)]
    assert stats.rejected == {"no_agent_id": 1, "end_before_start": 1}


def test_handled_ocs_and_window(tmp_path, gim):
    got, _ = rows(tmp_path, "handled", gim)
    assert got == [
        {"agent_id": 1001, "media": "CHAT", "start_ts": D0 + 15, "ocs": False},
        {"agent_id": 1001, "media": "VOICE", "start_ts": D0 + 16, "ocs": True},
        {"agent_id": 1001, "media": "VOICE", "start_ts": D0 + 18, "ocs": False},
    ]


def test_agent_switch_takes_largest_resource_key(tmp_path, gim):
    got, _ = rows(tmp_path, "agent_switch", gim)
    assert got == [{"agent_id": 1001, "switch_name": "SW2"},
                   {"agent_id": 1002, "switch_name": None}]


def test_config_datasets_filter_tenant_dbid(tmp_path, gim):
    agents, _ = rows(tmp_path, "agent_resource", gim)
    assert [(a["agent_id"], a["folder_id"]) for a in agents] == [(1001, 50), (1002, None)]
    folders, _ = rows(tmp_path, "folder", gim)
    assert folders == [{"folder_id": 50, "name": "Sales", "parent_id": 0},
                       {"folder_id": 51, "name": "Persons", "parent_id": None}]


def test_voice_calls_agent_is_earliest_talking_agent(tmp_path, new_db):
    dsn = new_db("gim")
    insert(dsn, {
        "resource_": [(10, 101, "AGENT", "a", "", "SW", 1), (11, 101, "AGENT", "b", "", "SW", 2),
                      (12, 101, "ROUTE_POINT", "rp", "", "SW", None)],
        "interaction_fact": [
            (1, 101, VOICE, 1, "C1", "+1555", "+18005551234", D0 + 100, D0 + 200),
            (2, 101, VOICE, 1, "C2", "+1555", "+44", D0 + 300, None),
            (3, 101, VOICE, 2, "C3", "+1555", "+44", D0 + 300, None),    # outbound: out
            (4, 101, CHAT, 1, "C4", "x", "y", D0 + 300, None),           # chat: out
            (5, 101, VOICE, 1, "C5", "+1555", "+44", LB - 1, None),      # before window
        ],
        "interaction_resource_fact": [
            (1, 1, 101, 12, VOICE, D0 + 100, None, 50, None),   # route point first: not agent
            (2, 1, 101, 11, VOICE, D0 + 110, None, 0, None),    # b, no talk
            (3, 1, 101, 10, VOICE, D0 + 120, None, 10, None),   # a talks: the agent
            (4, 1, 101, 11, VOICE, D0 + 120, None, 10, None),   # b, same time, larger id
        ],
    })
    got, _ = rows(tmp_path, "voice_calls", dsn)
    assert got == [
        {"callid": "C1", "ani": "+1555", "dnis": "+18005551234", "start_ts": D0 + 100,
         "end_ts": D0 + 200, "agent_id": 1},
        {"callid": "C2", "ani": "+1555", "dnis": "+44", "start_ts": D0 + 300, "end_ts": None,
         "agent_id": None},
    ]


def test_gvp_cdrs_window_and_rejections(tmp_path, new_db):
    dsn = new_db("gvp")
    insert(dsn, {"gvp_cdr": [(1, "C1", "p", D0 + 1, D0 + 61), (2, None, "p", D0 - 5, None),
                             (3, "C3", "p", D0 + 10, D0 + 5), (4, "C4", "p", D0 - 10, D0)]},
           base=False)
    sql, params = datasets.bind("gvp_cdrs", VALUES)
    batches = (b.append_column("location", __import__("pyarrow").array(["loc"] * b.num_rows))
               for b in datasets.query_batches(dsn, sql, params))
    path = str(tmp_path / "gvp.parquet")
    stats = datasets.write_batches(path, "gvp_cdrs", batches)
    got = pq.read_table(path).to_pylist()
    assert [(r["cdr_id"], r["location"]) for r in got] == [(1, "loc"), (2, "loc")]
    assert stats.rejected == {"end_before_start": 1}


def test_missing_table_names_the_dataset_and_table(tmp_path, new_db):
    dsn = new_db()  # no schema at all
    with pytest.raises(datasets.SourceError, match=r"dataset sm_fact: .*sm_res_session_fact"):
        rows(tmp_path, "sm_fact", dsn)


def test_unreachable_database_is_a_source_error(tmp_path):
    with pytest.raises(datasets.SourceError, match="cannot connect"):
        rows(tmp_path, "sm_fact", "host=127.0.0.1 port=1 dbname=x user=postgres")


def test_gvp_sources_are_read_at_once_in_source_order(tmp_path, new_db):
    """Two GVP databases: the file holds the first source's rows, then the second's, each
    tagged with its location, whatever query finishes first; a failing source is named."""
    from types import SimpleNamespace

    from bds_metrics import pipeline

    big, small = new_db("gvp"), new_db("gvp")
    insert(big, {"gvp_cdr": [(i, f"B{i}", "p", D0 + i, D0 + i + 60) for i in range(1, 3001)]},
           base=False)
    insert(small, {"gvp_cdr": [(1, "S1", "p", D0 + 5, D0 + 65), (7, "S7", "p", D0, D0 + 1)]},
           base=False)
    t = SimpleNamespace(gvp_sources=lambda: [("gvp_us", "us1"), ("gvp_eu", "eu1")],
                        statement_timeout_seconds=60)
    dsns = {"gvp_us": big, "gvp_eu": small}
    sql, params = datasets.bind("gvp_cdrs", VALUES)
    path = str(tmp_path / "gvp.parquet")
    datasets.write_batches(path, "gvp_cdrs", pipeline._tagged_cdrs(t, sql, params, dsns.get))
    got = [(r["cdr_id"], r["location"]) for r in pq.read_table(path).to_pylist()]
    assert got == [(i, "us1") for i in range(1, 3001)] + [(1, "eu1"), (7, "eu1")]

    dsns["gvp_eu"] = "host=127.0.0.1 port=1 dbname=x user=postgres"
    with pytest.raises(datasets.SourceError, match="dataset gvp_cdrs, connection gvp_eu: cannot"):
        datasets.write_batches(path + "2", "gvp_cdrs",
                               pipeline._tagged_cdrs(t, sql, params, dsns.get))


def test_read_concurrently_keeps_stream_order_and_raises_a_stream_error():
    import threading

    import pyarrow as pa

    def stream(tag: str, n: int, fail: bool = False):
        for i in range(n):
            yield pa.record_batch({"x": [f"{tag}{i}"]})
        if fail:
            raise datasets.SourceError(f"{tag} broke")

    got = [b.column(0)[0].as_py() for b in
           datasets.read_concurrently([stream("a", 3), stream("b", 2), stream("c", 0)])]
    assert got == ["a0", "a1", "a2", "b0", "b1"]
    seen = []
    with pytest.raises(datasets.SourceError, match="b broke"):
        for b in datasets.read_concurrently([stream("a", 2), stream("b", 1, fail=True)]):
            seen.append(b.column(0)[0].as_py())
    assert seen == ["a0", "a1", "b0"]  # what came before the failure, in order
    before = threading.active_count()
    it = datasets.read_concurrently([stream("a", 1000), stream("b", 1000)])
    next(it)
    it.close()  # the consumer stops early (its writer failed): the readers stop too
    assert threading.active_count() == before
