"""Extracting datasets (SPEC §4) from the Info Mart / GVP into Parquet.

Each SQL file in `sql/datasets/` declares its bind parameters in a `-- params:` line and
uses them as `$1`, `$2`, ...; values are never formatted into the SQL text by hand. Rows
stream from the database as binary COPY, parsed into Arrow record batches by ADBC and
written batch by batch into Parquet, so no Python object is made per row and memory stays
bounded at any size. Unusable rows are filtered with Arrow compute and counted by reason;
the counts travel in the Parquet file's metadata (SPEC §4: every source row in the window
is in the file or counted). A key that should be unique and repeats (`KEYS`) keeps the
first row (the SQL orders by key, then every column) and counts the others
`duplicate_key`; text that is not valid UTF-8 is repaired and counted (`repair_text`).

Why the parameters are bound client-side (`inline`): PostgreSQL takes no bind parameters
in `COPY (query) TO STDOUT`, and ADBC streams a result through COPY only for a query
without parameters; a query with bound parameters is executed as one prepared statement
whose whole result libpq holds in memory before ADBC converts it (for 5 million sessions
that is gigabytes, and slower). The values are only integers (epoch seconds, tenant keys)
and NULL, rendered as typed literals; anything else is refused, so no text from a
configuration ever reaches the SQL.

Every column a dataset's SQL returns is cast to a built-in type (`bigint`, `text`,
`boolean`), so ADBC can use its built-in type table instead of reading the server's
catalogue on every connection (40 ms on an empty database, far more on a server with
many objects: apache/arrow-adbc#1755); each extract task opens its own connection.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import storage

SQL_DIR = files("bds_metrics") / "sql"  # package data (importlib.resources)
META_KEY = b"bds"
ADBC_TYPES = "adbc.postgresql.type_resolver_mode"  # "builtin": no catalogue query

I64, STR, BOOL = pa.int64(), pa.string(), pa.bool_()

SCHEMAS: dict[str, pa.Schema] = {
    "sm_fact": pa.schema(
        [("session_id", I64), ("agent_id", I64), ("media", STR), ("switch_name", STR),
         ("start_ts", I64), ("end_ts", I64)]
    ),
    "mm_sessions": pa.schema(
        [("login_session_id", STR), ("agent_id", I64), ("start_ts", I64), ("end_ts", I64)]
    ),
    "handled": pa.schema([("agent_id", I64), ("media", STR), ("start_ts", I64), ("ocs", BOOL)]),
    "agent_switch": pa.schema([("agent_id", I64), ("switch_name", STR)]),
    "agent_resource": pa.schema(
        [("agent_id", I64), ("folder_id", I64), ("username", STR), ("employee_id", STR)]
    ),
    "folder": pa.schema([("folder_id", I64), ("name", STR), ("parent_id", I64)]),
    "voice_calls": pa.schema(
        [("callid", STR), ("ani", STR), ("dnis", STR), ("start_ts", I64), ("end_ts", I64),
         ("agent_id", I64)]
    ),
    "tfn_durations": pa.schema(
        [("callid", STR), ("ani", STR), ("dnis", STR), ("start_ts", I64), ("end_ts", I64),
         ("agent_id", I64), ("duration", I64)]
    ),
    "gvp_cdrs": pa.schema(
        [("cdr_id", I64), ("callid", STR), ("location", STR), ("start_ts", I64), ("end_ts", I64)]
    ),
}
SCHEMAS["pstn_durations"] = SCHEMAS["tfn_durations"]

# Columns whose values repeat (a few switches, media, DNIS lines, locations): dictionary
# encoded in Parquet. The others are mostly unique, where trying a dictionary first only
# costs time (a third of the writing time of `sm_fact`).
DICTIONARY = frozenset({"media", "switch_name", "dnis", "location", "name"})

# Reasons a row is left out of the computation, checked in this order (first wins);
# `duplicate_key` (see KEYS) is checked before all of them.
REJECT_RULES: dict[str, tuple[str, ...]] = {
    "sm_fact": ("no_agent_id", "no_start_ts", "end_before_start"),
    "mm_sessions": ("no_agent_id", "no_start_ts", "end_before_start"),
    "handled": ("no_agent_id", "no_start_ts"),
    "gvp_cdrs": ("no_start_ts", "end_before_start"),
}

# The key that should be unique in a dataset's source (SPEC §4), as columns of the query
# result (`session_key`, a login session's ID, is not kept in the Parquet file; a CDR_ID
# is unique within one GVP database, so the location, one per database, is part of the
# key). The dataset's SQL orders its rows by the key, then by every column: a row whose
# key equals the previous row's is a `duplicate_key`, the first of each key is kept.
KEYS: dict[str, tuple[str, ...]] = {
    "sm_fact": ("session_id",),
    "mm_sessions": ("session_key",),
    "gvp_cdrs": ("location", "cdr_id"),
    "agent_resource": ("agent_id",),
    "folder": ("folder_id",),
}
DUPLICATE_KEY = "duplicate_key"


@dataclass
class Stats:
    """What a dataset file holds besides its rows: counted rejections (reason → rows left
    out) and repairs (column → rows kept whose text was not valid UTF-8)."""

    rows: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> bytes:
        doc: dict[str, object] = {"rows": self.rows, "rejected": self.rejected}
        if self.repaired:
            doc["repaired"] = self.repaired
        return json.dumps(doc, sort_keys=True).encode()


class SourceError(RuntimeError):
    """The database could not be read (unreachable, missing table or column)."""


@cache
def load_sql(name: str) -> tuple[str, tuple[str, ...]]:
    """The SQL text of a dataset and its parameter names in `$n` order."""
    text = (SQL_DIR / "datasets" / f"{name}.sql").read_text(encoding="utf-8")
    m = re.search(r"^--\s*params:\s*(.*)$", text, flags=re.MULTILINE)
    params = tuple(p.strip() for p in m.group(1).split(",")) if m else ()
    return text, params


def bind(name: str, values: dict[str, object]) -> tuple[str, tuple[object, ...]]:
    sql, names = load_sql(name)
    missing = [n for n in names if n not in values]
    if missing:
        raise KeyError(f"dataset {name}: no value for bind parameter(s) {missing}")
    return sql, tuple(values[n] for n in names)


_PARAM = re.compile(r"\$(\d+)(?!\d)")


def inline(sql: str, params: tuple[object, ...]) -> str:
    """`sql` with each `$n` replaced by the literal of `params[n-1]` (see the module doc).

    An int becomes `(<digits>::bigint)`, the type ADBC binds a Python int as; None becomes
    NULL. Any other type is a TypeError. `$n` must not occur in the SQL's string literals
    (the dataset SQL has none).
    """

    def literal(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if not 1 <= n <= len(params):
            raise KeyError(f"no value for bind parameter ${n}")
        v = params[n - 1]
        if v is None:
            return "NULL"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"({int(v)}::bigint)"
        raise TypeError(f"bind parameter ${n}: {type(v).__name__} {v!r} is not an int or None")

    return _PARAM.sub(literal, sql)


def _reject_mask(rule: str, batch: pa.RecordBatch) -> pa.Array:
    if rule == "no_agent_id":
        return pc.is_null(batch.column("agent_id"))
    if rule == "no_start_ts":
        return pc.is_null(batch.column("start_ts"))
    if rule == "end_before_start":
        return pc.fill_null(pc.less(batch.column("end_ts"), batch.column("start_ts")), False)
    raise ValueError(rule)


class Duplicates:
    """Marks the rows of a key-ordered stream whose key equals the previous row's.

    The stream comes in batches; the last key of each batch is carried to the next, so a
    key repeated across a batch boundary is found too. A null key part never equals.
    """

    def __init__(self, name: str) -> None:
        self.columns = KEYS.get(name, ())
        self.last: list[object] | None = None  # the previous batch's last key

    def mask(self, batch: pa.RecordBatch) -> pa.Array | None:
        """True for each row that repeats the previous row's key; None without a key."""
        if not self.columns or batch.num_rows == 0:
            return None
        n = batch.num_rows
        same: pa.Array | None = None
        for i, c in enumerate(self.columns):
            if c not in batch.schema.names:
                raise SourceError(f"query result has no key column {c!r}")
            col = batch.column(c)
            first = self.last[i] if self.last is not None else None
            prev = pa.concat_arrays([pa.array([first], col.type), col.slice(0, n - 1)])
            eq = pc.fill_null(pc.equal(col, prev), False)
            same = eq if same is None else pc.and_(same, eq)
        self.last = [batch.column(c)[n - 1].as_py() for c in self.columns]
        return same


