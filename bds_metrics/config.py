"""The tenant configuration (SPEC §3), validated strictly when it is loaded.

Every error is one `ConfigError` whose message names the file, the tenant and the key,
so an operator can fix the YAML without reading a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from .catalog import BUILTIN, GVP_METRICS, METRICS, SEAT_METRICS, Metric, SeatSpec, seat_metric
from .names import name_key

__all__ = ["GVP_METRICS", "METRICS", "SEAT_METRICS"]  # the registry's, re-exported

BLACKLIST = (
    "agents",
    "dns",
    "persons",
    "campaigns",
    "switches",
    "configurations",
    "agent logins",
    "campaign groups",
)
DEFAULT_BU_NAME = "Default"

_ID = r"^[a-z0-9_]{1,40}$"
# Codes and ids end up in file names and CSV fields: no path separators, no dots.
_CODE = r"^[A-Za-z0-9_-]{1,64}$"
_BU_ID = r"^[A-Za-z0-9_-]{1,80}$"
# Gim filters are compared with the Info Mart's `int` columns (PostgreSQL int4).
INT32 = (-(2**31), 2**31 - 1)


class ConfigError(ValueError):
    """Bad configuration: fails the load (and never retries a task)."""


class _KeyedError(ValueError):
    """A tenant-level check that failed on one key (named in the message, not `(tenant)`)."""

    def __init__(self, key: str, msg: str):
        super().__init__(msg)
        self.key = key


class _Strict(BaseModel):
    # strict: a YAML `"5"` where a number belongs is an error, not a silent coercion.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ---- values that would silently change a bill or a file (SPEC §3)

# Control characters: every Cc (NUL, tab, CR, LF, ...), the line and paragraph separators
# (U+2028/2029) and every format character (Cf: zero-width spaces, bidi overrides, BOM,
# soft hyphen), which make two names that look alike differ. Kept: ZWNJ and ZWJ (U+200C,
# U+200D), which Persian, Indic scripts and emoji need; surrogates and unassigned code
# points are refused too (they cannot be written as UTF-8 or mean nothing).
_CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"}
_CONTROL_KEPT = {"\u200c", "\u200d"}
_CONTROL_NAMES = {"\0": "NUL", "\t": "tab", "\n": "line feed", "\r": "carriage return",
                  "\u2028": "line separator", "\u2029": "paragraph separator"}
# A spreadsheet runs a cell that begins with one of these as a formula.
FORMULA_LEADS = ("=", "+", "-", "@")


def _control_char(v: str) -> str | None:
    for c in v:
        if unicodedata.category(c) in _CONTROL_CATEGORIES and c not in _CONTROL_KEPT:
            return c
    return None


def _check_text(v: str) -> str:
    """A name or id: no leading/trailing white space, no control character."""
    c = _control_char(v)
    if c is not None:
        label = _CONTROL_NAMES.get(c) or unicodedata.name(c, "control character").lower()
        raise ValueError(f"{v!r} holds U+{ord(c):04X} ({label}); "
                         "names and ids must not hold control characters")
    if v != v.strip():
        raise ValueError(f"{v!r} has leading or trailing white space")
    return v


def _check_cell(v: str) -> str:
    """A value written into a CSV cell: also no spreadsheet formula lead."""
    _check_text(v)
    if v.startswith(FORMULA_LEADS):
        raise ValueError(f"{v!r} begins with {v[0]!r}, which a spreadsheet reads as a "
                         "formula (it is written into billing CSV cells)")
    return v


def _check_entry(v: str) -> str:
    """A DNIS prefix, TFN prefix or test number: an empty one would match every number."""
    if not v.strip():
        raise ValueError(f"{v!r} is empty: an empty prefix or number matches every number")
    return _check_text(v)


def _check_id(v: str) -> str:
    """A connection id: not empty either."""
    if not v:
        raise ValueError("'' is empty")
    return _check_text(v)


Text = Annotated[str, AfterValidator(_check_text)]
Id = Annotated[str, AfterValidator(_check_id)]
Cell = Annotated[str, AfterValidator(_check_cell)]
Entry = Annotated[str, AfterValidator(_check_entry)]


def _zone(name: str) -> str:
    if name not in _ZONES:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
    return name


_ZONES = available_timezones()


class Tier1(_Strict):
    id: Cell = Field(min_length=1)
    name: Cell = ""


class GvpSource(_Strict):
    conn_id: Id


class Location(_Strict):
    code: str = Field(pattern=_CODE)
    name: Text | None = None
    switches: list[Entry] = Field(default_factory=list)
    gvp: GvpSource | None = None

    @property
    def is_default(self) -> bool:
        return not self.switches


class Region(_Strict):
    code: Cell = Field(pattern=_CODE)
    name: Text | None = None
    locations: list[Location] = Field(min_length=1)


class BusinessUnit(_Strict):
    id: Cell = Field(pattern=_BU_ID)
    name: Cell = Field(min_length=1)
    dnis: list[Entry] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _not_blacklisted(cls, v: str) -> str:
        if name_key(v) in _BLACKLIST_KEYS:
            raise ValueError(f"business unit name {v!r} is on the blacklist {list(BLACKLIST)}")
        return v


_BLACKLIST_KEYS = frozenset(name_key(n) for n in BLACKLIST)


class CustomMetric(SeatSpec):
    """An operator-defined seat metric (SPEC §5.3): a registry seat entry in the config."""

    @field_validator("name")
    @classmethod
    def _not_builtin(cls, v: str) -> str:
        if v in BUILTIN:
            raise ValueError(f"{v!r} is a built-in metric; a custom metric needs its own name")
        return v


def _custom_names(key: str, entries: list[CustomMetric]) -> None:
    names = [c.name for c in entries]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _KeyedError(key, f"custom metric(s) {dup} defined twice")


class Alerts(_Strict):
    """Where a tenant's alerts go (SPEC §8): Airflow connection ids, never a secret."""

    email_conn_id: str | None = Field(default=None, min_length=1)  # an SMTP connection
    email_to: list[str] = Field(default_factory=list)
    email_from: str | None = None  # else the SMTP connection's from_email
    webhook_conn_id: str | None = Field(default=None, min_length=1)  # an HTTP connection
    webhook_endpoint: str = ""  # path below the connection's host

    @model_validator(mode="after")
    def _whom(self) -> Alerts:
        if self.email_conn_id and not self.email_to:
            raise _KeyedError("email_to", "email_conn_id is set but email_to is empty")
        if self.email_to and not self.email_conn_id:
            raise _KeyedError("email_conn_id", "email_to is set but email_conn_id is not")
        return self


