"""`bds status` with Airflow's metadata: a day whose real DAG run failed is `failed`
(exit 1); the same run put back to running with its readiness task up for reschedule (as
the scheduler does while the sensor waits) is `waiting for readiness`."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cases import DAY, setup_case
from tests.cases import NO_DEFAULT_CONFIG as NO_DEFAULT

pytestmark = [pytest.mark.xdist_group("airflow"), pytest.mark.usefixtures("airflow_db")]


def test_status_reads_failed_and_waiting_runs(tmp_path, new_db, monkeypatch, capsys):
    from bds_airflow.cli import main
    from bds_airflow.run_states import latest_runs
    from bds_airflow.runner import run_days
    from bds_metrics import status

    t, _root = setup_case(tmp_path, new_db, monkeypatch, config=NO_DEFAULT, tenant="acme_st")
    assert run_days(t, DAY, DAY, echo=lambda _line: None) == 1  # unmapped switch: fails
    runs = latest_runs(t.id, t.timezone, DAY - dt.timedelta(1), DAY + dt.timedelta(1))
    assert list(runs) == [DAY] and runs[DAY].state == "failed" and not runs[DAY].waiting
    [day] = status.day_states(t, DAY, DAY, runs)
    assert day.state == "failed" and day.version is None

    capsys.readouterr()
    assert main(["status", "-t", "acme_st", "--from", "2026-03-08", "--to", "2026-03-08"]) == 1
    out = capsys.readouterr().out
    assert "Airflow runs: read" in out
    assert f"2026-03-08  failed  run {runs[DAY].run_id}" in out

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    with create_session() as s:
        dr = s.query(DagRun).filter(DagRun.run_id == runs[DAY].run_id,
                                    DagRun.dag_id == "bds_acme_st").one()
        dr.state = DagRunState.RUNNING
        ti = s.query(TaskInstance).filter(TaskInstance.run_id == dr.run_id,
                                          TaskInstance.dag_id == dr.dag_id,
                                          TaskInstance.task_id == "wait_settled").one()
        ti.state = TaskInstanceState.UP_FOR_RESCHEDULE
    runs = latest_runs(t.id, t.timezone, DAY, DAY)
    assert runs[DAY].state == "running" and runs[DAY].waiting
    assert status.day_states(t, DAY, DAY, runs)[0].state == "waiting for readiness"
    assert main(["status", "-t", "acme_st", "--from", "2026-03-08", "--to", "2026-03-08"]) == 0
    assert "2026-03-08  waiting for readiness" in capsys.readouterr().out
