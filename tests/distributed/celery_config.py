"""`[celery] celery_config_options` of the test cluster: Airflow's defaults, plus the
modules every bds task needs imported once in the worker's main process.

Celery imports `imports` before it forks its pool, and Airflow forks each task process
from there, so pandas, pyarrow, s3fs and the amazon provider are loaded once per
worker instead of once per task (seconds per task on a 2-core machine).
"""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG = {
    **DEFAULT_CELERY_CONFIG,
    "imports": [*DEFAULT_CELERY_CONFIG.get("imports", ()), "tests.distributed.preload"],
}