class GimFilter(_Strict):
    tenant_key: int | None = None
    tenant_dbid: int | None = None

    @field_validator("tenant_key", "tenant_dbid")
    @classmethod
    def _int32(cls, v: int | None) -> int | None:
        if v is not None and not INT32[0] <= v <= INT32[1]:
            raise ValueError(f"{v} is outside the Info Mart's int range "
                             f"[{INT32[0]}, {INT32[1]}]")
        return v


class Defaults(_Strict):
    gimdb_conn_id: Id = "bds_gimdb"
    gvpdb_conn_id: Id = "bds_gvpdb"
    output_root: str = "/var/lib/bds/out"
    staging_root: str = "/var/lib/bds/staging"
    timezone: str = "UTC"
    session_lookback_days: int = Field(default=7, ge=0, le=60)
    retries: int = Field(default=3, ge=0, le=20)
    retry_delay_seconds: int = Field(default=60, ge=1, le=3600)
    settle_hours: float = Field(default=2, ge=0, le=72)
    wait_for_settle: StrictBool = True
    custom_metrics: list[CustomMetric] = Field(default_factory=list)
    # Readiness, deadlines and source protection (SPEC §8); bds_airflow/readiness.py.
    readiness: Literal["watermark", "clock"] = "watermark"
    readiness_sql: str | None = None  # replaces sql/readiness/watermark.sql
    readiness_poll_seconds: int = Field(default=300, ge=1, le=3600)
    publish_deadline_hours: float = Field(default=30, ge=0, le=100_000)
    statement_timeout_seconds: int = Field(default=1800, ge=1, le=86400)
    task_timeout_seconds: int = Field(default=7200, ge=1, le=7 * 86400)
    alerts: Alerts = Field(default_factory=Alerts)
    pool_size: int = Field(default=4, ge=1, le=1000)  # per source connection (all tenants)
    pool_sizes: dict[str, int] = Field(default_factory=dict)  # conn id -> size

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _zone(v)

    @model_validator(mode="after")
    def _customs(self) -> Defaults:
        _custom_names("custom_metrics[].name", self.custom_metrics)
        return self

    @field_validator("pool_sizes")
    @classmethod
    def _sizes(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: n for k, n in v.items() if not 1 <= n <= 1000}
        if bad:
            raise ValueError(f"pool sizes must be 1..1000: {bad}")
        return v


