"""The project's Airflow plugin, registered through the package's `airflow.plugins`
entry point (pyproject.toml): a `pip install` of bds into an existing Airflow is enough,
no file to copy into the plugins folder. (Placeholder; the lead's plugin replaces it.)
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class BdsPlugin(AirflowPlugin):
    name = "bds"