def repair_text(batch: pa.RecordBatch, stats: Stats) -> pa.RecordBatch:
    """Text that is not valid UTF-8 (an Info Mart in a legacy encoding such as SQL_ASCII)
    decoded with U+FFFD replacement characters; rows touched counted per column in
    `stats.repaired` (SPEC §4).

    Valid columns cost one validation pass; a column that fails is dictionary-encoded and
    only its distinct values are decoded in Python, never one value per row.
    """
    cols = list(batch.columns)
    changed = False
    for i, f in enumerate(batch.schema):
        if f.type != pa.string():
            continue
        try:
            cols[i].validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        enc = cols[i].view(pa.binary()).dictionary_encode()
        raw = enc.dictionary.to_pylist()
        fixed = [v.decode("utf-8", errors="replace") for v in raw]
        bad = pa.array([a != b.encode("utf-8") for a, b in zip(raw, fixed, strict=True)],
                       pa.bool_())
        touched = pc.sum(pc.fill_null(pc.take(bad, enc.indices), False)).as_py() or 0
        cols[i] = pc.take(pa.array(fixed, pa.string()), enc.indices)
        stats.repaired[f.name] = stats.repaired.get(f.name, 0) + touched
        changed = True
    return pa.RecordBatch.from_arrays(cols, schema=batch.schema) if changed else batch


