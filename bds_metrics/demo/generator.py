"""Demo data for bds: one shared Info Mart holding two tenants, and two GVP RS databases.

Why: the demo, the tests and the benchmarks need data that looks like a contact centre
(shifts and breaks in the agents' own time zones, weekends, night shifts, a month end,
a DST change) and that holds the odd rows a real Info Mart holds (open, stuck and
malformed sessions, agents with no Person or no switch, broken folder trees), at any
scale. Rows are generated with numpy, whole days at a time, and loaded with binary COPY
over one connection per large table (a psycopg worker thread sends while numpy builds
the next block), so millions of rows a day load in seconds. The rows are a pure
function of the arguments and the seed.

Fixed "edge" rows carry keys ``tenant_key * 1000 + k`` (``101001``… for acme,
``102001``… for globex) so that tests can look at them; generated keys start above
``FIRST_KEY``; ``_edges`` lists them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg.copy import QueuedLibpqWriter

from ..days import local_midnight

SQL_DIR = files("bds_metrics") / "sql"  # package data (importlib.resources)

Arrays = dict[str, np.ndarray]

NULL = np.iinfo(np.int64).min
"""Null marker in integer columns (text columns use the empty string)."""

FIRST_KEY = 1_000_000
"""Generated fact keys start above this; the fixed edge rows use ``tenant_key*1000+k``."""

ITYPE = {"INBOUND": 1, "OUTBOUND": 2, "INTERNAL": 3}
# MEDIA_TYPE rows (key = position from 1): voice, chat and e-mail, and SMS for seats_sms.
MEDIA_TYPES = (("Voice", "VOICE"), ("Chat", "CHAT"), ("Email", "EMAIL"), ("SMS", "SMS"))
SMS = 4
TEST_NUMBER = "+15550000000"
EPOCH = date(1970, 1, 1)
HOUR = 3600
DAY = 86400

# Column types of the COPY streams: i2/i4/i8 integers, t text (NULL / "" = null).
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "media_type": [("media_type_key", "i4"), ("media_name", "t"), ("media_name_code", "t")],
    "interaction_type": [("interaction_type_key", "i4"), ("interaction_type_code", "t")],
    "resource_": [
        ("resource_key", "i4"), ("tenant_key", "i4"), ("resource_type_code", "t"),
        ("resource_name", "t"), ("employee_id", "t"), ("switch_name", "t"),
        ("resource_cfg_dbid", "i4"),
    ],
    "gidb_gc_agent": [
        ("id", "i4"), ("tenantid", "i4"), ("folderid", "i4"), ("username", "t"),
        ("employeeid", "t"), ("status", "i4"),
    ],
    "gidb_gc_folder": [
        ("id", "i4"), ("tenantid", "i4"), ("name", "t"), ("folderid", "i4"), ("status", "i4"),
    ],
    "sm_res_session_fact": [
        ("sm_res_session_fact_key", "i8"), ("tenant_key", "i4"), ("media_type_key", "i4"),
        ("resource_key", "i4"), ("start_ts", "i4"), ("end_ts", "i4"),
        ("total_duration", "i4"), ("active_flag", "i2"),
    ],
    "gidb_g_login_session_mm": [
        ("id", "i8"), ("loginsessionid", "t"), ("agentid", "i4"), ("tenantid", "i4"),
        ("created_ts", "i4"), ("terminated_ts", "i4"),
    ],
    "interaction_fact": [
        ("interaction_id", "i8"), ("tenant_key", "i4"), ("media_type_key", "i4"),
        ("interaction_type_key", "i4"), ("media_server_ixn_guid", "t"),
        ("source_address", "t"), ("target_address", "t"), ("start_ts", "i4"), ("end_ts", "i4"),
    ],
    "interaction_resource_fact": [
        ("interaction_resource_id", "i8"), ("interaction_id", "i8"), ("tenant_key", "i4"),
        ("resource_key", "i4"), ("media_type_key", "i4"), ("start_ts", "i4"), ("end_ts", "i4"),
        ("talk_duration", "i4"), ("call_attempt_id", "t"),
    ],
    "contact_attempt_fact": [
        ("contact_attempt_fact_key", "i8"), ("tenant_key", "i4"), ("call_attempt_id", "t"),
        ("start_ts", "i4"), ("end_ts", "i4"),
    ],
    "gvp_cdr": [
        ("cdr_id", "i8"), ("callid", "t"), ("ivr_profile", "t"), ("start_ts", "i4"),
        ("end_ts", "i4"),
    ],
}
FACTS = (
    "sm_res_session_fact", "gidb_g_login_session_mm", "interaction_fact",
    "interaction_resource_fact", "contact_attempt_fact",
)
CONFIG = ("resource_", "gidb_gc_agent", "gidb_gc_folder")
_SIZE = {"i2": 2, "i4": 4, "i8": 8}
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_TRAILER = b"\xff\xff"


# --------------------------------------------------------------------------- COPY


def _encode(cols: Sequence[tuple[str, str]], data: Mapping[str, np.ndarray]
            ) -> Iterator[np.ndarray]:
    """Yield binary COPY tuples as byte arrays.

    Rows are grouped by their pattern of nulls and text lengths: each group is then one
    fixed-width numpy record array, so no Python code runs per row.
    """
    n = len(data[cols[0][0]])
    if n == 0:
        return
    lens: list[np.ndarray | int] = []
    key = np.zeros(n, np.int64)
    for name, kind in cols:
        v = data[name]
        if kind == "t":
            ln = np.strings.str_len(v).astype(np.int64)
            ln[ln == 0] = -1
        elif (null := v == NULL).any():
            ln = np.where(null, -1, _SIZE[kind])
        else:
            lens.append(_SIZE[kind])
            continue
        present = np.flatnonzero(np.bincount(ln + 1))
        lut = np.zeros(present[-1] + 1, np.int64)
        lut[present] = np.arange(len(present))
        key = key * len(present) + lut[ln + 1]
        lens.append(ln)
    if key.any():
        order = np.argsort(key, kind="stable")
        bounds = np.flatnonzero(np.diff(key[order])) + 1
        groups = np.split(order, bounds)
    else:
        groups = [np.arange(n)]
    for idx in groups:
        first = idx[0]
        fields: list[tuple[str, str]] = [("nf", ">i2")]
        plan: list[tuple[int, int, str]] = []
        for j, ((_, kind), ln) in enumerate(zip(cols, lens, strict=True)):
            size = ln if isinstance(ln, int) else int(ln[first])
            fields.append((f"l{j}", ">i4"))
            if size >= 0:
                fields.append((f"d{j}", f"S{size}" if kind == "t" else f">{kind}"))
            plan.append((j, size, kind))
        rec = np.empty(len(idx), np.dtype(fields))
        rec["nf"] = len(cols)
        for j, size, _kind in plan:
            rec[f"l{j}"] = size
            if size >= 0:
                rec[f"d{j}"] = data[cols[j][0]][idx]
        yield rec.view(np.uint8)


class _Stream:
    """One COPY into one table over its own connection, open for the whole load.

    Why: psycopg's queued writer sends from a worker thread, so the server parses one
    block while numpy builds the next one.
    """

    def __init__(self, stack: contextlib.ExitStack, dsn: str, table: str) -> None:
        self.cols = COLUMNS[table]
        self.rows = 0
        conn = stack.enter_context(psycopg.connect(dsn))
        cur = stack.enter_context(conn.cursor())
        names = ", ".join(c for c, _ in self.cols)
        stmt = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
        self.copy = stack.enter_context(cur.copy(stmt, writer=QueuedLibpqWriter(cur)))
        self.copy.write(_HEADER)
        stack.callback(self.copy.write, _TRAILER)  # runs before the COPY ends

    def write(self, data: Mapping[str, np.ndarray]) -> None:
        for block in _encode(self.cols, data):
            self.copy.write(memoryview(block))
        self.rows += len(data[self.cols[0][0]])


def _copy_rows(conn: psycopg.Connection[Any], table: str, data: Mapping[str, np.ndarray]) -> int:
    """COPY rows into a table over an existing connection (in its transaction)."""
    cols = COLUMNS[table]
    with conn.cursor() as cur:
        names = ", ".join(c for c, _ in cols)
        with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(_HEADER)
            for block in _encode(cols, data):
                cp.write(memoryview(block))
            cp.write(_TRAILER)
    return len(data[cols[0][0]])


# --------------------------------------------------------------------------- helpers


def _rng(seed: int, *parts: int) -> np.random.Generator:
    """An independent stream per (tenant, purpose, day): chunks do not shift each other."""
    return np.random.default_rng([seed, *parts])


def _s(values: Sequence[str | None]) -> np.ndarray:
    """Strings to a bytes array (None becomes the null marker, the empty string)."""
    return np.array([(v or "").encode() for v in values], dtype=bytes)


_HEXDIGITS = np.frombuffer(b"0123456789ABCDEF", np.uint8)


def _hex(rng: np.random.Generator, n: int, nbytes: int, dashed: bool = False) -> np.ndarray:
    """Random upper-case hex ids (``dashed``: UUID layout 8-4-4-4-12)."""
    raw = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    out = np.empty((n, nbytes * 2), np.uint8)
    out[:, 0::2] = _HEXDIGITS[raw >> 4]
    out[:, 1::2] = _HEXDIGITS[raw & 15]
    if dashed:
        dash = np.full((n, 1), ord("-"), np.uint8)
        out = np.hstack([out[:, :8], dash, out[:, 8:12], dash, out[:, 12:16], dash,
                         out[:, 16:20], dash, out[:, 20:]])
    return np.ascontiguousarray(out).view(f"S{out.shape[1]}").ravel()


def _numbers(rng: np.random.Generator, plan_of_row: np.ndarray,
             plans: Sequence[Sequence[tuple[str, int, float]]], pool: int = 0) -> np.ndarray:
    """Phone numbers: per row a plan, per plan weighted prefixes padded with digits.

    ``pool``: each prefix has only that many numbers (a tenant's DNIS are a few lines,
    the same for every seed); 0: random digits (callers).
    """
    out = np.zeros(len(plan_of_row), "S16")
    for p, choices in enumerate(plans):
        rows = np.flatnonzero(plan_of_row == p)
        if not len(rows):
            continue
        w = np.array([c[2] for c in choices])
        pick = rng.choice(len(choices), len(rows), p=w / w.sum())
        for c, (prefix, length, _) in enumerate(choices):
            sel = rows[pick == c]
            m, free = len(sel), length - len(prefix)
            buf = np.empty((m, length), np.uint8)
            buf[:, : len(prefix)] = np.frombuffer(prefix.encode(), np.uint8)
            if pool:
                lines = np.random.default_rng([p, c]).integers(48, 58, (pool, free), np.uint8)
                buf[:, len(prefix):] = lines[rng.integers(0, pool, m)]
            else:
                buf[:, len(prefix):] = rng.integers(48, 58, (m, free), dtype=np.uint8)
            out[sel] = buf.view(f"S{length}").ravel()
    return out


def _concat(parts: Sequence[Arrays]) -> Arrays:
    """Concatenate column dicts that have the same keys."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _take(a: Arrays, idx: np.ndarray) -> Arrays:
    return {k: v[idx] for k, v in a.items()}


