"""Example importer DAGs (SPEC §8 Assets): one per tenant of BDS_CONFIG, scheduled on the
tenant's daily Asset `bds://<tenant>/daily`, so it runs whenever bds publishes a day.

A template: copy it into the DAG folder (the demo does) and replace `import_day` with the
real import. This one appends "<period> <folder>" of each published day to
`<output_root>/<tenant>/imported.txt`, reading the asset event's extra. Parsing reads the
YAML only (no database, no pandas), like the bds DAG files.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from bds_airflow.assets import asset, daily_uri
from bds_metrics.config import load_config


def importer(tenant_id: str, output_root: str) -> DAG:
    daily = asset(daily_uri(tenant_id))
    with DAG(dag_id=f"import_{tenant_id}", schedule=[daily], catchup=False,
             start_date=pendulum.datetime(2020, 1, 1, tz="UTC"),
             tags=["bds", "importer", f"tenant:{tenant_id}"]) as dag:

        @task
        def import_day(**context) -> str:
            lines = []
            for events in context["triggering_asset_events"].values():
                for ev in events:
                    lines.append(f"{ev.extra['period']} {ev.extra['folder']}\n")
            target = os.path.join(output_root, tenant_id, "imported.txt")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "a", encoding="utf-8") as f:
                f.writelines(lines)
            return "".join(lines)

        import_day()
    return dag


if os.environ.get("BDS_CONFIG"):
    for _t in load_config().tenants:
        if not _t.output_root.startswith(("s3:", "gs:", "abfs:", "file:")):
            globals()[f"import_{_t.id}"] = importer(_t.id, _t.output_root)
