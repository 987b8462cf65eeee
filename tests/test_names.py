"""Names that look equal (SPEC §6): one comparison, NFC + strip + casefold, everywhere.

The case tests/data/cases/names/unicode-nfd (a copy of shared/cases/names/unicode-nfd):
a folder "Atención" stored decomposed (NFD), the BU name precomposed. Then the kind:
other characters, folder tables, the blacklist and `bds units`, checked against a
brute-force walk of the folder tree written independently of the vectorised code.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bds_metrics import pipeline
from bds_metrics.attribution import agent_units, folder_units, units_by_key
from bds_metrics.config import load_config, parse_config
from bds_metrics.names import name_key, name_keys
from bds_metrics.units import detected_folders
from tests.conftest import airflow_conn_json, dbname_of
from tests.gim import set_mark
from tests.test_config import BDS, bds, cli_env

CASE = Path(__file__).parent / "data" / "cases" / "names" / "unicode-nfd"
MARK_PAST_DATA = 2_000_000_000  # 2033: readiness (SPEC §8) never holds the case back
NFD_DAY = dt.date(2026, 11, 2)


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


# ------------------------------------------------------------------ the comparison itself

# (folder name as stored, BU name as configured, equal?)
PAIRS = [
    ("Atencio\u0301n", "Atención", True),           # NFD vs NFC (the case)
    ("ATENCIO\u0301N", "atención", True),           # and case
    ("A\u030asa", "Åsa", True),                     # A + combining ring vs Å
    ("\u212bsa", "Åsa", True),                      # ANGSTROM SIGN: NFC makes it Å
    ("STRASSE", "Straße", True),                    # ß case-folds to ss
    ("strasse", "STRAẞE", True),                    # capital sharp s too
    ("ΟΔΟΣ", "οδος", True),                         # final sigma folds to σ
    ("\u00a0Sales\u3000", "Sales", True),           # no-break / ideographic space, outside
    ("\tSales\n", "SALES", True),                   # any outer white space
    ("Sales  Team", "sales  team", True),           # inner spaces kept...
    ("Sales  Team", "Sales Team", False),           # ...and count
    ("Sales\u00a0Team", "Sales Team", False),       # an inner no-break space is not a space
    ("i\u0307stanbul", "İstanbul", True),           # dotted İ folds to i + dot above
    ("ISTANBUL", "İstanbul", False),                # casefold is not Turkish
    ("istanbul", "İstanbul", False),
    ("ısparta", "Isparta", False),                  # dotless ı is its own letter
    ("Sa\u200bles", "Sales", False),                # zero-width space: a different name
    ("ＳＡＬＥＳ", "Sales", False),                  # full-width: NFC, not NFKC
    ("Atencion", "Atención", False),                # accents count
    ("ﬁnance", "FINANCE", True),                    # the fi ligature case-folds to "fi"
]


@pytest.mark.parametrize(("folder", "bu", "equal"), PAIRS,
                         ids=[f"{i}-{p[2]}" for i, p in enumerate(PAIRS)])
def test_name_key_pairs(folder: str, bu: str, equal: bool) -> None:
    assert (name_key(folder) == name_key(bu)) is equal


def test_name_key_of_null_matches_nothing() -> None:
    assert name_key(None) == ""
    assert list(name_keys(pd.Series(["A\u030a", None, np.nan, " x "], dtype=object))) == [
        "å", "", "", "x"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12), st.sampled_from(["", " ", "\u00a0", "\u3000", "\t", "\u2003 "]))
def test_name_key_ignores_normal_form_and_outer_space(s: str, pad: str) -> None:
    k = name_key(s)
    assert name_key(nfd(s)) == k
    assert name_key(unicodedata.normalize("NFC", s)) == k
    assert name_key(pad + s + pad) == k
    assert unicodedata.is_normalized("NFC", k)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=30))
def test_name_keys_is_name_key_per_row(values: list[str]) -> None:
    s = pd.Series(values, dtype=object, index=np.arange(len(values)) * 3)
    out = name_keys(s)
    assert list(out.index) == list(s.index)
    assert list(out) == [name_key(v) for v in values]


# ------------------------------------------------------------- folders, independently walked


def brute_force_bu(fid: int, folders: pd.DataFrame, bus: dict[str, str]) -> str:
    """Walk from the root down (a Python walk; SPEC §6 read literally)."""
    rows = {int(r.folder_id): r for r in folders.itertuples()}
    chain, cur, seen = [], fid, set()
    while cur:
        if cur in seen or cur not in rows:
            return "broken"
        seen.add(cur)
        chain.append(rows[cur])
        cur = int(rows[cur].parent_id or 0)
    for r in reversed(chain):
        for name, bu_id in bus.items():
            a = unicodedata.normalize("NFC", str(r.name or "")).strip().casefold()
            b = unicodedata.normalize("NFC", name).strip().casefold()
            if unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b):
                return bu_id
    return ""


VARIANTS = {  # spellings of each BU name a folder may carry
    "Atención": ["Atención", "Atencio\u0301n", " ATENCIÓN ", "atencio\u0301n\u3000"],
    "Straße": ["Straße", "STRASSE", "strasse", "\u00a0Straße"],
    "Åsa": ["Åsa", "A\u030asa", "\u212bsa", "ÅSA"],
    "İzmir": ["İzmir", "i\u0307zmir", "İZMİR"],
}
DECOYS = ["Atencion", "Strase", "Asa", "Izmir", "izmir", "Sa\u200bles", "Other", None]


@pytest.mark.parametrize("seed", range(6))
def test_folder_units_match_a_brute_force_walk(seed: int) -> None:
    rng = random.Random(seed)
    names = list(VARIANTS)
    cfg = "\n".join(f"      - {{id: u{i}, name: \"{n}\"}}" for i, n in enumerate(names))
    t = parse_config(UNITS_CONFIG.format(units=cfg), "n.yaml").tenants[0]
    rows = []
    for fid in range(1, 200):
        parent = rng.choice([0, 0, *range(1, fid)]) if fid > 1 else 0
        if rng.random() < 0.02:
            parent = 999  # missing parent
        pool = [v for vs in VARIANTS.values() for v in vs] + DECOYS
        rows.append((fid, rng.choice(pool), parent))
    folders = pd.DataFrame(rows, columns=["folder_id", "name", "parent_id"])
    ids = folders["folder_id"].to_numpy(dtype=np.int64)
    bu, status = folder_units(ids, folders, units_by_key(t))
    bus = {n: f"u{i}" for i, n in enumerate(names)}
    want = [brute_force_bu(int(f), folders, bus) for f in ids]
    got = ["broken" if s else b for b, s in zip(bu, status, strict=True)]
    assert got == want
    assert sum(1 for w in want if w.startswith("u")) > 50  # the test exercises matches


UNITS_CONFIG = """
tenants:
  - id: n
    name: N
    production_date: 2026-01-01
    output_root: /tmp/o
    staging_root: /tmp/s
    metrics: [seats_chat]
    regions: [{{code: r, locations: [{{code: d, switches: []}}]}}]
    business_units:
{units}
"""


def test_agent_units_and_bds_units_use_the_same_comparison() -> None:
    units = ("      - {id: n_BU_1, name: \"Atención\"}\n"
             "      - {id: n_BU_2, name: \"Straße\"}\n"
             "      - {id: n_BU_3, name: \"Sales  Team\"}")
    t = parse_config(UNITS_CONFIG.format(units=units), "n.yaml").tenants[0]
    folders = pd.DataFrame({
        "folder_id": [1, 2, 3, 4, 5, 6],
        "name": ["Persons", "Atencio\u0301n", "STRASSE", "\u00a0sales  team ", "Sales Team",
                 "Atencion"],
        "parent_id": [0, 1, 1, 1, 1, 1],
    })
    agents = pd.DataFrame({"agent_id": [11, 12, 13, 14, 15],
                           "folder_id": [2, 3, 4, 5, 6]})
    got = agent_units(t, np.array([11, 12, 13, 14, 15]), agents, folders)
    assert dict(zip(got["agent_id"], got["bu_id"], strict=True)) == {
        11: "n_BU_1", 12: "n_BU_2", 13: "n_BU_3", 14: "n_BU_0", 15: "n_BU_0"}
    assert set(got["reason"]) == {""}
    assert detected_folders(t, folders) == {
        "n_BU_1": ["/Persons/Atencio\u0301n"],
        "n_BU_2": ["/Persons/STRASSE"],
        "n_BU_3": ["/Persons/\u00a0sales  team "],
    }


# ----------------------------------------------------------------- the case, end to end


def _case_db(new_db) -> str:
    gim = new_db("gim")
    with psycopg.connect(gim, autocommit=True) as c:
        c.execute((CASE / "inserts.sql").read_text(encoding="utf-8"))
    set_mark(gim, MARK_PAST_DATA)  # the Info Mart's ETL has loaded the case's days
    return gim


def test_case_config_refuses_the_formula_bu_name(tmp_path: Path) -> None:
    """The case's BU "=Ventas" is itself a value SPEC §3 now refuses (formula lead)."""
    env = cli_env(tmp_path, CASE / "bds.yaml", BDS_CASE_DIR=str(tmp_path))
    p = bds("config", "validate", env=env)
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == (
        "bds: configuration error:\n"
        f"{CASE / 'bds.yaml'}: tenant 't1': key business_units.0.name: '=Ventas' begins with "
        "'=', which a spreadsheet reads as a formula (it is written into billing CSV cells)\n")


