"""BDS billing: one Airflow DAG per tenant of the configuration file in BDS_CONFIG.

Part 3 of 4: the tenants are spread over four identical files (by a stable hash of
the tenant id) so that Airflow's DAG processor parses them in parallel. Thin on purpose:
the DAG shape lives in bds_airflow.dag_factory and the logic in bds_metrics. Parsing
reads the YAML only: no database, no pandas.
"""

from bds_airflow.dag_factory import tenant_dags

globals().update(tenant_dags(dag_file=__file__))