def _rows(a: Arrays) -> int:
    return len(next(iter(a.values()))) if a else 0


class _Clock:
    """Local wall time to UTC, vectorised over agents in several zones (hourly offsets)."""

    def __init__(self, zones: Sequence[str], first: date, last: date) -> None:
        self.base = (first - EPOCH).days * DAY
        self.hours = ((last - first).days + 1) * 24
        self.off = np.empty((len(zones), self.hours), np.int64)
        for z, name in enumerate(zones):
            zi = ZoneInfo(name)
            for h in range(self.hours):
                wall = datetime(1970, 1, 1) + timedelta(seconds=self.base + h * HOUR)
                offset = wall.replace(tzinfo=zi).utcoffset()
                self.off[z, h] = int(offset.total_seconds()) if offset else 0

    def utc(self, zone: np.ndarray, naive: np.ndarray) -> np.ndarray:
        h = np.clip((naive - self.base) // HOUR, 0, self.hours - 1)
        return naive - self.off[zone, h]


# --------------------------------------------------------------------------- tenants

_MISSING = -1  # a folder's parent that does not exist


@dataclass(frozen=True)
class _Site:
    """A switch and where its agents live. switch None: RESOURCE_.SWITCH_NAME is NULL."""

    switch: str | None
    tz: int  # index into _Tenant.zones
    region: int  # index into _Tenant.regions (numbers, route point, GVP database)
    weight: float
    move_to: int | None = None  # site an agent of this site may move to


@dataclass(frozen=True)
class _Folder:
    """A configuration folder; parent 0 or None is a root, _MISSING a deleted parent."""

    local: int
    name: str
    parent: int | None
    plan: int  # DNIS plan of the calls its agents take
    weight: float  # share of the agents whose Person sits here


@dataclass(frozen=True)
class _Tenant:
    id: str
    index: int
    key: int
    dbid: int
    tz: str
    zones: tuple[str, ...]
    sites: tuple[_Site, ...]
    regions: tuple[str, ...]
    gvp: tuple[str | None, ...]  # per region: GVP conn id, None: no IVR data
    folders: tuple[_Folder, ...]
    edge_folders: tuple[int | None, ...]  # Person folders of agents 4..9 (None: NULL)
    dnis: tuple[tuple[tuple[str, int, float], ...], ...]  # plans
    region_plan: tuple[int | None, ...]  # per region: DNIS plan (None: the folder's)
    ani: tuple[tuple[tuple[str, int, float], ...], ...]  # per region
    route_points: tuple[tuple[str, str], ...]  # per region: (number, switch)
    queues: tuple[tuple[str, str], ...]  # (name, switch); the first shares a Person DBID
    profiles: tuple[str, ...]  # IVR profile per DNIS plan
    caller_id: str
    mailbox: str
    edge_numbers: tuple[str, str, str, str]  # plain DNIS, BU DNIS, longest-prefix DNIS, ANI
    test_calls: bool


_US = (("+1212", 12, 0.2), ("+1646", 12, 0.2), ("+1312", 12, 0.15), ("+1415", 12, 0.15),
       ("+1617", 12, 0.15), ("+1305", 12, 0.15))
ACME = _Tenant(
    id="acme", index=0, key=101, dbid=1, tz="America/New_York",
    zones=("America/New_York", "Europe/Dublin"),
    sites=(
        _Site("SIP_East_1", 0, 0, 0.33, move_to=2),
        _Site("SIP_East_2", 0, 0, 0.24, move_to=0),
        _Site("SIP_West_1", 0, 0, 0.15, move_to=1),
        _Site("SIP_Dublin", 1, 1, 0.20),
        _Site(None, 0, 0, 0.04),
        _Site("SIP_Legacy", 0, 0, 0.04),  # listed by no location: the default one
    ),
    regions=("us", "eu"),
    gvp=("bds_demo_gvp", "bds_demo_gvp_eu"),
    folders=(
        _Folder(1, "Persons", None, 0, 0.03),  # blacklisted name: never a BU
        _Folder(2, "Sales", 1, 1, 0.04),
        _Folder(3, "Sales East", 2, 1, 0.14),
        _Folder(4, "Sales West", 2, 1, 0.09),
        _Folder(5, "Inside Sales", 2, 1, 0.07),
        _Folder(6, "SUPPORT", 1, 2, 0.03),  # other case than the BU name
        _Folder(7, "Tier 1", 6, 2, 0.14),
        _Folder(8, "Tier 2", 6, 2, 0.09),
        _Folder(9, "Collections", 6, 3, 0.05),  # under Support: Support wins
        _Folder(10, "Collections", 1, 3, 0.07),
        _Folder(11, "Early Stage", 10, 3, 0.04),
        _Folder(12, "Trainees", 1, 0, 0.05),
        _Folder(13, "Contractors", 1, 0, 0.01),
        _Folder(14, "sales", 13, 1, 0.04),
        _Folder(15, "Agents", 0, 0, 0.0),  # a root with parent 0
        _Folder(16, "Supervisors", 15, 0, 0.02),
        _Folder(17, "Old Structure", _MISSING, 0, 0.005),  # orphan
        _Folder(18, "Sales", 17, 1, 0.015),  # a BU name under the orphan
        _Folder(19, "Loop A", 20, 0, 0.01),  # cycle 19 <-> 20
        _Folder(20, "Loop B", 19, 0, 0.005),
        _Folder(21, "Support", 19, 2, 0.005),  # a BU name under the cycle
    ),
    edge_folders=(None, 18, 21, 9, 10, 1),
    dnis=(
        (("+1833", 12, 0.4), ("+1800", 12, 0.3), ("+1646", 12, 0.3)),  # default
        (("+1888", 12, 0.6), ("+1866", 12, 0.25), ("+1212", 12, 0.15)),  # sales
        (("+1800555", 12, 0.5), ("+1877555", 12, 0.3), ("+1844", 12, 0.2)),  # support
        (("+1800555123", 12, 0.7), ("+1855", 12, 0.3)),  # collections
        (("+3531", 13, 0.7), ("+3531800", 13, 0.3)),  # Dublin
    ),
    region_plan=(None, 4),
    ani=(_US, (("+3538", 13, 0.7), ("+3531", 13, 0.3))),
    route_points=(("8000", "SIP_East_1"), ("8100", "SIP_Dublin")),
    queues=(("VQ_Sales", "SIP_East_1"), ("VQ_Support", "SIP_East_2")),
    profiles=("acme_main", "acme_sales", "acme_support", "acme_collections", "acme_eu"),
    caller_id="+18885550100",
    mailbox="support@acme.example",
    edge_numbers=("+18448880000", "+18775550199", "+18005551234", "+13125550100"),
    test_calls=True,
)
GLOBEX = _Tenant(
    id="globex", index=1, key=102, dbid=2, tz="UTC",
    zones=("Europe/London",),
    sites=(
        _Site("SIP_London", 0, 0, 0.60, move_to=1),
        _Site("SIP_Frankfurt", 0, 0, 0.32, move_to=0),
        _Site(None, 0, 0, 0.04),
        _Site("SIP_Old_PBX", 0, 0, 0.04),
    ),
    regions=("emea",),
    gvp=(None,),
    folders=(
        _Folder(1, "Persons", None, 0, 0.05),
        _Folder(2, "London Team", 1, 0, 0.10),
        _Folder(3, "Service Desk", 2, 0, 0.30),
        _Folder(4, "Retention", 2, 0, 0.15),
        _Folder(5, "Frankfurt Team", 1, 1, 0.05),
        _Folder(6, "Kundenservice", 5, 1, 0.25),
        _Folder(7, "Archiv", _MISSING, 0, 0.01),
        _Folder(8, "Alt", 7, 0, 0.02),
        _Folder(9, "Loop X", 10, 0, 0.01),
        _Folder(10, "Loop Y", 9, 0, 0.01),
        _Folder(11, "Agents", 0, 0, 0.02),
    ),
    edge_folders=(None, 8, 9, 3, 4, 1),
    dnis=(
        (("+44207", 13, 0.6), ("+44800", 13, 0.4)),
        (("+4969", 13, 0.6), ("+49800", 14, 0.4)),
    ),
    region_plan=(None,),
    ani=((("+447", 13, 0.7), ("+4420", 13, 0.2), ("+4915", 14, 0.1)),),
    route_points=(("7000", "SIP_London"),),
    queues=(("VQ_London", "SIP_London"), ("VQ_Frankfurt", "SIP_Frankfurt")),
    profiles=("globex_uk", "globex_de"),
    caller_id="+442071230000",
    mailbox="service@globex.example",
    edge_numbers=("+442070000001", "+448000000002", "+448000000003", "+447700900123"),
    test_calls=False,
)
TENANTS = {t.id: t for t in (ACME, GLOBEX)}
DNIS_LINES = 12  # numbers per DNIS prefix
BLOCK = 250_000  # sessions per generated block: memory stays well under 2 GB
N_EDGE_AGENTS = 16  # agents 0..15 have fixed roles (see _agents and _edges)


# --------------------------------------------------------------------------- agents


@dataclass
class _Agents:
    """One tenant's agents as parallel arrays (index i = agent i)."""

    n: int
    person: np.ndarray  # Person DBID = RESOURCE_CFG_DBID = AGENTID
    rkey: np.ndarray  # RESOURCE_KEY of the agent's first RESOURCE_ row
    rkey_new: np.ndarray  # RESOURCE_KEY after a switch move (else rkey)
    move_ts: np.ndarray  # when the move happened (int64 max: never)
    zone: np.ndarray
    region: np.ndarray
    plan: np.ndarray  # DNIS plan of their calls
    voice: np.ndarray
    chat: np.ndarray
    email: np.ndarray
    outbound: np.ndarray
    shift_start: np.ndarray  # seconds after local midnight
    shift_len: np.ndarray
    weekend: np.ndarray  # works weekends rather than weekdays
    rp_key: np.ndarray  # route point RESOURCE_KEY per region
    queue_key: np.ndarray  # QUEUE RESOURCE_KEYs
    config: dict[str, Arrays]  # RESOURCE_, GIDB_GC_AGENT, GIDB_GC_FOLDER rows


def _stride(n: int) -> int:
    """Id block per tenant: 1000 for demo sizes (acme Persons 1001.., globex 2001..)."""
    need = int(n * 1.05) + 100
    return 1000 if need < 1000 else 10 ** math.ceil(math.log10(need))


def _folder_id(t: _Tenant, local: int) -> int:
    return 300 + 100 * t.index + local


def _agents(t: _Tenant, n: int, seed: int, first_day: date, days: int) -> _Agents:
    """Draw the agents, their skills, shifts, switches and folders, and the config rows."""
    if n < N_EDGE_AGENTS:
        raise ValueError(f"agents_per_tenant must be at least {N_EDGE_AGENTS}")
    rng = _rng(seed, t.index, 0)
    stride = _stride(n)
    if stride * 13 >= 2**31:
        raise ValueError("too many agents for integer ids")
    pbase, rbase = (t.index + 1) * stride, (t.index + 11) * stride
    sw = np.array([s.weight for s in t.sites])
    site = rng.choice(len(t.sites), n, p=sw / sw.sum())
    switch_of = [s.switch for s in t.sites]
    null_site = switch_of.index(None)
    unknown_site = len(t.sites) - 1
    site[:N_EDGE_AGENTS] = 0
    site[1], site[2] = null_site, unknown_site
    voice = rng.random(n) < 0.88
    chat = rng.random(n) < 0.35
    email = rng.random(n) < 0.08
    voice |= ~(chat | email)
    voice[:N_EDGE_AGENTS] = True
    chat[[3, 10, 12]] = True
    outbound = voice & (rng.random(n) < 0.3)
    outbound[[14, 15]] = True
    hours = np.array([6, 7, 8, 9, 10, 11, 12, 14, 16, 22])
    hw = np.array([0.05, 0.12, 0.2, 0.2, 0.12, 0.06, 0.07, 0.08, 0.05, 0.05])
    shift_start = rng.choice(hours, n, p=hw) * HOUR + rng.integers(0, 4, n) * 900
    part = rng.random(n) < 0.15
    shift_len = np.where(part, 4.5 * HOUR, 8.5 * HOUR) + rng.normal(0, 600, n)
    weekend = rng.random(n) < 0.2

    fw = np.array([f.weight for f in t.folders] + [0.005])  # last: NULL FOLDERID
    folder = rng.choice(len(fw), n, p=fw / fw.sum())
    locals_ = {f.local: i for i, f in enumerate(t.folders)}
    for i, local in enumerate(t.edge_folders, start=4):
        folder[i] = len(t.folders) if local is None else locals_[local]
    has_person = rng.random(n) >= 0.01
    has_person[:N_EDGE_AGENTS] = True
    has_person[3] = False

    move_from = np.array([-1 if s.move_to is None else s.move_to for s in t.sites])
    moved = (rng.random(n) < 0.02) & (move_from[site] >= 0)
    moved[:N_EDGE_AGENTS] = False
    moved[0] = True
    start_utc = local_midnight(first_day, t.tz)
    move_ts = np.full(n, np.iinfo(np.int64).max)
    move_ts[moved] = start_utc + rng.integers(0, max(days, 1) * DAY, moved.sum())
    move_ts[0] = start_utc + (days // 2) * DAY
    n_moved = int(moved.sum())
    rkey = rbase + 1 + np.arange(n)
    rkey_new = rkey.copy()
    rkey_new[moved] = rbase + n + 1 + np.arange(n_moved)
    person = pbase + 1 + np.arange(n)

    region = np.array([s.region for s in t.sites])[site]
    zone = np.array([s.tz for s in t.sites])[site]
    plan = np.array([f.plan for f in t.folders] + [0])[folder]
    region_plan = np.array([-1 if p is None else p for p in t.region_plan])[region]
    plan = np.where(region_plan >= 0, region_plan, plan)

    # RESOURCE_: one row per agent, a second for movers, then queues and route points
    first = ["Ann", "Ben", "Cara", "Dan", "Eva", "Finn", "Gail", "Hugo", "Ida", "Jon", "Kim",
             "Liam", "Mia", "Noah", "Olga", "Paul", "Rita", "Sam", "Tara", "Uma", "Vic", "Wen"]
    last = ["Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Murphy", "Kelly", "Walsh",
            "Taylor", "Wilson", "Moore", "Clark", "Lewis", "Young", "King", "Wright", "Scott"]
    uname = np.strings.add(np.strings.add(_s(first)[rng.integers(0, len(first), n)], b"."),
                           _s(last)[rng.integers(0, len(last), n)])
    uname = np.strings.add(np.strings.add(uname, b"."), (person % 1_000_000).astype("S7"))
    empid = np.strings.add(b"E", np.strings.zfill(person.astype("S10"), 8))
    sw_names = _s(switch_of)
    new_site = np.array([0 if s.move_to is None else s.move_to for s in t.sites])[site[moved]]
    nq, nr = len(t.queues), len(t.route_points)
    extra = rbase + n + n_moved + 1 + np.arange(nq + nr)
    queue_dbid = np.array([person[10]] + [900_000 + 100 * t.index + k for k in range(1, nq)])
    rp_dbid = 900_050 + 100 * t.index + np.arange(nr)
    resource = {
        "resource_key": np.concatenate([rkey, rkey_new[moved], extra]),
        "tenant_key": np.full(n + n_moved + nq + nr, t.key),
        "resource_type_code": np.concatenate([
            np.full(n + n_moved, b"AGENT"), np.full(nq, b"QUEUE"), np.full(nr, b"ROUTE_POINT")]),
        "resource_name": np.concatenate([uname, uname[moved], _s([q for q, _ in t.queues]),
                                         _s([r for r, _ in t.route_points])]),
        "employee_id": np.concatenate([empid, empid[moved], np.zeros(nq + nr, "S1")]),
        "switch_name": np.concatenate([sw_names[site], sw_names[new_site],
                                       _s([s for _, s in t.queues]),
                                       _s([s for _, s in t.route_points])]),
        "resource_cfg_dbid": np.concatenate([person, person[moved], queue_dbid, rp_dbid]),
    }
    # GIDB_GC_AGENT: Persons of the agents that have one, plus a few never logged in
    fid = np.array([_folder_id(t, f.local) for f in t.folders] + [NULL])
    n_idle = max(2, n // 50)
    idle_folder = rng.choice(len(fw), n_idle, p=fw / fw.sum())
    idle = pbase + n + 1 + np.arange(n_idle)
    persons = {
        "id": np.concatenate([person[has_person], idle]),
        "tenantid": np.full(int(has_person.sum()) + n_idle, t.dbid),
        "folderid": np.concatenate([fid[folder[has_person]], fid[idle_folder]]),
        "username": np.concatenate([uname[has_person],
                                    np.strings.add(b"new.hire.", idle.astype("S10"))]),
        "employeeid": np.concatenate([empid[has_person],
                                      np.strings.add(b"E", idle.astype("S10"))]),
        "status": np.concatenate([np.ones(int(has_person.sum()), np.int64),
                                  np.full(n_idle, 2)]),
    }

    def parent(f: _Folder) -> int:
        if f.parent is None:
            return NULL
        if f.parent == _MISSING:
            return 9999
        return 0 if f.parent == 0 else _folder_id(t, f.parent)

    folders = {
        "id": np.array([_folder_id(t, f.local) for f in t.folders]),
        "tenantid": np.full(len(t.folders), t.dbid),
        "name": _s([f.name for f in t.folders]),
        "folderid": np.array([parent(f) for f in t.folders]),
        "status": np.ones(len(t.folders), np.int64),
    }
    return _Agents(
        n=n, person=person, rkey=rkey, rkey_new=rkey_new, move_ts=move_ts, zone=zone,
        region=region, plan=plan, voice=voice, chat=chat, email=email, outbound=outbound,
        shift_start=shift_start, shift_len=shift_len, weekend=weekend,
        rp_key=extra[nq:], queue_key=extra[:nq],
        config={"resource_": resource, "gidb_gc_agent": persons, "gidb_gc_folder": folders},
    )


# --------------------------------------------------------------------------- sessions


def _day_sessions(ag: _Agents, d: date, clock: _Clock, rng: np.random.Generator,
                  working: int | None) -> Arrays:
    """The sessions of the shifts that start on local date ``d``.

    One row per SM_RES_SESSION_FACT row to be (agent, media, start, end), with the
    multimedia login session on the row that owns it. A shift is split at the breaks
    at which the agent logs out (or re-logs at once: touching; or before the logout is
    seen: overlapping); chat and e-mail sessions sit inside the MM login session.
    """
    if working is None:
        wkend = d.weekday() >= 5
        p = np.where(ag.weekend, 0.85 if wkend else 0.6, 0.12 if wkend else 0.92)
        idx = np.flatnonzero(rng.random(ag.n) < p)
    else:
        idx = np.sort(rng.permutation(ag.n)[:working])
    m = len(idx)
    naive = (d - EPOCH).days * DAY + ag.shift_start[idx] + rng.normal(0, 600, m).astype(np.int64)
    s0 = clock.utc(ag.zone[idx], np.maximum(naive, (d - EPOCH).days * DAY))
    s1 = s0 + (ag.shift_len[idx] + rng.normal(0, 900, m)).astype(np.int64)
    forgot = rng.random(m) < 0.004  # never logged out: the session runs on for hours
    last_end = s1 + np.where(forgot, rng.integers(6 * HOUR, 40 * HOUR, m), 0)
    at = np.array([2 * HOUR, 4 * HOUR, 6.5 * HOUR])
    pause = s0[:, None] + (at + rng.uniform(-900, 900, (m, 3))).astype(np.int64)
    blen = np.column_stack([rng.integers(720, 1080, m), rng.integers(1800, 3600, m),
                            rng.integers(720, 1080, m)])
    valid = pause + blen < (s1 - 900)[:, None]
    u = rng.random((m, 3))
    split = valid & (u < 0.53)
    resume = np.where(u < 0.45, pause + blen,
                      np.where(u < 0.5, pause, pause - rng.integers(5, 120, (m, 3))))
    starts = np.column_stack([s0, resume])
    ends = np.column_stack([pause, last_end])
    keep_s = np.column_stack([np.ones(m, bool), split])
    keep_e = np.column_stack([split, np.ones(m, bool)])
    a = np.repeat(idx, split.sum(1) + 1)
    ss, se = starts[keep_s], ends[keep_e]
    ns = len(a)

    voice = ag.voice[a]
    mm = (ag.chat[a] | ag.email[a]) & ((rng.random(ns) < 0.85) | ~voice)
    mm_s = ss + rng.integers(0, 60, ns)
    mm_e = np.maximum(se - rng.integers(0, 60, ns), mm_s + 120)
    chat = mm & ag.chat[a]
    email = mm & ag.email[a]
    zero = voice & (rng.random(ns) < 3e-4)  # login and logout in the same second
    out = ag.outbound[a] & (rng.random(ns) < 0.75)
    quiet = rng.random(ns) < 0.12  # a session in which no chat ever arrives

    def part(sel: np.ndarray, media: int, start: np.ndarray, end: np.ndarray,
             owner: np.ndarray | None) -> Arrays:
        k = len(start)
        own = np.zeros(k, bool) if owner is None else owner
        return {
            "agent": a[sel], "media": np.full(k, media, np.int8), "start": start,
            "end": end, "outbound": out[sel] & (media == 1), "quiet": quiet[sel],
            "mm_s": np.where(own, mm_s[sel], NULL), "mm_e": np.where(own, mm_e[sel], NULL),
        }

    cs = mm_s[chat] + rng.integers(1, 4, int(chat.sum()))
    es = mm_s[email] + rng.integers(2, 8, int(email.sum()))
    return _concat([
        part(voice, 1, ss[voice], se[voice], None),
        part(chat, 2, cs, np.maximum(mm_e[chat] - rng.integers(1, 4, len(cs)), cs + 60),
             np.ones(len(cs), bool)),
        part(email, 3, es, np.maximum(mm_e[email] - rng.integers(1, 6, len(es)), es + 60),
             ~chat[email]),
        part(zero, 1, ss[zero] - 30, ss[zero] - 30, None),
    ])


def _trim(day_idx: np.ndarray, per_day: int, rng: np.random.Generator) -> np.ndarray:
    """Keep at most ``per_day`` random rows per day (the benchmark's exact density)."""
    prio = rng.random(len(day_idx))
    order = np.lexsort((prio, day_idx))
    sorted_days = day_idx[order]
    first = np.searchsorted(sorted_days, sorted_days, side="left")
    keep = np.zeros(len(day_idx), bool)
    keep[order] = (np.arange(len(order)) - first) < per_day
    return keep


# --------------------------------------------------------------------------- activity


@dataclass
class _Ctx:
    """What the activity of one block needs besides its sessions."""

    t: _Tenant
    ag: _Agents
    now: int
    scale: float
    keys: dict[str, int]  # next free key per table
    emails: np.ndarray

    def take(self, table: str, n: int) -> np.ndarray:
        base = self.keys[table]
        self.keys[table] += n
        return base + np.arange(n, dtype=np.int64)


def _spread(rng: np.random.Generator, start: np.ndarray, dur: np.ndarray, rate: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson arrivals per session: (session index, slot start, slot length).

    Calls follow one another: each gets its own slot of the session, so one agent's
    calls do not overlap.
    """
    n = rng.poisson(np.maximum(rate * dur / HOUR, 0))
    row = np.repeat(np.arange(len(n)), n)
    k = np.arange(len(row)) - np.repeat(np.cumsum(n) - n, n)
    slot = dur[row] // np.maximum(n[row], 1)
    return row, start[row] + k * slot, slot


def _resource(ag: _Agents, agent: np.ndarray, ts: np.ndarray) -> np.ndarray:
    return np.where(ts >= ag.move_ts[agent], ag.rkey_new[agent], ag.rkey[agent])


def _activity(ctx: _Ctx, s: Arrays, rng: np.random.Generator) -> dict[str, Arrays]:
    """Interactions, contact attempts, MM login sessions and IVR legs of kept sessions."""
    t, ag, now = ctx.t, ctx.ag, ctx.now
    dur = np.clip(np.minimum(s["end"], now) - s["start"], 0, None)
    a, media = s["agent"], s["media"]
    ixn: list[Arrays] = []  # interaction_fact rows; "n" = local index for IRF links
    irf: list[Arrays] = []
    cdr: list[Arrays] = []
    caf: list[Arrays] = []
    count = 0

    def add_ixn(media_k: int, itype: int, guid: np.ndarray, src: np.ndarray, dst: np.ndarray,
                start: np.ndarray, end: np.ndarray) -> np.ndarray:
        nonlocal count
        k = len(start)
        local = count + np.arange(k)
        count += k
        ixn.append({"n": local, "media_type_key": np.full(k, media_k),
                    "interaction_type_key": np.full(k, itype), "media_server_ixn_guid": guid,
                    "source_address": src, "target_address": dst, "start_ts": start,
                    "end_ts": end})
        return local

    def add_irf(local: np.ndarray, rkey: np.ndarray, media_k: int, start: np.ndarray,
                end: np.ndarray, talk: np.ndarray, attempt: np.ndarray | None = None) -> None:
        k = len(local)
        irf.append({"n": local, "resource_key": rkey, "media_type_key": np.full(k, media_k),
                    "start_ts": start, "end_ts": end, "talk_duration": talk,
                    "call_attempt_id": np.zeros(k, "S1") if attempt is None else attempt})

    def lognormal(mean: float, sigma: float, k: int) -> np.ndarray:
        return rng.lognormal(np.log(mean), sigma, k).astype(np.int64)

    voice = media == 1
    vidx = np.flatnonzero(voice)
    voice_agents = np.flatnonzero(ag.voice)

    # inbound (and campaign) calls, one after the other in each voice session
    outb = s["outbound"][vidx]
    row, slot0, slot = _spread(rng, s["start"][vidx], dur[vidx],
                               np.where(outb, 10.0, 7.0) * ctx.scale)
    r = vidx[row]
    connect = slot0 + (rng.random(len(row)) * 0.3 * slot).astype(np.int64)
    talk = np.clip(lognormal(230, 0.6, len(row)), 10, np.maximum(slot * 65 // 100, 10))
    agent = a[r]
    inbound = ~s["outbound"][r]

    i = np.flatnonzero(inbound)
    ni = len(i)
    ai, ci, ti = agent[i], connect[i], talk[i].copy()
    ti[rng.random(ni) < 0.01] = 0  # picked up and dropped: not handled
    ivr = np.clip(lognormal(45, 0.6, ni), 8, 900)
    wait = rng.exponential(25, ni).astype(np.int64)
    if_start = ci - ivr - wait
    end = ci + ti
    xfer = rng.random(ni) < 0.04
    b = voice_agents[rng.integers(0, len(voice_agents), int(xfer.sum()))]
    b_start = end[xfer] + rng.integers(5, 30, len(b))
    b_talk = lognormal(150, 0.5, len(b)) + 1
    end[xfer] = b_start + b_talk
    survey = (rng.random(ni) < 0.05) & (t.gvp[0] is not None)
    survey_len = rng.integers(40, 120, ni)
    if_end = end + np.where(survey, survey_len, 0)
    region = ag.region[ai]
    guid = _hex(rng, ni, 16, dashed=True)
    ani = _numbers(rng, region, t.ani)
    dnis = _numbers(rng, ag.plan[ai], t.dnis, DNIS_LINES)
    loc = add_ixn(1, 1, guid, ani, dnis, if_start, if_end)
    add_irf(loc, _resource(ag, ai, ci), 1, ci, ci + ti, ti)
    add_irf(loc[xfer], ag.rkey_new[b], 1, b_start, b_start + b_talk, b_talk)
    noans = rng.random(ni) < 0.03  # rang at another agent first
    c = voice_agents[rng.integers(0, len(voice_agents), int(noans.sum()))]
    add_irf(loc[noans], ag.rkey_new[c], 1, ci[noans] - rng.integers(15, 30, len(c)),
            ci[noans] - rng.integers(1, 5, len(c)), np.zeros(len(c), np.int64))
    rp = rng.random(ni) < 0.6
    add_irf(loc[rp], ag.rp_key[region[rp]], 1, (if_start + ivr)[rp], ci[rp],
            np.zeros(int(rp.sum()), np.int64))

    # abandoned in the IVR or the queue, and test calls: no agent
    na = rng.poisson(0.08 * ni) if ni else 0
    j = rng.integers(0, max(ni, 1), na)
    ab_start = if_start[j] + rng.integers(-1800, 1800, na) if ni else np.zeros(0, np.int64)
    ab_ivr = np.clip(lognormal(60, 0.7, na), 5, 1800)
    ab_end = ab_start + ab_ivr + rng.exponential(40, na).astype(np.int64)
    ab_region = region[j] if ni else np.zeros(0, np.int64)
    ab_plan = ag.plan[ai[j]] if ni else np.zeros(0, np.int64)
    ab_guid = _hex(rng, na, 16, dashed=True)
    ab = add_ixn(1, 1, ab_guid, _numbers(rng, ab_region, t.ani),
                 _numbers(rng, ab_plan, t.dnis, DNIS_LINES), ab_start, ab_end)
    rp = rng.random(na) < 0.7
    add_irf(ab[rp], ag.rp_key[ab_region[rp]], 1, (ab_start + ab_ivr)[rp], ab_end[rp],
            np.zeros(int(rp.sum()), np.int64))
    nt = rng.poisson(0.002 * ni) if (ni and t.test_calls) else 0
    j2 = rng.integers(0, max(ni, 1), nt)
    te_start = if_start[j2] + rng.integers(-600, 600, nt) if nt else np.zeros(0, np.int64)
    te_end = te_start + rng.integers(20, 90, nt)
    to_test = rng.random(nt) < 0.2
    te_guid = _hex(rng, nt, 16, dashed=True)
    te_ani = np.where(to_test, _numbers(rng, np.zeros(nt, np.int64), t.ani), TEST_NUMBER.encode())
    te_dnis = np.where(to_test, TEST_NUMBER.encode(),
                       _numbers(rng, np.zeros(nt, np.int64), t.dnis, DNIS_LINES))
    add_ixn(1, 1, te_guid, te_ani, te_dnis, te_start, te_end)

    # IVR legs (GVP_CDR): the call's IVR part, a survey leg, calls no IVR leg matches
    if t.gvp[0] is not None:
        nu = rng.poisson(0.02 * ni) if ni else 0
        j3 = rng.integers(0, max(ni, 1), nu)
        leg_start = np.concatenate([if_start + rng.integers(0, 3, ni), end[survey], ab_start,
                                    te_start, (if_start[j3] + rng.integers(-3600, 3600, nu))
                                    if nu else np.zeros(0, np.int64)])
        stuck_port = rng.random(ni) < 1e-3
        leg_end = np.concatenate([
            if_start + ivr + np.where(stuck_port, rng.integers(HOUR, 3 * HOUR, ni), 0),
            if_end[survey], ab_end, te_end,
            leg_start[len(leg_start) - nu:] + lognormal(50, 0.5, nu)])
        legs = len(leg_start)
        callid = np.concatenate([guid, guid[survey], ab_guid, te_guid, _hex(rng, nu, 16, True)])
        callid[rng.random(legs) < 0.03] = b""
        plan = np.concatenate([ag.plan[ai], np.full(int(survey.sum()), -1), ab_plan,
                               np.full(nt, -2), np.full(nu, -3)])
        names = np.concatenate([_s(t.profiles), _s([f"{t.id}_notify", f"{t.id}_test",
                                                    f"{t.id}_survey"])])
        cdr.append({"callid": callid, "ivr_profile": names[plan], "start_ts": leg_start,
                    "end_ts": leg_end,
                    "region": np.concatenate([region, region[survey], ab_region,
                                              np.zeros(nt, np.int64),
                                              region[j3] if nu else np.zeros(0, np.int64)])})

    # campaign calls (Outbound Contact Server): most carry a dialing attempt
    o = np.flatnonzero(~inbound)
    no_ = len(o)
    ao, co, to = agent[o], connect[o], talk[o].copy()
    to[rng.random(no_) < 0.05] = 0  # answering machine
    dial = rng.integers(5, 25, no_)
    loc = add_ixn(1, 2, _hex(rng, no_, 16, True), np.full(no_, t.caller_id.encode()),
                  _numbers(rng, ag.region[ao], t.ani), co - dial, co + to)
    has_attempt = rng.random(no_) < 0.92
    attempt = np.where(has_attempt, _hex(rng, no_, 16), b"")
    add_irf(loc, _resource(ag, ao, co), 1, co, co + to, to, attempt)
    logged = has_attempt & (rng.random(no_) < 0.93)
    dup = logged & (rng.random(no_) < 0.005)
    nf = rng.poisson(1.2, no_)
    f_row = np.repeat(np.arange(no_), nf)
    f_start = co[f_row] - rng.integers(60, 1800, len(f_row))
    caf.append({"call_attempt_id": np.concatenate([attempt[logged], attempt[dup],
                                                   _hex(rng, len(f_row), 16)]),
                "start_ts": np.concatenate([(co - dial)[logged], (co - dial)[dup], f_start]),
                "end_ts": np.concatenate([(co + to)[logged], (co + to)[dup],
                                          f_start + rng.integers(10, 40, len(f_row))])})

    # manual outbound and internal consultation calls, anywhere in the session
    for itype, rate in ((2, 0.3), (3, 0.25)):
        sel = vidx[~s["outbound"][vidx]] if itype == 2 else vidx
        row2, _, _ = _spread(rng, s["start"][sel], dur[sel], np.full(len(sel), rate * ctx.scale))
        k = len(row2)
        st = s["start"][sel][row2] + (rng.random(k) * dur[sel][row2]).astype(np.int64)
        tk = lognormal(120, 0.7, k) + 1
        am = a[sel][row2]
        if itype == 2:
            src, dst = np.full(k, t.caller_id.encode()), _numbers(rng, ag.region[am], t.ani)
        else:
            src = np.strings.add(b"5", (ag.person[am] % 10_000).astype("S4"))
            dst = np.strings.add(b"5", rng.integers(1000, 9999, k).astype("S4"))
        loc = add_ixn(1, itype, _hex(rng, k, 16, True), src, dst, st, st + tk)
        add_irf(loc, _resource(ag, am, st), 1, st, st + tk, tk)

    # chats and e-mails inside the multimedia sessions
    for mk, rate, handle, back in ((2, 8.0, 420, (5, 90)), (3, 2.5, 300, (600, 72000))):
        sel = np.flatnonzero((media == mk) & ~(s["quiet"] & (mk == 2)))
        row2, _, _ = _spread(rng, s["start"][sel], dur[sel], np.full(len(sel), rate * ctx.scale))
        k = len(row2)
        st = s["start"][sel][row2] + (rng.random(k) * dur[sel][row2]).astype(np.int64)
        hd = np.clip(lognormal(handle, 0.7, k), 30, 3 * HOUR)
        tk = np.where(rng.random(k) < 0.04, 0, hd)
        am = a[sel][row2]
        dst = np.zeros(k, "S1") if mk == 2 else np.full(k, t.mailbox.encode())
        loc = add_ixn(mk, 1, _hex(rng, k, 8), ctx.emails[rng.integers(0, len(ctx.emails), k)],
                      dst, st - rng.integers(*back, k), st + hd)
        add_irf(loc, _resource(ag, am, st), mk, st, st + hd, tk)

    # SMS (seats_sms, SPEC §5.3) inside the chat sessions: agents who chat also answer
    # texts. A stream derived from (not drawn from) the block's one, so every row above
    # and below is the one the demo had before SMS existed.
    srng = np.random.default_rng([rng.bit_generator.state["state"]["state"] % 2**63, SMS])
    sel = np.flatnonzero(media == 2)
    row2, _, _ = _spread(srng, s["start"][sel], dur[sel], np.full(len(sel), 1.5 * ctx.scale))
    k = len(row2)
    st = s["start"][sel][row2] + (srng.random(k) * dur[sel][row2]).astype(np.int64)
    hd = np.clip(srng.lognormal(np.log(240), 0.7, k).astype(np.int64), 20, HOUR)
    src = np.strings.add(b"+1555", srng.integers(1_000_000, 9_999_999, k).astype("S7"))
    loc = add_ixn(SMS, 1, _hex(srng, k, 8), src, np.full(k, b"72345"),
                  st - srng.integers(5, 300, k), st + hd)
    add_irf(loc, _resource(ag, a[sel][row2], st), SMS, st, st + hd, hd)

    # multimedia login sessions (GIDB_G_LOGIN_SESSION_MM), on their owning rows
    own = np.flatnonzero(s["mm_s"] != NULL)
    k = len(own)
    agentid = ag.person[a[own]].copy()
    agentid[rng.random(k) < 2e-4] = NULL  # no AGENTID
    term = s["mm_e"][own].copy()
    bad = rng.random(k) < 1e-4
    term[bad] = s["mm_s"][own][bad] - rng.integers(60, 3600, int(bad.sum()))
    term[rng.random(k) < 2e-5] = NULL  # never terminated
    mm = {"loginsessionid": _hex(rng, k, 16), "agentid": agentid,
          "tenantid": np.full(k, t.dbid), "created_ts": s["mm_s"][own], "terminated_ts": term}

    return _finish(ctx, rng, _concat(ixn), _concat(irf), _concat(caf), _concat(cdr), mm)


def _open_at(end: np.ndarray, now: int) -> np.ndarray:
    """Rows still running when the data was extracted have no end yet."""
    return np.where(end > now, NULL, end)


def _finish(ctx: _Ctx, rng: np.random.Generator, ixn: Arrays, irf: Arrays, caf: Arrays,
            cdr: Arrays, mm: Arrays) -> dict[str, Arrays]:
    """Cut everything at ``now``, add the odd rows, sort by start and assign keys."""
    t, now = ctx.t, ctx.now
    out: dict[str, Arrays] = {}
    if ixn:
        keep = ixn["start_ts"] < now
        order = np.flatnonzero(keep)[np.argsort(ixn["start_ts"][keep], kind="stable")]
        ids = np.full(len(keep), NULL)
        ids[order] = ctx.take("interaction_fact", len(order))
        f = _take(ixn, order)
        f["interaction_id"] = ids[order]
        f["tenant_key"] = np.full(len(order), t.key)
        f["end_ts"] = _open_at(f["end_ts"], now)
        out["interaction_fact"] = f
        r = _take(irf, np.flatnonzero((ids[irf["n"]] != NULL) & (irf["start_ts"] < now)))
        r = _take(r, np.argsort(r["start_ts"], kind="stable"))
        r["interaction_id"] = ids[r["n"]]
        r["interaction_resource_id"] = ctx.take("interaction_resource_fact", _rows(r))
        r["tenant_key"] = np.full(_rows(r), t.key)
        r["talk_duration"] = np.minimum(r["talk_duration"], np.maximum(now - r["start_ts"], 0))
        r["end_ts"] = _open_at(r["end_ts"], now)
        out["interaction_resource_fact"] = r
    if caf:
        c = _take(caf, np.flatnonzero(caf["start_ts"] < now))
        c = _take(c, np.argsort(c["start_ts"], kind="stable"))
        c["contact_attempt_fact_key"] = ctx.take("contact_attempt_fact", _rows(c))
        c["tenant_key"] = np.full(_rows(c), t.key)
        c["end_ts"] = _open_at(c["end_ts"], now)
        out["contact_attempt_fact"] = c
    if mm:
        m = _take(mm, np.argsort(mm["created_ts"], kind="stable"))
        m["id"] = ctx.take("gidb_g_login_session_mm", _rows(m))
        m["terminated_ts"] = _open_at(m["terminated_ts"], now)
        out["gidb_g_login_session_mm"] = m
    if cdr:
        g = _take(cdr, np.flatnonzero(cdr["start_ts"] < now))
        g = _take(g, np.argsort(g["start_ts"], kind="stable"))
        k = _rows(g)
        g["cdr_id"] = ctx.take("gvp_cdr", k)
        end = _open_at(g["end_ts"], now)
        bad = rng.random(k) < 1e-4
        end[bad] = g["start_ts"][bad] - rng.integers(1, 600, int(bad.sum()))
        end[rng.random(k) < 2e-5] = NULL
        g["end_ts"] = end
        out["gvp_cdr"] = g
    return out


def _sessions_out(ctx: _Ctx, s: Arrays, rng: np.random.Generator) -> tuple[Arrays, Arrays]:
    """SM_RES_SESSION_FACT rows of kept sessions (sorted, keyed) and the sessions for
    the activity (malformed rows get none)."""
    now = ctx.now
    s = _take(s, np.argsort(s["start"], kind="stable"))
    k = _rows(s)
    end = s["end"].copy()
    bad = rng.random(k) < 5e-5  # END_TS before START_TS
    end[bad] = s["start"][bad] - rng.integers(60, 3600, int(bad.sum()))
    open_ = (end > now) | (rng.random(k) < 2e-5)  # running at extraction, or stuck
    end_ts = np.where(open_, NULL, end)
    sm = {
        "sm_res_session_fact_key": ctx.take("sm_res_session_fact", k),
        "tenant_key": np.full(k, ctx.t.key),
        "media_type_key": s["media"].astype(np.int64),
        "resource_key": _resource(ctx.ag, s["agent"], s["start"]),
        "start_ts": s["start"],
        "end_ts": end_ts,
        "total_duration": np.where(open_, now - s["start"], end - s["start"]),
        "active_flag": open_.astype(np.int64),
    }
    s["end"] = np.where(bad, s["start"], s["end"])
    return sm, s


# --------------------------------------------------------------------------- edge rows


def _edges(t: _Tenant, ag: _Agents, first_day: date, days: int) -> dict[str, Arrays]:
    """Fixed odd rows with keys ``tenant_key*1000+k`` that tests can look up."""
    k0 = t.key * 1000
    d1 = min(1, days - 1)

    def at(day: int, h: int, m: int = 0, on: date | None = None) -> int:
        d = (on or first_day) + timedelta(days=day)
        return local_midnight(d, t.tz) + h * HOUR + m * 60

    month_end = next((first_day + timedelta(days=i) for i in range(days)
                      if (first_day + timedelta(days=i + 1)).day == 1), first_day)
    dst = next((first_day + timedelta(days=i) for i in range(days)
                if local_midnight(first_day + timedelta(days=i + 1), t.tz)
                - local_midnight(first_day + timedelta(days=i), t.tz) != DAY), first_day)
    rk = ag.rkey
    sm_rows = [  # key, media, resource, start, end, active
        (1, 1, rk[11], at(0, 10), at(0, 9, 30), 0),  # END_TS < START_TS
        (2, 1, rk[10], at(d1, 15), NULL, 1),  # stuck open
        (3, 1, rk[11], at(0, 13), at(0, 15), 1),  # ACTIVE_FLAG 1 with an END_TS: open
        (4, 2, rk[12], at(0, 13), NULL, 0),  # END_TS null, ACTIVE_FLAG 0: open
        (5, 1, rk[13], at(0, 11), at(0, 11), 0),  # zero length
        (6, 1, ag.queue_key[0], at(0, 8), at(0, 18), 0),  # a QUEUE, not an agent
        (7, 1, rk[14], at(0, 20, on=month_end), at(1, 6, on=month_end), 0),  # across month end
        (8, 1, rk[15], at(-1, 22, on=dst), at(0, 6, on=dst), 0),  # across the DST change
        (9, 2, rk[3], at(0, 9), at(0, 12), 0),  # agent with no Person row, chats
    ]
    sm = {
        "sm_res_session_fact_key": np.array([k0 + r[0] for r in sm_rows]),
        "tenant_key": np.full(len(sm_rows), t.key),
        "media_type_key": np.array([r[1] for r in sm_rows]),
        "resource_key": np.array([r[2] for r in sm_rows]),
        "start_ts": np.array([r[3] for r in sm_rows]),
        "end_ts": np.array([r[4] for r in sm_rows]),
        "total_duration": np.array([0 if r[4] == NULL else r[4] - r[3] for r in sm_rows]),
        "active_flag": np.array([r[5] for r in sm_rows]),
    }
    p = ag.person
    mm_rows = [  # id, agentid, created, terminated
        (1, NULL, at(0, 9), at(0, 17)),  # no AGENTID
        (2, p[12], at(0, 12), at(0, 11)),  # TERMINATED_TS < CREATED_TS
        (3, p[12], at(d1, 8), NULL),  # never terminated
        (4, p[3], at(0, 8, 59), at(0, 12, 1)),  # agent with no Person row
    ]
    mm = {
        "id": np.array([k0 + r[0] for r in mm_rows]),
        "loginsessionid": _s([f"EDGE{t.key}MM{r[0]:04d}" for r in mm_rows]),
        "agentid": np.array([r[1] for r in mm_rows]),
        "tenantid": np.full(len(mm_rows), t.dbid),
        "created_ts": np.array([r[2] for r in mm_rows]),
        "terminated_ts": np.array([r[3] for r in mm_rows]),
    }
    plain, bu, longest, ani = t.edge_numbers
    rp = ag.rp_key[0]

    def guid(k: int) -> str:
        return f"E0{t.key:06d}-0000-4000-8000-{k:012d}"

    ixn_rows = [  # id, media, type, guid, ani, dnis, start, end
        (1, 1, 1, guid(1), TEST_NUMBER, bu, at(0, 10), at(0, 10, 4)),  # test call (ANI)
        (2, 1, 1, guid(2), ani, TEST_NUMBER, at(0, 11), at(0, 11, 2)),  # test call (DNIS)
        (3, 1, 1, guid(3), ani, plain, at(0, 14), at(0, 14, 5)),  # two agents, same start
        (4, 1, 1, guid(4), ani, bu, at(0, 15), at(0, 15, 5)),  # no answer, then handled
        (5, 1, 1, guid(5), ani, longest, at(0, 16), at(0, 16, 3)),  # abandoned
        (6, 1, 1, guid(6), ani, None, at(0, 12), at(0, 12, 4)),  # DNIS null
        (7, 1, 1, guid(7), ani, plain, at(d1, 9), NULL),  # never ended
        (8, 1, 2, guid(8), t.caller_id, ani, at(0, 10), at(0, 10, 6)),  # 2 attempt rows
        (9, 1, 2, guid(9), t.caller_id, ani, at(0, 11), at(0, 11, 6)),  # no attempt row
        (10, 2, 1, f"EDGE{t.key}CHAT10", "visitor@example.com", None, at(0, 10), at(0, 10, 6)),
        (11, 1, 1, guid(11), ani, plain, at(0, 13), at(0, 13, 2)),  # handled by a queue
    ]
    ixn = {
        "interaction_id": np.array([k0 + r[0] for r in ixn_rows]),
        "tenant_key": np.full(len(ixn_rows), t.key),
        "media_type_key": np.array([r[1] for r in ixn_rows]),
        "interaction_type_key": np.array([r[2] for r in ixn_rows]),
        "media_server_ixn_guid": _s([r[3] for r in ixn_rows]),
        "source_address": _s([r[4] for r in ixn_rows]),
        "target_address": _s([r[5] for r in ixn_rows]),
        "start_ts": np.array([r[6] for r in ixn_rows]),
        "end_ts": np.array([r[7] for r in ixn_rows]),
    }
    dup, nocaf = f"EDGE{t.key}ATTEMPTDUP", f"EDGE{t.key}ATTEMPTNOCAF"
    irf_rows = [  # id, interaction, resource, media, start, end, talk, attempt
        (1, 1, rk[11], 1, at(0, 10, 1), at(0, 10, 4), 180, None),
        (2, 2, rp, 1, at(0, 11, 1), at(0, 11, 2), 0, None),
        (3, 3, rk[11], 1, at(0, 14, 1), at(0, 14, 3), 120, None),
        (4, 3, rk[13], 1, at(0, 14, 1), at(0, 14, 5), 90, None),
        (5, 4, rk[12], 1, at(0, 15, 1), at(0, 15, 1) + 20, 0, None),
        (6, 4, rk[13], 1, at(0, 15, 2), at(0, 15, 5), 200, None),
        (7, 5, rp, 1, at(0, 16, 1), at(0, 16, 3), 0, None),
        (8, 7, rk[13], 1, at(d1, 9, 1), NULL, 600, None),
        (9, 8, rk[14], 1, at(0, 10, 1), at(0, 10, 6), 300, dup),
        (10, 9, rk[15], 1, at(0, 11, 1), at(0, 11, 6), 300, nocaf),
        (11, 10, rk[3], 2, at(0, 10, 1), at(0, 10, 6), 300, None),
        (12, 11, ag.queue_key[0], 1, at(0, 13), at(0, 13, 2), 30, None),
        (13, 6, rk[11], 1, at(0, 12, 1), at(0, 12, 4), 150, None),
    ]
    irf = {
        "interaction_resource_id": np.array([k0 + r[0] for r in irf_rows]),
        "interaction_id": np.array([k0 + r[1] for r in irf_rows]),
        "tenant_key": np.full(len(irf_rows), t.key),
        "resource_key": np.array([r[2] for r in irf_rows]),
        "media_type_key": np.array([r[3] for r in irf_rows]),
        "start_ts": np.array([r[4] for r in irf_rows]),
        "end_ts": np.array([r[5] for r in irf_rows]),
        "talk_duration": np.array([r[6] for r in irf_rows]),
        "call_attempt_id": _s([r[7] for r in irf_rows]),
    }
    caf = {
        "contact_attempt_fact_key": np.array([k0 + 1, k0 + 2]),
        "tenant_key": np.full(2, t.key),
        "call_attempt_id": _s([dup, dup]),
        "start_ts": np.array([at(0, 9, 59), at(0, 9, 59)]),
        "end_ts": np.array([at(0, 10, 6), at(0, 10, 6)]),
    }
    out = {"sm_res_session_fact": sm, "gidb_g_login_session_mm": mm, "interaction_fact": ixn,
           "interaction_resource_fact": irf, "contact_attempt_fact": caf}
    if t.gvp[0] is not None:
        cdr_rows = [  # id, region, callid, profile, start, end
            (1, 0, guid(1), "test", at(0, 10), at(0, 10, 1)),
            (2, 0, guid(2), "test", at(0, 11), at(0, 11, 2)),
            (3, 0, guid(3), "main", at(0, 14), at(0, 14, 1)),
            (5, 0, guid(5), "collections", at(0, 16), at(0, 16, 3)),
            (6, 0, guid(6), "main", at(0, 12), at(0, 11, 50)),  # END_TS < START_TS
            (7, 0, None, "main", at(0, 12, 30), at(0, 12, 32)),  # no CALLID
            (8, 0, guid(7), "main", at(d1, 9), NULL),  # never ended
            (9, 0, guid(4), "support", at(0, 23, 50), at(1, 0, 20)),  # across midnight
            (10, 0, "DEADBEEF-0000-4000-8000-000000000010", "notify", at(0, 9), at(0, 9, 1)),
        ]
        if len(t.regions) > 1:
            cdr_rows += [
                (501, 1, guid(501), "eu", at(0, 18, 55), at(0, 19, 10)),  # Dublin midnight
                (502, 1, None, "eu", at(0, 6), at(0, 6, 1)),
                (503, 1, guid(503), "eu", at(0, 7), at(0, 6, 59)),
            ]
        out["gvp_cdr"] = {
            "cdr_id": np.array([k0 + r[0] for r in cdr_rows]),
            "callid": _s([r[2] for r in cdr_rows]),
            "ivr_profile": _s([f"{t.id}_{r[3]}" for r in cdr_rows]),
            "start_ts": np.array([r[4] for r in cdr_rows]),
            "end_ts": np.array([r[5] for r in cdr_rows]),
            "region": np.array([r[1] for r in cdr_rows]),
        }
    return out


# --------------------------------------------------------------------------- loading


def create_schemas(gim_dsn: str, gvp_dsns: list[str]) -> None:
    """Create the Info Mart subset and the GVP CDR table (idempotent DDL)."""
    with psycopg.connect(gim_dsn, autocommit=True) as conn:
        conn.execute((SQL_DIR / "gim" / "schema.sql").read_text())
    for dsn in dict.fromkeys(gvp_dsns):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute((SQL_DIR / "gvp" / "schema.sql").read_text())


_INDEXES = """
SELECT c.conname, pg_get_constraintdef(c.oid), i.relname, pg_get_indexdef(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('p', 'u')
WHERE x.indrelid = %s::regclass ORDER BY i.relname
"""


def _drop_indexes(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """Drop an empty table's indexes (COPY then index is several times faster);
    return the statements that recreate them."""
    redo = []
    for con, condef, idx, idxdef in conn.execute(_INDEXES, (table,)).fetchall():
        if con:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {con}")
            redo.append(f"ALTER TABLE {table} ADD CONSTRAINT {con} {condef}")
        else:
            conn.execute(f"DROP INDEX {idx}")
            redo.append(idxdef)
    return redo


def _key_column(table: str) -> str:
    return COLUMNS[table][0][0]


def generate(
    gim_dsn: str,
    gvp_dsns: dict[str, str],
    first_day: date,
    days: int,
    *,
    agents_per_tenant: int = 300,
    seed: int = 7,
    sessions_per_day: int | None = None,
    tenants: Sequence[str] = ("acme", "globex"),
    margin_days: int | None = None,
    interaction_scale: float | None = None,
) -> dict[str, int]:
    """Fill the Info Mart and GVP tables for the demo tenants; return rows per table.

    Counts are of rows inserted by this call, GVP_CDR per GVP conn id
    (``gvp_cdr[bds_demo_gvp]``), so their sum is the number of rows inserted.

    Covers the billing days ``first_day`` .. ``first_day + days - 1`` plus
    ``margin_days`` before (for the look-back; default 3, 1 with ``sessions_per_day``)
    and the next day up to 12:00 UTC, the moment of "extraction": sessions, calls and
    IVR legs running then are open.
    ``gvp_dsns`` maps the GVP conn ids (``bds_demo_gvp``, ``bds_demo_gvp_eu``) to DSNs.

    ``sessions_per_day`` (benchmarks): the same number of agents works every day
    (weekends too) and each tenant day gets exactly that many generated
    SM_RES_SESSION_FACT rows (plus the few fixed edge rows); the agent count grows to
    what that needs (``agents_per_tenant`` is then a minimum), interaction rates drop to
    ``interaction_scale`` (default 0.02: about half an interaction per session, and a
    quarter to a third of the chat and campaign sessions qualify) so the interaction
    tables grow like the sessions, not 40 times faster. Tables that are empty are loaded
    without indexes and indexed afterwards; on tables with rows, keys continue after
    the largest one and the configuration rows of a tenant already present are kept.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    unknown = set(tenants) - set(TENANTS)
    if unknown:
        raise ValueError(f"unknown demo tenants: {sorted(unknown)}")
    chosen = [TENANTS[k] for k in TENANTS if k in tenants]
    need = {c for t in chosen for c in t.gvp if c}
    if missing := need - set(gvp_dsns):
        raise KeyError(f"gvp_dsns lacks {sorted(missing)}")
    scale = interaction_scale if interaction_scale is not None else (
        1.0 if sessions_per_day is None else 0.02)
    if margin_days is None:
        margin_days = 3 if sessions_per_day is None else 1
    gvp_dsn_list = list(dict.fromkeys(gvp_dsns[c] for c in sorted(need)))
    gen_first = first_day - timedelta(days=margin_days)
    after = first_day + timedelta(days=days)
    now = int(datetime(after.year, after.month, after.day, 12, tzinfo=UTC).timestamp())

    counts: dict[str, int] = {}
    redo: list[tuple[str, list[str]]] = []
    with psycopg.connect(gim_dsn, autocommit=True) as gim:
        keys: dict[str, int] = {}
        targets = [(gim_dsn, tb) for tb in FACTS] + [(d, "gvp_cdr") for d in gvp_dsn_list]
        for dsn, table in targets:
            with psycopg.connect(dsn, autocommit=True) as conn:
                col = _key_column(table)
                top = conn.execute(f"SELECT max({col}) FROM {table}").fetchone()
                top_key = top[0] if top else None
                keys[table] = max(keys.get(table, FIRST_KEY), (top_key or 0) + 1, FIRST_KEY + 1)
                if top_key is None:
                    redo.append((dsn, _drop_indexes(conn, table)))
        try:
            with gim.transaction():
                for k, (name, code) in enumerate(MEDIA_TYPES, start=1):
                    gim.execute("INSERT INTO media_type VALUES (%s, %s, %s) "
                                "ON CONFLICT DO NOTHING", (k, name, code))
                for code, k in ITYPE.items():
                    gim.execute("INSERT INTO interaction_type VALUES (%s, %s) "
                                "ON CONFLICT DO NOTHING", (k, code))
            for t in chosen:
                _load_tenant(t, gim, gim_dsn, gvp_dsns, keys, counts, seed=seed,
                             first_day=first_day, days=days, gen_first=gen_first, after=after,
                             now=now, agents=agents_per_tenant, per_day=sessions_per_day,
                             scale=scale)
            counts["ctl_audit_log"] = _etl_audit(gim, gen_first, now)
        finally:
            for dsn, stmts in redo:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("SET maintenance_work_mem = '256MB'")
                    for stmt in stmts:
                        conn.execute(stmt)
            for dsn, table in targets + [(gim_dsn, tb) for tb in CONFIG]:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"ANALYZE {table}")
    return counts


def _etl_audit(gim: psycopg.Connection[Any], first: date, now: int) -> int:
    """CTL_AUDIT_LOG as an ETL running every 15 minutes writes it (SPEC §2.1): one
    transaction per run, each covering source data up to its start, committed two
    minutes later; the last mark is the moment of "extraction" (`now`), past the end of
    every generated billing day, so readiness (SPEC §8) lets them all bill."""
    start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
    cur = gim.execute(
        "INSERT INTO ctl_audit_log (audit_key, job_id, max_chunk_ts, created_ts) "
        "SELECT coalesce((SELECT max(audit_key) FROM ctl_audit_log), 0) + g.n, "
        "'demo_etl_15min', g.ts, g.ts + 120 "
        "FROM (SELECT row_number() OVER (ORDER BY ts) AS n, ts "
        "      FROM generate_series(%s::bigint, %s::bigint, 900) AS ts) AS g",
        (start, now))
    return cur.rowcount


def _pilot_rate(t: _Tenant, seed: int, first_day: date) -> float:
    """SM rows per working agent-day of this tenant's model, measured on a pilot day."""
    n = 4000
    ag = _agents(t, n, seed + 1, first_day, 1)
    clock = _Clock(t.zones, first_day - timedelta(days=1), first_day + timedelta(days=3))
    rows = _day_sessions(ag, first_day, clock, _rng(seed, t.index, 9), n)
    return _rows(rows) / n


def _load_tenant(t: _Tenant, gim: psycopg.Connection[Any], gim_dsn: str,
                 gvp_dsns: Mapping[str, str], keys: dict[str, int], counts: dict[str, int],
                 *, seed: int, first_day: date, days: int, gen_first: date, after: date,
                 now: int, agents: int, per_day: int | None, scale: float) -> None:
    """Generate and load one tenant, one local date at a time."""
    working = None
    n = agents
    if per_day is not None:
        working = math.ceil(per_day / _pilot_rate(t, seed, first_day) * 1.08) + 40
        n = max(agents, working)
    ag = _agents(t, n, seed, first_day, days)
    present = gim.execute("SELECT 1 FROM resource_ WHERE tenant_key = %s LIMIT 1",
                          (t.key,)).fetchone()
    if not present:
        with gim.transaction():
            for table in CONFIG:
                counts[table] = counts.get(table, 0) + _copy_rows(gim, table, ag.config[table])

    clock = _Clock(t.zones, gen_first - timedelta(days=1), after + timedelta(days=3))
    tdays = [gen_first + timedelta(days=i) for i in range(-2, (after - gen_first).days + 4)]
    bounds = np.array([local_midnight(d, t.tz) for d in tdays])
    emails = _s([f"customer{i}@mail.example" for i in range(997)])
    with contextlib.ExitStack() as stack:
        streams = {tb: _Stream(stack, gim_dsn, tb) for tb in FACTS}
        gvp: dict[int, _Stream] = {}
        if any(t.gvp):
            by_dsn: dict[str, _Stream] = {}
            for region, conn_id in enumerate(t.gvp):
                if conn_id:
                    dsn = gvp_dsns[conn_id]
                    if dsn not in by_dsn:
                        by_dsn[dsn] = _Stream(stack, dsn, "gvp_cdr")
                    gvp[region] = by_dsn[dsn]
        ctx = _Ctx(t, ag, now, scale, keys, emails)

        def write(block: dict[str, Arrays]) -> None:
            for table, data in block.items():
                if table == "gvp_cdr":
                    for region, stream in gvp.items():
                        part = _take(data, np.flatnonzero(data["region"] == region))
                        stream.write(part)
                        name = f"gvp_cdr[{t.gvp[region]}]"  # one table per GVP database
                        counts[name] = counts.get(name, 0) + _rows(part)
                else:
                    streams[table].write(data)
                    counts[table] = counts.get(table, 0) + _rows(data)

        if not present:
            write(_edges(t, ag, first_day, days))
        pending: Arrays = {}
        d = gen_first
        while d <= after:
            rng = _rng(seed, t.index, 1, d.toordinal())
            day_rows = _day_sessions(ag, d, clock, rng, working)
            day_rows = _take(day_rows, np.flatnonzero(day_rows["start"] < now))
            pending = _concat([pending, day_rows])
            # a tenant day is complete once no later local date can start a session in it
            nxt = np.full(len(t.zones), (d + timedelta(days=1) - EPOCH).days * DAY)
            flush_at = int(clock.utc(np.arange(len(t.zones)), nxt).min())
            day_idx = np.searchsorted(bounds, pending["start"], side="right") - 1
            ready = (bounds[day_idx + 1] <= flush_at) | (d == after)
            block = _take(pending, np.flatnonzero(ready))
            pending = _take(pending, np.flatnonzero(~ready))
            rng2 = _rng(seed, t.index, 2, d.toordinal())
            if per_day is not None and _rows(block):
                block = _take(block, np.flatnonzero(_trim(day_idx[ready], per_day, rng2)))
            if _rows(block):
                sm, sess = _sessions_out(ctx, block, rng2)
                for lo in range(0, _rows(sm), BLOCK):  # bounded memory at any scale
                    part = np.arange(lo, min(lo + BLOCK, _rows(sm)))
                    write({"sm_res_session_fact": _take(sm, part)})
                    write(_activity(ctx, _take(sess, part), rng2))
            d += timedelta(days=1)
