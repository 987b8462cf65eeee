"""A seat metric added without code (SPEC §5.3): one `custom_metrics` entry of the
configuration, or the same entry in the registry (bds_metrics/catalog.yaml), gets every
file, BU split, audit row and month rule of a built-in seat metric.

The variant: `seats_voice_outbound`, seats_outbound's sessions and qualification (VOICE
sm_fact sessions with an OCS-handled interaction inside) billed with a daily enabled row.
On the hand-worked day of tests/cases.py its values follow from seats_outbound's: us
concurrent 2 (1001 and 1003 at 05:25:00Z..05:41:39Z), us enabled 3 (1001, 1003 and
1004, whose sessions qualify by CA1, CA2 and CA4), eu 0 and 0.
"""

from __future__ import annotations

import os

import pytest
import yaml

from bds_metrics import catalog, pipeline
from bds_metrics.config import TenantConfig
from tests.cases import DAY, EXPECTED, HEAD, PRE, setup_case

ENTRY = {"sessions": "sm_fact", "media": ["VOICE"], "qualifies": {"ocs": True},
         "enabled": "daily", "channel_type": 4, "service_class": 24, "activity_type": 5,
         "status": "AGENT_SEATS"}
NAME = "seats_voice_outbound"

WANT = {
    f"acme_{NAME}_20260308.csv": HEAD
    + PRE + f"us,{NAME},4,24,5,AGENT_SEATS,1,2\n"
    + PRE + f"us,{NAME},4,24,5,AGENT_SEATS,2,3\n"
    + PRE + f"eu,{NAME},4,24,5,AGENT_SEATS,1,0\n"
    + PRE + f"eu,{NAME},4,24,5,AGENT_SEATS,2,0\n",
}
AUDIT_ROWS = (
    f"{NAME},us,,1,2,2026-03-08T05:25:00Z,2026-03-08T05:41:39Z,1001 1003\n"
    f"{NAME},us,,2,3,,,1001 1003 1004\n"
    f"{NAME},eu,,1,0,,,\n"
    f"{NAME},eu,,2,0,,,\n"
)


def _config_with_custom() -> str:
    """tests/cases.CONFIG (a format string) with the entry in `custom_metrics`, billed."""
    from tests.cases import CONFIG

    return (CONFIG.replace("metrics: [seats_chat, seats_outbound]",
                           f"metrics: [seats_chat, seats_outbound, {NAME}]")
            + f"    custom_metrics:\n"
            f"      - {{{{name: {NAME}, sessions: sm_fact, media: [VOICE], "
            "qualifies: {{ocs: true}}, enabled: daily, channel_type: 4, service_class: 24, "
            "activity_type: 5, status: AGENT_SEATS}}\n")


def _files(folder: str) -> dict[str, str]:
    return {n: open(os.path.join(folder, n), encoding="utf-8").read()
            for n in sorted(os.listdir(folder)) if n.endswith(".csv")}


def _check(files: dict[str, str]) -> None:
    want = {**EXPECTED, **WANT}
    want["audit_20260308.csv"] = EXPECTED["audit_20260308.csv"] + AUDIT_ROWS
    assert sorted(files) == sorted(want)
    for name in sorted(want):
        assert files[name] == want[name], name  # the built-ins' files are unchanged


@pytest.fixture
def custom_case(tmp_path, new_db, monkeypatch):
    t, root = setup_case(tmp_path, new_db, monkeypatch, config=_config_with_custom())
    gim = new_db.names[-1]  # the case's Info Mart (setup_case made it last)
    from tests.conftest import dsn

    return t, root, {"e2e_gim": dsn(gim)}


def test_custom_metric_gets_every_daily_file(custom_case):
    t, _root, conns = custom_case
    m = t.metric(NAME)
    assert (m.builtin, m.inputs, m.groups("daily"), m.groups("monthly")) == (
        False, ("sm_fact", "handled"), (1, 2), (1, 2))
    _check(_files(pipeline.run_day(t, DAY, conns.__getitem__, monthly=False)))


def test_registry_entry_is_the_same_metric(custom_case):
    """The same entry in the registry (catalog.yaml `metrics:`) is the same metric: one
    entry is all a seat metric over existing datasets needs."""
    t, root, conns = custom_case
    raw = yaml.safe_load(catalog.REGISTRY_FILE.read_text(encoding="utf-8"))
    raw["metrics"][NAME] = {"family": "seat", **ENTRY, "provisional": True}
    registry = catalog._load(raw["metrics"])
    builtin = registry[NAME]
    custom = t.metric(NAME)
    assert {**vars(builtin), "builtin": False, "provisional": False} == vars(custom)
    # a tenant whose registry has the entry (no custom_metrics) bills the same files
    t2 = TenantConfig(t.raw.model_copy(update={"custom_metrics": []}),
                      _defaults(t), t.source, registry)
    _check(_files(pipeline.run_day(t2, DAY, conns.__getitem__, monthly=False)))


def _defaults(t: TenantConfig):
    from bds_metrics.config import Defaults

    return Defaults(gimdb_conn_id=t.gimdb_conn_id, output_root=t.output_root + "2",
                    staging_root=t.staging_root + "2")
