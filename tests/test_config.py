"""The configuration file (SPEC §3) and the `bds config validate` / `bds units` commands (§9).

Every invalid input must fail the load with one `ConfigError` whose message names the
file, the tenant and the key; the tests compare whole messages, not fragments. No
database is used: the CLI tests point the Info Mart connection at a closed port.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bds_metrics.config import BLACKLIST, ConfigError, load_config, parse_config

BDS = str(Path(sys.executable).with_name("bds"))

# SPEC §3's example, plus per-tenant overrides of output_root and retries, plus a second
# tenant that takes every default (and has a non-ASCII, comma-bearing name).
VALID = """\
defaults:                        # optional; every key may be overridden per tenant
  gimdb_conn_id: bds_gimdb       # Airflow connection of the Info Mart
  gvpdb_conn_id: bds_gvpdb       # Airflow connection of the GVP RS database
  output_root: /var/lib/bds/out  # billing files; a local path or an object-storage URL
  staging_root: /var/lib/bds/staging  # Parquet between tasks; local path or URL
  timezone: UTC
  session_lookback_days: 7       # sessions that started this long before the day are still read
  retries: 3
tenants:
  - id: acme                     # [a-z0-9_]{1,40}; DAG id is bds_<id>
    name: Acme Corp              # Tier2AccountName
    tier1: {id: "R100", name: "Reseller One"}   # optional; empty Tier1 columns when absent
    production_date: 2026-01-01  # first billing day; start_date of the DAG
    timezone: America/New_York   # optional
    output_root: /srv/acme/out
    retries: 5
    gim: {tenant_key: 101, tenant_dbid: 1}   # optional filters for a shared Info Mart
    metrics: [seats_chat, seats_outbound, gvp_ports, gvp_minutes]
    regions:
      - code: us
        name: United States
        locations:
          - {code: us_east, name: US East, switches: [SIP_East_1, SIP_East_2]}
          - {code: us_default, name: US default, switches: []}    # the default location
      - code: eu
        locations:
          - {code: eu_west, switches: [SIP_Dublin], gvp: {conn_id: bds_gvpdb_eu}}
    business_units:              # optional; when present, per-BU files are written
      - {id: acme_BU_1, name: Sales}
      - {id: acme_BU_2, name: Support, dnis: ["+1800555", "+1877555"]}
    tfn_prefixes: ["+1800", "+1833", "+1844", "+1855", "+1866", "+1877", "+1888"]
    test_numbers: ["+15550000000"]  # ANI or DNIS of test calls, left out of GVP attribution
  - id: globex
    name: "Globex Société Générale, S.A."
    production_date: 2026-02-01
    metrics: [seats_chat, gvp_minutes]
    regions:
      - code: emea
        locations:
          - {code: emea_lon, switches: [SIP_London]}
          - {code: emea_default, switches: []}
