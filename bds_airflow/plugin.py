"""The project's Airflow plugin: what the scheduler, the DAG processor, the triggerer
and the API server must know about bds.

Registered through the package's `airflow.plugins` entry point (pyproject.toml), so a
`pip install` of bds into an existing Airflow is enough: no file to copy into the
plugins folder.

- `timetables`: the billing-day timetable (SPEC §8), needed to deserialize bds DAGs.
- `deadline_references`: `BillingDayEnd`, the reference of the "day not published"
  DeadlineAlert (the billing day's end, SPEC §8 Alerts), needed to deserialize it too.
- `fastapi_root_middlewares`: on the API server, a manual trigger of a bds DAG (the UI's
  trigger form or `POST /api/v2/dags/{dag_id}/dagRuns`) gets the first instant of the
  billing day its logical date names as logical date (`bds_airflow.trigger_identity`).
- `fastapi_apps` and `external_views`: the Billing page (SPEC §12), a FastAPI app the API
  server mounts at `/bds`, and its entry in the UI's navigation (shown inside the UI at
  `/plugin/billing`). The app is imported on its first request only, so schedulers,
  workers and the DAG processor that load this plugin never import it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from .deadlines import BillingDayEnd
from .timetable import BillingDayTimetable
from .trigger_identity import BillingDayTriggerMiddleware


class _BillingApp:
    """ASGI app that imports `bds_airflow.ui.app` when the API server first calls it."""

    async def __call__(self, scope, receive, send):
        from .ui.app import app

        await app(scope, receive, send)


BILLING_VIEW = {
    "name": "Billing",
    "href": "/bds/",
    "destination": "nav",
    "url_route": "billing",
    "nav_top_level": True,  # its own entry in the navigation bar, not under "Plugins"
    "icon": "/bds/static/billing-icon.svg",
}


class BdsPlugin(AirflowPlugin):
    name = "bds"
    timetables = [BillingDayTimetable]
    deadline_references = [BillingDayEnd]  # the "day not published" deadline's reference
    fastapi_root_middlewares = [
        {"middleware": BillingDayTriggerMiddleware,
         "args": [], "kwargs": {}, "name": "bds billing-day trigger identity"},
    ]
    fastapi_apps = [{"app": _BillingApp(), "url_prefix": "/bds", "name": "bds billing"}]
    external_views = [BILLING_VIEW]
