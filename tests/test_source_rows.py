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

from bds_metrics import datasets, pipeline, storage
from bds_metrics.config import parse_config
from tests.conftest import REPO, admin, dsn
from tests.gim import CHAT, insert
from tests.test_attribution import AGENTS, FOLDERS, H, _calls_and_cdrs
from tests.test_attribution import CONFIG as BU_CONFIG
from tests.test_attribution import DAY as BU_DAY

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
        c.execute((REPO / "bds_metrics" / "sql" / schema / "schema.sql").read_text())
        for table, where in KEYED.items():
            if where == schema:
                c.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
    return d


@pytest.fixture
def legacy(pg):
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


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
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


def test_duplicates_across_batch_boundaries_and_sources():
    """The key carried from one batch to the next; a CDR_ID repeated in another GVP
    database (another location) is no duplicate; a null key never repeats."""
    schema = pa.schema([("cdr_id", pa.int64()), ("callid", pa.string()),
                        ("location", pa.string()), ("start_ts", pa.int64()),
                        ("end_ts", pa.int64())])

    def batch(ids, loc):
        n = len(ids)
        return pa.record_batch([pa.array(ids, pa.int64()), pa.array(["c"] * n),
                                pa.array([loc] * n), pa.array([D0] * n, pa.int64()),
                                pa.array([D0 + 1] * n, pa.int64())], schema=schema)

    dup = datasets.Duplicates("gvp_cdrs")
    marks = [dup.mask(b).to_pylist() for b in [
        batch([1, 1, 2], "a"), batch([2], "a"), batch([2, 3], "a"),   # 2 spans three batches
        batch([3, 3], "b"), batch([None, None], "b")]]
    assert marks == [[False, True, False], [True], [True, False], [False, True],
                     [False, False]]
    assert datasets.Duplicates("handled").mask(batch([1, 1], "a")) is None  # no key


def test_repair_text_counts_rows_per_column():
    raw = pa.array([b"ok", b"Sales\xff\xfe", None, b"Sales\xff\xfe", b"caf\xc3\xa9"],
                   pa.binary()).view(pa.string())
    b = pa.record_batch([raw, pa.array([1, 2, 3, 4, 5], pa.int64())], names=["name", "n"])
    stats = datasets.Stats()
    out = datasets.repair_text(b, stats)
    assert out.column("name").to_pylist() == ["ok", "Sales\ufffd\ufffd", None,
                                              "Sales\ufffd\ufffd", "café"]
    out.column("name").validate(full=True)
    assert stats.repaired == {"name": 2}
    assert datasets.repair_text(out, stats) is out and stats.repaired == {"name": 2}


# ---------------------------------------------------------------- whole days


def test_case_end_ts_sentinel(tmp_path, new_db, monkeypatch):
    """shared/cases/rows/end-ts-sentinel: END_TS 0 and -1 on sessions started in the day."""
    case = CASES / "end-ts-sentinel"
    gim = new_db("gim")
    import psycopg

    with psycopg.connect(gim, autocommit=True) as c:
        c.execute((case / "inserts.sql").read_text())
    monkeypatch.setenv("BDS_CASE_DIR", str(tmp_path))
    t = parse_config((case / "bds.yaml").read_text(), str(case / "bds.yaml")).tenant("t1")
    folder = Path(pipeline.run_day(t, dt.date(2026, 11, 2), {"bh_gim": gim}.__getitem__))
    rows = (folder / "t1_seats_outbound_20261102.csv").read_text().splitlines()[1:]
    assert [r.rsplit(",", 2)[1:] for r in rows] == [["1", "1"]]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["rejected"] == {"sm_fact": {"end_before_start": 2}}
    assert manifest["inputs"]["sm_fact"] == 1


def _bu_rows() -> tuple[dict, dict]:
    """test_attribution's day: BUs by folder and by DNIS, chat logins, calls and CDRs."""
    ixn, resources, irf, cdrs = _calls_and_cdrs()
    mm = [(i, f"L{a}", a, 1, D0 + 10 * H, D0 + 11 * H) for i, a in enumerate(range(101, 109))]
    chats = [(100 + i, 100 + i, 1, 1000 + a, CHAT, D0 + 10 * H + 60, None, 30, None)
             for i, a in enumerate(range(101, 109))]
    gim = {"gidb_gc_folder": list(FOLDERS), "gidb_gc_agent": list(AGENTS),
           "resource_": resources, "interaction_fact": ixn,
           "interaction_resource_fact": irf + chats, "gidb_g_login_session_mm": mm}
    return gim, {"gvp_cdr": cdrs}