def _case_config(tmp_path: Path, tenant: str = "t1") -> Path:
    # "=Ventas" renamed "Ventas" (the folder keeps "=Ventas": it matches no BU now);
    # the tenant renamed where Airflow runs it, so no other test's DAG run is touched.
    text = (CASE / "bds.yaml").read_text(encoding="utf-8").replace('"=Ventas"', '"Ventas"')
    path = tmp_path / "bds.yaml"
    path.write_text(text.replace("t1", tenant), encoding="utf-8")
    return path


def _bu_rows(folder: Path, name: str) -> list[tuple[str, str]]:
    lines = (folder / name).read_text(encoding="utf-8").splitlines()[1:]
    return [(f.split(",")[-2], f.split(",")[-1]) for f in lines]


def test_case_unicode_nfd_bills_the_decomposed_folder(tmp_path: Path, new_db,
                                                      monkeypatch) -> None:
    gim = _case_db(new_db)
    monkeypatch.setenv("BDS_CASE_DIR", str(tmp_path))
    t = load_config(_case_config(tmp_path)).tenant("t1")
    folder = Path(pipeline.run_day(t, NFD_DAY, lambda conn_id: gim))
    # right outcome: t1_BU_2 seats_chat 1 / 1 (AgentGroupName 1 concurrent, 2 enabled)
    assert _bu_rows(folder, "t1_BU_2_seats_chat_20261102.csv") == [("1", "1"), ("2", "1")]
    assert _bu_rows(folder, "t1_BU_1_seats_chat_20261102.csv") == [("1", "0"), ("2", "0")]
    assert _bu_rows(folder, "t1_BU_0_seats_chat_20261102.csv") == [("1", "1"), ("2", "1")]
    assert _bu_rows(folder, "t1_seats_chat_20261102.csv") == [("1", "2"), ("2", "2")]