def clean(name: str, batch: pa.RecordBatch, stats: Stats,
          duplicate: pa.Array | None = None) -> pa.RecordBatch:
    """Drop unusable rows of one batch, counting them by their first failing rule;
    `duplicate` (from `Duplicates.mask`) marks rows whose key repeats, checked first."""
    keep: pa.Array | None = None  # rows no rule has rejected yet; None: all of them
    rules: list[tuple[str, pa.Array | None]] = [(DUPLICATE_KEY, duplicate)]
    rules += [(rule, None) for rule in REJECT_RULES.get(name, ())]
    for rule, mask in rules:
        if rule == DUPLICATE_KEY and mask is None:
            continue
        bad = _reject_mask(rule, batch) if mask is None else mask
        if keep is not None:
            bad = pc.and_(keep, bad)
        n = pc.sum(bad).as_py() or 0
        if n:
            stats.rejected[rule] = stats.rejected.get(rule, 0) + n
            keep = pc.invert(bad) if keep is None else pc.and_(keep, pc.invert(bad))
    if keep is not None:
        batch = batch.filter(keep)
    stats.rows += batch.num_rows
    return batch


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    cols = []
    for f in schema:
        if f.name in batch.schema.names:
            cols.append(batch.column(f.name).cast(f.type))
        else:
            raise SourceError(f"query result has no column {f.name!r}")
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def query_batches(dsn: str, sql: str, params: tuple[object, ...],
                  statement_timeout_seconds: int | None = None) -> Iterator[pa.RecordBatch]:
    """Stream a query's rows as Arrow record batches (one connection per call).

    The parameters are inlined so that ADBC reads the result as binary COPY, in batches.
    `statement_timeout_seconds` is set on the session (libpq `options`, SPEC §8): a query
    running longer is cancelled by the server and raises SourceError.
    """
    sql = inline(sql, params)
    import adbc_driver_postgresql.dbapi as adbc

    if statement_timeout_seconds:
        dsn = with_statement_timeout(dsn, statement_timeout_seconds)
    try:
        conn = adbc.connect(dsn, db_kwargs={ADBC_TYPES: "builtin"})
    except Exception as exc:  # ADBC raises driver-specific classes
        raise SourceError(f"cannot connect: {first_line(exc)}") from exc
    try:
        cur = conn.cursor()
        try:
            cur.execute(sql)
            reader = cur.fetch_record_batch()
            yield from reader
        except Exception as exc:
            raise SourceError(first_line(exc)) from exc
        finally:
            cur.close()
    finally:
        conn.close()


def with_statement_timeout(dsn: str, seconds: int) -> str:
    """`dsn` with `-c statement_timeout=<ms>` added to its libpq `options` (kept)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    d = conninfo_to_dict(dsn)
    opts = f"{d.get('options') or ''} -c statement_timeout={int(seconds) * 1000}".strip()
    return make_conninfo("", **{**d, "options": opts})


def timeout_hint(message: str, seconds: int | None) -> str:
    """The operator's explanation appended to a query cancelled by the timeout."""
    if seconds and "statement timeout" in message:
        return (f"{message} (statement_timeout_seconds {seconds}: the query ran longer; "
                "the task retries)")
    return message


