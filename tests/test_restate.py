"""Restatements (SPEC §7) on local disk: versions, history, corrections; a late Info Mart
row restating a real day; SIGKILL at any point of a restatement loses no version;
`bds diff` and `bds status` from stored results."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import restate_scenario
from tests.cases import D0, DAY, EXPECTED, setup_case
from tests.conftest import dsn
from tests.gim import CHAT

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", ["daily", "monthly"])
def test_restatement_on_local_disk(tmp_path, kind):
    restate_scenario.run(str(tmp_path / "out"), kind)


def test_late_info_mart_rows_restate_a_billed_day(tmp_path, new_db, monkeypatch, capsys):
    """The hand-worked day of tests/cases, then a late login session and chat of agent
    1004 (default location, us) from +2000 to +2100 while 1001 and 1003 are logged in:
    us seats_chat concurrent 2 -> 3 and enabled 2 -> 3, nothing else."""
    from bds_airflow.cli import main
    from bds_metrics import pipeline
    from tests.gim import insert

    t, root = setup_case(tmp_path, new_db, monkeypatch)
    gim_name = json.loads(__import__("os").environ["AIRFLOW_CONN_E2E_GIM"])["schema"]
    conns = {"e2e_gim": dsn(gim_name)}
    folder = root / "out" / "acme" / "daily" / "2026-03-08"
    pipeline.run_day(t, DAY, conns.__getitem__, monthly=False)
    for name, text in EXPECTED.items():
        assert (folder / name).read_text() == text
    v1 = (folder / "manifest.json").read_bytes()
    assert json.loads(v1)["version"] == 1
    pipeline.run_day(t, DAY, conns.__getitem__, monthly=False)  # unchanged: no version
    assert (folder / "manifest.json").read_bytes() == v1
    assert not (root / "out" / "acme" / "history").exists()

    insert(conns["e2e_gim"], {
        "gidb_g_login_session_mm": [(20, "L20", 1004, 1, D0 + 2000, D0 + 2100)],
        "interaction_resource_fact": [(20, 20, 101, 13, CHAT, D0 + 2050, None, 60, None)],
    }, base=False)
    pipeline.run_day(t, DAY, conns.__getitem__, monthly=False)
    doc = json.loads((folder / "manifest.json").read_bytes())
    assert doc["version"] == 2 and doc["supersedes"] == hashlib.sha256(v1).hexdigest()
    hist = root / "out" / "acme" / "history" / "daily" / "2026-03-08" / "v1"
    assert (hist / "manifest.json").read_bytes() == v1
    for name, text in EXPECTED.items():
        assert (hist / name).read_text() == text
    assert (folder / "corrections_20260308_v2.csv").read_text() == (
        "RecordDate,Tier3AccountID,Region,MetricName,AgentGroupName,OldMessageSize,"
        "NewMessageSize\n"
        "2026-03-08,,us,seats_chat,1,2,3\n"
        "2026-03-08,,us,seats_chat,2,2,3\n")
    assert (folder / "acme_seats_outbound_20260308.csv").read_text() == EXPECTED[
        "acme_seats_outbound_20260308.csv"]

    capsys.readouterr()
    assert main(["diff", "-t", "acme", "--period", "2026-03-08"]) == 0
    out = capsys.readouterr().out
    assert "v1 -> v2 (current)" in out
    assert "us      seats_chat" in out and out.count("2 -> 3") == 2
    assert main(["diff", "-t", "acme", "--period", "2026-03-08", "--version", "2"]) == 0
    assert "same version" in capsys.readouterr().out
    assert main(["diff", "-t", "acme", "--period", "2026-03-09"]) == 1
    assert "not published" in capsys.readouterr().err

    # status: the 8th restated (v2), the 7th and 9th missing -> exit 1
    rc = main(["status", "-t", "acme", "--from", "2026-03-07", "--to", "2026-03-09",
               "--no-airflow"])
    out = capsys.readouterr().out
    assert rc == 1
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("2026-03-0")}
    assert "restated (v2)" in lines["2026-03-08"]
    assert "missing" in lines["2026-03-07"] and "missing" in lines["2026-03-09"]
    assert "2026-03: incomplete" in out and "missing 2026-03-01..2026-03-07" in out
    assert main(["status", "-t", "acme", "--from", "2026-03-08", "--to", "2026-03-08",
                 "--no-airflow"]) == 0


EMITTER = r"""
import sys, itertools, time, datetime
from bds_metrics.config import parse_config
from bds_metrics.days import billing_day
from bds_metrics.emission import BILLING_HEADER, Bundle, csv_text, publish
t = parse_config(open(sys.argv[1]).read(), sys.argv[1]).tenants[0]
p = billing_day(datetime.date(2026, 3, 8), t.timezone)
def files(v):
    out = {}
    for i in range(20):
        rows = [(p.label, "", "", "acme", "Acme", f"acme_BU_{i}", "", "us", "seats_chat",
                 8, 19, 5, "AGENT_SEATS", g, (i * 7 + g + v) % 11) for g in (1, 2)]
        out[f"acme_BU_{i}_seats_chat_{p.stamp}.csv"] = csv_text(BILLING_HEADER, rows * 40)
    out[f"audit_{p.stamp}.csv"] = f"audit {v}\n" * 500
    return out
