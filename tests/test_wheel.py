"""The distribution as an operator meets it: `python -m build` makes a wheel; the wheel
goes into a fresh virtual environment that already holds Airflow 3.3.2 and the postgres
provider (installed first, on their own, as in an operator's image); installing it moves
none of their versions; a stock `airflow` finds the plugin through its entry point and
the DAG in a folder that holds only the thin DAG file; and one hand-worked tenant-day is
billed from that environment alone (no source tree on the path, no editable install).

Installs come from uv's cache at the versions of requirements.txt (the lock `make`
installed), so the test stays within a couple of minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cases import DAY, expected_for, setup_case
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("airflow_db")

TENANT = "wheelco"
AIRFLOW_FIRST = ("apache-airflow", "apache-airflow-providers-postgres")


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 600) -> str:
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _uv() -> str:
    uv = Path(sys.executable).with_name("uv")
    return str(uv) if uv.exists() else shutil.which("uv") or pytest.fail("uv not installed")


def _pins() -> dict[str, str]:
    text = (REPO / "requirements.txt").read_text()
    return dict(line.split("==", 1) for line in text.split() if "==" in line)


def _freeze(python: Path) -> dict[str, str]:
    out = _run([_uv(), "pip", "list", "--format", "json", "--python", python])
    return {d["name"].lower(): d["version"] for d in json.loads(out)}


def _json(out: str):
    """The JSON document of an `airflow ... -o json` output (log lines may precede it)."""
    lines = out.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith(("[", "{")))
    return json.loads("\n".join(lines[first:]))


def _wheel(tmp: Path) -> Path:
    """`python -m build --wheel` on a copy of the sources (the work tree stays clean)."""
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("bds_metrics", "bds_airflow"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    _run([sys.executable, "-m", "build", "--wheel", "--installer", "uv",
          "--outdir", tmp / "dist", src])
    (wheel,) = (tmp / "dist").glob("bds-*.whl")
    return wheel


def test_the_wheel_in_an_existing_airflow_bills_a_day(tmp_path, new_db, monkeypatch):
    wheel = _wheel(tmp_path)

    # An operator's environment: Airflow and its provider first, on their own.
    venv = tmp_path / "venv"
    _run([_uv(), "venv", "-q", "--python", sys.executable, venv])
    python = venv / "bin" / "python"
    pins = _pins()
    _run([_uv(), "pip", "install", "-q", "--python", python, "-c", REPO / "requirements.txt",
          *(f"{p}=={pins[p]}" for p in AIRFLOW_FIRST)])
    before = _freeze(python)
    assert before["apache-airflow"] == "3.3.2"

    # `pip install bds-*.whl`: nothing Airflow installed moves.
    _run([_uv(), "pip", "install", "-q", "--python", python, wheel])
    after = _freeze(python)
    moved = {p: (v, after.get(p)) for p, v in before.items() if after.get(p) != v}
    assert not moved, f"installing the wheel changed {moved}"
    assert after["bds"] == "0.1.0" and {"pyarrow", "adbc-driver-postgresql"} <= set(after)

    # The environment the installed code sees: no source tree, the run's metadata DB.
    t, root = setup_case(tmp_path, new_db, monkeypatch, tenant=TENANT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    where = _run([python, "-c", "import bds_airflow, bds_metrics.datasets as d; "
                  "from bds_airflow import airflow_env as a; "
                  "print(bds_airflow.__file__); print(d.SQL_DIR); print(a.DAGS_FOLDER)"],
                 env=env, cwd=tmp_path).split()
    assert all(p.startswith(str(venv)) for p in where), where

    # A DAG folder that holds only the thin DAG file of the tenant's part.
    from bds_airflow.dag_factory import tenant_part

    dags = tmp_path / "dags"
    dags.mkdir()
    part = f"bds_tenants_{tenant_part(TENANT, 4)}_of_4.py"
    shutil.copy2(Path(where[2]) / part, dags / part)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)

    plugins = _json(_run(["airflow", "plugins", "-o", "json"], env=env, cwd=tmp_path))
    bds = [p for p in plugins if p["name"] == "bds"]
    assert bds and "entrypoint" in str(bds[0]).lower().replace("_", ""), plugins
    listed = _json(_run(["airflow", "dags", "list", "--local", "-o", "json"], env=env,
                        cwd=tmp_path))
    assert [d["dag_id"] for d in listed] == [f"bds_{TENANT}"], listed

    # One line per day with its values (tests/cases.py), and no library warning.
    run = subprocess.run(["bds", "run", "-t", TENANT, "--from", DAY.isoformat()], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    folder = root / "out" / TENANT / "daily" / DAY.isoformat()
    assert run.stdout == (f"{TENANT} {DAY.isoformat()} ok     {folder}  "
                          "seats_chat us=2/2 eu=1/1  seats_outbound us=2 eu=0\n"), run.stdout
    assert "warning" not in run.stderr.lower(), run.stderr
    for name, text in expected_for(TENANT).items():
        assert (folder / name).read_text() == text, name
    _run(["bds", "verify", "-t", TENANT], env=env, cwd=tmp_path)