"""

PATTERN_ID = "String should match pattern '^[a-z0-9_]{1,40}$'"
PATTERN_CODE = "String should match pattern '^[A-Za-z0-9_-]{1,64}$'"
PATTERN_BU = "String should match pattern '^[A-Za-z0-9_-]{1,80}$'"
SAME_NAME = ("business unit names {!r} and {!r} are the same name (compared in Unicode NFC, "
             "without outer white space, case-folded)")
BLACKLIST_TEXT = (
    "['agents', 'dns', 'persons', 'campaigns', 'switches', 'configurations', "
    "'agent logins', 'campaign groups']"
)


def write(tmp_path: Path, text: str, name: str = "bds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def doc() -> dict[str, Any]:
    return yaml.safe_load(VALID)


def dump(d: dict[str, Any]) -> str:
    return yaml.safe_dump(d, sort_keys=False, allow_unicode=True)


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    return str(ei.value)


# --------------------------------------------------------------------------- valid


def test_spec_example_loads_with_defaults_resolved(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    cfg = load_config(path)
    assert cfg.path == str(path)
    assert [t.id for t in cfg.tenants] == ["acme", "globex"]

    acme = cfg.tenant("acme")
    assert acme.source == str(path)
    assert (acme.name, acme.tier1_id, acme.tier1_name) == ("Acme Corp", "R100", "Reseller One")
    assert acme.production_date == dt.date(2026, 1, 1)
    # overridden per tenant
    assert acme.timezone == "America/New_York"
    assert acme.output_root == "/srv/acme/out"
    assert acme.retries == 5
    # taken from `defaults`
    assert acme.staging_root == "/var/lib/bds/staging"
    assert acme.session_lookback_days == 7
    assert acme.gimdb_conn_id == "bds_gimdb"
    assert acme.gvpdb_conn_id == "bds_gvpdb"
    # built-in defaults (not in the file at all)
    assert acme.settle_hours == 2
    assert acme.wait_for_settle is True
    assert (acme.tenant_key, acme.tenant_dbid) == (101, 1)
    assert acme.metrics == ["seats_chat", "seats_outbound", "gvp_ports", "gvp_minutes"]
    assert acme.tfn_prefixes == ["+1800", "+1833", "+1844", "+1855", "+1866", "+1877", "+1888"]
    assert acme.test_numbers == ["+15550000000"]
    assert [(r.code, r.name) for r in acme.regions] == [("us", "United States"), ("eu", None)]
    assert [(r.code, loc.code, loc.switches) for r, loc in acme.locations] == [
        ("us", "us_east", ["SIP_East_1", "SIP_East_2"]),
        ("us", "us_default", []),
        ("eu", "eu_west", ["SIP_Dublin"]),
    ]
    assert [(b.id, b.name, b.dnis) for b in acme.business_units] == [
        ("acme_BU_1", "Sales", []),
        ("acme_BU_2", "Support", ["+1800555", "+1877555"]),
    ]
    assert acme.default_location is not None
    assert acme.default_location.code == "us_default"
    assert acme.default_location.name == "US default"
    # a location carries `gvp`: only tagged locations are read (SPEC §3 rules)
    assert acme.gvp_sources() == [("bds_gvpdb_eu", "eu_west")]
    assert acme.conn_ids() == ["bds_gimdb", "bds_gvpdb_eu"]
    assert acme.default_bu_id == "acme_BU_0"
    assert acme.scopes() == [
        ("", ""),
        ("acme_BU_1", "Sales"),
        ("acme_BU_2", "Support"),
        ("acme_BU_0", "Default"),
    ]

    globex = cfg.tenant("globex")
    assert globex.name == "Globex Société Générale, S.A."
    assert (globex.tier1_id, globex.tier1_name) == ("", "")
    assert (globex.timezone, globex.output_root, globex.retries) == ("UTC", "/var/lib/bds/out", 3)
    assert (globex.tenant_key, globex.tenant_dbid) == (None, None)
    assert globex.default_location is not None
    assert globex.default_location.code == "emea_default"
    # no location carries `gvp`: the default connection, counted in the default location
    assert globex.gvp_sources() == [("bds_gvpdb", "emea_default")]
    assert globex.conn_ids() == ["bds_gimdb", "bds_gvpdb"]
    assert globex.scopes() == [("", "")]  # no BUs: no per-BU files, no default BU


def test_builtin_defaults_without_a_defaults_section() -> None:
    d = doc()
    del d["defaults"]
    d["tenants"][0]["metrics"] = ["seats_chat"]
    cfg = parse_config(dump(d), "x.yaml")
    t = cfg.tenant("globex")
    assert (t.gimdb_conn_id, t.gvpdb_conn_id) == ("bds_gimdb", "bds_gvpdb")
    assert (t.output_root, t.staging_root) == ("/var/lib/bds/out", "/var/lib/bds/staging")
    assert (t.timezone, t.session_lookback_days, t.retries) == ("UTC", 7, 3)
    assert (t.settle_hours, t.wait_for_settle) == (2, True)
    t = cfg.tenant("acme")
    assert (t.timezone, t.output_root, t.retries) == ("America/New_York", "/srv/acme/out", 5)
    assert t.staging_root == "/var/lib/bds/staging"


def test_no_default_location_is_valid_without_gvp_metrics() -> None:
    d = doc()
    t0 = d["tenants"][0]
    t0["metrics"] = ["seats_chat"]
    del t0["regions"][0]["locations"][1]
    del t0["regions"][1]["locations"][0]["gvp"]
    t = parse_config(dump(d), "x.yaml").tenant("acme")
    assert t.default_location is None
    assert t.gvp_sources() == []
    assert t.conn_ids() == ["bds_gimdb"]


def test_load_config_reads_bds_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, VALID)
    monkeypatch.setenv("BDS_CONFIG", str(path))
    assert load_config().path == str(path)
    monkeypatch.delenv("BDS_CONFIG")
    with pytest.raises(ConfigError) as ei:
        load_config()
    assert str(ei.value) == "no configuration: set BDS_CONFIG or pass --config"


def test_unknown_tenant_names_the_configured_ones(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    with pytest.raises(ConfigError) as ei:
        load_config(path).tenant("initech")
    assert str(ei.value) == f"{path}: no tenant 'initech' (configured: acme, globex)"


def test_env_var_in_roots_expands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BDS_TEST_ROOT", str(tmp_path / "r"))
    d = doc()
    d["defaults"]["output_root"] = "${BDS_TEST_ROOT}/out"
    d["defaults"]["staging_root"] = "$BDS_TEST_ROOT/staging"
    d["tenants"][0]["output_root"] = "${BDS_TEST_ROOT}/acme"
    cfg = parse_config(dump(d), "x.yaml")
    assert cfg.tenant("acme").output_root == f"{tmp_path}/r/acme"
    assert cfg.tenant("acme").staging_root == f"{tmp_path}/r/staging"
    assert cfg.tenant("globex").output_root == f"{tmp_path}/r/out"


def test_non_ascii_and_comma_names_are_accepted() -> None:
    d = doc()
    t0 = d["tenants"][0]
    t0["name"] = 'Acme, "Corp" – Zürich'
    t0["tier1"] = {"id": "R100", "name": "Revendeur Un, S.à r.l."}
    t0["business_units"] = [
        {"id": "acme_BU_1", "name": "Ventes, Île-de-France"},
        {"id": "acme_BU_2", "name": "サポート"},
        {"id": "acme_BU_3", "name": "Agents, Tier 2"},  # contains a blacklisted word: fine
    ]
    t = parse_config(dump(d), "x.yaml").tenant("acme")
    assert t.name == 'Acme, "Corp" – Zürich'
    assert t.tier1_name == "Revendeur Un, S.à r.l."
    assert t.scopes() == [
        ("", ""),
        ("acme_BU_1", "Ventes, Île-de-France"),
        ("acme_BU_2", "サポート"),
        ("acme_BU_3", "Agents, Tier 2"),
        ("acme_BU_0", "Default"),
    ]


def test_yaml_merge_keys_still_work() -> None:
    # The loader rejects a key written twice, but a merged key may be overridden.
    text = VALID.replace(
        "  retries: 3\n", "  retries: 3\n  <<: {settle_hours: 4, retries: 9}\n", 1
    )
    t = parse_config(text, "x.yaml").tenant("globex")
    assert (t.settle_hours, t.retries) == (4, 3)  # explicit keys win over merged ones


# --------------------------------------------------------------------------- invalid


def custom(**kw: Any) -> dict[str, Any]:
    """A valid custom_metrics entry (SPEC §5.3) with `kw` changed (None: key removed)."""
    entry = {"name": "seats_x", "sessions": "sm_fact", "media": ["VOICE"],
             "qualifies": {"ocs": True}, "enabled": "daily", "channel_type": 14,
             "service_class": 91, "activity_type": 5, "status": "SEATS", **kw}
    return {k: v for k, v in entry.items() if v is not None}


def tenant0(d: dict[str, Any]) -> dict[str, Any]:
    return d["tenants"][0]


def loc(d: dict[str, Any], r: int, i: int) -> dict[str, Any]:
    return d["tenants"][0]["regions"][r]["locations"][i]


def bu(d: dict[str, Any], i: int) -> dict[str, Any]:
    return d["tenants"][0]["business_units"][i]


def _no_gvp_source(d: dict[str, Any]) -> None:
    del tenant0(d)["regions"][0]["locations"][1]
    del loc(d, 1, 0)["gvp"]


def _drop(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda d: tenant0(d).pop(key)


# (case id, mutation of the valid document, tenant shown, key shown, message)
INVALID: list[tuple[str, Callable[[dict[str, Any]], Any], str, str, str]] = [
    # unknown keys, at every level
    ("unknown-top-level", lambda d: d.update(tenant=[]), "-", "tenant", "unknown key"),
    ("unknown-in-defaults", lambda d: d["defaults"].update(time_zone="UTC"),
     "-", "defaults.time_zone", "unknown key"),
    ("unknown-in-tenant", lambda d: tenant0(d).update(timezones="UTC"),
     "acme", "timezones", "unknown key"),
    ("unknown-in-region", lambda d: tenant0(d)["regions"][1].update(label="x"),
     "acme", "regions.1.label", "unknown key"),
    ("unknown-in-location", lambda d: loc(d, 0, 0).update(switch=["X"]),
     "acme", "regions.0.locations.0.switch", "unknown key"),
    ("unknown-in-gvp", lambda d: loc(d, 1, 0)["gvp"].update(conn="x"),
     "acme", "regions.1.locations.0.gvp.conn", "unknown key"),
    ("unknown-in-gim", lambda d: tenant0(d)["gim"].update(tenant=1),
     "acme", "gim.tenant", "unknown key"),
    ("unknown-in-bu", lambda d: bu(d, 1).update(dnis_prefixes=["+1"]),
     "acme", "business_units.1.dnis_prefixes", "unknown key"),
    # wrong types: no silent coercion
    ("string-tenant-key", lambda d: tenant0(d)["gim"].update(tenant_key="101"),
     "acme", "gim.tenant_key", "Input should be a valid integer"),
    ("string-retries-in-defaults", lambda d: d["defaults"].update(retries="3"),
     "-", "defaults.retries", "Input should be a valid integer"),
    ("string-lookback-in-tenant", lambda d: tenant0(d).update(session_lookback_days="7"),
     "acme", "session_lookback_days", "Input should be a valid integer"),
    ("string-bool", lambda d: tenant0(d).update(wait_for_settle="yes"),
     "acme", "wait_for_settle", "Input should be a valid boolean"),
    ("int-name", lambda d: tenant0(d).update(name=5),
     "acme", "name",
     'Input should be a valid string: YAML reads the unquoted 5 as the number 5; quote it: "5"'),
    ("list-for-tier1", lambda d: tenant0(d).update(tier1=["R100", "Reseller One"]),
     "acme", "tier1", "Input should be a valid dictionary or instance of Tier1"),
    ("list-for-gim", lambda d: tenant0(d).update(gim=[101, 1]),
     "acme", "gim", "Input should be a valid dictionary or instance of GimFilter"),
    ("list-for-defaults", lambda d: d.update(defaults=["UTC"]),
     "-", "defaults", "Input should be a valid dictionary or instance of Defaults"),
    ("list-for-location", lambda d: tenant0(d)["regions"][0]["locations"].__setitem__(
        0, ["us_east", ["SIP_East_1"]]),
     "acme", "regions.0.locations.0",
     "Input should be a valid dictionary or instance of Location"),
    ("string-for-metrics", lambda d: tenant0(d).update(metrics="seats_chat"),
     "acme", "metrics", "Input should be a valid list"),
    ("string-for-switches", lambda d: loc(d, 0, 0).update(switches="SIP_East_1"),
     "acme", "regions.0.locations.0.switches", "Input should be a valid list"),
    ("string-for-tenant", lambda d: d["tenants"].append("initech"),
     "#2", "(tenant)", "Input should be a valid dictionary or instance of Tenant"),
    # duplicates and the location rules
    ("duplicate-region-code", lambda d: tenant0(d)["regions"][1].update(code="us"),
     "acme", "regions[].code", "duplicate regions[].code: ['us']"),
    ("duplicate-location-code", lambda d: loc(d, 1, 0).update(code="us_east"),
     "acme", "locations[].code", "duplicate locations[].code: ['us_east']"),
    ("switch-in-two-locations",
     lambda d: loc(d, 1, 0).update(switches=["SIP_Dublin", "SIP_East_2"]),
     "acme", "regions[].locations[].switches",
     "switch 'SIP_East_2' is listed in two locations: 'us_east' and 'eu_west'"),
    ("two-default-locations", lambda d: loc(d, 1, 0).update(switches=[]),
     "acme", "regions[].locations[].switches",
     "more than one default location (empty switches): ['us_default', 'eu_west']"),
    ("duplicate-gvp-conn-id", lambda d: loc(d, 0, 1).update(gvp={"conn_id": "bds_gvpdb_eu"}),
     "acme", "locations[].gvp.conn_id", "duplicate locations[].gvp.conn_id: ['bds_gvpdb_eu']"),
    ("gvp-metric-without-source", _no_gvp_source, "acme", "metrics",
     "GVP metrics need a location with `gvp` or a default location to count CDRs in"),
    # time zones
    ("unknown-zone-tenant", lambda d: tenant0(d).update(timezone="Mars/Olympus"),
     "acme", "timezone", "unknown time zone 'Mars/Olympus'"),
    ("unknown-zone-defaults", lambda d: d["defaults"].update(timezone="Europe/Atlantis"),
     "-", "defaults.timezone", "unknown time zone 'Europe/Atlantis'"),
    ("zone-is-a-path", lambda d: tenant0(d).update(timezone="../../etc/passwd"),
     "acme", "timezone", "unknown time zone '../../etc/passwd'"),
    # metrics
    ("unknown-metric", lambda d: tenant0(d)["metrics"].append("seats_voice"),
     "acme", "metrics",
     "unknown metric 'seats_voice'; known: "
     "['seats_chat', 'seats_outbound', 'seats_inbound_voice', 'seats_email', 'seats_sms', "
     "'gvp_ports', 'gvp_minutes']"),
    # custom metrics (SPEC §5.3)
    ("custom-bad-name", lambda d: tenant0(d).update(custom_metrics=[custom(name="voice_x")]),
     "acme", "custom_metrics.0.name", "String should match pattern '^seats_[a-z0-9_]{1,58}$'"),
    ("custom-builtin-name", lambda d: tenant0(d).update(
        custom_metrics=[custom(name="seats_chat")]),
     "acme", "custom_metrics.0.name",
     "'seats_chat' is a built-in metric; a custom metric needs its own name"),
    ("custom-twice-in-tenant", lambda d: tenant0(d).update(
        custom_metrics=[custom(), custom()]),
     "acme", "custom_metrics[].name", "custom metric(s) ['seats_x'] defined twice"),
    ("custom-twice-in-defaults", lambda d: d["defaults"].update(
        custom_metrics=[custom(), custom()]),
     "-", "defaults.custom_metrics[].name", "custom metric(s) ['seats_x'] defined twice"),
    ("custom-in-defaults-and-tenant", lambda d: (
        d["defaults"].update(custom_metrics=[custom()]),
        tenant0(d).update(custom_metrics=[custom()])),
     "acme", "custom_metrics[].name",
     "custom metric(s) ['seats_x'] are defined in defaults and in the tenant"),
    ("custom-unknown-sessions", lambda d: tenant0(d).update(
        custom_metrics=[custom(sessions="gvp_cdrs")]),
     "acme", "custom_metrics.0.sessions", "Input should be 'sm_fact' or 'mm_sessions'"),
    ("custom-unknown-media", lambda d: tenant0(d).update(
        custom_metrics=[custom(media=["VOICE", "PIGEON"])]),
     "acme", "custom_metrics.0.media",
     "media: unknown media 'PIGEON'; known: ['VOICE', 'CHAT', 'EMAIL', 'SMS', 'WEBFORM', "
     "'FAX', 'WORKITEM', 'FACEBOOK', 'TWITTER', 'WHATSAPP'] (catalog.yaml `media`)"),
    ("custom-media-missing", lambda d: tenant0(d).update(
        custom_metrics=[{k: v for k, v in custom().items() if k != "media"}]),
     "acme", "custom_metrics.0", "media: required with sessions sm_fact"),
    ("custom-media-with-mm", lambda d: tenant0(d).update(
        custom_metrics=[custom(sessions="mm_sessions")]),
     "acme", "custom_metrics.0",
     "media: multimedia login sessions have no media (sm_fact only)"),
    ("custom-unknown-qualifies", lambda d: tenant0(d).update(
        custom_metrics=[custom(qualifies={"ocs": False})]),
     "acme", "custom_metrics.0.qualifies",
     "unknown qualification {'ocs': False}: always | {handled_media: MEDIA} | {ocs: true}"),
    ("custom-unknown-handled-media", lambda d: tenant0(d).update(
        custom_metrics=[custom(qualifies={"handled_media": "chat"})]),
     "acme", "custom_metrics.0.qualifies", "handled_media: unknown media 'chat'; known: "
     "['VOICE', 'CHAT', 'EMAIL', 'SMS', 'WEBFORM', 'FAX', 'WORKITEM', 'FACEBOOK', 'TWITTER', "
     "'WHATSAPP'] (catalog.yaml `media`)"),
    ("custom-bad-enabled", lambda d: tenant0(d).update(
        custom_metrics=[custom(enabled="weekly")]),
     "acme", "custom_metrics.0.enabled", "Input should be 'daily' or 'monthly'"),
    ("custom-negative-code", lambda d: tenant0(d).update(
        custom_metrics=[custom(service_class=-1)]),
     "acme", "custom_metrics.0.service_class", "Input should be greater than or equal to 0"),
    ("custom-code-as-text", lambda d: tenant0(d).update(
        custom_metrics=[custom(channel_type="14")]),
     "acme", "custom_metrics.0.channel_type", "Input should be a valid integer"),
    ("custom-bad-status", lambda d: tenant0(d).update(
        custom_metrics=[custom(status="=HYPERLINK()")]),
     "acme", "custom_metrics.0.status", "String should match pattern '^[A-Za-z0-9_]{1,64}$'"),
    ("custom-unknown-key", lambda d: tenant0(d).update(
        custom_metrics=[custom(frequency="daily")]),
     "acme", "custom_metrics.0.frequency", "unknown key"),
    ("custom-not-defined", lambda d: tenant0(d)["metrics"].append("seats_x"),
     "acme", "metrics", "unknown metric 'seats_x'; known: ['seats_chat', 'seats_outbound', "
     "'seats_inbound_voice', 'seats_email', 'seats_sms', 'gvp_ports', 'gvp_minutes']"),
    ("metric-twice", lambda d: tenant0(d)["metrics"].append("seats_chat"),
     "acme", "metrics", "a metric is listed twice"),
    ("no-metrics", lambda d: tenant0(d).update(metrics=[]),
     "acme", "metrics", "List should have at least 1 item after validation, not 0"),
    # business units
    ("duplicate-bu-id", lambda d: bu(d, 1).update(id="acme_BU_1"),
     "acme", "business_units[].id", "duplicate business_units[].id: ['acme_BU_1']"),
    ("bu-id-reserved", lambda d: bu(d, 1).update(id="acme_BU_0"),
     "acme", "business_units[].id", "business unit id 'acme_BU_0' is reserved for the default BU"),
    # `<bu id>_<metric>_<date>.csv` would overwrite `<tenant>_<metric>_<date>.csv`
    ("bu-id-is-tenant-id", lambda d: bu(d, 0).update(id="acme"),
     "acme", "business_units[].id", "business unit id 'acme' is the tenant id"),
    ("bu-name-blacklisted", lambda d: bu(d, 0).update(name="Persons"),
     "acme", "business_units.0.name",
     f"business unit name 'Persons' is on the blacklist {BLACKLIST_TEXT}"),
    ("bu-name-blacklisted-upper", lambda d: bu(d, 1).update(name="AGENT LOGINS"),
     "acme", "business_units.1.name",
     f"business unit name 'AGENT LOGINS' is on the blacklist {BLACKLIST_TEXT}"),
    ("duplicate-bu-name-other-case", lambda d: bu(d, 1).update(name="SALES"),
     "acme", "business_units[].name", SAME_NAME.format("Sales", "SALES")),
    ("dnis-in-two-bus", lambda d: bu(d, 0).update(dnis=["+1877555"]),
     "acme", "business_units[].dnis",
     "DNIS prefix '+1877555' belongs to two business units: 'acme_BU_1' and 'acme_BU_2'"),
    # ids that would escape the output root or break file names
    ("tenant-id-dotdot", lambda d: tenant0(d).update(id="../x"), "../x", "id", PATTERN_ID),
    ("tenant-id-slash", lambda d: tenant0(d).update(id="a/b"), "a/b", "id", PATTERN_ID),
    ("tenant-id-upper", lambda d: tenant0(d).update(id="A"), "A", "id", PATTERN_ID),
    ("tenant-id-41", lambda d: tenant0(d).update(id="a" * 41), "a" * 41, "id", PATTERN_ID),
    ("tenant-id-empty", lambda d: tenant0(d).update(id=""), "", "id", PATTERN_ID),
    ("tenant-id-newline", lambda d: tenant0(d).update(id="acme\n"), "acme\n", "id", PATTERN_ID),
    ("tenant-id-int", lambda d: tenant0(d).update(id=7), "7", "id",
     'Input should be a valid string: YAML reads the unquoted 7 as the number 7; quote it: "7"'),
    ("bu-id-slash", lambda d: bu(d, 0).update(id="acme/BU_1"),
     "acme", "business_units.0.id", PATTERN_BU),
    ("bu-id-dotdot", lambda d: bu(d, 0).update(id=".."), "acme", "business_units.0.id", PATTERN_BU),
    ("bu-id-escape", lambda d: bu(d, 1).update(id="../acme_BU_2"),
     "acme", "business_units.1.id", PATTERN_BU),
    ("region-code-slash", lambda d: tenant0(d)["regions"][0].update(code="us/east"),
     "acme", "regions.0.code", PATTERN_CODE),
    ("location-code-slash", lambda d: loc(d, 0, 0).update(code="us/east"),
     "acme", "regions.0.locations.0.code", PATTERN_CODE),
    ("location-code-dotdot", lambda d: loc(d, 1, 0).update(code=".."),
     "acme", "regions.1.locations.0.code", PATTERN_CODE),
    # production_date
    ("date-impossible", lambda d: tenant0(d).update(production_date="2026-02-30"),
     "acme", "production_date", "not a date (YYYY-MM-DD): '2026-02-30'"),
    ("date-words", lambda d: tenant0(d).update(production_date="next monday"),
     "acme", "production_date", "not a date (YYYY-MM-DD): 'next monday'"),
    ("date-timestamp", lambda d: tenant0(d).update(production_date=dt.datetime(2026, 1, 1, 6)),
     "acme", "production_date", "a date (YYYY-MM-DD) is needed, not a timestamp"),
    ("date-int", lambda d: tenant0(d).update(production_date=20260101),
     "acme", "production_date", "Input should be a valid date"),
    # required keys and empty lists
    ("missing-name", _drop("name"), "acme", "name", "Field required"),
    ("missing-production-date", _drop("production_date"),
     "acme", "production_date", "Field required"),
    ("missing-metrics", _drop("metrics"), "acme", "metrics", "Field required"),
    ("missing-regions", _drop("regions"), "acme", "regions", "Field required"),
    ("no-regions", lambda d: tenant0(d).update(regions=[]),
     "acme", "regions", "List should have at least 1 item after validation, not 0"),
    ("region-without-locations", lambda d: tenant0(d)["regions"][1].update(locations=[]),
     "acme", "regions.1.locations", "List should have at least 1 item after validation, not 0"),
    ("missing-tenants", lambda d: d.pop("tenants"), "-", "tenants", "Field required"),
    ("empty-tenants", lambda d: d.update(tenants=[]),
     "-", "tenants", "List should have at least 1 item after validation, not 0"),
    ("null-tenants", lambda d: d.update(tenants=None),
     "-", "tenants", "Input should be a valid list"),
    # ranges
    ("negative-lookback-tenant", lambda d: tenant0(d).update(session_lookback_days=-1),
     "acme", "session_lookback_days", "Input should be greater than or equal to 0"),
    ("negative-lookback-defaults", lambda d: d["defaults"].update(session_lookback_days=-1),
     "-", "defaults.session_lookback_days", "Input should be greater than or equal to 0"),
    ("retries-too-many", lambda d: tenant0(d).update(retries=21),
     "acme", "retries", "Input should be less than or equal to 20"),
]


def test_custom_metrics_from_defaults_and_tenant(tmp_path: Path) -> None:
    """A tenant gets the defaults' custom metrics plus its own (SPEC §5.3)."""
    from bds_metrics.config import load_config

    d = copy.deepcopy(doc())
    d["defaults"]["custom_metrics"] = [custom()]
    tenant0(d)["custom_metrics"] = [custom(name="seats_y", sessions="mm_sessions", media=None,
                                          qualifies="always", enabled="monthly")]
    tenant0(d)["metrics"] += ["seats_x", "seats_y"]
    t = load_config(write(tmp_path, dump(d))).tenant("acme")
    x, y = t.metric("seats_x"), t.metric("seats_y")
    assert (x.inputs, x.media, x.qualifies, x.enabled_daily, x.builtin) == (
        ("sm_fact", "handled"), ("VOICE",), "ocs", True, False)
    assert (y.inputs, y.qualifies, y.groups("daily"), y.groups("monthly")) == (
        ("mm_sessions", "agent_switch"), "always", (1,), (1, 2))
    assert (x.channel_type, x.service_class, x.activity_type, x.status) == (14, 91, 5, "SEATS")