def _bu_day(root: Path, make_db, gim_rows: dict, gvp_rows: dict, **connect: str):
    gim, gvp = make_db("gim"), make_db("gvp")
    insert(gim, gim_rows, **connect)
    insert(gvp, gvp_rows, base=False, **connect)
    t = parse_config(BU_CONFIG.format(root=root), "bu.yaml").tenants[0]
    folder = Path(pipeline.run_day(t, BU_DAY, {"gim": gim, "gvp": gvp}.__getitem__))
    return t, folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _map(t, name: str) -> dict:
    table = storage.read_table(pipeline.work_path(t, BU_DAY, name)).to_pandas()
    key = "agent_id" if name == "agent_bu" else "cdr_id"
    return {int(k): (b, r) for k, b, r in zip(table[key], table["bu_id"], table["reason"],
                                              strict=True)}


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def test_repeated_keys_in_every_keyed_source(tmp_path, legacy):
    """shared/cases/rows/dup-cdr-id, and the same kind in each keyed source (Person ID,
    folder ID, login session ID): the day is billed, the row that sorts first by all its
    columns is kept, each other row counted `duplicate_key`."""
    base_gim, base_gvp = _bu_rows()
    _, clean_folder = _bu_day(tmp_path / "clean", legacy, base_gim, base_gvp)

    gim, gvp = _bu_rows()
    cdr3 = next(c for c in gvp["gvp_cdr"] if c[0] == 3)
    cdr5 = next(c for c in gvp["gvp_cdr"] if c[0] == 5)
    gvp["gvp_cdr"] += [cdr3,                                   # an exact copy
                       (3, cdr3[1], "p", cdr3[3], cdr3[4] + 9000),  # sorts after: end larger
                       (5, "X1", "p", cdr5[3], cdr5[4])]       # sorts first: X1 < X5
    gim["gidb_gc_agent"] += [(101, 1, 6, "a", "", 1),   # folder 6 > 2: Sales kept
                             (104, 1, 2, "d", "", 1)]   # folder 2 < 6: 104 becomes Sales
    gim["gidb_gc_folder"] += [(4, 1, "Aaa", 1, 1)]      # "Aaa" < "SUPPORT": 103 leaves Support
    login = gim["gidb_g_login_session_mm"][0]
    gim["gidb_g_login_session_mm"] += [login[:5] + (login[5] + 3600,)]  # sorts after
    t, folder = _bu_day(tmp_path / "dup", legacy, gim, gvp)

    assert _manifest(folder)["rejected"] == {
        "agent_resource": {"duplicate_key": 2}, "folder": {"duplicate_key": 1},
        "gvp_cdrs": {"duplicate_key": 3}, "mm_sessions": {"duplicate_key": 1}}
    agents, cdrs = _map(t, "agent_bu"), _map(t, "cdr_bu")
    assert agents[101] == ("acme_BU_1", "") and agents[104] == ("acme_BU_1", "")
    assert agents[103] == ("acme_BU_0", "")
    assert cdrs[5] == ("acme_BU_3", "")  # the kept row's CALLID X1: Collections' DNIS
    assert sorted(cdrs) == sorted(c[0] for c in base_gvp["gvp_cdr"])  # one row per CDR_ID
    clean = _files(clean_folder)
    # CDR 3 (the copies sort after it) bills as without its copies: same minutes for BU_1
    minutes = [n for n in clean if n.startswith("acme_BU_1_gvp_minutes")]
    assert _files(folder)[minutes[0]] == clean[minutes[0]]