versions = [files(0), files(1)]
print("ready", flush=True)
for n in itertools.count():
    publish(t, p, Bundle(files=versions[n % 2]))
    time.sleep(0.02)
"""


def test_sigkill_during_a_restatement_never_loses_a_version(tmp_path):
    """Kill the emitter at random instants while it restates one day back and forth; after
    every kill each version 1..N is complete somewhere (the period folder's manifest, or
    its history folder), versions alternate in content, each `supersedes` its
    predecessor's manifest, and each corrections file lists exactly what changed."""
    cfg = tmp_path / "bds.yaml"
    cfg.write_text(restate_scenario.CONFIG.format(root=tmp_path / "out"))
    script = tmp_path / "emit.py"
    script.write_text(EMITTER)
    rng = random.Random(20260308)
    highest = 0
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, str(script), str(cfg)],
                                stdout=subprocess.PIPE, cwd=str(REPO))
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.1, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        highest = max(highest, _assert_versions_whole(tmp_path / "out"))
    assert highest >= 3  # the kills landed after several restatements


def _assert_versions_whole(out: Path) -> int:
    from bds_metrics import restate

    folder = out / "acme" / "daily" / "2026-03-08"
    hist = out / "acme" / "history" / "daily" / "2026-03-08"
    docs: dict[int, tuple[bytes, dict, Path]] = {}
    if (hist).exists():
        for d in hist.iterdir():
            if (d / "manifest.json").exists():
                data = (d / "manifest.json").read_bytes()
                docs[int(d.name[1:])] = (data, json.loads(data), d)
    if (folder / "manifest.json").exists():
        data = (folder / "manifest.json").read_bytes()
        doc = json.loads(data)
        docs[doc["version"]] = (data, doc, folder)  # the current one wins over a leftover
    if not docs:
        return 0
    top = max(docs)
    assert sorted(docs) == list(range(1, top + 1)), f"a version is lost: {sorted(docs)}"
    contents = {}
    for n, (_data, doc, where) in docs.items():
        files = {}
        for f in doc["files"]:
            blob = (where / f["name"]).read_bytes()
            assert hashlib.sha256(blob).hexdigest() == f["sha256"], (n, f["name"])
            files[f["name"]] = blob
        contents[n] = restate.billing_rows(files)
        if n > 1:
            assert doc["supersedes"] == hashlib.sha256(docs[n - 1][0]).hexdigest()
        else:
            assert "supersedes" not in doc
    for n in range(2, top + 1):
        assert contents[n] != contents[n - 1]
        cname = f"corrections_20260308_v{n}.csv"
        text = (docs[n][2] / cname).read_text()
        want = restate.corrections_text(restate.corrections(contents[n - 1], contents[n]))
        assert text == want
    return top
