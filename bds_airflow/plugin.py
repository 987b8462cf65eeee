"""The project's Airflow plugin: what the scheduler, the DAG processor, the triggerer
and the API server must know about bds.

Registered through the package's `airflow.plugins` entry point (pyproject.toml), so a
`pip install` of bds into an existing Airflow is enough: no file to copy into the
plugins folder.

- `timetables`: the billing-day timetable (SPEC §8), needed to deserialize bds DAGs.
- `fastapi_root_middlewares`: on the API server, a manual trigger of a bds DAG (the UI's
  trigger form or `POST /api/v2/dags/{dag_id}/dagRuns`) gets the first instant of the
  billing day its logical date names as logical date (`bds_airflow.trigger_identity`).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from .timetable import BillingDayTimetable
from .trigger_identity import BillingDayTriggerMiddleware


class BdsPlugin(AirflowPlugin):
    name = "bds"
    timetables = [BillingDayTimetable]
    fastapi_root_middlewares = [
        {"middleware": BillingDayTriggerMiddleware,
         "args": [], "kwargs": {}, "name": "bds billing-day trigger identity"},
    ]
