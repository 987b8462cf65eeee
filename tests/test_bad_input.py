"""The bad-input catalogue of docs/BAD_INPUT.md that other test files do not cover."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from bds_metrics import datasets
from bds_metrics.config import ConfigError, parse_config
from bds_metrics.days import billing_day
from bds_metrics.emission import build_files, csv_field

BASE = """
tenants:
  - id: acme
    name: {name}
    tier1: {{id: "R1", name: {tier1}}}
    production_date: {prod}
    metrics: [seats_chat]
    output_root: /tmp/x
    staging_root: /tmp/y
    regions: [{{code: us, locations: [{{code: d, switches: []}}]}}]
    business_units: [{{id: acme_BU_1, name: {bu}}}]
"""


def test_future_production_date_loads_but_days_before_it_are_refused():
    from bds_airflow.runner import check_range

    future = dt.date.today() + dt.timedelta(days=30)
    t = parse_config(BASE.format(name="A", tier1="R", prod=future, bu="Sales"),
                     "f.yaml").tenants[0]
    with pytest.raises(ConfigError, match=r"tenant 'acme': .* before the production date .*"
                                          r"\(f.yaml, key production_date\)"):
        check_range(t, dt.date.today() - dt.timedelta(days=2), dt.date.today() - dt.timedelta(1))


def test_a_day_that_has_not_ended_is_refused():
    from bds_airflow.runner import check_range

    t = parse_config(BASE.format(name="A", tier1="R", prod="2026-01-01", bu="Sales"),
                     "f.yaml").tenants[0]
    with pytest.raises(ConfigError, match="has not ended yet"):
        check_range(t, dt.date(2026, 1, 1), dt.date.today())


def test_missing_column_is_named(tmp_path, new_db):
    gim = new_db("gim")
    with psycopg.connect(gim, autocommit=True) as c:
        c.execute("ALTER TABLE resource_ DROP COLUMN switch_name")
    with pytest.raises(datasets.SourceError, match=r"dataset sm_fact: .*switch_name"):
        datasets.extract("sm_fact", gim, {"day_start": 0, "day_end": 86400,
                                          "lookback_start": -86400, "tenant_key": None},
                         str(tmp_path / "x.parquet"))
    assert not (tmp_path / "x.parquet").exists()  # nothing half-written


def test_non_ascii_and_comma_names_are_quoted_only_when_needed():
    import pandas as pd

    cfg = BASE.format(name='"Société, Générale \\"SG\\""', tier1='"Reseller, Ünïcode"',
                      prod="2026-01-01", bu='"Ventes Île-de-France"')
    t = parse_config(cfg, "n.yaml").tenants[0]
    p = billing_day(dt.date(2026, 3, 5), "UTC")
    rows = [{"metric": "seats_chat", "tier3_id": s, "region": "us", "group": g, "value": 0,
             "peak_first": None, "peak_last": None, "agents": []}
            for s in ("", "acme_BU_1", "acme_BU_0") for g in (1, 2)]
    files = build_files(t, p, pd.DataFrame(rows))
    line = files["acme_BU_1_seats_chat_20260305.csv"].splitlines()[1]
    assert line == ('2026-03-05,R1,"Reseller, Ünïcode",acme,"Société, Générale ""SG""",'
                    "acme_BU_1,Ventes Île-de-France,us,seats_chat,8,19,5,AGENT_SEATS,1,0")
    assert csv_field("a\nb") == '"a\nb"' and csv_field("plain") == "plain"
    assert files["acme_BU_1_seats_chat_20260305.csv"].encode("utf-8")  # UTF-8, no BOM