class Tenant(_Strict):
    id: str = Field(pattern=_ID)
    name: Cell = Field(min_length=1)
    tier1: Tier1 | None = None
    production_date: dt.date
    metrics: list[str] = Field(min_length=1)
    regions: list[Region] = Field(min_length=1)
    business_units: list[BusinessUnit] = Field(default_factory=list)
    tfn_prefixes: list[Entry] = Field(default_factory=list)
    test_numbers: list[Entry] = Field(default_factory=list)
    gim: GimFilter = Field(default_factory=GimFilter)
    # Overridable defaults (None = take `defaults`).
    gimdb_conn_id: Id | None = None
    gvpdb_conn_id: Id | None = None
    output_root: str | None = None
    staging_root: str | None = None
    timezone: str | None = None
    session_lookback_days: int | None = Field(default=None, ge=0, le=60)
    retries: int | None = Field(default=None, ge=0, le=20)
    retry_delay_seconds: int | None = Field(default=None, ge=1, le=3600)
    settle_hours: float | None = Field(default=None, ge=0, le=72)
    wait_for_settle: StrictBool | None = None
    custom_metrics: list[CustomMetric] = Field(default_factory=list)
    readiness: Literal["watermark", "clock"] | None = None
    readiness_sql: str | None = None
    readiness_poll_seconds: int | None = Field(default=None, ge=1, le=3600)
    publish_deadline_hours: float | None = Field(default=None, ge=0, le=100_000)
    statement_timeout_seconds: int | None = Field(default=None, ge=1, le=86400)
    task_timeout_seconds: int | None = Field(default=None, ge=1, le=7 * 86400)
    alerts: Alerts | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return None if v is None else _zone(v)

    @field_validator("production_date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return dt.date.fromisoformat(v)
            except ValueError as exc:
                raise ValueError(f"not a date (YYYY-MM-DD): {v!r}") from exc
        if isinstance(v, dt.datetime):
            raise ValueError("a date (YYYY-MM-DD) is needed, not a timestamp")
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        # Whether each name is known is checked with the defaults' custom metrics at hand
        # (`_tenant_catalog`).
        if len(set(v)) != len(v):
            raise ValueError("a metric is listed twice")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Tenant:
        _custom_names("custom_metrics[].name", self.custom_metrics)
        _unique("regions[].code", [r.code for r in self.regions])
        locs = [loc for r in self.regions for loc in r.locations]
        _unique("locations[].code", [loc.code for loc in locs])
        _one_owner("regions[].locations[].switches", "switch {!r} is listed in two locations",
                   [(sw, loc.code) for loc in locs for sw in loc.switches])
        defaults = [loc.code for loc in locs if loc.is_default]
        if len(defaults) > 1:
            raise _KeyedError("regions[].locations[].switches",
                              f"more than one default location (empty switches): {defaults}")
        gvp_conns = [loc.gvp.conn_id for loc in locs if loc.gvp]
        _unique("locations[].gvp.conn_id", gvp_conns)
        if any(m in GVP_METRICS for m in self.metrics) and not gvp_conns and not defaults:
            raise _KeyedError(
                "metrics",
                "GVP metrics need a location with `gvp` or a default location to count CDRs in"
            )
        default_bu = f"{self.id}_BU_0"
        _unique("business_units[].id", [b.id for b in self.business_units])
        _same_name_key([b.name for b in self.business_units])
        for b in self.business_units:
            if b.id == default_bu:
                raise _KeyedError("business_units[].id",
                                  f"business unit id {b.id!r} is reserved for the default BU")
            if b.id == self.id:
                # `<bu id>_<metric>_<date>.csv` would overwrite the tenant's own file.
                raise _KeyedError("business_units[].id",
                                  f"business unit id {b.id!r} is the tenant id")
        _one_owner("business_units[].dnis", "DNIS prefix {!r} belongs to two business units",
                   [(p, b.id) for b in self.business_units for p in b.dnis])
        return self


def _one_owner(key: str, message: str, pairs: list[tuple[str, str]]) -> None:
    """Each value (switch, DNIS prefix) may belong to one owner only."""
    owner: dict[str, str] = {}
    for value, who in pairs:
        if owner.setdefault(value, who) != who:
            raise _KeyedError(key, f"{message.format(value)}: {owner[value]!r} and {who!r}")


def _same_name_key(names: list[str]) -> None:
    """Two BU names equal under the SPEC §6 comparison would be one folder's two units."""
    first: dict[str, int] = {}
    for i, n in enumerate(names):
        j = first.setdefault(name_key(n), i)
        if j != i:
            other = names[j]
            raise _KeyedError("business_units[].name",
                              f"business unit names {other!r} and {n!r} are the same name "
                              "(compared in Unicode NFC, without outer white space, case-folded)")


def _unique(what: str, values: list[Any]) -> None:
    dup = sorted({v for v in values if values.count(v) > 1}, key=str)
    if dup:
        raise _KeyedError(what, f"duplicate {what}: {dup}")


class _File(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    tenants: list[Tenant] = Field(min_length=1)


class TenantConfig:
    """One tenant with its defaults resolved: what every task needs, nothing more."""

    def __init__(self, tenant: Tenant, defaults: Defaults, source: str,
                 catalog: dict[str, Metric] | None = None):
        self.raw = tenant
        self.source = source
        # name -> Metric of every metric this tenant may bill (registry + custom_metrics)
        self.catalog: dict[str, Metric] = BUILTIN if catalog is None else catalog

        def pick(key: str) -> Any:
            v = getattr(tenant, key)
            return getattr(defaults, key) if v is None else v

        self.id: str = tenant.id
        self.name: str = tenant.name
        self.tier1_id: str = tenant.tier1.id if tenant.tier1 else ""
        self.tier1_name: str = tenant.tier1.name if tenant.tier1 else ""
        self.production_date: dt.date = tenant.production_date
        self.metrics: list[str] = list(tenant.metrics)
        self.regions: list[Region] = list(tenant.regions)
        self.business_units: list[BusinessUnit] = list(tenant.business_units)
        self.tfn_prefixes: list[str] = list(tenant.tfn_prefixes)
        self.test_numbers: list[str] = list(tenant.test_numbers)
        self.tenant_key: int | None = tenant.gim.tenant_key
        self.tenant_dbid: int | None = tenant.gim.tenant_dbid
        self.gimdb_conn_id: str = pick("gimdb_conn_id")
        self.gvpdb_conn_id: str = pick("gvpdb_conn_id")
        self.output_root: str = _root(tenant, defaults, "output_root", source)
        self.staging_root: str = _root(tenant, defaults, "staging_root", source)
        self.timezone: str = pick("timezone")
        self.session_lookback_days: int = pick("session_lookback_days")
        self.retries: int = pick("retries")
        self.retry_delay_seconds: int = pick("retry_delay_seconds")
        self.settle_hours: float = pick("settle_hours")
        self.wait_for_settle: bool = pick("wait_for_settle")
        self.readiness: str = pick("readiness")
        sql = pick("readiness_sql")
        self.readiness_sql: str | None = (
            None if sql is None else _sql_file(sql, source, tenant.id))
        self.readiness_poll_seconds: int = pick("readiness_poll_seconds")
        self.publish_deadline_hours: float = pick("publish_deadline_hours")
        self.statement_timeout_seconds: int = pick("statement_timeout_seconds")
        self.task_timeout_seconds: int = pick("task_timeout_seconds")
        self.alerts: Alerts = pick("alerts")
        self.pool_sizes: dict[str, int] = {
            c: defaults.pool_sizes.get(c, defaults.pool_size) for c in self.conn_ids()}

    @property
    def default_bu_id(self) -> str:
        return f"{self.id}_BU_0"

    def metric(self, name: str) -> Metric:
        """The registry entry of one of the tenant's metrics (custom ones included)."""
        return self.catalog[name]

    @property
    def has_gvp(self) -> bool:
        """The tenant bills a GVP metric: it reads GVP CDRs and attributes them."""
        return any(self.catalog[m].family == "gvp" for m in self.metrics)

    @property
    def locations(self) -> list[tuple[Region, Location]]:
        return [(r, loc) for r in self.regions for loc in r.locations]

    @property
    def default_location(self) -> Location | None:
        return next((loc for _, loc in self.locations if loc.is_default), None)

    def gvp_sources(self) -> list[tuple[str, str]]:
        """(conn_id, location code) pairs GVP CDRs are read from (SPEC §3 rules)."""
        tagged = [(loc.gvp.conn_id, loc.code) for _, loc in self.locations if loc.gvp]
        if tagged:
            return tagged
        default = self.default_location
        return [(self.gvpdb_conn_id, default.code)] if default else []

    def scopes(self) -> list[tuple[str, str]]:
        """(Tier3 id, Tier3 name) of every scope: the tenant first ('', ''), then BUs."""
        out = [("", "")]
        if self.business_units:
            out += [(b.id, b.name) for b in self.business_units]
            out.append((self.default_bu_id, DEFAULT_BU_NAME))
        return out

    def conn_ids(self) -> list[str]:
        ids = [self.gimdb_conn_id]
        if self.has_gvp:
            ids += [c for c, _ in self.gvp_sources()]
        return ids


class Config:
    def __init__(self, path: str, tenants: list[TenantConfig]):
        self.path = path
        self.tenants = tenants

    def tenant(self, tenant_id: str) -> TenantConfig:
        for t in self.tenants:
            if t.id == tenant_id:
                return t
        known = ", ".join(t.id for t in self.tenants)
        raise ConfigError(f"{self.path}: no tenant {tenant_id!r} (configured: {known})")


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s]")


def _root(tenant: Tenant, defaults: Defaults, key: str, source: str) -> str:
    """`output_root` / `staging_root` of a tenant: `~` and `${VAR}` expanded, then an
    absolute local path or an object-storage URL (`s3://conn@bucket/prefix`; SPEC §3).

    Raises ConfigError (naming `defaults.<key>` when the tenant takes the default) for an
    unset variable, an empty or relative path, a malformed URL, outer white space or a
    control character: each would put billing files somewhere nobody looks.
    """
    own = getattr(tenant, key)
    raw = getattr(defaults, key) if own is None else own
    where = key if own is not None else f"defaults.{key}"

    def fail(msg: str) -> ConfigError:
        return ConfigError(f"{source}: tenant {tenant.id!r}: key {where}: {msg}")

    var = re.compile(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*)(?(1)\})")
    for m in var.finditer(raw):  # set but empty: `${DIR}/out` would become `/out`
        if os.environ.get(m.group(2)) == "":
            raise fail(f"environment variable {m.group(0)} is empty")
    out = os.path.expandvars(os.path.expanduser(raw))
    left = var.search(out)
    if left:
        raise fail(f"environment variable {left.group(0)} is not set")
    try:
        _check_text(out)
    except ValueError as exc:
        raise fail(str(exc)) from None
    shown = repr(out) if out == raw else f"{raw!r} (expanded: {out!r})"
    hint = "give an absolute path or a URL such as s3://conn@bucket/prefix"
    if not out:
        raise fail(f"{shown} is empty: {hint}")
    local = out.removeprefix("file://")
    if "://" in local and not _URL.match(local):
        raise fail(f"{shown} is not a URL (scheme://bucket/prefix): {hint}")
    if "://" not in local and not os.path.isabs(local):
        raise fail(f"{shown} is a relative path (files would land in the working "
                   f"directory): {hint}")
    return out