@pytest.mark.parametrize(
    ("mutate", "tenant", "key", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID],
)
def test_invalid_config_names_file_tenant_and_key(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], Any], tenant: str, key: str, message: str
) -> None:
    d = copy.deepcopy(doc())
    mutate(d)
    path = write(tmp_path, dump(d))
    assert error_of(path) == f"{path}: tenant {tenant!r}: key {key}: {message}"


def test_errors_in_the_second_tenant_name_that_tenant(tmp_path: Path) -> None:
    d = doc()
    d["tenants"][1]["timezone"] = "Mars/Olympus"
    path = write(tmp_path, dump(d))
    assert error_of(path) == (
        f"{path}: tenant 'globex': key timezone: unknown time zone 'Mars/Olympus'"
    )


def test_every_missing_key_is_reported(tmp_path: Path) -> None:
    d = doc()
    for k in ("name", "production_date", "metrics", "regions"):
        del d["tenants"][0][k]
    path = write(tmp_path, dump(d))
    assert error_of(path).splitlines() == [
        f"{path}: tenant 'acme': key {k}: Field required"
        for k in ("name", "production_date", "metrics", "regions")
    ]


@pytest.mark.parametrize("name", [n.upper() for n in BLACKLIST] + [n.title() for n in BLACKLIST]
                         # the long s "ſ" case-folds to "s" (SPEC §6 comparison)
                         + [n.replace("s", "ſ") for n in BLACKLIST if "s" in n])