def read_concurrently(streams: list[Iterator[pa.RecordBatch]]) -> Iterator[pa.RecordBatch]:
    """Every stream's batches, stream 0's first, then 1's, ...; all read at once.

    Each stream (one source database's query) is drained by a thread of its own, so the
    servers work in parallel; the later streams wait in memory until their turn, so the
    file's row order is the streams' order, the same on every run. A stream's error is
    raised when its turn comes; the other threads stop at their next batch.
    """
    if len(streams) < 2:
        for s in streams:
            yield from s
        return
    stop = threading.Event()
    queues: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in streams]

    def drain(stream: Iterator[pa.RecordBatch], q: queue.SimpleQueue[Any]) -> None:
        try:
            for b in stream:
                if stop.is_set():
                    return
                q.put(b)
            q.put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(_Failed(exc))
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()

    threads = [threading.Thread(target=drain, args=(s, q), daemon=True)
               for s, q in zip(streams, queues, strict=True)]
    for th in threads:
        th.start()
    try:
        for q in queues:
            while (item := q.get()) is not _END:
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
    finally:
        stop.set()
        for th in threads:
            th.join()


_END = object()


@dataclass
class _Failed:
    exc: BaseException


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def write_batches(
    path: str, name: str, batches: Iterable[pa.RecordBatch], stats: Stats | None = None
) -> Stats:
    """Clean and write batches into one Parquet file at `path` (atomically).

    Each batch is encoded and compressed in a second thread while the next one is read
    (both release the GIL), so writing overlaps the database's sending; one batch at a
    time, so memory stays at about two batches.
    """
    schema = SCHEMAS[name]
    stats = stats or Stats()
    sink = storage.LocalSink(path)
    try:
        dictionary = [c for c in schema.names if c in DICTIONARY]
        with (pq.ParquetWriter(sink.tmp, schema, compression="zstd",
                               use_dictionary=dictionary) as w,
              ThreadPoolExecutor(max_workers=1) as writer):
            pending: Future[None] | None = None
            duplicates = Duplicates(name)
            for b in batches:
                dup = duplicates.mask(b)
                b = repair_text(clean(name, _conform(b, schema), stats, dup), stats)
                if b.num_rows:
                    if pending:
                        pending.result()
                    pending = writer.submit(w.write_batch, b)
            if pending:
                pending.result()
            else:
                w.write_table(schema.empty_table())
            w.add_key_value_metadata({META_KEY: stats.to_json()})
        sink.commit()
    except OSError as exc:  # a full disk: name the file (pyarrow's message names none)
        sink.discard()
        raise storage.write_failed(path, exc) from exc
    except BaseException:
        sink.discard()
        raise
    return stats


def extract(name: str, dsn: str, values: dict[str, object], path: str,
            statement_timeout_seconds: int | None = None) -> Stats:
    """Run the dataset's SQL with `values` bound and write its Parquet file."""
    sql, params = bind(name, values)
    try:
        return write_batches(path, name,
                             query_batches(dsn, sql, params, statement_timeout_seconds))
    except SourceError as exc:
        raise SourceError(timeout_hint(f"dataset {name}: {exc}",
                                       statement_timeout_seconds)) from exc


def repair_file(path: str, name: str) -> bool:
    """Repair, in place, a dataset file written before its text was checked (a config
    snapshot kept from an earlier run of the day: DECISIONS 33). Its rejected counts are
    kept and the rows repaired are added; True when the file was rewritten.

    The file is read whole: only the small configuration datasets are kept across runs.
    """
    table = storage.read_table(path)
    try:
        for col in table.columns:
            if col.type == pa.string():
                col.validate(full=True)
        return False
    except pa.ArrowInvalid:
        pass
    old = read_stats(path)
    write_batches(path, name, table.to_batches(),
                  Stats(rejected=dict(old.rejected), repaired=dict(old.repaired)))
    return True


def read_stats(path: str) -> Stats:
    """The row and rejection counts stored in a dataset file."""
    src = pa.BufferReader(storage.read_bytes(path)) if storage.is_url(path) else path
    meta = pq.read_metadata(src).metadata or {}
    raw = json.loads(meta.get(META_KEY, b"{}"))
    return Stats(rows=raw.get("rows", 0), rejected=raw.get("rejected", {}),
                 repaired=raw.get("repaired", {}))