def _expand(path: str, source: str, tenant: str, key: str) -> str:
    """`~` and `${VAR}` expanded; an unset variable is an error, not a folder named `${X}`."""
    out = os.path.expandvars(os.path.expanduser(path))
    left = re.search(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", out)
    if left:
        raise ConfigError(
            f"{source}: tenant {tenant!r}: key {key}: environment variable {left.group(0)} "
            "is not set"
        )
    return out


def _sql_file(path: str, source: str, tenant: str) -> str:
    """`readiness_sql`: relative to the configuration file's folder; must exist."""
    p = Path(_expand(path, source, tenant, "readiness_sql"))
    if not p.is_absolute():
        p = Path(source).resolve().parent / p
    if not p.is_file():
        raise ConfigError(f"{source}: tenant {tenant!r}: key readiness_sql: no file {p}")
    return str(p)


def config_path(path: str | os.PathLike[str] | None = None) -> str:
    p = path or os.environ.get("BDS_CONFIG")
    if not p:
        raise ConfigError("no configuration: set BDS_CONFIG or pass --config")
    return str(p)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the YAML file (BDS_CONFIG when no path is given)."""
    src = config_path(path)
    try:
        text = Path(src).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{src}: cannot read the configuration: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{src}: the configuration is not UTF-8 text "
                          f"(byte {exc.start}: {exc.reason})") from exc
    return parse_config(text, src)


# libyaml's parser when PyYAML was built with it: ten times faster than the pure-Python
# one, which matters when a DAG processor re-reads a configuration of 1000 tenants.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Checks:
    """A key twice in one mapping and an impossible date (`2026-02-30`) are YAML errors
    with a line, not a silently dropped value or a bare ValueError."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:  # unhashable: the base class reports it
                continue
            if dup:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {key!r}", key_node.start_mark,
                )
        return super().construct_mapping(node, deep)

    def construct_yaml_timestamp(self, node: Any) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"not a valid date: {node.value!r} ({exc})", node.start_mark
            ) from exc