def test_case_unicode_nfd_bds_units_finds_the_folder(tmp_path: Path, new_db) -> None:
    gim = _case_db(new_db)
    env = cli_env(tmp_path, _case_config(tmp_path), BDS_CASE_DIR=str(tmp_path),
                  AIRFLOW_CONN_BH_GIM=airflow_conn_json(dbname_of(gim)))
    p = bds("units", "-t", "t1", env=env)
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    detected = p.stdout.split("folders detected as units (path from the root):\n")[1]
    assert [unicodedata.normalize("NFC", line.strip()).split(maxsplit=1)
            for line in detected.splitlines()] == [
        ["t1_BU_1", "(none found)"], ["t1_BU_2", "/Persons/Atención"]]


@pytest.mark.xdist_group("airflow")
def test_case_unicode_nfd_through_bds_run(tmp_path: Path, new_db, airflow_db) -> None:
    """`bds run`, the case's own command, in a process of its own (tenant renamed nfd)."""
    gim = _case_db(new_db)
    env = {**os.environ, "BDS_CASE_DIR": str(tmp_path),
           "AIRFLOW_CONN_BH_GIM": airflow_conn_json(dbname_of(gim))}
    p = subprocess.run([BDS, "--config", str(_case_config(tmp_path, "nfd")), "run", "-t",
                        "nfd", "--from", "2026-11-02"], env=env, capture_output=True,
                       text=True, timeout=600)
    folder = tmp_path / "out" / "nfd" / "daily" / "2026-11-02"
    assert p.returncode == 0, p.stderr
    # the day's line with its tenant-level values (bds_airflow.progress)
    assert p.stdout.splitlines()[-1] == f"nfd 2026-11-02 ok     {folder}  seats_chat r1=2/2"
    assert _bu_rows(folder, "nfd_BU_2_seats_chat_20261102.csv") == [("1", "1"), ("2", "1")]
