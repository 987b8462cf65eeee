# bds on Apache Airflow 3.3.2: one image for every Airflow component of
# docker-compose.yaml (api-server, scheduler, dag-processor, triggerer, Celery workers),
# the demo Info Mart seeding job and the local S3 store.
#
#   docker build -t bds-airflow:local .
#
# Everything Python comes from requirements.txt (exact pins, Airflow 3.3.2 with the
# celery, amazon and postgres providers, s3fs for s3:// roots); the bds code is
# installed in place (editable); its SQL and DAG files are package data.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/bds/bds_airflow/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# libpq for psycopg; tini reaps the task processes a worker forks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --home-dir /opt/airflow --uid 50000 --gid 0 airflow

WORKDIR /opt/bds
COPY requirements.txt pyproject.toml ./
RUN pip install --upgrade pip uv \
    && uv pip install --system --no-cache -r requirements.txt

COPY bds_metrics ./bds_metrics
COPY bds_airflow ./bds_airflow
RUN uv pip install --system --no-cache --no-deps -e . \
    && mkdir -p /opt/airflow/logs /opt/airflow/auth \
    && chown -R airflow:0 /opt/airflow \
    && chmod -R g+rwX /opt/airflow

USER airflow
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["airflow", "version"]