class _Loader(_Checks, _SafeLoader):  # type: ignore[valid-type,misc]
    pass


class _PyLoader(_Checks, yaml.SafeLoader):
    """Re-reads a file libyaml rejected: its messages are the ones the docs quote."""


for _cls in (_Loader, _PyLoader):
    _cls.add_constructor("tag:yaml.org,2002:timestamp", _Checks.construct_yaml_timestamp)


def _yaml_load(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # safe loaders: no arbitrary objects
    except yaml.YAMLError:
        return yaml.load(text, Loader=_PyLoader)  # raises, with the pure-Python message


def parse_config(text: str, source: str = "<config>") -> Config:
    try:
        data = _yaml_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: malformed YAML{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping with `tenants`")
    _check_duplicate_tenants(data, source)
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data, source, text)) from None
    shared = _shared_catalog(parsed.defaults)
    return Config(source, [TenantConfig(t, parsed.defaults, source,
                                        _tenant_catalog(t, parsed.defaults, shared, source))
                           for t in parsed.tenants])


def _shared_catalog(defaults: Defaults) -> dict[str, Metric]:
    """Built-ins plus the defaults' custom metrics: built once per load, shared by every
    tenant that defines none of its own (DAG parse time does not grow with tenants)."""
    if not defaults.custom_metrics:
        return BUILTIN
    return {**BUILTIN, **{c.name: seat_metric(c, builtin=False) for c in defaults.custom_metrics}}