def test_every_blacklisted_name_in_any_case(name: str) -> None:
    d = doc()
    d["tenants"][0]["business_units"][1]["name"] = name
    with pytest.raises(ConfigError) as ei:
        parse_config(dump(d), "x.yaml")
    assert str(ei.value) == (
        f"x.yaml: tenant 'acme': key business_units.1.name: "
        f"business unit name {name!r} is on the blacklist {BLACKLIST_TEXT}"
    )


def test_duplicate_tenant_id(tmp_path: Path) -> None:
    d = doc()
    d["tenants"][1]["id"] = "acme"
    path = write(tmp_path, dump(d))
    assert error_of(path) == f"{path}: tenant 'acme': key tenants[].id: duplicate tenant id"


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        pytest.param("tenants:\n  - id: acme\n    metrics: [seats_chat\n    name: x\n",
                     "line 4, column 9", "expected ',' or ']', but got ':'",
                     id="unclosed-flow-list"),
        pytest.param("tenants:\n  - id: acme\n   name: x\n", "line 3, column 4",
                     "expected <block end>, but found '<block mapping start>'",
                     id="bad-indentation"),
        pytest.param("tenants:\n\t- id: acme\n", "line 2, column 1",
                     "found character '\\t' that cannot start any token", id="tab"),
        pytest.param("tenants:\n  - id: acme\n    timezone: UTC\n    timezone: Europe/Paris\n",
                     "line 4, column 5", "duplicate key 'timezone'", id="duplicate-key"),
        pytest.param("tenants:\n  - id: acme\n    production_date: 2026-02-30\n",
                     "line 3, column 22",
                     "not a valid date: '2026-02-30' (day is out of range for month)",
                     id="impossible-unquoted-date"),
    ],
)
def test_malformed_yaml_names_the_line(tmp_path: Path, text: str, where: str,
                                       problem: str) -> None:
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: malformed YAML at {where}: {problem}"


