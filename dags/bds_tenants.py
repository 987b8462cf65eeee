"""BDS billing: one Airflow DAG per tenant of the configuration file in BDS_CONFIG.

Thin on purpose: the DAG shape lives in bds_airflow.dag_factory and the logic in
bds_metrics. Parsing this file reads the YAML only: no database, no pandas.
"""

from bds_airflow.dag_factory import tenant_dags

globals().update(tenant_dags())