def _tenant_catalog(t: Tenant, defaults: Defaults, shared: dict[str, Metric], source: str
                    ) -> dict[str, Metric]:
    """The metrics a tenant may list (SPEC §5.3); a name defined in the defaults and in the
    tenant, or a listed metric defined nowhere, is an error naming the key."""
    catalog = shared
    if t.custom_metrics:
        twice = sorted({c.name for c in t.custom_metrics}
                       & {c.name for c in defaults.custom_metrics})
        if twice:
            raise ConfigError(f"{source}: tenant {t.id!r}: key custom_metrics[].name: custom "
                              f"metric(s) {twice} are defined in defaults and in the tenant")
        catalog = {**shared, **{c.name: seat_metric(c, builtin=False) for c in t.custom_metrics}}
    unknown = [m for m in t.metrics if m not in catalog]
    if unknown:
        raise ConfigError(f"{source}: tenant {t.id!r}: key metrics: unknown metric "
                          f"{unknown[0]!r}; known: {list(catalog)}")
    return catalog


def _check_duplicate_tenants(data: dict[str, Any], source: str) -> None:
    tenants = data.get("tenants")
    if not isinstance(tenants, list):
        return
    counts = Counter(t.get("id") for t in tenants if isinstance(t, dict))
    dup = sorted((i for i, n in counts.items() if i is not None and n > 1), key=str)
    if dup:
        raise ConfigError(f"{source}: tenant {dup[0]!r}: key tenants[].id: duplicate tenant id")


