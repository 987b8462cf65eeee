"""One tenant-day through the real DAG (`dag.test` via `bds run`), worked out by hand
(tests/cases.py: the 23-hour DST day of America/New_York)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.cases import DAY, EXPECTED, setup_case

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.usefixtures("airflow_db")]


@pytest.fixture
def tenant_env(tmp_path, new_db, monkeypatch):
    return setup_case(tmp_path, new_db, monkeypatch)


def _read(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_day_through_the_dag_matches_hand_worked_files(tenant_env):
    from bds_airflow.runner import run_days
    from bds_metrics.verify import verify_tenant

    t, root = tenant_env
    lines: list[str] = []
    assert run_days(t, DAY, DAY, echo=lines.append) == 0
    folder = root / "out" / "acme" / "daily" / "2026-03-08"
    assert lines == [f"acme 2026-03-08 ok     {folder}"]
    files = _read(folder)
    assert sorted(files) == sorted([*EXPECTED, "manifest.json"])
    for name, text in EXPECTED.items():
        assert files[name].decode() == text, name

    import json

    manifest = json.loads(files["manifest.json"])
    assert manifest["tenant"] == "acme"
    assert manifest["period"]["start"] == "2026-03-08T05:00:00Z"
    assert manifest["period"]["end"] == "2026-03-09T04:00:00Z"
    assert manifest["rejected"] == {"mm_sessions": {"end_before_start": 1, "no_agent_id": 1}}
    assert manifest["inputs"]["mm_sessions"] == 6  # L1..L6; L7, L8 rejected; L9 filtered
    listed = {f["name"]: f for f in manifest["files"]}
    for name, text in EXPECTED.items():
        assert listed[name]["sha256"] == hashlib.sha256(text.encode()).hexdigest()
        assert listed[name]["rows"] == text.count("\n") - 1
    assert verify_tenant(t) == (1, [])

    # A re-run of the day writes byte-identical files.
    assert run_days(t, DAY, DAY, echo=lines.append) == 0
    assert _read(folder) == files

    # Tampering is caught by verify.
    (folder / "acme_seats_chat_20260308.csv").write_text("x")
    checked, problems = verify_tenant(t)
    assert checked == 1 and len(problems) == 1 and "acme_seats_chat_20260308.csv" in problems[0]


def test_voice_email_sms_day_through_the_dag(tmp_path, new_db, monkeypatch):
    """SPEC §5.3 built-ins (inbound voice, e-mail, SMS) with a business unit, through the
    real DAG, against the hand-worked files of tests/cases.py (VOX_*)."""
    import json

    from bds_airflow.runner import run_days
    from tests.cases import VOX_CONFIG, VOX_DAY, VOX_EXPECTED, VOX_ROWS

    t, root = setup_case(tmp_path, new_db, monkeypatch, rows=VOX_ROWS, config=VOX_CONFIG,
                         tenant="vox")
    lines: list[str] = []
    assert run_days(t, VOX_DAY, VOX_DAY, echo=lines.append) == 0, lines
    folder = root / "out" / "vox" / "daily" / "2026-03-10"
    files = _read(folder)
    assert sorted(files) == sorted([*VOX_EXPECTED, "manifest.json"])
    for name, text in VOX_EXPECTED.items():
        assert files[name].decode() == text, name
    manifest = json.loads(files["manifest.json"])
    assert manifest["rejected"] == {} and manifest["fallbacks"] == {}
