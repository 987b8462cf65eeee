"""Imported once by each Celery worker before it forks (see celery_config.py)."""

from __future__ import annotations

import airflow.providers.amazon.aws.fs.s3  # noqa: F401
import airflow.providers.amazon.aws.hooks.s3  # noqa: F401
import pyarrow.parquet  # noqa: F401
import s3fs  # noqa: F401
from airflow.sdk import ObjectStoragePath  # noqa: F401
from airflow.sdk.io.fs import _register_filesystems

import bds_airflow.dag_factory  # noqa: F401
import bds_airflow.object_storage  # noqa: F401
import bds_metrics.pipeline  # noqa: F401

_register_filesystems()  # the providers' file systems, discovered once
