"""The project's Airflow plugin (entry point `airflow.plugins: bds`).

The Billing page (SPEC §12): a FastAPI app the API server mounts at `/bds`, and an
external view that puts it in the UI's navigation (shown inside the UI at
`/plugin/billing`). The app is imported on its first request only, so schedulers,
workers and the DAG processor that load this plugin never import FastAPI's security
layer for it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


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
    fastapi_apps = [{"app": _BillingApp(), "url_prefix": "/bds", "name": "bds billing"}]
    external_views = [BILLING_VIEW]