def test_invalid_utf8_is_repaired_and_counted(tmp_path, legacy, new_db):
    """shared/cases/rows/nonutf8-folder: a SQL_ASCII Info Mart with bytes that are not
    UTF-8 in a folder name, a switch name, a user name, a DNIS and a CALLID. The day is
    billed exactly as from a UTF-8 Info Mart holding U+FFFD in their place, and the rows
    repaired are counted per dataset and column."""
    def rows(bad: str):
        gim, gvp = _bu_rows()
        gim["gidb_gc_folder"] = [(2, 1, f"sales{bad}", 1, 1) if f[0] == 2 else f
                                 for f in gim["gidb_gc_folder"]]
        gim["gidb_gc_agent"] = [a[:3] + (f"h{bad}",) + a[4:] if a[0] == 108 else a
                                for a in gim["gidb_gc_agent"]]
        gim["resource_"] = [r[:5] + (f"S{bad}W",) + r[6:] if r[6] == 101 else r
                            for r in gim["resource_"]]
        gim["interaction_fact"] = [i[:6] + (i[6] + bad,) + i[7:] if i[0] == 7 else i
                                   for i in gim["interaction_fact"]]
        gvp["gvp_cdr"] += [(9, f"X{bad}", "p", D0 + H, D0 + H + 30)]
        return gim, gvp

    t, folder = _bu_day(tmp_path / "legacy", legacy, *rows("\xe9\xff"), **LATIN1)
    _, want = _bu_day(tmp_path / "utf8", new_db, *rows("\ufffd\ufffd"))
    got, expected = _files(folder), _files(want)
    manifest = _manifest(folder)
    assert manifest.pop("repaired") == {
        "agent_resource": {"username": 1}, "agent_switch": {"switch_name": 1},
        "folder": {"name": 1}, "gvp_cdrs": {"callid": 1}, "voice_calls": {"dnis": 1}}
    assert manifest == _manifest(want)
    assert {n: v for n, v in got.items() if n != "manifest.json"} == \
        {n: v for n, v in expected.items() if n != "manifest.json"}
    names = storage.read_table(pipeline.dataset_path(t, BU_DAY, "folder")).column("name")
    assert "sales\ufffd\ufffd" in names.to_pylist()
    assert _map(t, "agent_bu")[101] == ("acme_BU_0", "")  # "sales\ufffd\ufffd" is no BU


def test_empty_string_is_null(tmp_path, new_db):
    """shared/cases/rows/empty-callid and the same kind in ANI, DNIS and SWITCH_NAME: a
    day whose '' stand where another has NULL bills byte for byte the same (manifest
    included): the CDR without CALLID stays in the default BU, counted as a fallback, and
    is not matched to the call with an empty CallUUID and a Support DNIS."""
    def rows(empty: str | None):
        gim, gvp = _bu_rows()
        gim["interaction_fact"] = [
            (i[0], i[1], i[2], i[3], empty if i[4] is None else i[4],
             empty if i[0] == 4 else i[5], empty if i[0] == 9 else i[6], *i[7:])
            for i in gim["interaction_fact"]]
        gim["resource_"] = [r[:5] + (empty,) + r[6:] if r[6] == 104 else r
                            for r in gim["resource_"]]
        gvp["gvp_cdr"] = [(c[0], empty if c[1] is None else c[1], *c[2:])
                          for c in gvp["gvp_cdr"]]
        return gim, gvp

    t, folder = _bu_day(tmp_path / "empty", new_db, *rows(""))
    _, nulls = _bu_day(tmp_path / "null", new_db, *rows(None))
    assert _files(folder) == _files(nulls)
    assert _map(t, "cdr_bu")[6] == ("acme_BU_0", "cdr_without_callid")
    assert _manifest(folder)["fallbacks"]["cdr_without_callid"] == 1
    calls = storage.read_table(pipeline.dataset_path(t, BU_DAY, "voice_calls")).to_pylist()
    assert "" not in {c[k] for c in calls for k in ("callid", "ani", "dnis")}


DAY_CONFIG = """
defaults: {{gimdb_conn_id: gim, output_root: {root}/out, staging_root: {root}/st}}
tenants:
  - id: acme
    name: Acme
    production_date: 2026-03-01
    gim: {{tenant_key: 101, tenant_dbid: 1}}
    metrics: [seats_chat, seats_outbound, gvp_ports, gvp_minutes]
    regions:
      - code: us
        locations:
          - {{code: us_sw, switches: [SW, "S\\xe9W"]}}
          - {{code: us_d, switches: [], gvp: {{conn_id: gvp}}}}
    business_units:
      - {{id: acme_BU_1, name: Sales}}
      - {{id: acme_BU_2, name: Support, dnis: ["+1800555"]}}
    tfn_prefixes: ["+1800"]
"""
NAME = st.one_of(TEXT, st.sampled_from(["Sales", "Support", "SW", "S\xe9W"]))
PERSON = st.tuples(st.sampled_from([1001, 1002]), st.sampled_from([1, 1, 2]),
                   st.one_of(st.none(), st.integers(0, 4)), TEXT, TEXT, st.just(1))