@pytest.mark.parametrize("text", ["", "# nothing\n", "- acme\n", "acme\n", "42\n"])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: the configuration must be a mapping with `tenants`"


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert error_of(missing) == (
        f"{missing}: cannot read the configuration: No such file or directory"
    )
    assert error_of(tmp_path) == f"{tmp_path}: cannot read the configuration: Is a directory"
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("tenants:\n  - id: acme\n    name: Société\n".encode("latin-1"))
    assert error_of(latin1) == (
        f"{latin1}: the configuration is not UTF-8 text (byte 36: invalid continuation byte)"
    )


# --------------------------------------------------------------------------- CLI


def cli_env(tmp_path: Path, config: Path | None = None, **extra: str) -> dict[str, str]:
    """A clean environment: no inherited BDS_* / AIRFLOW* settings, no database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BDS_", "AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               PYTHONIOENCODING="utf-8")
    if config is not None:
        env["BDS_CONFIG"] = str(config)
    env.update(extra)
    return env


def bds(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([BDS, *args], env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout)


VALIDATE_OUT = """\
{path}: 2 tenant(s), valid
- acme: Acme Corp (DAG bds_acme), zone America/New_York, from 2026-01-01, \
metrics seats_chat, seats_outbound, gvp_ports, gvp_minutes
    region us (United States)
      location us_east: SIP_East_1, SIP_East_2
      location us_default: (default location)
    region eu
      location eu_west: SIP_Dublin; GVP via bds_gvpdb_eu
    business unit acme_BU_1: Sales
    business unit acme_BU_2: Support
    business unit acme_BU_0: Default
- globex: Globex Société Générale, S.A. (DAG bds_globex), zone UTC, from 2026-02-01, \
metrics seats_chat, gvp_minutes
    region emea
      location emea_lon: SIP_London
      location emea_default: (default location)