def _describe(exc: ValidationError, data: dict[str, Any], source: str, text: str) -> str:
    lines = []
    tree: list[Any] = []  # the YAML node tree, composed only when an error needs it
    for err in exc.errors():
        loc = list(err["loc"])
        tenant = "-"
        if len(loc) >= 2 and loc[0] == "tenants" and isinstance(loc[1], int):
            try:
                tenant = str(data["tenants"][loc[1]].get("id", f"#{loc[1]}"))
            except (KeyError, IndexError, AttributeError, TypeError):
                tenant = f"#{loc[1]}"
            loc = loc[2:]
        key = ".".join(str(p) for p in loc) or "(tenant)"
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _KeyedError):
            key = ".".join([*(str(p) for p in loc), cause.key])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] in ("string_type", "int_type"):
            if not tree:
                tree.append(_compose(text))
            node = _scalar_at(tree[0], list(err["loc"]))
            msg += _unquoted_hint(node, err["input"], err["type"] == "int_type")
        lines.append(f"{source}: tenant {tenant!r}: key {key}: {msg}")
    return "\n".join(lines)


# ---- an unquoted YAML value that is not text: `name: no`, `id: 007`, `switches: [0x1F]`


def _compose(text: str) -> Any:
    try:
        return yaml.compose(text, Loader=_SafeLoader)
    except yaml.YAMLError:
        return None


def _scalar_at(node: Any, loc: list[Any]) -> Any:
    """The YAML scalar node at a validation error's location (merge keys followed)."""
    for part in loc:
        if node is None:
            return None
        node = _child(node, part)
    return node if isinstance(node, yaml.ScalarNode) else None


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, yaml.SequenceNode):
        ok = isinstance(part, int) and 0 <= part < len(node.value)
        return node.value[part] if ok else None
    if not isinstance(node, yaml.MappingNode):
        return None
    merged = []
    for k, v in node.value:
        if k.tag == "tag:yaml.org,2002:merge":
            merged += v.value if isinstance(v, yaml.SequenceNode) else [v]
        elif isinstance(k, yaml.ScalarNode) and k.value == str(part):
            return v
    for m in merged:
        found = _child(m, part)
        if found is not None:
            return found
    return None


def _unquoted_hint(node: Any, value: Any, want_int: bool) -> str:
    """`: YAML reads the unquoted no as the boolean false; quote it: "no"`, or ''.

    `want_int`: an integer was expected (`tenant_key: 1e3`, which YAML 1.1 reads as text);
    else text was expected and the plain scalar resolved to a bool, number, date or null.
    """
    # a plain (unquoted) scalar: style None (pure-Python parser) or '' (libyaml)
    if node is None or node.style:
        return ""
    if want_int:
        if isinstance(value, str):
            return f": YAML reads the unquoted {node.value} as text; write the number in digits"
        return ""
    if node.value == "":
        return " (no value is given)"
    if isinstance(value, bool):
        what = f"the boolean {str(value).lower()}"
    elif isinstance(value, int | float):
        what = f"the number {value!r}"
    elif isinstance(value, dt.datetime):
        what = "a timestamp"
    elif isinstance(value, dt.date):
        what = "a date"
    elif value is None:
        what = "null (no value)"
    else:
        return ""
    return f": YAML reads the unquoted {node.value} as {what}; quote it: \"{node.value}\""