FOLDER = st.tuples(st.integers(1, 4), st.sampled_from([1, 1, 2]), NAME,
                   st.one_of(st.none(), st.integers(0, 4)), st.just(1))
HANDLED = st.tuples(st.sampled_from([10, 10, 11, 12, 13]), st.sampled_from([101, 101, 202]),
                    st.sampled_from([1, 2]), TS, st.sampled_from([0, 30, None]),
                    st.sampled_from([None, "", "A"]))
CALL = st.tuples(st.sampled_from([101, 101, 202]), TEXT, TEXT,
                 st.one_of(TEXT, st.sampled_from(["+18005551", "+1800999", "+44"])), TS, TS)


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sm=st.lists(SM, max_size=12), mm=st.lists(MM, max_size=8),
       cdrs=st.lists(CDR, max_size=8), persons=st.lists(PERSON, max_size=5),
       folders=st.lists(FOLDER, max_size=6), handled=st.lists(HANDLED, max_size=8),
       calls=st.lists(CALL, max_size=6), sw10=NAME)
def test_generated_bad_rows_never_fail_a_day(tmp_path_factory, dbs, sm, mm, cdrs, persons,
                                             folders, handled, calls, sw10):
    """Random bad rows in every dataset's source (sentinel, huge and negative timestamps,
    repeated keys, invalid bytes, nulls, ''), a whole day (pipeline.run_day, every metric,
    BUs): the day is billed, and for every dataset the manifest's input rows plus its
    rejected rows equal the source rows counted here."""
    gim, gvp = dbs
    root = tmp_path_factory.mktemp("day")
    truncate(gim, "resource_", "media_type", "interaction_type", "sm_res_session_fact",
             "gidb_g_login_session_mm", "gidb_gc_agent", "gidb_gc_folder",
             "interaction_fact", "interaction_resource_fact", "contact_attempt_fact")
    truncate(gvp, "gvp_cdr")
    insert(gim, {
        "resource_": [(10, 101, "AGENT", "a", "e", sw10, 1001),
                      (11, 101, "QUEUE", "q", None, "SW", 1002),
                      (12, 101, "AGENT", "b", "e", "SW", None),
                      (13, 202, "AGENT", "c", "e", "SW", 1003)],
        "sm_res_session_fact": [(k, tk, mk, rk, s, e, 0, f) for k, tk, rk, mk, s, e, f in sm],
        "gidb_g_login_session_mm": mm,
        "gidb_gc_agent": persons,
        "gidb_gc_folder": folders,
        "interaction_fact": [(i, tk, 1, 1, cid, ani, dnis, s, e)
                             for i, (tk, cid, ani, dnis, s, e) in enumerate(calls)],
        "interaction_resource_fact": [(i, i % max(len(calls), 1), tk, rk, mk, s, None, talk, a)
                                      for i, (rk, tk, mk, s, talk, a) in enumerate(handled)],
        "contact_attempt_fact": [(1, 101, "A", D0, None)],
    }, **LATIN1)
    insert(gvp, {"gvp_cdr": [(k, c, "p", s, e) for k, c, s, e in cdrs]}, base=False, **LATIN1)
    t = parse_config(DAY_CONFIG.format(root=root), "day.yaml").tenants[0]
    folder = Path(pipeline.run_day(t, BU_DAY, {"gim": gim, "gvp": gvp}.__getitem__))

    manifest = _manifest(folder)
    assert manifest["inputs"]["tfn_durations"] + manifest["inputs"]["pstn_durations"] == \
        manifest["inputs"]["voice_calls"]

    def accounted(name: str) -> int:
        return manifest["inputs"][name] + sum(manifest["rejected"].get(name, {}).values())

    assert accounted("sm_fact") == expect_sm_fact({10: sw10, 12: "SW"}, sm)["window"]
    assert accounted("mm_sessions") == expect_mm(mm)["window"]
    assert accounted("gvp_cdrs") == expect_cdrs(cdrs)["window"]
    assert accounted("agent_resource") == sum(p[1] == 1 for p in persons)
    assert accounted("folder") == sum(f[1] == 1 for f in folders)
    assert accounted("handled") == sum(
        rk in (10, 12) and tk == 101 and (talk or 0) > 0 and started_in_window(s)
        for rk, tk, _m, s, talk, _a in handled)
    assert accounted("voice_calls") == sum(tk == 101 and started_in_window(s)
                                           for tk, _c, _a, _d, s, _e in calls)
    kept_folders, _ = first_per_key([(f[0], stored(f[2]), f[3]) for f in folders if f[1] == 1])
    bad_names = sum(bad_utf8(name) for _id, name, _p in kept_folders)
    assert manifest.get("repaired", {}).get("folder", {}).get("name", 0) == bad_names
    for name in ("voice_calls", "tfn_durations", "pstn_durations", "gvp_cdrs"):
        table = storage.read_table(pipeline.dataset_path(t, BU_DAY, name)).to_pylist()
        assert "" not in {r[k] for r in table for k in ("callid", "ani", "dnis") if k in r}