"""


def test_cli_config_validate(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    p = bds("config", "validate", env=cli_env(tmp_path, path))
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout == VALIDATE_OUT.format(path=path)


def test_cli_config_validate_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("America/New_York", "Mars/Olympus"))
    p = bds("config", "validate", env=cli_env(tmp_path, path))
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == (
        "bds: configuration error:\n"
        f"{path}: tenant 'acme': key timezone: unknown time zone 'Mars/Olympus'\n"
    )


def test_cli_config_option_overrides_bds_config(tmp_path: Path) -> None:
    bad = write(tmp_path, "tenants: []\n", "bad.yaml")
    good = write(tmp_path, VALID, "good.yaml")
    env = cli_env(tmp_path, bad)
    for args in (("config", "validate", "--config", str(good)),
                 ("--config", str(good), "config", "validate")):
        p = bds(*args, env=env)
        assert (p.returncode, p.stderr) == (0, ""), args
        assert p.stdout == VALIDATE_OUT.format(path=good), args
    p = bds("config", "validate", env=env)  # without --config: BDS_CONFIG, which is bad
    assert p.returncode == 1
    assert p.stderr == (
        "bds: configuration error:\n"
        f"{bad}: tenant '-': key tenants: List should have at least 1 item after validation, "
        "not 0\n"
    )


def test_cli_missing_config(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    p = bds("config", "validate", env=cli_env(tmp_path, missing))
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == (
        "bds: configuration error:\n"
        f"{missing}: cannot read the configuration: No such file or directory\n"
    )
    p = bds("config", "validate", env=cli_env(tmp_path))  # no BDS_CONFIG at all
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == (
        "bds: configuration error:\nno configuration: set BDS_CONFIG or pass --config\n"
    )


def test_cli_units_blacklist(tmp_path: Path) -> None:
    p = bds("units", "-bl", env=cli_env(tmp_path))  # needs no configuration
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout.splitlines() == [
        "agents", "dns", "persons", "campaigns", "switches", "configurations",
        "agent logins", "campaign groups",
    ]


def test_cli_units_needs_a_tenant(tmp_path: Path) -> None:
    p = bds("units", env=cli_env(tmp_path, write(tmp_path, VALID)))
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == "bds units: -t TENANT is required (or -bl)\n"


@pytest.mark.airflow  # resolves the connection through Airflow and its postgres provider
def test_cli_units_lists_configured_units_without_the_info_mart(tmp_path: Path) -> None:
    env = cli_env(tmp_path, write(tmp_path, VALID),
                  AIRFLOW_CONN_BDS_GIMDB="postgresql://postgres@127.0.0.1:1/nodb")
    p = bds("units", "-t", "acme", env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:5] == [
        "id                       name                     DNIS rules",
        "acme_BU_1                Sales                    -",
        "acme_BU_2                Support                  +1800555, +1877555",
        "acme_BU_0                Default                  (everything not attributed)",
        "",
    ]
    assert len(lines) == 6
    assert lines[5].startswith("(folder detection skipped: ")
    assert "127.0.0.1" in lines[5]


def test_cli_units_tenant_without_units(tmp_path: Path) -> None:
    p = bds("units", "-t", "globex", env=cli_env(tmp_path, write(tmp_path, VALID)))
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout == "tenant globex: no business units configured (tenant-level files only)\n"


def test_cli_units_unknown_tenant(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    p = bds("units", "-t", "initech", env=cli_env(tmp_path, path))
    assert (p.returncode, p.stdout) == (2, "")  # a command-line mistake (cli docstring)
    assert p.stderr == (
        f"bds units: {path}: no tenant 'initech' (configured: acme, globex)\n"
    )


# ------------------------------------------- values that would silently change a bill (§3)

CTRL = "names and ids must not hold control characters"
FORMULA = "which a spreadsheet reads as a formula (it is written into billing CSV cells)"
EMPTY = "is empty: an empty prefix or number matches every number"
ROOT_HINT = "give an absolute path or a URL such as s3://conn@bucket/prefix"
RELATIVE = f"is a relative path (files would land in the working directory): {ROOT_HINT}"

# (case id, mutation, key shown, message); every case is in tenant 'acme' of VALID
SILENT: list[tuple[str, Callable[[dict[str, Any]], Any], str, str]] = [
    # empty or blank matching entries (an empty prefix matches every number)
    ("dnis-empty", lambda d: bu(d, 1).update(dnis=[""]), "business_units.1.dnis.0",
     f"'' {EMPTY}"),
    ("dnis-blank-second", lambda d: bu(d, 1).update(dnis=["+1800555", "  "]),
     "business_units.1.dnis.1", f"'  ' {EMPTY}"),
    ("tfn-prefix-empty", lambda d: tenant0(d).update(tfn_prefixes=["+1800", ""]),
     "tfn_prefixes.1", f"'' {EMPTY}"),
    ("tfn-prefix-nbsp", lambda d: tenant0(d).update(tfn_prefixes=["\u00a0"]),
     "tfn_prefixes.0", f"'\\xa0' {EMPTY}"),
    ("test-number-empty", lambda d: tenant0(d).update(test_numbers=[""]),
     "test_numbers.0", f"'' {EMPTY}"),
    ("tfn-prefix-padded", lambda d: tenant0(d).update(tfn_prefixes=[" +1800"]),
     "tfn_prefixes.0", "' +1800' has leading or trailing white space"),
    ("dnis-padded", lambda d: bu(d, 1).update(dnis=["+1800555 "]),
     "business_units.1.dnis.0", "'+1800555 ' has leading or trailing white space"),
    # padded names and ids (a BU name " Sales" bills 0)
    ("bu-name-leading-space", lambda d: bu(d, 0).update(name=" Sales"),
     "business_units.0.name", "' Sales' has leading or trailing white space"),
    ("bu-name-trailing-nbsp", lambda d: bu(d, 0).update(name="Sales\u00a0"),
     "business_units.0.name", "'Sales\\xa0' has leading or trailing white space"),
    ("bu-name-ideographic-space", lambda d: bu(d, 0).update(name="\u3000Sales"),
     "business_units.0.name", "'\\u3000Sales' has leading or trailing white space"),
    ("tenant-name-trailing-space", lambda d: tenant0(d).update(name="Acme Corp "),
     "name", "'Acme Corp ' has leading or trailing white space"),
    ("tier1-id-padded", lambda d: tenant0(d).update(tier1={"id": "R100 ", "name": "R"}),
     "tier1.id", "'R100 ' has leading or trailing white space"),
    ("region-name-padded", lambda d: tenant0(d)["regions"][0].update(name=" United States"),
     "regions.0.name", "' United States' has leading or trailing white space"),
    ("switch-padded", lambda d: loc(d, 0, 0).update(switches=["SIP_East_1", "SIP_East_2 "]),
     "regions.0.locations.0.switches.1", "'SIP_East_2 ' has leading or trailing white space"),
    ("switch-empty", lambda d: loc(d, 0, 0).update(switches=["SIP_East_1", ""]),
     "regions.0.locations.0.switches.1", f"'' {EMPTY}"),
    ("gvp-conn-padded", lambda d: loc(d, 1, 0).update(gvp={"conn_id": "bds_gvpdb_eu "}),
     "regions.1.locations.0.gvp.conn_id", "'bds_gvpdb_eu ' has leading or trailing white space"),
    ("gim-conn-empty", lambda d: tenant0(d).update(gimdb_conn_id=""),
     "gimdb_conn_id", "'' is empty"),
    # control characters
    ("tenant-name-nul", lambda d: tenant0(d).update(name="Acme\0Corp"),
     "name", f"'Acme\\x00Corp' holds U+0000 (NUL); {CTRL}"),
    ("tenant-name-tab", lambda d: tenant0(d).update(name="Acme\tCorp"),
     "name", f"'Acme\\tCorp' holds U+0009 (tab); {CTRL}"),
    ("tier1-name-leading-tab", lambda d: tenant0(d).update(tier1={"id": "R1", "name": "\tR"}),
     "tier1.name", f"'\\tR' holds U+0009 (tab); {CTRL}"),
    ("bu-name-lf", lambda d: bu(d, 0).update(name="Sa\nles"),
     "business_units.0.name", f"'Sa\\nles' holds U+000A (line feed); {CTRL}"),
    ("bu-name-trailing-cr", lambda d: bu(d, 0).update(name="Sales\r"),
     "business_units.0.name", f"'Sales\\r' holds U+000D (carriage return); {CTRL}"),
    ("region-name-u2028", lambda d: tenant0(d)["regions"][0].update(name="United\u2028States"),
     "regions.0.name", f"'United\\u2028States' holds U+2028 (line separator); {CTRL}"),
    ("location-name-u2029", lambda d: loc(d, 0, 0).update(name="US\u2029East"),
     "regions.0.locations.0.name", f"'US\\u2029East' holds U+2029 (paragraph separator); {CTRL}"),
    ("bu-name-zero-width-space", lambda d: bu(d, 0).update(name="Sa\u200bles"),
     "business_units.0.name", f"'Sa\\u200bles' holds U+200B (zero width space); {CTRL}"),
    ("tenant-name-bidi-override", lambda d: tenant0(d).update(name="Acme \u202eproC"),
     "name", f"'Acme \\u202eproC' holds U+202E (right-to-left override); {CTRL}"),
    ("bu-name-bom", lambda d: bu(d, 1).update(name="\ufeffSupport"),
     "business_units.1.name", f"'\\ufeffSupport' holds U+FEFF (zero width no-break space); {CTRL}"),
    ("bu-name-escape", lambda d: bu(d, 1).update(name="Sup\x1bport"),
     "business_units.1.name", f"'Sup\\x1bport' holds U+001B (control character); {CTRL}"),
    ("bu-name-c1-csi", lambda d: bu(d, 1).update(name="Sup\x9bport"),
     "business_units.1.name", f"'Sup\\x9bport' holds U+009B (control character); {CTRL}"),
    ("bu-name-del", lambda d: bu(d, 1).update(name="Sup\x7fport"),
     "business_units.1.name", f"'Sup\\x7fport' holds U+007F (control character); {CTRL}"),
    ("switch-nul", lambda d: loc(d, 1, 0).update(switches=["SIP\0Dublin"]),
     "regions.1.locations.0.switches.0", f"'SIP\\x00Dublin' holds U+0000 (NUL); {CTRL}"),
    ("test-number-lf", lambda d: tenant0(d).update(test_numbers=["+1555\n"]),
     "test_numbers.0", f"'+1555\\n' holds U+000A (line feed); {CTRL}"),
    # a first character a spreadsheet runs as a formula, in values written to CSV cells
    ("tenant-name-equals", lambda d: tenant0(d).update(name='=HYPERLINK("http://x")'),
     "name", f"'=HYPERLINK(\"http://x\")' begins with '=', {FORMULA}"),
    ("tier1-id-plus", lambda d: tenant0(d).update(tier1={"id": "+R100"}),
     "tier1.id", f"'+R100' begins with '+', {FORMULA}"),
    ("tier1-name-at", lambda d: tenant0(d).update(tier1={"id": "R1", "name": "@SUM(A1)"}),
     "tier1.name", f"'@SUM(A1)' begins with '@', {FORMULA}"),
    ("bu-name-minus", lambda d: bu(d, 0).update(name="-Sales"),
     "business_units.0.name", f"'-Sales' begins with '-', {FORMULA}"),
    ("bu-name-equals", lambda d: bu(d, 0).update(name="=Ventas"),
     "business_units.0.name", f"'=Ventas' begins with '=', {FORMULA}"),
    ("bu-id-minus", lambda d: bu(d, 1).update(id="-acme_BU_2"),
     "business_units.1.id", f"'-acme_BU_2' begins with '-', {FORMULA}"),
    ("region-code-minus", lambda d: tenant0(d)["regions"][1].update(code="-eu"),
     "regions.1.code", f"'-eu' begins with '-', {FORMULA}"),
    # Info Mart keys outside the 32-bit `int` columns
    ("tenant-key-1e20", lambda d: tenant0(d)["gim"].update(tenant_key=10**20),
     "gim.tenant_key",
     "100000000000000000000 is outside the Info Mart's int range [-2147483648, 2147483647]"),
    ("tenant-key-2-31", lambda d: tenant0(d)["gim"].update(tenant_key=2**31),
     "gim.tenant_key", "2147483648 is outside the Info Mart's int range [-2147483648, 2147483647]"),
    ("tenant-dbid-below", lambda d: tenant0(d)["gim"].update(tenant_dbid=-(2**31) - 1),
     "gim.tenant_dbid",
     "-2147483649 is outside the Info Mart's int range [-2147483648, 2147483647]"),
    # two BU names equal under the SPEC §6 comparison
    ("bu-names-nfd-nfc", lambda d: d["tenants"][0].update(business_units=[
        {"id": "a1", "name": "Atenci\u00f3n"}, {"id": "a2", "name": "Atencio\u0301n"}]),
     "business_units[].name", SAME_NAME.format("Atenci\u00f3n", "Atencio\u0301n")),
    ("bu-names-sharp-s", lambda d: d["tenants"][0].update(business_units=[
        {"id": "a1", "name": "Straße"}, {"id": "a2", "name": "STRASSE"}]),
     "business_units[].name", SAME_NAME.format("Straße", "STRASSE")),
    ("bu-names-angstrom", lambda d: d["tenants"][0].update(business_units=[
        {"id": "a1", "name": "\u00c5sa"}, {"id": "a2", "name": "a\u030asa"}]),
     "business_units[].name", SAME_NAME.format("\u00c5sa", "a\u030asa")),
]


@pytest.mark.parametrize(("mutate", "key", "message"),
                         [pytest.param(*c[1:], id=c[0]) for c in SILENT])
def test_values_that_would_silently_change_a_bill(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], Any], key: str, message: str
) -> None:
    d = copy.deepcopy(doc())
    mutate(d)
    path = write(tmp_path, dump(d))
    assert error_of(path) == f"{path}: tenant 'acme': key {key}: {message}"


def test_values_that_look_odd_but_bill_right_are_accepted() -> None:
    d = doc()
    t0 = d["tenants"][0]
    t0["name"] = "Acme  Corp (Zürich) – 2"  # inner double space, dash inside
    t0["tier1"] = {"id": "R-100", "name": ""}  # '-' inside, empty name
    t0["gim"] = {"tenant_key": 2**31 - 1, "tenant_dbid": -(2**31)}
    t0["business_units"] = [
        {"id": "acme_BU_1", "name": "Sales  Team"},
        {"id": "acme_BU_2", "name": "مبیعات\u200cها"},  # ZWNJ: Persian needs it
        {"id": "acme_BU_3", "name": "Team \U0001f468\u200d\U0001f4bb"},  # ZWJ emoji
        {"id": "acme_BU_4", "name": "İstanbul"},  # ≠ "istanbul": casefold is not Turkish
        {"id": "acme_BU_5", "name": "istanbul"},
        {"id": "acme_BU_6", "name": "Atención"},  # ≠ "Atencion": accents count
        {"id": "acme_BU_7", "name": "Atencion"},
    ]
    t = parse_config(dump(d), "x.yaml").tenant("acme")
    assert t.name == "Acme  Corp (Zürich) – 2"
    assert (t.tier1_id, t.tier1_name) == ("R-100", "")
    assert (t.tenant_key, t.tenant_dbid) == (2**31 - 1, -(2**31))
    assert [b.name for b in t.business_units][:2] == ["Sales  Team", "مبیعات\u200cها"]


def test_padded_blacklisted_name_is_refused_for_its_white_space() -> None:
    d = doc()
    bu(d, 1)["name"] = " agents "
    with pytest.raises(ConfigError) as ei:
        parse_config(dump(d), "x.yaml")
    assert str(ei.value) == ("x.yaml: tenant 'acme': key business_units.1.name: "
                             "' agents ' has leading or trailing white space")


# An unquoted YAML scalar that is not text where text is expected: the message says to
# quote it (the text as written, not Python's reading of it). Raw YAML, not `dump`.
UNQUOTED = [
    ("    name: Acme Corp ", "    name: no", "name", "no", "the boolean false"),
    ("    name: Acme Corp ", "    name: On", "name", "On", "the boolean true"),
    ("    name: Acme Corp ", "    name: 007", "name", "007", "the number 7"),
    ("    name: Acme Corp ", "    name: 0x1F", "name", "0x1F", "the number 31"),
    ("    name: Acme Corp ", "    name: 1.0e+3", "name", "1.0e+3", "the number 1000.0"),
    ("    name: Acme Corp ", "    name: 12:30", "name", "12:30", "the number 750"),
    ("    name: Acme Corp ", "    name: 2026-01-01", "name", "2026-01-01", "a date"),
    ("    name: Acme Corp ", "    name: 2026-01-01 10:00:00", "name", "2026-01-01 10:00:00",
     "a timestamp"),
    ("    name: Acme Corp ", "    name: null", "name", "null", "null (no value)"),
    ('tier1: {id: "R100"', "tier1: {id: 0100", "tier1.id", "0100", "the number 64"),
    ('name: "Reseller One"}', "name: off}", "tier1.name", "off", "the boolean false"),
    ("{id: acme_BU_1, name: Sales}", "{id: acme_BU_1, name: yes}",
     "business_units.0.name", "yes", "the boolean true"),
    ('dnis: ["+1800555", "+1877555"]', 'dnis: [+1800555, "+1877555"]',
     "business_units.1.dnis.0", "+1800555", "the number 1800555"),
    ('test_numbers: ["+15550000000"]', "test_numbers: [0x1F]", "test_numbers.0", "0x1F",
     "the number 31"),
    ("switches: [SIP_Dublin]", "switches: [SIP_Dublin, 1_000]",
     "regions.1.locations.0.switches.1", "1_000", "the number 1000"),
    ("      - code: eu\n", "      - code: 1e3\n", None, None, None),  # `1e3` is text in YAML 1.1
]


@pytest.mark.parametrize(("old", "new", "key", "text", "what"), UNQUOTED,
                         ids=[f"{c[2]}={c[3]}" for c in UNQUOTED])
def test_unquoted_yaml_value_that_is_not_text_says_quote_it(
    tmp_path: Path, old: str, new: str, key: str | None, text: str | None, what: str | None
) -> None:
    assert old.rstrip(" ") in VALID, old
    path = write(tmp_path, VALID.replace(old.rstrip(" "), new.rstrip(" "), 1))
    if key is None:
        assert load_config(path).tenant("acme").regions[1].code == "1e3"
        return
    assert error_of(path) == (
        f"{path}: tenant 'acme': key {key}: Input should be a valid string: "
        f'YAML reads the unquoted {text} as {what}; quote it: "{text}"'
    )


def test_unquoted_value_through_a_merge_key_is_found(tmp_path: Path) -> None:
    text = VALID.replace("    name: Acme Corp", "    <<: {name: no}", 1)
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: " + (
        "tenant 'acme': key name: Input should be a valid string: "
        'YAML reads the unquoted no as the boolean false; quote it: "no"')


def test_integer_key_written_as_1e3_says_write_digits(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("tenant_key: 101", "tenant_key: 1e3", 1))
    assert error_of(path) == (
        f"{path}: tenant 'acme': key gim.tenant_key: Input should be a valid integer: "
        "YAML reads the unquoted 1e3 as text; write the number in digits")


def test_quoted_numbers_and_words_are_text(tmp_path: Path) -> None:
    text = (VALID.replace("    name: Acme Corp", '    name: "no"', 1)
            .replace('tier1: {id: "R100"', "tier1: {id: '007'", 1))
    t = load_config(write(tmp_path, text)).tenant("acme")
    assert (t.name, t.tier1_id) == ("no", "007")


@pytest.mark.parametrize(("root", "env", "message"), [
    ("", {}, f"'' is empty: {ROOT_HINT}"),
    ("out", {}, f"'out' {RELATIVE}"),
    (".", {}, f"'.' {RELATIVE}"),
    ("s3:/bucket/x", {}, f"'s3:/bucket/x' {RELATIVE}"),
    ("file://rel/out", {}, f"'file://rel/out' {RELATIVE}"),
    ("s3://", {}, f"'s3://' is not a URL (scheme://bucket/prefix): {ROOT_HINT}"),
    ("://bucket", {}, f"'://bucket' is not a URL (scheme://bucket/prefix): {ROOT_HINT}"),
    ("${BDS_T_REL}/out", {"BDS_T_REL": "rel"},
     f"'${{BDS_T_REL}}/out' (expanded: 'rel/out') {RELATIVE}"),
    ("${BDS_T_EMPTY}/out", {"BDS_T_EMPTY": ""}, "environment variable ${BDS_T_EMPTY} is empty"),
    ("$BDS_T_UNSET/out", {}, "environment variable $BDS_T_UNSET is not set"),
    ("/srv/out ", {}, "'/srv/out ' has leading or trailing white space"),
    ("/srv/\nout", {}, f"'/srv/\\nout' holds U+000A (line feed); {CTRL}"),
])
@pytest.mark.parametrize("key", ["output_root", "staging_root"])
def test_roots_that_put_files_where_nobody_looks(
    monkeypatch: pytest.MonkeyPatch, key: str, root: str, env: dict[str, str], message: str
) -> None:
    monkeypatch.delenv("BDS_T_UNSET", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    d = doc()
    d["tenants"][0][key] = root
    with pytest.raises(ConfigError) as ei:
        parse_config(dump(d), "x.yaml")
    assert str(ei.value) == f"x.yaml: tenant 'acme': key {key}: {message}"
    d = doc()  # from `defaults`: named as such, and the first tenant taking it is named
    d["defaults"][key] = root
    d["tenants"][0].pop(key, None)
    with pytest.raises(ConfigError) as ei:
        parse_config(dump(d), "x.yaml")
    assert str(ei.value) == f"x.yaml: tenant 'acme': key defaults.{key}: {message}"


@pytest.mark.parametrize(("root", "expected"), [
    ("/abs/out", "/abs/out"),
    ("s3://aws_bds@bucket/prefix", "s3://aws_bds@bucket/prefix"),
    ("gs://bucket", "gs://bucket"),
    ("file:///abs/out", "file:///abs/out"),
    ("~/out", os.path.expanduser("~/out")),
    ("${BDS_T_ABS}/out", "/data/bds/out"),
])
def test_valid_roots(monkeypatch: pytest.MonkeyPatch, root: str, expected: str) -> None:
    monkeypatch.setenv("BDS_T_ABS", "/data/bds")
    d = doc()
    d["defaults"]["output_root"] = root
    assert parse_config(dump(d), "x.yaml").tenant("globex").output_root == expected


def test_cli_config_validate_names_a_formula_name_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("name: Sales}", 'name: "=Sales"}', 1))
    p = bds("config", "validate", env=cli_env(tmp_path, path))
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == (
        "bds: configuration error:\n"
        f"{path}: tenant 'acme': key business_units.0.name: '=Sales' begins with '=', "
        f"{FORMULA}\n"
    )
