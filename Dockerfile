# bds on Apache Airflow 3.3.2: one image for every Airflow component of
# docker-compose.yaml (api-server, scheduler, dag-processor, triggerer, Celery workers),
# the demo Info Mart seeding job and the local S3 store.
#
#   docker build -t bds-airflow:local .
#
# Built as an operator builds an Airflow image: Airflow and its providers first, from the
# exact pins of requirements.txt (3.3.2 with the celery, amazon and postgres providers,
# s3fs for s3:// roots), then the bds wheel (not an editable tree: its SQL, metric
# catalog and DAG files are package data), then the thin DAG files into the DAG folder.

# Stage 1: the wheel, with the pinned `build`.
FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY requirements-test.txt pyproject.toml README.md ./
COPY bds_metrics ./bds_metrics
COPY bds_airflow ./bds_airflow
RUN pip install --no-cache-dir "$(grep -E '^build==' requirements-test.txt)" \
    && python -m build --wheel --outdir /wheels .

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/bds/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# libpq for psycopg; tini reaps the task processes a worker forks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --home-dir /opt/airflow --uid 50000 --gid 0 airflow

WORKDIR /opt/bds
COPY requirements.txt requirements-test.txt ./
# Airflow and everything else pinned; moto's S3 server (docker-compose's in-memory
# store) at the version of the test lock.
RUN pip install --upgrade pip uv \
    && uv pip install --system --no-cache -r requirements.txt \
    && uv pip install --system --no-cache -c requirements-test.txt moto flask flask-cors

# Installing the wheel registers bds_airflow/preload.py (entry point airflow.policy):
# the scheduler and Celery workers import the pipeline once, before they fork tasks. The
# DAG processor touches the DAG files when BDS_CONFIG changes, so airflow owns dags/.
# The bds wheel: its dependency ranges are met by the lock, so nothing moves.
COPY --from=wheel /wheels /wheels
RUN uv pip install --system --no-cache -c requirements.txt /wheels/bds-*.whl \
    && mkdir -p /opt/bds/dags \
    && cp "$(python -c 'from bds_airflow import airflow_env; print(airflow_env.DAGS_FOLDER)')"/*.py /opt/bds/dags/ \
    && mkdir -p /opt/bds/bds_metrics/demo \
    && cp "$(python -c 'from importlib.resources import files; print(files("bds_metrics.demo") / "demo.yaml")')" /opt/bds/bds_metrics/demo/demo.yaml \
    && mkdir -p /opt/airflow/logs /opt/airflow/auth \
    && chown -R airflow:0 /opt/airflow /opt/bds/dags \
    && chmod -R g+rwX /opt/airflow

USER airflow
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["airflow", "version"]