def test_a_step_failure_names_tenant_day_step_dataset_and_key(tmp_path):
    """A crash left in any step is one line naming the tenant, the day, the step and its
    dataset or metric (and the key, where one is at fault); the cause stays chained."""
    t = parse_config(BU_CONFIG.format(root=tmp_path), "bu.yaml").tenants[0]
    cdrs = pa.table({"cdr_id": pa.array([3, 4], pa.int64()), "callid": ["X3", "X4"],
                     "location": ["us_d", "us_d"], "start_ts": pa.array([D0, D0], pa.int64()),
                     "end_ts": pa.array([D0 + 60, D0 + 60], pa.int64())})
    cdr_path = pipeline.dataset_path(t, BU_DAY, "gvp_cdrs")
    storage.write_table(cdr_path, cdrs)
    stale = pa.table({"cdr_id": pa.array([3, 3, 4], pa.int64()),
                      "location": ["us_d"] * 3, "bu_id": ["acme_BU_1"] * 3, "reason": [""] * 3})
    bu_path = pipeline.work_path(t, BU_DAY, "cdr_bu")
    storage.write_table(bu_path, stale)
    with pytest.raises(pipeline.StepError) as err:
        pipeline.compute(t, BU_DAY, "gvp_minutes", {"gvp_cdrs": cdr_path, "cdr_bu": bu_path})
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("tenant 'acme', day 2026-03-05, step compute, metric gvp_minutes: ")
    assert "dataset gvp_cdrs: key cdr_id 3, location 'us_d' appears more than once" in msg

    Path(cdr_path).write_bytes(b"not parquet")
    with pytest.raises(pipeline.StepError, match=r"^tenant 'acme', day 2026-03-05, step "
                       r"compute, metric gvp_ports: Arrow\w+: [^\n]*$"):
        pipeline.compute(t, BU_DAY, "gvp_ports", {"gvp_cdrs": cdr_path, "cdr_bu": bu_path})
    with pytest.raises(datasets.SourceError, match=r"^tenant 'acme', day 2026-03-05: "
                       r"dataset sm_fact: cannot connect"):
        pipeline.extract(t, BU_DAY, "sm_fact",
                         lambda _: "host=127.0.0.1 port=1 dbname=x user=postgres")


def test_a_kept_snapshot_with_invalid_text_is_repaired_on_reuse(tmp_path):
    """A folder snapshot a failed run wrote before text was checked (invalid UTF-8 in a
    name) is kept by the next run of the day, repaired in place, its counts kept."""
    t = parse_config(BU_CONFIG.format(root=tmp_path), "bu.yaml").tenants[0]
    path = pipeline.dataset_path(t, BU_DAY, "folder")
    names = pa.array([b"Persons", b"Sales\xff", b"Sales\xff"], pa.binary()).view(pa.string())
    table = pa.table({"folder_id": pa.array([1, 2, 3], pa.int64()), "name": names,
                      "parent_id": pa.array([None, 1, 1], pa.int64())})
    meta = {datasets.META_KEY: datasets.Stats(rows=3, rejected={"duplicate_key": 1}).to_json()}
    storage.write_table(path, table.replace_schema_metadata(meta))
    with pytest.raises(pa.ArrowInvalid):
        storage.read_table(path).column("name").validate(full=True)
    unreachable = "host=127.0.0.1 port=1 dbname=x user=postgres"  # the snapshot is kept
    assert pipeline.extract(t, BU_DAY, "folder", lambda _: unreachable) == path
    assert storage.read_table(path).column("name").to_pylist() == [
        "Persons", "Sales\ufffd", "Sales\ufffd"]
    assert datasets.read_stats(path) == datasets.Stats(
        rows=3, rejected={"duplicate_key": 1}, repaired={"name": 2})
    assert not datasets.repair_file(path, "folder")  # valid now: left as it is
